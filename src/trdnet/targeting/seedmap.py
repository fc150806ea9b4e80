"""sgACC seed maps, Fisher z, group maps and the seedmap reference signal."""

from __future__ import annotations

import itertools
from pathlib import Path

import nibabel as nib
import numpy as np

from ..cleaned import CleanedRun, correlate_with
from ..errors import InputError, NotImplementedFeatureError, TargetingError
from ..geometry import Geometry
from .regions import grey_matter_probability, has_template_coordinates, is_mni, sample_template_image

#: |r| is clipped to this before arctanh so that r = +-1 stays finite.
_R_CLIP = 1.0 - 1e-6


def fisher_z(r: np.ndarray) -> np.ndarray:
    """Fisher z-transform ``arctanh(r)``, with r clipped just inside (-1, 1).

    Returns
    -------
    numpy.ndarray, float32
    """
    r = np.clip(np.asarray(r, dtype=np.float64), -_R_CLIP, _R_CLIP)
    return np.arctanh(r).astype(np.float32)


def seed_map(cleaned: CleanedRun, seed_cols: np.ndarray) -> np.ndarray:
    """Pearson r of every column with the mean signal of the seed columns.

    Parameters
    ----------
    cleaned : CleanedRun
    seed_cols : numpy.ndarray of int

    Returns
    -------
    numpy.ndarray, float32, shape (V,)
    """
    seed_cols = np.asarray(seed_cols)
    if seed_cols.size == 0:
        raise TargetingError("the sgACC seed has no voxel; cannot compute a seed map")
    return correlate_with(cleaned.data, cleaned.mean_signal(seed_cols))


def group_mean_map(maps, participants=None, exclude=None) -> np.ndarray:
    """Group sgACC map: mean Fisher z over participants, each participant's runs averaged first.

    Within person first, because the group map stands for the population's
    sgACC connectivity, in which each person is one sample: averaged over
    runs, a participant with four runs would weigh four times as much as one
    with a single run, and the map would lean towards whoever was scanned
    most. A person's runs are repeated measures of one map, so their mean z is
    that person's estimate, and the group map is the mean of those estimates
    (the summary-statistics approach of second-level fMRI analyses; Holmes &
    Friston 1998). This is the one definition, used by the ``group`` step and
    the leave-one-out maps (:mod:`trdnet.group.seedmap`).

    Parameters
    ----------
    maps : array-like of shape (n_runs, V), or iterable of arrays of shape (V,)
        Per-run seed maps as Pearson r on one grid. An iterable is read one
        map at a time (a cohort's maps need not fit in memory together); its
        maps of one participant must then come one after another. A column
        where a run's r is 0 or not finite (outside that run's mask) does not
        count for that run.
    participants : sequence of str, optional
        The participant of each map; default: each run is its own participant.
    exclude : int or sequence of int, optional
        Rows to leave out (e.g. a leave-one-out map for one run).

    Returns
    -------
    numpy.ndarray, float32, shape (V,)
        Mean of the participants' mean ``arctanh(r)``; apply ``numpy.tanh``
        to read it as r. 0 where no participant has data.

    Raises
    ------
    InputError
        An array that is not 2D, maps of different lengths, a participant
        whose maps are not consecutive, or nothing left to average.
    """
    skip = set() if exclude is None else set(np.atleast_1d(np.asarray(exclude, dtype=int)).tolist())
    labelled = ((row if participants is None else participants[row], r) for row, r in enumerate(maps)
                if row not in skip)
    if isinstance(maps, (np.ndarray, list, tuple)):
        if np.ndim(maps) != 2:
            raise InputError(f"group maps: expected an (n_runs, n_voxels) array, got shape {np.shape(maps)}")
        labelled = sorted(labelled, key=lambda pair: str(pair[0]))  # each participant's runs together
    total = count = shape = None
    seen = set()
    for person, runs in itertools.groupby(labelled, key=lambda pair: pair[0]):
        if person in seen:
            raise InputError(f"group maps: the maps of participant {person!r} are not consecutive")
        seen.add(person)
        z_sum = n_runs = 0
        for _, r in runs:
            r = np.asarray(r, dtype=np.float32)
            shape = r.shape if shape is None else shape
            if r.shape != shape:
                raise InputError(f"group maps: a map of {person!r} has shape {r.shape}, the first {shape}")
            covered = np.isfinite(r) & (r != 0)
            z_sum = z_sum + np.where(covered, fisher_z(np.nan_to_num(r)), 0.0)
            n_runs = n_runs + covered
        if total is None:
            total, count = np.zeros(shape, np.float64), np.zeros(shape, np.int64)
        np.divide(z_sum, n_runs, out=z_sum, where=n_runs > 0)  # stays 0 where the person has no data
        total += z_sum
        count += n_runs > 0
    if total is None:
        raise InputError("group maps: every run was excluded; nothing to average")
    mean = np.zeros(shape, np.float32)
    np.divide(total, count, out=mean, where=count > 0, casting="unsafe")
    return mean


