"""A run's confounds table: read and checked, then regressors and censored volumes chosen through nilearn.

fMRIPrep-named tables go through :func:`nilearn.interfaces.fmriprep.load_confounds`
with every argument given explicitly (:func:`confound_arguments`, recorded in
the sidecars); a provider's own table (public datasets) gives its basic
columns by name. A table the settings cannot use is refused in one line
naming the file, what is missing and which settings work without it. Used by
the voxel (:mod:`trdnet.denoise`) and ROI (:mod:`trdnet.roi_denoise`) cleaning alike.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from nilearn.interfaces.fmriprep import load_confounds

from .config import DenoiseSettings
from .entities import build_name, parse_entities
from .errors import InputError, SettingsError
from .inputs.motion import MOTION_PARAMETERS
from .inputs.runs import Run

#: ``load_confounds`` expansion levels and the column suffixes each needs.
_EXPANSIONS = {
    "basic": (),
    "power2": ("_power2",),
    "derivatives": ("_derivative1",),
    "full": ("_derivative1", "_power2", "_derivative1_power2"),
}


def load_run_confounds(run: Run, n_volumes: int, settings: DenoiseSettings):
    """Select confounds and the censoring mask for a run.

    fMRIPrep-style confounds go through
    :func:`nilearn.interfaces.fmriprep.load_confounds` with every argument
    given explicitly (recorded in the output sidecars).

    Returns
    -------
    confounds : pandas.DataFrame or None
        Regressors, one row per volume.
    sample_mask : numpy.ndarray of int
        Indices of the retained volumes.
    raw : pandas.DataFrame or None
        The full confounds file (for QC).
    """
    if run.confounds is None or run.confounds_format == "none":
        if run.confounds_format == "fmriprep":
            raise InputError(
                f"{run.bold}: no confounds file beside it (expected *_desc-confounds_timeseries.tsv "
                "or the older *_desc-confounds_regressors.tsv)"
            )
        return None, np.arange(n_volumes), None
    if run.confounds_format == "table":
        from .inputs.public import read_dataset_confounds

        raw = read_dataset_confounds(run)
        if len(raw) != n_volumes:
            raise InputError(
                f"{run.confounds}: {len(raw)} rows but the BOLD image {run.bold.name} has {n_volumes} volumes"
            )
        return provider_confounds(raw, settings), np.arange(n_volumes), raw
    # nilearn is handed exactly the table found here (alone in a folder of its own), never the BOLD path to search
    # again: beside an entity-less run, a run with one more entity (acq-, ce-, rec-, dir-) would match two tables.
    return select_confounds(run.confounds, n_volumes, settings, against=f"the BOLD image {run.bold.name}")


def provider_confounds(raw: pd.DataFrame, settings: DenoiseSettings) -> pd.DataFrame | None:
    """Select regressors by fMRIPrep column name from a provider's own table.

    Only the basic terms exist in such tables: six motion parameters, white
    matter and CSF, global signal; no censoring is possible without FD.
    """
    wanted = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
    if settings.wm_csf != "none":
        wanted += ["white_matter", "csf"]
    if settings.gsr:
        wanted.append("global_signal")
    present = [c for c in wanted if c in raw]
    if not present:
        return None
    selected = raw[present].apply(pd.to_numeric, errors="coerce").fillna(0.0)
    return selected - selected.mean()


def confound_arguments(settings: DenoiseSettings) -> dict:
    """The exact keyword arguments given to nilearn's ``load_confounds``."""
    compcor = {"compcor": settings.compcor, "n_compcor": settings.n_compcor} if settings.compcor != "none" else {}
    return {
        **compcor,
        "strategy": settings.confound_strategy(),
        "motion": settings.motion,
        "wm_csf": settings.wm_csf if settings.wm_csf != "none" else "basic",
        "global_signal": settings.global_signal if settings.gsr else "basic",
        "scrub": settings.scrub_min_segment,
        "fd_threshold": settings.fd_threshold,
        "std_dvars_threshold": settings.std_dvars_threshold,
        "demean": True,
    }


