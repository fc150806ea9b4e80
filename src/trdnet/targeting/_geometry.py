"""Grid operations on a region of a voxel space: boxes, masked smoothing,
26-connected components and placing a point on a region voxel."""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np
from scipy import ndimage

from ..grid import VoxelSpace

#: 26-connectivity in 3D.
STRUCTURE_26 = np.ones((3, 3, 3), dtype=bool)

_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclass(frozen=True)
class Region:
    """Columns of a region and their place in the region's bounding box.

    Attributes
    ----------
    columns : numpy.ndarray of int, shape (S,)
    ijk : numpy.ndarray of int, shape (S, 3)
        Voxel indices relative to ``origin``.
    origin : numpy.ndarray of int, shape (3,)
        Grid index of the box's first voxel.
    shape : tuple of int
        Box shape.
    affine : numpy.ndarray, shape (4, 4)
        Affine of the full grid.
    """

    columns: np.ndarray
    ijk: np.ndarray
    origin: np.ndarray
    shape: tuple
    affine: np.ndarray

    @classmethod
    def from_columns(cls, space: VoxelSpace, columns: np.ndarray) -> "Region":
        """Region of ``columns`` (must be non-empty) in ``space``."""
        columns = np.asarray(columns, dtype=np.int64)
        ijk = space.ijk[columns]
        origin = ijk.min(axis=0)
        shape = tuple(int(s) for s in ijk.max(axis=0) - origin + 1)
        return cls(columns, ijk - origin, origin, shape, np.asarray(space.affine, dtype=float))

    @property
    def voxel_size_mm(self) -> np.ndarray:
        """Voxel edge lengths in mm."""
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    def volume(self, values: np.ndarray, fill: float = 0.0, dtype=np.float32) -> np.ndarray:
        """Box array with ``values`` (one per region column) at the region's voxels."""
        out = np.full(self.shape, fill, dtype=dtype)
        out[tuple(self.ijk.T)] = values
        return out

    def indicator(self) -> np.ndarray:
        """Boolean box array, True at the region's voxels."""
        return self.volume(True, fill=False, dtype=bool)

    def world(self, local_ijk) -> np.ndarray:
        """World RAS mm of (possibly fractional) box indices."""
        return nib.affines.apply_affine(self.affine, np.asarray(local_ijk, float) + self.origin)

    def to_local(self, xyz) -> np.ndarray:
        """Fractional box indices of a world RAS mm point."""
        return nib.affines.apply_affine(np.linalg.inv(self.affine), np.asarray(xyz, float)) - self.origin


def smooth_in_region(values: np.ndarray, region: Region, fwhm_mm: float | None) -> np.ndarray:
    """Gaussian smoothing restricted to the region (normalised convolution).

    Both the map (zero outside) and the region's indicator are smoothed and
    divided, so voxels near the region's edge are weighted averages of
    in-region voxels only: nothing outside (zeros, or other tissue) leaks in.

    Parameters
    ----------
    values : numpy.ndarray, shape (S,)
        One value per region column.
    region : Region
    fwhm_mm : float or None
        Kernel FWHM; None or 0 returns ``values`` unchanged.

    Returns
    -------
    numpy.ndarray, float32, shape (S,)
    """
    values = np.asarray(values, dtype=np.float32)
    if not fwhm_mm:
        return values
    sigma = fwhm_mm * _FWHM_TO_SIGMA / region.voxel_size_mm
    inside = region.indicator().astype(np.float32)
    num = ndimage.gaussian_filter(region.volume(values), sigma, mode="constant", cval=0.0)
    den = ndimage.gaussian_filter(inside, sigma, mode="constant", cval=0.0)
    where = tuple(region.ijk.T)
    return (num[where] / np.maximum(den[where], 1e-12)).astype(np.float32)


def components(region: Region, selected: np.ndarray) -> np.ndarray:
    """26-connected components of a subset of region voxels.

    Parameters
    ----------
    region : Region
    selected : numpy.ndarray of bool, shape (S,)

    Returns
    -------
    numpy.ndarray of int, shape (S,)
        Component label per region voxel (1, 2, ...), 0 where not selected.
    """
    labels, _ = ndimage.label(region.volume(selected, fill=False, dtype=bool), STRUCTURE_26)
    return labels[tuple(region.ijk.T)]


def adjacency(region: Region):
    """26-neighbour adjacency of the region's voxels.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (S, S)
        1 where two region voxels touch (faces, edges or corners), 0 elsewhere and on the diagonal.
    """
    from scipy import sparse

    lookup = np.full(region.shape, -1, dtype=np.int64)
    lookup[tuple(region.ijk.T)] = np.arange(region.columns.size)
    rows, cols = [], []
    for step in np.argwhere(STRUCTURE_26) - 1:
        if not step.any():
            continue
        neighbour = region.ijk + step
        inside = np.all((neighbour >= 0) & (neighbour < np.asarray(region.shape)), axis=1)
        found = np.full(region.columns.size, -1, dtype=np.int64)
        found[inside] = lookup[tuple(neighbour[inside].T)]
        rows.append(np.flatnonzero(found >= 0))
        cols.append(found[found >= 0])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    n = region.columns.size
    return sparse.csr_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n))


def split_by_adjacency(region: Region, labels: np.ndarray) -> np.ndarray:
    """Split every labelled cluster into its 26-connected spatial components.

    Parameters
    ----------
    region : Region
    labels : numpy.ndarray of int, shape (S,)
        Cluster labels (any integers, >= 1).

    Returns
    -------
    numpy.ndarray of int, shape (S,)
        New labels 1..K, each a spatially connected piece of one input cluster.
    """
    # Label components of all clusters at once: a voxel connects only to
    # neighbours of the same cluster, found by labelling per cluster id inside
    # the box. Offsetting by the running count keeps the labels unique.
    out = np.zeros(labels.shape[0], dtype=np.int64)
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    start = 0
    for group in np.split(order, bounds):
        if group.size == 0:
            continue
        if group.size == 1:
            start += 1
            out[group] = start
            continue
        sub_ijk = region.ijk[group]
        lo = sub_ijk.min(axis=0)
        box = np.zeros(tuple(sub_ijk.max(axis=0) - lo + 1), dtype=bool)
        box[tuple((sub_ijk - lo).T)] = True
        lab, n = ndimage.label(box, STRUCTURE_26)
        out[group] = lab[tuple((sub_ijk - lo).T)] + start
        start += n
    return out


def place_on_region(point_xyz, region: Region) -> tuple[int, np.ndarray, bool, float]:
    """Put a (centre-of-mass) point on the region.

    If the voxel containing the point belongs to the region, the point is kept
    (sub-voxel precision) and that voxel's column is returned. Otherwise the
    point moves to the centre of the nearest region voxel.

    Returns
    -------
    column : int
    xyz : numpy.ndarray, shape (3,)
    moved : bool
    distance_mm : float
        How far the point moved (0 if not moved).
    """
    point = np.asarray(point_xyz, dtype=float)
    local = np.rint(region.to_local(point)).astype(int)
    hit = np.flatnonzero((region.ijk == local).all(axis=1))
    if hit.size:
        return int(region.columns[hit[0]]), point, False, 0.0
    xyz = region.world(region.ijk)
    dist = np.linalg.norm(xyz - point, axis=1)
    best = int(np.argmin(dist))
    return int(region.columns[best]), xyz[best], True, float(dist[best])
