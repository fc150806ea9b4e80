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

from .cleaned import CleanedRun, zscore_columns
from .config import MNI_SPACE, DenoiseSettings
from .confounds import confound_arguments, load_run_confounds
from .dof import check_dof
from .errors import DenoiseError, InputError
from .grid import VoxelSpace
from .inputs.repetition import RepetitionTime, check_plausible, resolve_repetition_time
from .inputs.runs import Run
from .stream import decompressor_name, read_header, read_masked_volumes

def repetition_time(run: Run, header=None) -> float:
    """TR of a run in seconds (see :func:`run_repetition_time`)."""
    return run_repetition_time(run, header).seconds


def run_repetition_time(run: Run, header=None) -> RepetitionTime:
    """TR of a run: the sidecar's ``RepetitionTime``, else the header, checked against each other.

    Raises
    ------
    InputError
        If neither gives a plausible TR in seconds (see
        :func:`trdnet.inputs.repetition.resolve_repetition_time`).
    """
    header = header if header is not None else read_header(run.bold)
    source = run.tr_source or ("JSON sidecar RepetitionTime" if run.source in ("fmriprep", "simulated")
                               else f"{run.source} dataset metadata")
    return resolve_repetition_time(run.bold, run.tr, header, source)


def check_volumes(run: Run, header) -> int:
    """Number of volumes of a 4D BOLD image, refusing anything a time series cannot be made of.

    Raises
    ------
    InputError
        Naming the file: not 4D, or fewer than 2 volumes.
    """
    shape = header.get_data_shape()
    if len(shape) != 4:
        raise InputError(f"{run.bold}: expected a 4D BOLD image (x, y, z, time), got a {len(shape)}D image "
                         f"of shape {tuple(shape)}")
    if shape[3] < 2:
        raise InputError(f"{run.bold}: the 4D image holds {shape[3]} volume(s); a BOLD time series needs many")
    return int(shape[3])


def load_brain_space(run: Run, header) -> VoxelSpace:
    """The run's brain mask as a :class:`~trdnet.grid.VoxelSpace` on the BOLD grid."""
    shape = tuple(header.get_data_shape()[:3])
    affine = header.get_best_affine()
    if run.mask is None:
        raise InputError(f"{run.bold}: no brain mask found beside it (expected *_desc-brain_mask.nii.gz)")
    try:
        mask_img = nib.load(run.mask)
        mask_data = np.asanyarray(mask_img.dataobj)
    except Exception as exc:  # nibabel raises several types for bad files
        raise InputError(f"{run.mask}: cannot read the brain mask ({type(exc).__name__}: {exc})") from None
    if mask_img.ndim != 3:
        raise InputError(f"{run.mask}: brain mask must be 3D, got {mask_img.ndim}D")
    if tuple(mask_img.shape) != shape:
        raise InputError(
            f"{run.mask}: brain mask grid {mask_img.shape} does not match the BOLD grid {shape} of {run.bold.name}"
        )
    if not np.allclose(mask_img.affine, affine, atol=1e-3):
        offset = mask_img.affine[:3, 3] - affine[:3, 3]
        turned = not np.allclose(mask_img.affine[:3, :3], affine[:3, :3], atol=1e-3)
        raise InputError(
            f"{run.mask}: brain mask has the BOLD image's shape {shape} but another affine (origin moved by "
            f"{', '.join(f'{v:+.1f}' for v in offset)} mm{', voxel axes differ' if turned else ''}) "
            f"than {run.bold.name}; a mask must lie on its BOLD grid"
        )
    mask = mask_data > 0
    if not mask.any():
        raise InputError(f"{run.mask}: brain mask is empty")
    return VoxelSpace(mask=mask, affine=affine, space=run.space or "unknown")


#: Least fraction of a template-space run's brain-mask voxels that must lie
#: inside the template's brain (nilearn's MNI152 2009 brain mask at 2 mm,
#: dilated by 4 mm). fMRIPrep's template-space masks lie all but entirely
#: inside it; a scanner- or T1w-space image named ``space-MNI...`` does not.
MIN_TEMPLATE_OVERLAP = 0.8
#: Voxels (2 mm each) by which the template's brain mask is dilated for that overlap.
TEMPLATE_DILATION_VOXELS = 2

#: Largest shift (mm, along any axis) allowed between a template-space brain
#: mask and the template's brain mask. The shift along an axis is counted only
#: where both ends of the mask's extent (2nd and 98th percentiles of its voxel
#: coordinates) move the same way, by the smaller of the two moves: a mask cut
#: short by a partial field of view, or a little larger or smaller than the
#: template brain all round, moves one end or the two ends in opposite
#: directions and counts as no shift, while a mislabelled image moves both.
#: 6 mm is one and a half voxels of a 4 mm grid (half a voxel of rounding at
#: each end, plus the few mm by which an EPI mask's edges differ from the
#: template's); an image shifted by 10 mm or more, which the overlap alone
#: lets through (82-92 % inside), is refused.
MAX_TEMPLATE_SHIFT_MM = 6.0


