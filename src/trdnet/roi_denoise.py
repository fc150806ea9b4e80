"""Clean ROI time series exactly like voxel runs.

Parcel signals extracted before temporal denoising carry the same motion,
tissue and global components as voxels, so they go through the same steps:
nilearn's ``load_confounds`` selects regressors and the censoring mask from
the run's fMRIPrep confounds table, and the run's whole cleaning is the one
linear operator of :func:`trdnet.denoise.cleaning_operator` (detrending,
Butterworth band-pass, confound regression, censoring, as
:func:`nilearn.signal.clean` defines them), applied to the T x R signals.

A confounds table in another form (motion as rigid-body matrices, no
derivative or quadratic columns, no standardised DVARS) is refused with one
line naming what is missing for the requested settings and which settings
work without it. Signals declared already cleaned are analysed as given.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from nilearn.interfaces.fmriprep import load_confounds

from . import denoise
from .cleaned import zscore_columns
from .config import DenoiseSettings
from .entities import build_name, parse_entities
from .errors import InputError, SettingsError
from .inputs.motion import MOTION_PARAMETERS

#: ``load_confounds`` expansion levels and the column suffixes each needs.
_EXPANSIONS = {
    "basic": (),
    "power2": ("_power2",),
    "derivatives": ("_derivative1",),
    "full": ("_derivative1", "_power2", "_derivative1_power2"),
}


@dataclass
class CleanedRois:
    """ROI signals after cleaning, with what the network stage and QC need.

    Attributes
    ----------
    signals : numpy.ndarray, float64, shape (T_retained, R)
        Cleaned signals of the retained volumes, each column z-scored.
    rois : pandas.DataFrame
        ``roi`` and ``network`` of each column.
    raw : numpy.ndarray, float64, shape (T, R)
        The signals as read, all volumes.
    tr : float or None
        Repetition time (s); ``None`` only for already-cleaned signals without one.
    retained : numpy.ndarray of int
        Indices of the retained volumes.
    qc : dict
        The keys of a voxel run's QC (``n_voxels`` is NaN; ``median_tsnr`` is
        over the ROI signals before cleaning).
    volume_qc : pandas.DataFrame
        Per-volume ``framewise_displacement``, ``std_dvars`` (when known) and ``retained``.
    denoising : dict
        What was done, for the sidecars (settings and nilearn arguments, or the
        already-cleaned statement).
    dropped : pandas.DataFrame
        ROIs left out because their signal is flat (``roi``, ``network``,
        ``reason``), listed as ``DroppedROIs`` in the network sidecars.
    """

    signals: np.ndarray
    rois: pd.DataFrame
    raw: np.ndarray
    tr: float | None
    retained: np.ndarray
    qc: dict
    volume_qc: pd.DataFrame
    denoising: dict = field(default_factory=dict)
    dropped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["roi", "network", "reason"]))

    @property
    def carpet(self) -> dict:
        """Every ROI before and after cleaning, in the layout of a voxel run's carpet sample."""
        return {"columns": np.arange(self.raw.shape[1]), "raw": self.raw.astype(np.float32),
                "clean": self.signals.astype(np.float32), "unit": "ROI"}


