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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import denoise
from .cleaned import zscore_columns
from .config import DenoiseSettings
from .confounds import check_confound_values, check_confounds_header, select_confounds
from .dof import check_dof
from .errors import DenoiseError, InputError, SettingsError


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
    dof = check_dof(run.path, n_retained, None if confounds is None else confounds.columns, tr, settings, DenoiseError,
                    warn=True)
    operator = denoise.cleaning_operator(n_volumes, tr, confounds, sample_mask, settings)
    signals = zscore_columns(operator @ raw)
    fd = denoise.framewise_displacement(table)
    qc = _qc(n_volumes, n_retained, tr, raw[sample_mask], fd, 0 if confounds is None else int(confounds.shape[1]))
    qc["n_flat_rois"] = len(dropped)
    qc.update(dof)
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


def check_roi_runs(settings: DenoiseSettings, runs) -> None:
    """Refuse, before any work, ROI runs that the analysis would stop on.

    Every ROI run's signals are read (they are small tables): unreadable or
    non-numeric values, labels without DMN/SN/ECN and fewer volumes (or
    minutes, when the TR is known) than ``settings.min_volumes`` /
    ``settings.min_minutes`` are refused for every run, already cleaned or
    not. For runs cleaned by trdnet the confounds table is read too: its row
    count, its values and the columns the settings need, and the band-pass
    against the run's Nyquist frequency, and the temporal degrees of freedom left
    after cleaning against ``settings.min_dof``. Image runs are skipped.

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
        (see :func:`trdnet.confounds.confounds_problems`), or a band-pass above a run's Nyquist frequency.
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
            confounds, sample_mask, _ = select_confounds(Path(run.confounds), n_volumes, settings)
            check_dof(run.path, len(sample_mask), None if confounds is None else confounds.columns, run.tr, settings,
                      SettingsError)


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
