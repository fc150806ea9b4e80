"""Mean time series of each ROI, taken from the cleaned run's columns."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from nilearn import image

from ..cleaned import CleanedRun
from ..errors import InputError
from ..grid import VoxelSpace
from .surface_atlas import is_surface_atlas, labels_on_mesh


class RoiSignals(NamedTuple):
    """Result of :func:`roi_signals`.

    Attributes
    ----------
    signals : numpy.ndarray, float64, shape (T, R)
        Mean cleaned signal of each kept ROI, columns in ``rois`` order.
    rois : pandas.DataFrame
        The kept ROIs (input columns plus ``n_voxels``, the in-mask voxels, and
        ``n_flat``, those left out because their signal is flat).
    dropped : pandas.DataFrame
        ROIs with no in-mask voxel (input columns plus ``n_voxels`` = 0 and
        ``reason``), to be listed in the output sidecar.
    """

    signals: np.ndarray
    rois: pd.DataFrame
    dropped: pd.DataFrame


def roi_signals(cleaned: CleanedRun, rois: pd.DataFrame) -> RoiSignals:
    """Average the cleaned columns inside each ROI.

    Spheres (rows with a ``radius_mm``) use
    :meth:`~trdnet.grid.VoxelSpace.sphere_columns`; parcels (rows with a
    ``label_value``) use the ``labels_img`` resampled to the run's grid with
    nearest-neighbour interpolation.

    Parameters
    ----------
    cleaned : CleanedRun
        The cleaned run (z-scored columns).
    rois : pandas.DataFrame
        As returned by :func:`trdnet.networks.network_rois`.

    Returns
    -------
    RoiSignals
        ``(signals, rois, dropped)``; ROIs without any in-mask voxel are in
        ``dropped``, never silently lost.

    Raises
    ------
    InputError
        Sphere coordinates (template mm) used on a run that is not in a
        template space, a labels image that cannot be read, or an ROI whose
        in-mask voxels are mostly flat (see :meth:`CleanedRun.usable_region`).
    """
    space = cleaned.space
    columns = _roi_columns(space, rois)
    counts = np.array([c.size for c in columns], dtype=np.int64)
    # Flat in-mask voxels carry no signal: each ROI averages only its usable ones (n_flat says how many
    # were left out); an ROI that is mostly flat stops the run with its name and counts.
    names = rois["roi"].astype(str).tolist() if "roi" in rois else [str(i) for i in range(len(rois))]
    usable = [cleaned.usable_region(c, f"network ROI {name}")[0] if c.size else c for c, name in zip(columns, names)]
    table = rois.copy()
    table["n_voxels"] = counts
    table["n_flat"] = counts - np.array([u.size for u in usable], dtype=np.int64)
    columns = usable
    keep = counts > 0
    signals = np.empty((cleaned.n_timepoints, int(keep.sum())), dtype=np.float64)
    for out, cols in enumerate(c for c, k in zip(columns, keep) if k):
        signals[:, out] = cleaned.mean_signal(cols)
    if space.kind == "mesh":
        _place_mesh_parcels(space, rois, columns, table)
        _check_networks_reached(space, rois, counts)
    dropped = table.loc[~keep].copy()
    dropped["reason"] = "no voxel of the ROI inside the run's brain mask"
    return RoiSignals(signals, table.loc[keep].reset_index(drop=True), dropped.reset_index(drop=True))


def _roi_columns(space: VoxelSpace, rois: pd.DataFrame) -> list[np.ndarray]:
    is_parcel = rois["label_value"].notna().to_numpy() if "label_value" in rois else np.zeros(len(rois), bool)
    if (~is_parcel).any() and space.template_coordinates is None:
        raise InputError(
            f"ROI spheres are MNI152 coordinates but the run is in space {space.space!r} without a transform "
            "to MNI; analyse a run in MNI space, give fMRIPrep's anat transforms, or a labels image in the "
            "run's space"
        )
    columns: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(rois)
    for pos in np.flatnonzero(~is_parcel):
        row = rois.iloc[pos]
        columns[pos] = space.template_sphere_columns((row["x"], row["y"], row["z"]), float(row["radius_mm"]))
    grids: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for pos in np.flatnonzero(is_parcel):
        row = rois.iloc[pos]
        path = str(row["labels_img"])
        if path not in grids:
            labels = _parcel_labels(space, path)
            order = np.argsort(labels, kind="stable")
            grids[path] = (labels[order], order)
        sorted_labels, order = grids[path]
        value = int(row["label_value"])
        lo, hi = np.searchsorted(sorted_labels, [value, value + 1])
        columns[pos] = np.sort(order[lo:hi])
    return columns


def _parcel_labels(space, path) -> np.ndarray:
    """Label value of every column: a labels image on a voxel run, a surface atlas on a surface run."""
    if is_surface_atlas(path) != (space.kind == "mesh"):
        kind = "a surface atlas" if is_surface_atlas(path) else "a volume labels image"
        wanted = ("a .label.gii pair or a .dlabel.nii" if space.kind == "mesh" else "a 3D labels image")
        raise InputError(f"{path}: {kind} cannot label a run in space {space.space!r}; give {wanted}")
    if space.kind == "mesh":
        return labels_on_mesh(space, path)
    return _labels_on_grid(space, path)


def _place_mesh_parcels(space, rois: pd.DataFrame, columns: list, table: pd.DataFrame) -> None:
    """Give each surface parcel (no position of its own) the mean MNI152 position of its columns on this run."""
    coordinates = space.template_coordinates
    if coordinates is None or "label_value" not in rois:
        return
    for pos in np.flatnonzero(rois["label_value"].notna().to_numpy() & rois[["x", "y", "z"]].isna().all(axis=1)):
        if columns[pos].size:
            table.iloc[pos, [table.columns.get_loc(c) for c in ("x", "y", "z")]] = coordinates[columns[pos]].mean(0)


def _check_networks_reached(space, rois: pd.DataFrame, counts: np.ndarray) -> None:
    """Refuse a surface run on which a network's ROIs hold no vertex with signal."""
    per_network = pd.Series(counts, index=rois["network"].to_numpy()).groupby(level=0).sum()
    empty = [name for name, n in per_network.items() if n == 0]
    if empty:
        source = rois["labels_img"].iloc[0] if "labels_img" in rois and rois["labels_img"].iloc[0] else "its ROIs"
        raise InputError(
            f"{source}: network(s) {empty} get no vertex with signal on the run's {space.space} mesh "
            "(their parcels or spheres hold only medial-wall or no-signal vertices)"
        )


def _labels_on_grid(space: VoxelSpace, path) -> np.ndarray:
    """Label value of every in-mask column (nearest-neighbour resampling)."""
    try:
        img = image.load_img(path)
    except Exception as exc:  # nilearn raises several types for unreadable images
        raise InputError(f"{path}: cannot read the labels image ({exc})") from None
    if img.shape[:3] != space.shape or not np.allclose(img.affine, space.affine, atol=1e-3):
        img = image.resample_img(
            img,
            target_affine=space.affine,
            target_shape=space.shape,
            interpolation="nearest",
            force_resample=True,
            copy_header=True,
        )
    data = np.round(np.asarray(img.dataobj)).astype(np.int64)
    return data[space.mask]