def clean_roi_run(run, settings: DenoiseSettings) -> CleanedRois:
    """Read and clean one ROI time-series run.

    Parameters
    ----------
    run : trdnet.inputs.timeseries.RoiTimeseriesRun
        With ``confounds`` (an fMRIPrep confounds table), or ``already_cleaned``.
    settings : DenoiseSettings
        The same settings as voxel runs.

    Returns
    -------
    CleanedRois

    Raises
    ------
    InputError
        Unreadable signals or confounds, row counts that differ, columns the
        settings need but the table lacks, no repetition time.
    DenoiseError
        Too few volumes left after censoring.
    """
    raw, rois = run.load()
    usable, dropped = usable_rois(raw, rois, run.path)
    attrs = dict(rois.attrs)
    raw, rois = raw[:, usable], rois.loc[usable].reset_index(drop=True)
    rois.attrs.update(attrs)
    n_volumes = raw.shape[0]
    tr = rois.attrs.get("tr")
    if run.already_cleaned:
        cleaned = _as_given(run, raw, rois, tr)
        cleaned.qc["n_flat_rois"] = len(dropped)
        return dataclasses.replace(cleaned, dropped=dropped)
    if run.confounds is None:
        raise InputError(f"{run.path}: no confounds table for this run, and the signals are not declared "
                         "already cleaned (--already-cleaned)")
    if tr is None:
        raise InputError(f"{run.path}: no repetition time (add RepetitionTime to its JSON sidecar); "
                         "filtering needs it")
    confounds, sample_mask, table = select_confounds(Path(run.confounds), n_volumes, settings)
    n_retained = len(sample_mask)
    denoise.check_retained(run.path, n_retained, n_volumes, tr, settings)
    operator = denoise.cleaning_operator(n_volumes, tr, confounds, sample_mask, settings)
    signals = zscore_columns(operator @ raw)
    fd = denoise.framewise_displacement(table)
    qc = _qc(n_volumes, n_retained, tr, raw[sample_mask], fd, 0 if confounds is None else int(confounds.shape[1]))
    qc["n_flat_rois"] = len(dropped)
    return CleanedRois(signals=signals, rois=rois, raw=raw, tr=tr, retained=np.asarray(sample_mask, dtype=int),
                       qc=qc, volume_qc=denoise.volume_qc_table(table, n_volumes, sample_mask),
                       denoising=denoise.describe(settings, tr) | {
                           "input": "roi_timeseries",
                           "confounds_columns": list(confounds.columns) if confounds is not None else []},
                       dropped=dropped)


def usable_rois(raw: np.ndarray, rois: pd.DataFrame, source) -> tuple[np.ndarray, pd.DataFrame]:
    """The ROIs whose signal is not flat, refusing a network left with too few.

    A constant column (e.g. a parcel outside the field of view, written as
    zeros) has no correlation with anything: it is left out and listed. As
    for a voxel run's regions (:meth:`trdnet.cleaned.CleanedRun.usable_region`),
    DMN, SN or ECN with fewer than :data:`~trdnet.cleaned.MIN_USABLE_FRACTION`
    of its ROIs carrying signal stops the run.

    Parameters
    ----------
    raw : numpy.ndarray, shape (T, R)
        The signals as read.
    rois : pandas.DataFrame
        ``roi`` and ``network`` of each column.
    source : str or Path
        The signals file, named in the message.

    Returns
    -------
    usable : numpy.ndarray of bool, shape (R,)
    dropped : pandas.DataFrame
        ``roi``, ``network``, ``reason`` of each flat ROI.

    Raises
    ------
    InputError
        Naming the network, its counts and the file.
    """
    from .cleaned import MIN_USABLE_FRACTION
    from .inputs.timeseries import CORE_NETWORKS

    usable = np.ptp(raw, axis=0) > 0
    networks = rois["network"].to_numpy()
    for network in CORE_NETWORKS:
        members = networks == network
        n_total, n_usable = int(members.sum()), int((members & usable).sum())
        if n_total and n_usable < max(1, int(np.ceil(MIN_USABLE_FRACTION * n_total))):
            raise InputError(
                f"{source}: {network}: only {n_usable} of its {n_total} ROIs carry signal ({n_total - n_usable} "
                f"are flat, constant over the run); at least {MIN_USABLE_FRACTION:.0%} are needed")
    dropped = rois.loc[~usable, ["roi", "network"]].reset_index(drop=True)
    dropped["reason"] = "flat signal (constant over the run)"
    return usable, dropped


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
            confounds, sample_mask = load_confounds(str(image_name), **denoise.confound_arguments(settings))
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


