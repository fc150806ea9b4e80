"""Select runs with a BIDS filter file, in fMRIPrep's ``--bids-filter-file`` form.

The file is a JSON object of queries; trdnet reads the ``"bold"`` query, e.g.
``{"bold": {"session": "01", "task": "rest", "run": [1, 2], "acquisition": null}}``.
Keys are PyBIDS entity names (``subject``, ``session``, ``task``,
``acquisition``, ``ceagent``, ``reconstruction``, ``direction``, ``run``,
``echo``, ``part``, ``space``, ``resolution``, ``density``, ``desc``); a value
is a label, a list of labels, or null (the entity must be absent). They are
matched against the preprocessed images' names, so ``"desc": "preproc"``
keeps fMRIPrep's volume runs (``desc-preproc_bold.nii.gz``) and
``"desc": null`` its surface runs (``_bold.func.gii``, ``_bold.dtseries.nii``,
which have no ``desc``). ``extension`` is matched as PyBIDS matches it: the
BOLD file's whole extension, with or without the leading dot, so ``".nii"``
keeps uncompressed ``_bold.nii`` runs only, ``".nii.gz"`` compressed ones,
``".func.gii"`` and ``".dtseries.nii"`` surface runs, and a list any of them;
an extension no BOLD file trdnet reads can have (``.tsv``) is refused.
``datatype`` and ``suffix`` may be given and must admit preprocessed BOLD
images (``func``, ``bold``). Queries for other files (``t1w``, ``fmap``, ...)
do not select BOLD runs and are ignored with a note.

:func:`trdnet.inputs.bids.find_runs` applies the filter (``bids_filter=``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..entities import parse_bids_name
from ..errors import InputError, NotImplementedFeatureError
from .runs import VOLUME_SUFFIXES
from .surface import CIFTI_SUFFIX, GIFTI_SUFFIX

log = logging.getLogger("trdnet.inputs.bids_filter")

#: Extensions a BOLD file trdnet reads can have (PyBIDS ``extension``):
#: volumes, GIFTI (one file per hemisphere) and CIFTI.
BOLD_EXTENSIONS = tuple(parse_bids_name(s).extension for s in (*VOLUME_SUFFIXES, GIFTI_SUFFIX, CIFTI_SUFFIX))

#: PyBIDS entity name -> the key in a file name (and in ``Run.entities``).
ENTITY_KEYS = {
    "subject": "sub", "session": "ses", "task": "task", "acquisition": "acq", "ceagent": "ce",
    "reconstruction": "rec", "direction": "dir", "run": "run", "echo": "echo", "part": "part", "space": "space",
    "resolution": "res", "density": "den", "desc": "desc",
}
#: Keys that describe the file kind rather than an entity, and the values that admit a BOLD image.
_KIND_KEYS = {"datatype": {"func"}, "suffix": {"bold"}}


def read_bids_filter(path: str | Path) -> dict[str, list[str] | None]:
    """Read the BOLD query of a BIDS filter file.

    Parameters
    ----------
    path : str or Path
        JSON file in fMRIPrep's ``--bids-filter-file`` form.

    Returns
    -------
    dict
        Entity key (``ses``, ``task``, ...) -> accepted labels as strings, or
        None when the entity must be absent; ``extension`` -> accepted
        extensions with their leading dot. Empty when the file has no
        ``"bold"`` query.

    Raises
    ------
    InputError
        Naming the file and what is wrong (unreadable, not JSON, not an
        object, unknown entity, a value that is not a label, an extension no
        BOLD file trdnet reads has).
    NotImplementedFeatureError
        For PyBIDS regular-expression queries (``"regex_search": true``).
    """
    path = Path(path)
    try:
        queries = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read BIDS filter file ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: BIDS filter file is not UTF-8 JSON ({exc})") from None
    if not isinstance(queries, dict):
        raise InputError(f'{path}: a BIDS filter file is a JSON object of queries, e.g. {{"bold": {{"task": "rest"}}}}')
    others = sorted(set(queries) - {"bold"})
    if others:
        log.info("%s: queries %s do not select BOLD runs; only 'bold' is used", path, others)
    bold = queries.get("bold", {})
    if not isinstance(bold, dict):
        raise InputError(f'{path}: the "bold" query must be an object of entities, e.g. {{"task": "rest"}}')
    if bold.get("regex_search"):
        raise NotImplementedFeatureError(f"{path}: regular-expression queries (regex_search) are not implemented; "
                                         "list the labels instead")
    selection: dict[str, list[str] | None] = {}
    for name, value in bold.items():
        if name == "regex_search":
            continue
        if name in _KIND_KEYS:
            values = value if isinstance(value, list) else [value]
            if not set(map(str, values)) & _KIND_KEYS[name]:
                raise InputError(f"{path}: bold.{name} = {json.dumps(value)} excludes preprocessed BOLD images; "
                                 f"accepted: {sorted(_KIND_KEYS[name])}")
            continue
        if name == "extension":
            selection["extension"] = _extensions(path, value)
            continue
        if name not in ENTITY_KEYS:
            raise InputError(f"{path}: unknown entity {name!r} in the bold query; accepted: "
                             f"{sorted([*ENTITY_KEYS, *_KIND_KEYS, 'extension'])}")
        selection[ENTITY_KEYS[name]] = _labels(path, name, value)
    return selection


def _labels(path: Path, name: str, value) -> list[str] | None:
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
        raise InputError(f"{path}: bold.{name} = {json.dumps(value)} is not accepted; accepted: a label, "
                         "a list of labels, or null (entity absent)")
    return [str(v) for v in values]


def _extensions(path: Path, value) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v for v in values):
        raise InputError(f"{path}: bold.extension = {json.dumps(value)} is not an extension; accepted: "
                         f"{list(BOLD_EXTENSIONS)}, one or a list")
    extensions = ["." + v.removeprefix(".") for v in values]  # PyBIDS: with or without the leading dot
    unread = [v for v in extensions if v not in BOLD_EXTENSIONS]
    if unread:
        raise InputError(f"{path}: bold.extension = {json.dumps(value)}: no BOLD file trdnet reads has extension "
                         f"{', '.join(unread)}; accepted: {list(BOLD_EXTENSIONS)}")
    return extensions


def _same_label(found: str, wanted: str) -> bool:
    # PyBIDS compares run (and echo) numbers as integers: run 1 matches run-01.
    if found.isdigit() and wanted.isdigit():
        return int(found) == int(wanted)
    return found == wanted


def select_runs(runs, selection: dict[str, list[str] | None], source: str | Path):
    """Keep the runs whose entities pass a BIDS filter.

    Parameters
    ----------
    runs : list of trdnet.inputs.runs.Run
    selection : dict
        From :func:`read_bids_filter`.
    source : str or Path
        The filter file, named in the error.

    Returns
    -------
    list of Run

    Raises
    ------
    InputError
        If no run passes; the message lists the runs there were.
    """
    def passes(run) -> bool:
        for key, wanted in selection.items():
            if key == "extension":
                if parse_bids_name(run.bold).extension not in wanted:
                    return False
                continue
            found = run.entities.get(key)
            if wanted is None:
                if found:
                    return False
            elif found is None or not any(_same_label(str(found), w) for w in wanted):
                return False
        return True

    kept = [run for run in runs if passes(run)]
    if runs and not kept:
        raise InputError(f"{source}: no BOLD run passes the filter {selection}; runs found: "
                         f"{[run.prefix for run in runs][:20]}")
    return kept