def template_shift_mm(xyz: np.ndarray, template_xyz: np.ndarray) -> np.ndarray:
    """Shift of a brain mask against the template's brain, one value per axis.

    Parameters
    ----------
    xyz, template_xyz : numpy.ndarray, shape (n, 3) and (m, 3)
        World coordinates (mm) of the mask's and of the template brain's voxels.

    Returns
    -------
    numpy.ndarray, shape (3,)
        Signed shift in mm (see :data:`MAX_TEMPLATE_SHIFT_MM`); 0 along an axis
        whose two ends move in opposite directions.
    """
    low = np.percentile(xyz, 2, axis=0) - np.percentile(template_xyz, 2, axis=0)
    high = np.percentile(xyz, 98, axis=0) - np.percentile(template_xyz, 98, axis=0)
    same_way = np.sign(low) == np.sign(high)
    return np.where(same_way, np.sign(low) * np.minimum(np.abs(low), np.abs(high)), 0.0)


def check_template_grid(run: Run, space: VoxelSpace) -> dict:
    """Check that a run said to be in MNI152NLin2009cAsym lies on that template's brain.

    Two measures against nilearn's MNI152 2009 brain mask: the fraction of the
    run's brain-mask voxels inside the (dilated) template brain, and the shift
    of the mask's extent (:func:`template_shift_mm`).

    Returns
    -------
    dict
        ``template_overlap`` (fraction) and ``template_shift_mm`` (largest
        absolute shift along an axis, mm); empty for runs not in the template
        space (not checked).

    Raises
    ------
    InputError
        If fewer than :data:`MIN_TEMPLATE_OVERLAP` of the voxels are inside, or
        the shift exceeds :data:`MAX_TEMPLATE_SHIFT_MM`.
    """
    if space.space != MNI_SPACE:
        return {}
    from .templates import dilated_brain_mask

    brain, affine, template_xyz = dilated_brain_mask(TEMPLATE_DILATION_VOXELS)
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(affine), space.xyz)).astype(int)
    inside_grid = np.all((ijk >= 0) & (ijk < np.array(brain.shape)), axis=1)
    inside = np.zeros(len(ijk), dtype=bool)
    inside[inside_grid] = brain[tuple(ijk[inside_grid].T)]
    overlap = float(inside.mean())
    if overlap < MIN_TEMPLATE_OVERLAP:
        raise InputError(
            f"{run.mask or run.bold}: only {overlap:.0%} of the brain mask lies inside the {MNI_SPACE} brain "
            f"(at least {MIN_TEMPLATE_OVERLAP:.0%} expected), so the image is not in the space its name says; "
            "check that it is fMRIPrep's template-space output"
        )
    shift = template_shift_mm(space.xyz, template_xyz)
    largest = float(np.max(np.abs(shift)))
    if largest > MAX_TEMPLATE_SHIFT_MM:
        along = ", ".join(f"{axis} {value:+.0f}" for axis, value in zip("xyz", shift) if value)
        raise InputError(
            f"{run.mask or run.bold}: the brain mask is shifted from the {MNI_SPACE} brain by {along} mm "
            f"(at most {MAX_TEMPLATE_SHIFT_MM:g} mm expected), so the image is not in the space its name says; "
            "check that it is fMRIPrep's template-space output"
        )
    return {"template_overlap": round(overlap, 4), "template_shift_mm": round(largest, 2)}