def check_roi_runs(settings: DenoiseSettings, runs) -> None:
    """Refuse, before any work, ROI runs that the analysis would stop on.

    Every ROI run's signals are read (they are small tables): unreadable or
    non-numeric values, labels without DMN/SN/ECN and fewer volumes (or
    minutes, when the TR is known) than ``settings.min_volumes`` /
    ``settings.min_minutes`` are refused for every run, already cleaned or
    not. For runs cleaned by trdnet the confounds table is read too: its row
    count, its values and the columns the settings need, and the band-pass
    against the run's Nyquist frequency. Image runs are skipped.

    Parameters
    ----------
    settings : DenoiseSettings
    runs : list
        Runs of any kind; only :class:`~trdnet.inputs.timeseries.RoiTimeseriesRun` are checked.

    Raises
    ------
    InputError
        Naming the signals or confounds file and the problem.
    SettingsError
        Naming the first confounds table that lacks what the settings need
        (see :func:`confounds_problems`), or a band-pass above a run's Nyquist frequency.
    """
    from .inputs.timeseries import RoiTimeseriesRun

    for run in runs:
        if not isinstance(run, RoiTimeseriesRun):
            continue
        raw, rois = run.load()
        usable_rois(raw, rois, run.path)
        tr = rois.attrs.get("tr")
        n_volumes = raw.shape[0]
        minutes = n_volumes * tr / 60.0 if tr else None
        if n_volumes < settings.min_volumes or (minutes is not None and minutes < settings.min_minutes):
            length = f"{n_volumes} volumes" + (f" ({minutes:.1f} min)" if minutes is not None else "")
            raise InputError(f"{run.path}: {length}; at least {settings.min_volumes} volumes and "
                             f"{settings.min_minutes} min are required (denoise.min_volumes, denoise.min_minutes)")
        if run.already_cleaned or run.confounds is None:
            continue
        check_confounds_header(run.confounds, settings)
        check_confound_values(Path(run.confounds), n_volumes)
        if run.tr is not None:
            settings.check_sampling(run.tr, run.path)


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


def _as_given(run, raw: np.ndarray, rois: pd.DataFrame, tr: float | None) -> CleanedRois:
    n_volumes = raw.shape[0]
    qc = _qc(n_volumes, n_volumes, tr, raw, None, 0)
    qc["median_tsnr"] = float("nan")  # cleaned signals have no baseline intensity to divide by
    retained = np.arange(n_volumes)
    return CleanedRois(signals=zscore_columns(raw.copy()), rois=rois, raw=raw, tr=tr, retained=retained, qc=qc,
                       volume_qc=denoise.volume_qc_table(None, n_volumes, retained),
                       denoising={"input": "roi_timeseries", "already_cleaned": True, "notes": list(run.notes)})


def _qc(n_volumes, n_retained, tr, retained_raw, fd, n_confounds) -> dict:
    """QC of an ROI run; tSNR over the retained volumes of the signals before cleaning, as for voxels."""
    raw = retained_raw
    minutes = (lambda n: round(n * tr / 60.0, 4)) if tr else (lambda n: float("nan"))
    mean = raw.mean(axis=0)
    std = raw.std(axis=0)
    ok = std > 0
    return {
        "n_volumes": int(n_volumes),
        "n_retained": int(n_retained),
        "n_censored": int(n_volumes - n_retained),
        "minutes_total": minutes(n_volumes),
        "minutes_retained": minutes(n_retained),
        "mean_fd": float(np.nanmean(fd)) if fd is not None else float("nan"),
        "max_fd": float(np.nanmax(fd)) if fd is not None else float("nan"),
        "median_tsnr": float(np.median(mean[ok] / std[ok])) if ok.any() else float("nan"),
        "n_voxels": float("nan"),
        "n_rois": int(raw.shape[1]),  # usable ROIs; flat ones are counted in n_flat_rois
        "tr": tr if tr is not None else float("nan"),
        "n_confounds": int(n_confounds),
    }
