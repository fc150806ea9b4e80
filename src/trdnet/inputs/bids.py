"""Find functional runs in an fMRIPrep derivatives folder."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

from ..config import MNI_SPACE
from ..entities import ENTITY_ORDER, parse_bids_name, parse_entities, split_space_spec
from ..errors import InputError
from .anatomy import find_native_anatomy
from .runs import BOLD_SUFFIX, VOLUME_SUFFIXES, Run, check_distinct_outputs
from .surface import is_surface_space, make_surface_run, surface_bold_files

__all__ = [
    "BOLD_SUFFIX", "SUPPORTED_SPACES", "check_derivatives_folder", "check_space", "derivatives_root", "find_runs",
    "find_companion", "find_confounds", "parse_entities",
]


#: Spaces of BOLD runs trdnet analyses. Its regions (sgACC seed, DLPFC sites,
#: network ROIs, grey matter) are MNI152NLin2009cAsym coordinates; a T1w run
#: reaches them through fMRIPrep's ``from-MNI152NLin2009cAsym_to-T1w`` transform.
SUPPORTED_SPACES = (MNI_SPACE, "T1w")

#: Why other spaces fMRIPrep writes are refused (shown in the error).
UNSUPPORTED_SPACES = {
    "MNI152NLin6Asym": "FSL's MNI template (fMRIPrep's space for AROMA and CIFTI): its coordinates differ from "
                       "MNI152NLin2009cAsym by up to several mm in the frontal lobe and trdnet ships no mapping",
    "MNIPediatricAsym": "a paediatric template: adult MNI152 regions do not apply",
    "MNI305": "fsaverage's MNI space (a linear cousin of MNI152): trdnet ships no mapping for volumes",
    "MNIColin27": "a single-subject MNI template: trdnet ships no mapping",
    "MNI152Lin": "the linear MNI152 template: trdnet ships no mapping",
    "MNI152NLin2009cSym": "the symmetric 2009c template: trdnet ships no mapping",
    "MNIInfant": "an infant template: adult MNI152 regions do not apply",
}

#: Entities a run's companion files may lack. fMRIPrep writes one confounds
#: table per run (not per echo, output space or hemisphere, with or without
#: ``part``; parcellated series add ``seg``) and a brain mask per output
#: space but not per echo. Two reconstructions (``rec-``) of one acquisition
#: share its volumes and head motion, so a table without ``rec-`` serves each;
#: ``acq-``, ``ce-`` and ``dir-`` are other acquisitions and need their own
#: table (a table with the entity, where there is one, always wins).
CONFOUNDS_OPTIONAL = ("echo", "part", "rec", "space", "cohort", "res", "den", "hemi", "seg")
MASK_OPTIONAL = ("echo", "part")


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
    bids_filter: str | Path | None = None,
) -> list[Run]:
    """List the preprocessed BOLD runs of an fMRIPrep derivatives folder.

    Parameters
    ----------
    root : Path
        fMRIPrep output folder (holding ``dataset_description.json`` and ``sub-*``).
    participant_labels : list of str, optional
        Keep only these participants (with or without ``sub-``).
    space : str
        Template or native space of the BOLD images (``space-`` entity), in
        fMRIPrep's ``--output-spaces`` form: ``MNI152NLin2009cAsym:res-2``
        keeps only the ``res-2`` images of that space.
    task : str, optional
        Keep only this task (with or without ``task-``).
    sessions : list of str, optional
        Keep only these sessions (with or without ``ses-``).
    bids_filter : str or Path, optional
        A BIDS filter file (fMRIPrep's ``--bids-filter-file``); only the runs
        its ``"bold"`` query selects are kept (see
        :mod:`trdnet.inputs.bids_filter`). Applied before the check that no
        two runs share output names, so it can choose between a run's
        ``.nii`` and ``.nii.gz`` copies.

    Returns
    -------
    list of Run
        Sorted by participant, session, task and run; each carries its
        participant's native anatomy (``Run.anatomy``, searched once per
        participant and session).

    Raises
    ------
    InputError
        If nothing matches; the message says what exists instead. If the
        filter file is unreadable or wrong, naming it and the problem.
    """
    root = Path(root)
    try:
        space, space_entities = split_space_spec(space)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    check_space(space)
    description = check_derivatives_folder(root)
    simulated = bool(description.get("Simulated", False)) or "SIMULATED" in description.get("Name", "").upper()
    labels = _strip(participant_labels, "sub-")
    wanted_sessions = _strip(sessions, "ses-")
    task = task.removeprefix("task-") if task else task
    selection = None
    if bids_filter is not None:
        from .bids_filter import read_bids_filter, select_runs

        selection = read_bids_filter(bids_filter)
    candidates = {path for suffix in VOLUME_SUFFIXES for pattern in (f"sub-*/**/func/*{suffix}", f"sub-*/func/*{suffix}")
                  for path in root.glob(pattern)}
    candidates = sorted(candidates | set(surface_bold_files(root.glob("sub-*/**/func/*"))))
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
        if entities.get("space", "") != space or any(entities.get(k) != v for k, v in space_entities.items()):
            other_spaces.add(":".join([entities.get("space", "(none)"),
                                       *(f"{k}-{entities.get(k, '(none)')}" for k in space_entities)]))
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
        filters.append(f"space {':'.join([space, *(f'{k}-{v}' for k, v in space_entities.items())])!r}")
        hint = f"; images exist in space(s) {sorted(other_spaces)} (use --space)" if other_spaces else ""
        found = sorted({parse_entities(p.name).get("sub") for p in candidates})
        present = f"participants present: {found}"
        if wanted_sessions:  # of the participants asked for: the session labels that would match
            sessions = sorted({e["ses"] for e in map(parse_entities, (p.name for p in candidates))
                               if "ses" in e and (not labels or e.get("sub") in labels)})
            present += f"; sessions present: {sessions or 'none (no ses- entity)'}"
        raise InputError(f"{root}: no BOLD run matches {', '.join(filters)}{hint}; {present}")
    anatomy = functools.cache(lambda subject, session: find_native_anatomy(root, subject, session))
    runs = [dataclasses.replace(run, anatomy=anatomy(run.subject, run.entities.get("ses"))) for run in runs]
    runs = sorted(runs, key=lambda r: tuple(r.entities.get(k, "") for k in ENTITY_ORDER))
    if selection is not None:
        runs = select_runs(runs, selection, bids_filter)
    check_distinct_outputs(runs)
    return runs


def check_space(space: str) -> None:
    """Refuse a space trdnet cannot analyse, before anything is read.

    Raises
    ------
    InputError
        Naming the space, why it is refused and the accepted spaces.
    """
    if space in SUPPORTED_SPACES or is_surface_space(space):
        return
    why = UNSUPPORTED_SPACES.get(space, "trdnet's regions are defined in MNI152NLin2009cAsym and no mapping from "
                                        "this space ships with it")
    raise InputError(
        f"space {space!r} is not supported ({why}); accepted: {', '.join(SUPPORTED_SPACES)} "
        "and the surface spaces fsaverage*, fsnative, fsLR; re-run fMRIPrep "
        f"with --output-spaces {MNI_SPACE} (or analyse the T1w outputs)"
    )


def _make_run(bold: Path, entities: dict, simulated: bool) -> Run:
    if not bold.name.endswith(VOLUME_SUFFIXES):
        return make_surface_run(bold, entities, simulated, find_confounds)
    extension = parse_bids_name(bold).extension
    mask = (find_companion(bold, entities, "brain", "mask", extension, MASK_OPTIONAL)
            or find_companion(bold, entities, "brain", "mask", ".nii.gz", MASK_OPTIONAL))
    sidecar = bold.parent / (bold.name[: -len(extension)] + ".json")
    tr, meta_simulated = None, False
    if sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{sidecar}: invalid JSON ({exc})") from None
        tr = meta.get("RepetitionTime")
        meta_simulated = bool(meta.get("Simulated", False))
    confounds = find_confounds(bold, entities)
    is_simulated = simulated or meta_simulated
    return Run(
        bold=bold,
        entities=entities,
        mask=mask,
        confounds=confounds,
        tr=_number(tr, sidecar),
        tr_source=f"{sidecar.name} RepetitionTime" if tr is not None else "",
        simulated=is_simulated,
        source="simulated" if is_simulated else "fmriprep",
    )


def find_confounds(bold: Path, entities: dict) -> Path | None:
    """fMRIPrep's confounds table of the run a BOLD (or parcellated) file belongs to, or None.

    The current name (``desc-confounds_timeseries.tsv``) is preferred over the
    older ``desc-confounds_regressors.tsv``; see :func:`find_companion`.
    """
    for suffix in ("timeseries", "regressors"):  # fMRIPrep >= 20.2, then the older name
        path = find_companion(bold, entities, "confounds", suffix, ".tsv", CONFOUNDS_OPTIONAL)
        if path is not None:
            return path
    return None


def find_companion(bold: Path, entities: dict, desc: str, suffix: str, extension: str,
                   optional=()) -> Path | None:
    """The file beside ``bold`` that belongs to its run, matched entity by entity as fMRIPrep names it.

    A candidate ``*_desc-<desc>_<suffix><extension>`` belongs to the run when
    each of its entities equals the BOLD file's and each BOLD entity it lacks
    is in ``optional`` (e.g. an echo-wise BOLD file's confounds table has no
    ``echo-``). The candidate sharing the most entities wins.

    Parameters
    ----------
    bold : Path
    entities : dict
        Entities of ``bold``.
    desc, suffix, extension : str
        e.g. ``"confounds"``, ``"timeseries"``, ``".tsv"``.
    optional : sequence of str
        Entities the companion may lack.

    Returns
    -------
    Path or None

    Raises
    ------
    InputError
        If two candidates match equally well (both are named).
    """
    wanted = {k: v for k, v in entities.items() if k != "desc"}
    best, best_score = [], -1
    for path in sorted(bold.parent.glob(f"sub-{entities.get('sub', '*')}_*_desc-{desc}_{suffix}{extension}")):
        found = {k: v for k, v in parse_entities(path).items() if k != "desc"}
        missing = set(wanted) - set(found)
        if any(wanted.get(k) != v for k, v in found.items()) or not missing <= set(optional):
            continue
        score = len(found)
        if score > best_score:
            best, best_score = [path], score
        elif score == best_score:
            best.append(path)
    if len(best) > 1:
        raise InputError(f"{bold}: {len(best)} files could be its desc-{desc}_{suffix}{extension} "
                         f"({', '.join(p.name for p in best)}); keep one")
    return best[0] if best else None


def _number(value, path: Path) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{path}: RepetitionTime {value!r} is not a number (seconds expected)") from None


def _strip(values, prefix: str):
    if not values:
        return None
    return {v[len(prefix):] if v.startswith(prefix) else v for v in values}