def clean_arguments(settings: DenoiseSettings, tr: float) -> dict:
    """The exact keyword arguments given to :func:`nilearn.signal.clean`."""
    return {
        "detrend": settings.detrend,
        # None, not False: nilearn 0.14 announces that booleans for ``standardize`` go in 0.15
        "standardize": None,
        "standardize_confounds": True,
        "filter": settings.filter,
        "low_pass": settings.low_pass,
        "high_pass": settings.high_pass,
        "t_r": tr,
        "extrapolate": settings.extrapolate,
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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        operator = signal.clean(
            impulses,
            confounds=None if confounds is None else np.asarray(confounds, dtype=float),
            sample_mask=mask,
            # Filter all T impulse columns in one vectorised sosfiltfilt call
            # instead of nilearn's default column-by-column loop (same result).
            butterworth__copy=True,
            **clean_arguments(settings, tr),
        )
    for warning in caught:
        text = str(warning.message)
        # The filter silently not applied (or moved) means the output would
        # claim a band-pass it did not get: an error, never a warning.
        if "unfiltered" in text or "lowered to" in text:
            raise DenoiseError(f"the band-pass filter could not be applied at TR {tr:g} s: {text.splitlines()[0]}")
    return operator


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
    # Cheap checks first: header, volume count, TR, filter, mask and grid before the confounds and the data.
    header = read_header(run.bold)
    n_volumes = check_volumes(run, header)
    repetition = run_repetition_time(run, header)
    settings.check_sampling(repetition.seconds, run.bold)
    space = load_brain_space(run, header)
    template_fit = check_template_grid(run, space)
    cleaned = clean_columns(run, settings, space, repetition, n_volumes,
                            lambda: (reader or read_masked_volumes)(run.bold, space.mask))
    cleaned.qc.update(template_fit)
    return cleaned


def check_retained(source, n_retained: int, n_volumes: int, tr: float, settings: DenoiseSettings,
                   criteria: str = "") -> None:
    """Refuse a run with too little data left after censoring.

    Parameters
    ----------
    source : Path or str
        The input named in the message.
    n_retained, n_volumes : int
        Volumes kept after censoring, and in the run.
    tr : float
        Repetition time in seconds.
    settings : DenoiseSettings
        ``min_volumes`` and ``min_minutes`` are the limits.
    criteria : str
        What censored the volumes, appended to the message.

    Raises
    ------
    DenoiseError
        Fewer than ``min_volumes`` volumes or ``min_minutes`` minutes left.
    """
    minutes = n_retained * tr / 60.0
    if n_retained < settings.min_volumes or minutes < settings.min_minutes:
        raise DenoiseError(
            f"{source}: only {n_retained} of {n_volumes} volumes ({minutes:.1f} min) left after censoring"
            f"{criteria}; at least {settings.min_volumes} volumes and {settings.min_minutes} min are required"
        )


def clean_columns(run: Run, settings: DenoiseSettings, space, tr, n_volumes: int, read) -> CleanedRun:
    """Clean the columns of a run, voxels or mesh vertices alike (see :func:`clean_run`).

    Parameters
    ----------
    run : Run
        For its confounds and file names.
    settings : DenoiseSettings
    space : trdnet.geometry.Geometry
        What the columns are.
    tr : float or RepetitionTime
        Repetition time, seconds (a :class:`~trdnet.inputs.repetition.RepetitionTime`
        also carries its source into the QC).
    n_volumes : int
        Volumes in the run.
    read : callable
        ``read()`` returns the T x V float32 data (called after the
        confounds are checked, so a run that fails them is never read).

    Returns
    -------
    CleanedRun
    """
    if not isinstance(tr, RepetitionTime):  # a TR read elsewhere (surface sidecars): checked here
        tr = RepetitionTime(check_plausible(tr, run.bold), run.tr_source or "JSON sidecar RepetitionTime")
    repetition = tr
    tr = repetition.seconds
    confounds, sample_mask, raw = load_run_confounds(run, n_volumes, settings)

    n_retained = len(sample_mask)
    check_retained(run.bold, n_retained, n_volumes, tr, settings,
                   f" (FD > {settings.fd_threshold} mm, std DVARS > {settings.std_dvars_threshold})")
    dof = check_dof(run.bold, n_retained, None if confounds is None else confounds.columns, tr, settings, DenoiseError,
                    warn=True)

    data = read()
    mean, std = column_statistics(data, sample_mask)
    usable, n_zero = usable_columns(mean, std)
    tsnr, tsnr_note = temporal_snr(mean, std, usable)
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
        "minutes_retained": round(n_retained * tr / 60.0, 4),
        "mean_fd": float(np.nanmean(fd)) if fd is not None else float("nan"),
        "max_fd": float(np.nanmax(fd)) if fd is not None else float("nan"),
        "median_tsnr": tsnr,
        "tsnr_volumes": "retained" if n_retained < n_volumes else "all",
        **({"tsnr_note": tsnr_note} if tsnr_note else {}),
        "n_voxels": space.n_points,
        "n_flat_voxels": int(space.n_points - np.count_nonzero(usable)),
        "n_zero_voxels": n_zero,
        "tr": tr,
        "tr_source": repetition.source,
        "tr_note": repetition.note,
        "n_confounds": 0 if confounds is None else int(confounds.shape[1]),
        **dof,
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
        usable=usable,
        source=str(run.bold),
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


def column_statistics(data: np.ndarray, rows=None, block_columns: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population standard deviation of every column over some rows (volumes).

    Parameters
    ----------
    data : numpy.ndarray, float32, shape (T, V)
    rows : numpy.ndarray of int, optional
        The volumes to use (the retained ones); default all.
    block_columns : int
        Columns per block: ``data.std(dtype=float64)`` would allocate a float64
        copy of the whole T x V matrix (twice the masked data). Deviations from
        the float64 mean are small, so float32 sums of their squares are accurate.

    Returns
    -------
    mean, std : numpy.ndarray, float64, shape (V,)
    """
    all_rows = rows is None or len(rows) == data.shape[0]
    n_rows = data.shape[0] if all_rows else len(rows)
    mean = np.empty(data.shape[1], dtype=np.float64)
    std = np.empty(data.shape[1], dtype=np.float64)
    for start in range(0, data.shape[1], block_columns):
        stop = min(start + block_columns, data.shape[1])
        block = data[:, start:stop] if all_rows else data[rows, start:stop]
        mean[start:stop] = block.mean(axis=0, dtype=np.float64)
        deviation = block - mean[start:stop].astype(np.float32)
        std[start:stop] = np.sqrt(np.einsum("ij,ij->j", deviation, deviation) / max(n_rows, 1))
    return mean, std


#: A column is flat when its standard deviation over the retained volumes is
#: at most this fraction of its mean magnitude (exactly constant data give 0).
FLAT_TOLERANCE = 1e-6


def usable_columns(mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, int]:
    """Which in-mask voxels carry a signal, and how many are all zero.

    Voxels inside the brain mask can be all zero (multi-echo masking,
    susceptibility dropout) or constant; they have no correlation with
    anything and must not count as data.

    Returns
    -------
    usable : numpy.ndarray of bool, shape (V,)
        False for flat (zero-variance) voxels.
    n_zero : int
        Flat voxels whose value is 0.
    """
    flat = std <= FLAT_TOLERANCE * np.abs(mean)
    n_zero = int(np.count_nonzero(flat & (mean == 0)))
    return ~flat, n_zero


#: Below this median |mean| / standard deviation of the usable columns the data carry no baseline intensity:
#: raw BOLD has a temporal SNR of tens to hundreds, so a mean smaller than the fluctuations means the data were
#: demeaned (or cleaned) before trdnet read them, and their tSNR would be a meaningless number near 0.
NO_BASELINE_RATIO = 1.0


def temporal_snr(mean: np.ndarray, std: np.ndarray, usable: np.ndarray) -> tuple[float, str]:
    """Median temporal SNR (mean / standard deviation over time) of the usable columns, or NaN and why.

    Parameters
    ----------
    mean, std : numpy.ndarray, shape (V,)
        Each column's mean and standard deviation over the retained volumes, before cleaning.
    usable : numpy.ndarray of bool, shape (V,)
        Columns that are not flat.

    Returns
    -------
    tsnr : float
        NaN when no column is usable or the data have no baseline intensity (:data:`NO_BASELINE_RATIO`).
    note : str
        Why it is NaN (empty otherwise), for the QC sidecar.
    """
    if not usable.any():
        return float("nan"), ""
    ratio = mean[usable] / std[usable]
    if float(np.median(np.abs(ratio))) < NO_BASELINE_RATIO:
        return float("nan"), (
            "median_tsnr not available: the data have no baseline intensity (median |mean| / standard deviation "
            f"over time {float(np.median(np.abs(ratio))):.3g}, below {NO_BASELINE_RATIO:g}); they were demeaned or "
            "cleaned before trdnet read them, e.g. by the data provider")
    return float(np.median(ratio)), ""


def qc_provenance(qc: dict) -> dict:
    """What the QC sidecar says about the TR, the volumes QC used and the flat voxels."""
    return {
        "RepetitionTime": qc.get("tr"),
        "RepetitionTimeSource": qc.get("tr_source", ""),
        "RepetitionTimeNote": qc.get("tr_note", ""),
        "QCVolumes": ("median_tsnr and the carpet's scaling use the retained volumes only (censored and "
                      "non-steady-state volumes left out)"),
        **({"TemplateFit": {"template_overlap": qc["template_overlap"], "template_shift_mm": qc["template_shift_mm"],
                            "description": ("fraction of the brain mask inside the template brain mask and the "
                                            "largest shift (mm) of its extent against it")}}
           if "template_overlap" in qc else {}),
        **({"TSNRNote": qc["tsnr_note"]} if qc.get("tsnr_note") else {}),
        **({"DegreesOfFreedom": (
            "dof_remaining: temporal degrees of freedom left after cleaning, retained volumes x dof_band_fraction "
            "(an ideal band-pass: (low_pass - high_pass) / Nyquist) minus dof_n_regressors (confound columns, "
            "cosines left out under a high-pass, plus 2 for detrending); DoF lost to regression and censoring as "
            "counted by Parkes et al. 2018 (NeuroImage 171:415-436); runs below denoise.min_dof are refused")}
           if "dof_remaining" in qc else {}),
        "FlatVoxels": ("n_flat_voxels: in-mask voxels with zero variance over the retained volumes (n_zero_voxels "
                       "of them all zero); left out of tSNR, the sgACC seed, the search region and every ROI"),
    }


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