def group_map_values(space: Geometry, group_map) -> np.ndarray:
    """A group sgACC map as one value per column.

    Parameters
    ----------
    space : Geometry
    group_map : array-like of shape (V,), or str / Path / nibabel image
        Values per column, or a 3D image: an MNI map read at each voxel's MNI
        position for a native grid with template coordinates, otherwise
        resampled to the grid (taken to be in the data's space).

    Returns
    -------
    numpy.ndarray, float32, shape (V,)
    """
    if isinstance(group_map, (str, Path)) or hasattr(group_map, "affine"):
        if space.kind == "mesh":
            raise NotImplementedFeatureError(
                f"{group_map}: a group sgACC map image is a volume and the run is on the {space.space} mesh; "
                "give one value per vertex column (an array) instead"
            )
        try:
            if is_mni(space) or not has_template_coordinates(space):  # the map is taken to be in the data's space
                values = space.resample_values(group_map)[space.mask]
            else:  # a native grid: read the MNI map at each voxel's pulled-back MNI position
                img = nib.load(group_map) if isinstance(group_map, (str, Path)) else group_map
                values = sample_template_image((img.get_fdata(dtype=np.float32), img.affine), space)
        except Exception as exc:
            raise InputError(f"{group_map}: cannot read the group sgACC map ({exc})") from None
    else:
        values = np.asarray(group_map, dtype=np.float32)
        if values.shape != (space.n_points,):
            raise InputError(
                f"group sgACC map: expected one value per voxel, shape ({space.n_points},), "
                f"got {values.shape}; or give a 3D NIfTI image"
            )
    values = np.nan_to_num(values.astype(np.float32), nan=0.0)
    if not np.any(values):
        raise TargetingError("group sgACC map is zero everywhere inside the brain mask")
    return values


def reference_signal(
    cleaned: CleanedRun,
    weights: np.ndarray,
    search_cols: np.ndarray,
    grey_matter_threshold: float = 0.2,
) -> np.ndarray:
    """Seedmap reference signal (Fox 2013; Cash 2021).

    The weighted mean of all grey-matter columns with the group sgACC map as
    weights, the search region's weights set to zero so that the DLPFC does
    not correlate with itself. Sign convention: weights are the group map
    values as given (positive where the group correlates positively with the
    sgACC), so the reference signal is sgACC-like and the target is where the
    search region is most *negatively* correlated with it.

    Parameters
    ----------
    cleaned : CleanedRun
    weights : numpy.ndarray, shape (V,)
        Group map per column (see :func:`group_map_values`).
    search_cols : numpy.ndarray of int
    grey_matter_threshold : float
        Template probability above which a column counts as grey matter
        (grids with MNI coordinates only; elsewhere every in-mask column is used).

    Returns
    -------
    numpy.ndarray, float64, shape (T,)
    """
    w = np.asarray(weights, dtype=np.float32).copy()
    w[np.asarray(search_cols)] = 0.0
    if has_template_coordinates(cleaned.space):
        w[grey_matter_probability(cleaned.space) <= grey_matter_threshold] = 0.0
    total = float(np.abs(w).sum())
    if total == 0.0:
        raise TargetingError("group sgACC map has no weight outside the search region")
    return (cleaned.data @ w).astype(np.float64) / total