def select_confounds(confounds_path: Path, n_volumes: int, settings: DenoiseSettings,
                     against: str = "the ROI signals"):
    """Regressors and retained volumes from an fMRIPrep confounds table, through nilearn.

    nilearn's ``load_confounds`` finds a run's table from its image name; ROI
    runs have no image, so it is given the name fMRIPrep's BOLD image of the
    same run would have (``..._desc-preproc_bold.nii.gz``), beside a link to
    the table (and its JSON) in a temporary folder of its own, so that no other
    run's table can match; the image itself is never opened.

    Parameters
    ----------
    confounds_path : Path
        ``<entities>_desc-confounds_timeseries.tsv`` (or ``_regressors.tsv``).
    n_volumes : int
        Rows the table must have.
    settings : DenoiseSettings
    against : str
        What the rows are counted against, for the message.

    Returns
    -------
    confounds : pandas.DataFrame or None
    sample_mask : numpy.ndarray of int
    table : pandas.DataFrame
        The whole table (for QC).

    Raises
    ------
    InputError
        Unreadable table, another row count, or columns the settings need
        but the table lacks (see :func:`confounds_problems`).
    """
    table = read_confounds_table(confounds_path)
    if len(table) != n_volumes:
        raise InputError(f"{confounds_path}: {len(table)} rows but {against} has {n_volumes} volumes")
    check_confounds_header(confounds_path, settings, error=InputError)
    entities = parse_entities(confounds_path.name) | {"desc": "preproc"}
    try:
        # nilearn matches every subset of the image's entities: alone in a folder, the table is the only match.
        with tempfile.TemporaryDirectory(prefix="trdnet-confounds-") as alone, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for source in (confounds_path, confounds_path.with_suffix(".json")):
                if source.is_file():
                    _link_or_copy(source, Path(alone) / source.name)
            image_name = Path(alone) / build_name(entities, "bold", ".nii.gz")
            confounds, sample_mask = load_confounds(str(image_name), **confound_arguments(settings))
    except (ValueError, KeyError, IndexError, TypeError, FileNotFoundError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{confounds_path}: cannot select confounds ({message})") from None
    if sample_mask is None:
        sample_mask = np.arange(n_volumes)
    return confounds, np.asarray(sample_mask, dtype=int), table


def read_confounds_table(confounds_path: Path) -> pd.DataFrame:
    """An fMRIPrep confounds table and a check of its JSON sidecar, refused in one line naming the bad file.

    Raises
    ------
    InputError
        Empty or unreadable table, or a sidecar that is not valid JSON.
    """
    try:
        table = pd.read_csv(confounds_path, sep="\t")
    except pd.errors.EmptyDataError:
        raise InputError(f"{confounds_path}: the confounds table is empty (no header line)") from None
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{confounds_path}: cannot read confounds table ({exc})") from None
    sidecar = confounds_path.with_suffix(".json")
    if sidecar.is_file():
        try:
            json.loads(sidecar.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"{sidecar}: not valid JSON ({exc})") from None
    return table


#: Confound columns trdnet's settings can select (name prefixes): their values are checked before any work.
_CHECKED_CONFOUNDS = ("trans_", "rot_", "white_matter", "csf", "global_signal", "framewise_displacement",
                      "std_dvars", "a_comp_cor_", "t_comp_cor_", "c_comp_cor_", "w_comp_cor_")


def check_confound_values(confounds_path: Path, n_volumes: int) -> pd.DataFrame:
    """Read a confounds table and refuse values nilearn would stop on, naming the file, column and row.

    ``n/a`` is accepted only in a column's first rows (fMRIPrep leaves the
    first derivative and framewise displacement undefined there); a missing
    value after a number, or text where a number belongs, is refused.

    Parameters
    ----------
    confounds_path : Path
    n_volumes : int
        Rows the table must have (the signals' volumes).

    Returns
    -------
    pandas.DataFrame
        The table as read (strings).

    Raises
    ------
    InputError
        Unreadable table, another row count, or a bad value.
    """
    try:
        table = pd.read_csv(confounds_path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{confounds_path}: cannot read confounds table ({exc})") from None
    if len(table) != n_volumes:
        raise InputError(f"{confounds_path}: {len(table)} rows but the ROI signals have {n_volumes} volumes")
    for column in table.columns:
        if not str(column).startswith(_CHECKED_CONFOUNDS):
            continue
        text = table[column].str.strip()
        missing = text.isin(("", "n/a", "NaN", "nan", "NA"))
        values = pd.to_numeric(text.where(~missing), errors="coerce")
        bad_text = values.isna() & ~missing
        if bad_text.any():
            row = int(np.flatnonzero(bad_text)[0])
            raise InputError(f"{confounds_path}: column {column} row {row + 1} holds {table[column].iloc[row]!r}, "
                             "not a number; expected numbers (n/a only in the first rows)")
        present = np.flatnonzero(~missing.to_numpy())
        if len(present) and missing.to_numpy()[present[0]:].any():
            row = present[0] + int(np.flatnonzero(missing.to_numpy()[present[0]:])[0])
            raise InputError(f"{confounds_path}: column {column} has a missing value (n/a) at row {row + 1}, after "
                             "numbers; fMRIPrep leaves only the first rows undefined, fill or drop the volume")
    return table


#: Columns of fMRIPrep's confounds tables before version 1.2 (renamed in snake case since).
_CAMEL_CASE_COLUMNS = {"CSF", "WhiteMatter", "GlobalSignal", "FramewiseDisplacement", "stdDVARS", "RotX", "RotY",
                       "RotZ", "aCompCor00", "tCompCor00"}


def check_confounds_header(confounds_path: Path, settings: DenoiseSettings, error=SettingsError) -> None:
    """Refuse, from its header line alone, a confounds table the cleaning settings cannot use.

    Raises
    ------
    InputError
        The table is empty, unreadable or comma-separated.
    SettingsError
        The table lacks columns the settings need (see :func:`confounds_problems`);
        another class if given as ``error``.
    """
    try:
        with open(confounds_path, encoding="utf-8") as handle:
            line = handle.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{confounds_path}: cannot read the confounds header ({exc})") from None
    if not line.strip():
        raise InputError(f"{confounds_path}: the confounds table is empty (no header line)")
    header = line.split("\t")
    if len(header) == 1 and "," in header[0]:
        raise InputError(f"{confounds_path}: the confounds table is comma-separated; fMRIPrep's tables (and BIDS) "
                         "are tab-separated")
    camel = [c for c in header if c in _CAMEL_CASE_COLUMNS or c.startswith("NonSteadyStateOutlier")]
    if camel:
        raise InputError(
            f"{confounds_path}: column names in fMRIPrep's camel case of versions before 1.2 ({', '.join(camel[:3])}); "
            "nilearn reads the tables of fMRIPrep 1.2 and later (white_matter, framewise_displacement, ...)")
    problems = confounds_problems(header, settings)
    if problems:
        raise error(f"{confounds_path}: " + "; ".join(problems))


def confounds_problems(columns, settings: DenoiseSettings) -> list[str]:
    """What a confounds table lacks for the requested cleaning, and which settings work without it.

    Parameters
    ----------
    columns : iterable of str
        The table's column names.
    settings : DenoiseSettings

    Returns
    -------
    list of str
        One clause per problem (empty when nilearn's ``load_confounds`` can
        select everything the settings ask for).
    """
    columns = set(columns)
    problems = []
    groups = [("motion", settings.motion, MOTION_PARAMETERS, "motion='basic'")]
    if settings.wm_csf != "none":
        groups.append(("wm_csf", settings.wm_csf, ("white_matter", "csf"), "wm_csf='none'"))
    if settings.gsr:
        groups.append(("global_signal", settings.global_signal, ("global_signal",),
                       "global_signal='none' (--gsr off)"))
    for name, level, base, without in groups:
        missing = [c for c in base if c not in columns]
        if missing:
            if name == "motion" and any(c.startswith("motion_matrix") for c in columns):
                problems.append(
                    "motion is given as rigid-body matrices and offsets (motion_matrix_*, motion_offset_*), not "
                    "as fMRIPrep's trans_x..rot_z: convert them first "
                    "(trdnet.inputs.motion.rigid_motion_parameters)")
            elif name == "motion":  # every motion level regresses the six parameters themselves
                problems.append(
                    f"no {', '.join(missing)} column: every motion setting (basic included) needs fMRIPrep's six "
                    f"motion parameters {', '.join(MOTION_PARAMETERS)} (mm and radians); motion given as "
                    "rigid-body matrices and offsets converts with trdnet.inputs.motion.rigid_motion_parameters")
            else:
                problems.append(f"no {', '.join(missing)} column for {name}; {without} works without it")
            continue
        needed = [f"{c}{suffix}" for c in base for suffix in _EXPANSIONS.get(level, ())]
        absent = [c for c in needed if c not in columns]
        if absent:
            lacking = sorted({suffix for suffix in _EXPANSIONS[level] if any(c.endswith(suffix) for c in absent)})
            problems.append(
                f"{name}='{level}' needs fMRIPrep's {'/'.join(lacking)} columns (e.g. {absent[0]}), absent here; "
                f"{name}='basic' works without them, or add them as fMRIPrep defines them "
                "(trdnet.inputs.motion.fmriprep_expansions)")
    for kind, prefix in (("anat", "a_comp_cor_"), ("temporal", "t_comp_cor_")):
        if kind in settings.compcor and not any(c.startswith(prefix) for c in columns):
            problems.append(f"compcor='{settings.compcor}' needs fMRIPrep's {prefix}* columns, absent here; "
                            "compcor='none' works without them")
    if settings.scrub:
        absent = [c for c in ("framewise_displacement", "std_dvars") if c not in columns]
        if absent:
            problems.append(
                f"scrubbing needs {' and '.join(absent)} (nilearn censors on framewise displacement and "
                "standardised DVARS together); scrub=false works without censoring")
    return problems


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.symlink(source.resolve(), target)
    except OSError:  # file systems without symbolic links
        shutil.copyfile(source, target)
