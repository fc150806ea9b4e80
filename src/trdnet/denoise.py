"""Clean a run in one pass: load once, mask once, apply one linear operator.

Every cleaning step trdnet uses (detrending, interpolation of censored volumes,
Butterworth band-pass, confound regression, dropping censored volumes) is
linear in the data for fixed confounds. The whole cleaning is therefore one
T_retained x T matrix ``M``, and ``M`` is obtained exactly by passing the
identity matrix through :func:`nilearn.signal.clean` with the run's settings:
column ``j`` of the result is the cleaned impulse at volume ``j``. The masked
T x V data are then cleaned with one matrix product, in column blocks, in
place. The result equals ``nilearn.signal.clean`` on the data up to float32
rounding (tested), at a fraction of the cost.
"""

from __future__ import annotations

import json
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn import signal
from nilearn.interfaces.fmriprep import load_confounds

from .cleaned import CleanedRun, zscore_columns
from .config import DenoiseSettings
from .errors import DenoiseError, InputError
from .grid import VoxelSpace
from .inputs.runs import Run
from .stream import decompressor_name, read_header, read_masked_volumes

#: Columns trdnet needs from a confounds file for its QC table.
QC_COLUMNS = ("framewise_displacement",)


def repetition_time(run: Run, header=None) -> float:
    """TR of a run in seconds: the sidecar's ``RepetitionTime``, else the header.

    Raises
    ------
    InputError
        If neither gives a positive TR.
    """
    if run.tr is not None and run.tr > 0:
        return float(run.tr)
    header = header if header is not None else read_header(run.bold)
    zooms = header.get_zooms()
    if len(zooms) > 3 and zooms[3] > 0:
        unit = header.get_xyzt_units()[1]
        tr = float(zooms[3])
        return tr / 1000.0 if unit == "msec" else tr
    raise InputError(
        f"{run.bold}: no repetition time (no RepetitionTime in the JSON sidecar and none in the header)"
    )


