"""Find functional runs in an fMRIPrep derivatives folder."""

from __future__ import annotations

import json
from pathlib import Path

from ..entities import ENTITY_ORDER, build_name, parse_entities
from ..errors import InputError
from .runs import Run
from .surface import make_surface_run, surface_bold_files

__all__ = ["BOLD_SUFFIX", "check_derivatives_folder", "derivatives_root", "find_runs", "parse_entities"]

BOLD_SUFFIX = "_desc-preproc_bold.nii.gz"


def derivatives_root(bold: Path) -> Path:
    """The derivatives folder of a functional file (``<root>/sub-<l>[/ses-<l>]/func/<file>``)."""
    bold = Path(bold)
    return bold.parents[3] if parse_entities(bold.name).get("ses") else bold.parents[2]


def check_derivatives_folder(root: Path) -> dict:
    """Check that ``root`` is a BIDS derivatives folder and return its description.

    Raises
    ------
    InputError
        If the folder is missing, has no ``dataset_description.json``, or is a
        raw BIDS dataset.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: folder not found (expected an fMRIPrep derivatives folder)")
    description_file = root / "dataset_description.json"
    if not description_file.is_file():
        raise InputError(
            f"{root}: not a BIDS derivatives folder (no dataset_description.json); "
            "point trdnet at fMRIPrep's output folder"
        )
    try:
        description = json.loads(description_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{description_file}: invalid JSON ({exc})") from None
    if description.get("DatasetType", "derivative") == "raw":
        raise InputError(
            f"{root}: this is a raw BIDS dataset (DatasetType 'raw'); run fMRIPrep and point trdnet at its output"
        )
    return description


def find_runs(
    root: Path,
    participant_labels=None,
    space: str = "MNI152NLin2009cAsym",
    task: str | None = None,
    sessions=None,
) -> list[Run]:
    """List the preprocessed BOLD runs of an fMRIPrep derivatives folder.

    Parameters
    ----------
    root : Path
        fMRIPrep output folder (holding ``dataset_description.json`` and ``sub-*``).
    participant_labels : list of str, optional
        Keep only these participants (with or without ``sub-``).
    space : str
        Template or native space of the BOLD images (``space-`` entity).
    task : str, optional
        Keep only this task (with or without ``task-``).
    sessions : list of str, optional
        Keep only these sessions (with or without ``ses-``).

    Returns
    -------
    list of Run
        Sorted by participant, session, task and run.

    Raises
    ------
    InputError
        If nothing matches; the message says what exists instead.
    """
    root = Path(root)
    description = check_derivatives_folder(root)
    simulated = bool(description.get("Simulated", False)) or "SIMULATED" in description.get("Name", "").upper()
    labels = _strip(participant_labels, "sub-")
    wanted_sessions = _strip(sessions, "ses-")
    task = task.removeprefix("task-") if task else task
    candidates = sorted(root.glob(f"sub-*/**/func/*{BOLD_SUFFIX}")) + sorted(root.glob(f"sub-*/func/*{BOLD_SUFFIX}"))
    candidates = sorted(set(candidates) | set(surface_bold_files(root.glob("sub-*/**/func/*"))))
    if not candidates:
        raise InputError(f"{root}: no '*{BOLD_SUFFIX}' files under sub-*/[ses-*/]func/")

    runs, other_spaces = [], set()
    for bold in candidates:
        entities = parse_entities(bold.name)
        if labels and entities.get("sub") not in labels:
            continue
        if wanted_sessions and entities.get("ses") not in wanted_sessions:
            continue
        if task and entities.get("task") != task:
            continue
        if entities.get("space", "") != space:
            other_spaces.add(entities.get("space", "(none)"))
            continue
        runs.append(_make_run(bold, entities, simulated))

    if not runs:
        filters = []
        if labels:
            filters.append(f"participants {sorted(labels)}")
        if wanted_sessions:
            filters.append(f"sessions {sorted(wanted_sessions)}")
        if task:
            filters.append(f"task {task!r}")
        filters.append(f"space {space!r}")
        hint = f"; images exist in space(s) {sorted(other_spaces)} (use --space)" if other_spaces else ""
        found = sorted({parse_entities(p.name).get("sub") for p in candidates})
        raise InputError(
            f"{root}: no BOLD run matches {', '.join(filters)}{hint}; participants present: {found}"
        )
    return sorted(runs, key=lambda r: tuple(r.entities.get(k, "") for k in ENTITY_ORDER))


def _make_run(bold: Path, entities: dict, simulated: bool) -> Run:
    if not bold.name.endswith(BOLD_SUFFIX):
        return make_surface_run(bold, entities, simulated, _find_confounds)
    base = bold.name[: -len(BOLD_SUFFIX)]
    mask = bold.parent / f"{base}_desc-brain_mask.nii.gz"
    sidecar = bold.parent / (bold.name[: -len(".nii.gz")] + ".json")
    tr, meta_simulated = None, False
    if sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{sidecar}: invalid JSON ({exc})") from None
        tr = meta.get("RepetitionTime")
        meta_simulated = bool(meta.get("Simulated", False))
    confounds = _find_confounds(bold, entities)
    is_simulated = simulated or meta_simulated
    return Run(
        bold=bold,
        entities=entities,
        mask=mask if mask.is_file() else None,
        confounds=confounds,
        tr=float(tr) if tr is not None else None,
        simulated=is_simulated,
        source="simulated" if is_simulated else "fmriprep",
    )


def _find_confounds(bold: Path, entities: dict) -> Path | None:
    keep = ("sub", "ses", "task", "acq", "rec", "dir", "run", "echo")
    for suffix in ("timeseries", "regressors"):
        path = bold.parent / build_name({**{k: entities.get(k) for k in keep}, "desc": "confounds"}, suffix, ".tsv")
        if path.is_file():
            return path
    return None


def _strip(values, prefix: str):
    if not values:
        return None
    return {v[len(prefix):] if v.startswith(prefix) else v for v in values}
