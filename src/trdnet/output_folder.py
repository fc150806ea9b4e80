"""Checks of the output folder made before any work: never write into the inputs.

BIDS Apps are often run with one folder mounted for both inputs and outputs;
trdnet refuses an output folder that is an input folder, lies inside one, or
would replace a file of an input tree (symbolic links resolved), and an output
path that is a file or cannot be written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import InputError

#: Top-level names trdnet writes in an output folder (``sub-*`` and ``*.html`` besides).
WRITTEN_NAMES = {"logs", "group", ".trdnet", "dataset_description.json", "failures.tsv", "demo_accuracy.tsv"}


def _written_by_trdnet(name: str) -> bool:
    return name in WRITTEN_NAMES or name.startswith("sub-") or name.endswith(".html")


def check_output_folder(out_dir: Path, inputs=()) -> Path:
    """Refuse an output folder that would touch the inputs or cannot be written (nothing is created).

    Parameters
    ----------
    out_dir : Path
        The output folder asked for.
    inputs : iterable of Path
        Input folders and files (fMRIPrep derivatives, ROI time-series folder,
        labels table, ...); None entries are ignored.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    InputError
        One line naming the folder and the problem: it is an input folder, is
        inside one, would overwrite part of one, is a file, or is not writable.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: the output path is a file, not a folder; give a folder for trdnet's outputs")
    real_out = out_dir.resolve()
    for source in inputs:
        if source is None:
            continue
        real_in = Path(source).resolve()
        if real_out == real_in:
            raise InputError(f"{out_dir}: the output folder is the input folder {source}; trdnet would write into "
                             f"its inputs (e.g. dataset_description.json): give another folder, e.g. "
                             f"{Path(source).parent / 'trdnet'}")
        if real_in.is_dir() and real_out.is_relative_to(real_in):
            raise InputError(f"{out_dir}: the output folder is inside the input folder {source}; give a folder "
                             f"outside it, e.g. {Path(source).parent / 'trdnet'}")
        if real_in.is_relative_to(real_out) and _written_by_trdnet(real_in.relative_to(real_out).parts[0]):
            raise InputError(f"{out_dir}: trdnet would overwrite the input {source} (it writes "
                             f"{real_in.relative_to(real_out).parts[0]} there); give another output folder")
    _check_links_into_inputs(out_dir, inputs)
    _check_writable(out_dir)
    return out_dir


def _check_links_into_inputs(out_dir: Path, inputs) -> None:
    """Refuse a symbolic link inside the output tree that leads into an input (outputs would land there)."""
    real_inputs = [Path(source).resolve() for source in inputs if source is not None]
    if not out_dir.is_dir() or not real_inputs:
        return
    for top in out_dir.iterdir():
        if not _written_by_trdnet(top.name):
            continue
        walk = [(str(top), [], [])] if top.is_symlink() or not top.is_dir() else os.walk(top)
        for folder, dirs, files in walk:
            for name in [folder, *(os.path.join(folder, d) for d in dirs), *(os.path.join(folder, f) for f in files)]:
                if not os.path.islink(name):
                    continue
                target = Path(name).resolve()
                for real_in in real_inputs:
                    if target == real_in or target.is_relative_to(real_in):
                        raise InputError(f"{name}: a symbolic link in the output folder leads into the input "
                                         f"{real_in}; trdnet would write its outputs there: remove the link or "
                                         "give another output folder")


#: Folders of an output folder a participant run writes into (records, locks and staging, outputs).
RUN_WRITES = ("logs", ".trdnet", "sub-*")


def _probe(folder: Path, problem: str) -> None:
    """Create and remove a temporary file in ``folder`` (truthful for read-only mounts and root alike)."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".trdnet-write-check-")
    except OSError as exc:
        raise InputError(f"{folder}: {problem} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def check_run_folders_writable(out_dir: Path) -> None:
    """Refuse an output folder whose records, locks or run folders cannot be written.

    A run replaced with ``--overwrite`` removes its old completion record
    (``logs/``), takes its lock and stages its outputs (``.trdnet/``) and
    replaces files in ``sub-*/``; a folder among these that exists but cannot
    be written would stop it half-way, so every one is probed before any work.
    Folders that do not exist yet are created inside a folder probed here.

    Parameters
    ----------
    out_dir : Path
        An existing output folder.

    Raises
    ------
    InputError
        Naming the first folder that cannot be written.
    """
    out_dir = Path(out_dir)
    _probe(out_dir, "the output folder cannot be written")
    for pattern in RUN_WRITES:
        for top in sorted(out_dir.glob(pattern)):
            if not top.is_dir() or top.is_symlink():
                continue
            for folder, _, _ in os.walk(top, onerror=_unreadable_folder):
                _probe(Path(folder), "cannot be written, and runs write their records, locks or outputs there; "
                                     "fix its permissions")


def check_group_folder_writable(out_dir: Path) -> None:
    """Refuse, before any work, an output folder whose ``group/`` folder cannot be written.

    Raises
    ------
    InputError
        Naming ``group/`` (or the output folder, where ``group/`` is yet to be created).
    """
    group_dir = Path(out_dir) / "group"
    if group_dir.is_dir():
        _probe(group_dir, "cannot be written, and the group step writes its tables there; fix its permissions")
    else:
        _probe(Path(out_dir), "the output folder cannot be written (the group step creates group/ there)")


def _unreadable_folder(exc: OSError):
    raise InputError(f"{exc.filename}: a folder of the output folder cannot be read ({exc.strerror or exc})")


def _check_writable(out_dir: Path) -> None:
    """Probe an existing output folder and the folders a run writes into; else check where it would be created."""
    if out_dir.is_dir():
        check_run_folders_writable(out_dir)
        return
    parent = out_dir.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{out_dir}: the output folder cannot be created ({parent} is not a writable folder)")