def load_brain_space(run: Run, header) -> VoxelSpace:
    """The run's brain mask as a :class:`~trdnet.grid.VoxelSpace` on the BOLD grid."""
    shape = tuple(header.get_data_shape()[:3])
    affine = header.get_best_affine()
    if run.mask is None:
        raise InputError(f"{run.bold}: no brain mask found beside it (expected *_desc-brain_mask.nii.gz)")
    mask_img = nib.load(run.mask)
    if mask_img.ndim != 3:
        raise InputError(f"{run.mask}: brain mask must be 3D, got {mask_img.ndim}D")
    if tuple(mask_img.shape) != shape or not np.allclose(mask_img.affine, affine, atol=1e-3):
        raise InputError(
            f"{run.mask}: brain mask grid {mask_img.shape} does not match the BOLD grid {shape} of {run.bold.name}"
        )
    mask = np.asanyarray(mask_img.dataobj) > 0
    if not mask.any():
        raise InputError(f"{run.mask}: brain mask is empty")
    return VoxelSpace(mask=mask, affine=affine, space=run.space or "unknown")


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
    try:
        raw = pd.read_csv(run.confounds, sep="\t")
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{run.confounds}: cannot read confounds table ({exc})") from None
    if len(raw) != n_volumes:
        raise InputError(
            f"{run.confounds}: {len(raw)} rows but the BOLD image {run.bold.name} has {n_volumes} volumes"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            confounds, sample_mask = load_confounds(str(run.bold), **confound_arguments(settings))
    except (ValueError, KeyError, FileNotFoundError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{run.confounds}: cannot select confounds ({message})") from None
    if sample_mask is None:
        sample_mask = np.arange(n_volumes)
    return confounds, np.asarray(sample_mask, dtype=int), raw


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


def clean_arguments(settings: DenoiseSettings, tr: float) -> dict:
    """The exact keyword arguments given to :func:`nilearn.signal.clean`."""
    return {
        "detrend": settings.detrend,
        "standardize": False,
        "standardize_confounds": True,
        "filter": settings.filter,
        "low_pass": settings.low_pass,
        "high_pass": settings.high_pass,
        "t_r": tr,
        "extrapolate": True,
        # signal.clean forwards only ``butterworth__*`` keywords to the filter;
        # a plain ``butterworth_order`` would be silently ignored.
        "butterworth__order": settings.butterworth_order,
    }


def cleaning_operator(n_volumes: int, tr: float, confounds, sample_mask, settings: DenoiseSettings) -> np.ndarray:
    """The T_retained x T matrix that cleans every voxel of a run.

    Parameters
    ----------
    n_volumes : int
        Volumes in the run (T).
    tr : float
        Repetition time, seconds.
    confounds : pandas.DataFrame or None
    sample_mask : numpy.ndarray of int
        Retained volumes.
    settings : DenoiseSettings

    Returns
    -------
    numpy.ndarray, float64, shape (len(sample_mask), n_volumes)
    """
    impulses = np.eye(n_volumes)
    mask = None if len(sample_mask) == n_volumes else sample_mask
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return signal.clean(
            impulses,
            confounds=None if confounds is None else np.asarray(confounds, dtype=float),
            sample_mask=mask,
            # Filter all T impulse columns in one vectorised sosfiltfilt call
            # instead of nilearn's default column-by-column loop (same result).
            butterworth__copy=True,
            **clean_arguments(settings, tr),
        )


def apply_operator(operator: np.ndarray, data: np.ndarray, block_columns: int = 16384) -> np.ndarray:
    """Compute ``operator @ data`` in column blocks, reusing ``data``'s memory.

    Returns a view of the first ``operator.shape[0]`` rows of ``data``.
    """
    op32 = operator.astype(np.float32)
    n_out = operator.shape[0]
    for start in range(0, data.shape[1], block_columns):
        block = slice(start, start + block_columns)
        data[:n_out, block] = op32 @ data[:, block]
    return data[:n_out]


def framewise_displacement(raw: pd.DataFrame | None) -> np.ndarray | None:
    """Framewise displacement column of a confounds table (NaN for n/a)."""
    if raw is None or "framewise_displacement" not in raw:
        return None
    return pd.to_numeric(raw["framewise_displacement"], errors="coerce").to_numpy(dtype=float)


def clean_run(run: Run, settings: DenoiseSettings, reader=None) -> CleanedRun:
    """Load, mask and clean one run, reading the 4D image exactly once.

    Parameters
    ----------
    run : Run
    settings : DenoiseSettings
    reader : callable, optional
        ``reader(bold_path, mask)`` returning the in-mask voxels (T x V
        float32); default :func:`trdnet.stream.read_masked_volumes`. A serial
        cohort passes data read ahead (:mod:`trdnet.prefetch`).

    Returns
    -------
    CleanedRun
        Columns z-scored over the retained volumes; ``qc`` holds mean FD,
        censored volumes, minutes retained and median tSNR.

    Raises
    ------
    InputError, DenoiseError
        With the file and the problem, for every user-caused failure.
    """
    header = read_header(run.bold)
    shape = header.get_data_shape()
    if len(shape) != 4:
        raise InputError(f"{run.bold}: expected a 4D BOLD image (x, y, z, time), got a {len(shape)}D image")
    tr = repetition_time(run, header)
    space = load_brain_space(run, header)
    return clean_columns(run, settings, space, tr, int(shape[3]),
                         lambda: (reader or read_masked_volumes)(run.bold, space.mask))


def clean_columns(run: Run, settings: DenoiseSettings, space, tr: float, n_volumes: int, read) -> CleanedRun:
    """Clean the columns of a run, voxels or mesh vertices alike (see :func:`clean_run`).

    Parameters
    ----------
    run : Run
        For its confounds and file names.
    settings : DenoiseSettings
    space : trdnet.geometry.Geometry
        What the columns are.
    tr : float
        Repetition time, seconds.
    n_volumes : int
        Volumes in the run.
    read : callable
        ``read()`` returns the T x V float32 data (called after the
        confounds are checked, so a run that fails them is never read).

    Returns
    -------
    CleanedRun
    """
    confounds, sample_mask, raw = load_run_confounds(run, n_volumes, settings)

    n_retained = len(sample_mask)
    minutes = n_retained * tr / 60.0
    if n_retained < settings.min_volumes or minutes < settings.min_minutes:
        raise DenoiseError(
            f"{run.bold}: only {n_retained} of {n_volumes} volumes ({minutes:.1f} min) left after censoring "
            f"(FD > {settings.fd_threshold} mm, std DVARS > {settings.std_dvars_threshold}); "
            f"at least {settings.min_volumes} volumes and {settings.min_minutes} min are required"
        )

    data = read()
    tsnr = _median_tsnr(data)
    carpet_columns = carpet_sample(space.n_points)
    carpet_raw = data[:, carpet_columns].copy()
    operator = cleaning_operator(n_volumes, tr, confounds, sample_mask, settings)
    data = zscore_columns(apply_operator(operator, data))

    fd = framewise_displacement(raw)
    qc = {
        "n_volumes": n_volumes,
        "n_retained": n_retained,
        "n_censored": n_volumes - n_retained,
        "minutes_total": round(n_volumes * tr / 60.0, 4),
        "minutes_retained": round(minutes, 4),
        "mean_fd": float(np.nanmean(fd)) if fd is not None else float("nan"),
        "max_fd": float(np.nanmax(fd)) if fd is not None else float("nan"),
        "median_tsnr": tsnr,
        "n_voxels": space.n_points,
        "tr": tr,
        "n_confounds": 0 if confounds is None else int(confounds.shape[1]),
        "decompressor": decompressor_name(),
    }
    return CleanedRun(
        data=data,
        space=space,
        tr=tr,
        retained=np.asarray(sample_mask, dtype=int),
        n_volumes=n_volumes,
        qc=qc,
        simulated=run.simulated,
        volume_qc=volume_qc_table(raw, n_volumes, sample_mask),
        carpet={"columns": carpet_columns, "raw": carpet_raw, "clean": data[:, carpet_columns].copy()},
    )


def carpet_sample(n_voxels: int, n_samples: int = 1000) -> np.ndarray:
    """Evenly spaced columns for carpet plots (deterministic, in column order)."""
    return np.unique(np.linspace(0, n_voxels - 1, min(n_samples, n_voxels)).astype(int))


def volume_qc_table(raw: pd.DataFrame | None, n_volumes: int, sample_mask) -> pd.DataFrame:
    """Per-volume motion measures and whether each volume was retained."""
    table = pd.DataFrame({"volume": np.arange(n_volumes)})
    for column in ("framewise_displacement", "std_dvars"):
        if raw is not None and column in raw:
            table[column] = pd.to_numeric(raw[column], errors="coerce").to_numpy(dtype=float)
    retained = np.zeros(n_volumes, dtype=int)
    retained[np.asarray(sample_mask, dtype=int)] = 1
    table["retained"] = retained
    return table


def _median_tsnr(data: np.ndarray, block_columns: int = 8192) -> float:
    # Column blocks: ``data.std(dtype=float64)`` would allocate a float64 copy
    # of the whole T x V matrix (twice the masked data). Deviations from the
    # float64 mean are small, so float32 sums of their squares are accurate.
    mean = data.mean(axis=0, dtype=np.float64)
    std = np.empty(data.shape[1], dtype=np.float64)
    for start in range(0, data.shape[1], block_columns):
        stop = min(start + block_columns, data.shape[1])
        deviation = data[:, start:stop] - mean[start:stop].astype(np.float32)
        std[start:stop] = np.sqrt(np.einsum("ij,ij->j", deviation, deviation) / data.shape[0])
    ok = std > 0
    return float(np.median(mean[ok] / std[ok])) if ok.any() else float("nan")


def describe(settings: DenoiseSettings, tr: float | None = None) -> dict:
    """Everything the sidecars record about denoising: settings and nilearn arguments."""
    info = {
        "settings": json.loads(json.dumps(settings.__dict__)),
        "load_confounds_arguments": confound_arguments(settings),
        "gsr": settings.gsr,
    }
    if tr is not None:
        info["signal_clean_arguments"] = clean_arguments(settings, tr)
    return info


