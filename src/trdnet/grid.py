"""The in-mask voxel space of one run: world coordinates of every column of the
cleaned T x V matrix, sphere and mask look-ups, and back to images.

Every later stage addresses voxels through a :class:`VoxelSpace`, so nothing
re-reads or re-masks the 4D image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import nibabel as nib
import numpy as np
from nilearn import image

from .errors import InputError


@dataclass(frozen=True)
class VoxelSpace:
    """In-mask voxels of a 3D grid.

    Attributes
    ----------
    mask : numpy.ndarray of bool, shape (X, Y, Z)
        Which voxels are columns of the data matrix.
    affine : numpy.ndarray, shape (4, 4)
        Voxel-to-world (RAS mm) affine of the grid.
    space : str
        Name of the template or native space (``MNI152NLin2009cAsym``, ``T1w``).
    template_xyz : numpy.ndarray, shape (V, 3), optional
        For a native grid: where each column's voxel centre lies in the MNI
        template (RAS mm; NaN where the transform does not reach), so that
        template coordinates (seed, search sites, network ROIs) can be looked
        up without resampling the data. None when unknown.
    """

    mask: np.ndarray
    affine: np.ndarray
    space: str
    template_xyz: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid shape."""
        return tuple(self.mask.shape)

    @cached_property
    def ijk(self) -> np.ndarray:
        """Voxel indices of the columns, shape (V, 3), in column order."""
        return np.argwhere(self.mask)

    @cached_property
    def xyz(self) -> np.ndarray:
        """World RAS mm coordinates of the columns, shape (V, 3)."""
        return nib.affines.apply_affine(self.affine, self.ijk)

    @property
    def n_voxels(self) -> int:
        """Number of columns."""
        return int(self.mask.sum())

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm^3."""
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    @property
    def voxel_size_mm(self) -> np.ndarray:
        """Voxel edge lengths in mm."""
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    def column_index(self) -> np.ndarray:
        """3D array giving each in-mask voxel's column number (-1 outside)."""
        return self._column_index

    @cached_property
    def _column_index(self) -> np.ndarray:
        index = np.full(self.mask.shape, -1, dtype=np.int64)
        index[self.mask] = np.arange(self.n_voxels)
        return index

    def sphere_columns(self, center_mm, radius_mm: float) -> np.ndarray:
        """Columns whose voxel centre lies within ``radius_mm`` of ``center_mm``.

        Only the bounding box of the sphere is searched, not the whole grid.

        Parameters
        ----------
        center_mm : sequence of 3 floats
            Sphere centre, world RAS mm, in this space.
        radius_mm : float
            Sphere radius in mm.

        Returns
        -------
        numpy.ndarray of int
            Sorted column numbers (possibly empty).
        """
        center = np.asarray(center_mm, dtype=float)
        inv = np.linalg.inv(self.affine)
        center_ijk = nib.affines.apply_affine(inv, center)
        half = radius_mm / self.voxel_size_mm
        lo = np.maximum(np.floor(center_ijk - half).astype(int), 0)
        hi = np.minimum(np.ceil(center_ijk + half).astype(int) + 1, self.shape)
        if np.any(hi <= lo):
            return np.empty(0, dtype=np.int64)
        box = np.stack(
            np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), axis=-1
        ).reshape(-1, 3)
        dist = np.linalg.norm(nib.affines.apply_affine(self.affine, box) - center, axis=1)
        box = box[dist <= radius_mm]
        cols = self.column_index()[box[:, 0], box[:, 1], box[:, 2]]
        return np.sort(cols[cols >= 0])

    @property
    def is_template(self) -> bool:
        """Whether the grid itself is in an MNI152 template space."""
        return self.space.upper().startswith("MNI")

    @property
    def template_coordinates(self) -> np.ndarray | None:
        """MNI template coordinates of the columns: the grid's own, the pulled-back ones, or None."""
        return self.xyz if self.is_template else self.template_xyz

    def template_sphere_columns(self, center_mm, radius_mm: float) -> np.ndarray:
        """Columns within ``radius_mm`` of an MNI template point (see :attr:`template_coordinates`).

        Raises
        ------
        ValueError
            If the grid has no template coordinates.
        """
        if self.is_template:
            return self.sphere_columns(center_mm, radius_mm)
        if self.template_xyz is None:
            raise ValueError(f"grid in {self.space!r} has no template coordinates")
        dist = np.linalg.norm(self.template_xyz - np.asarray(center_mm, dtype=float), axis=1)
        return np.flatnonzero(dist <= radius_mm)

    def subset(self, columns: np.ndarray) -> "VoxelSpace":
        """The grid restricted to ``columns`` (sorted), keeping template coordinates."""
        columns = np.asarray(columns)
        mask = np.zeros(self.shape, dtype=bool)
        mask[tuple(self.ijk[columns].T)] = True
        template = None if self.template_xyz is None else self.template_xyz[columns]
        return VoxelSpace(mask, self.affine, self.space, template)

    def mask_columns(self, mask_img, threshold: float = 0.5, name: str = "mask") -> np.ndarray:
        """Columns inside a mask image given on any grid of the same space.

        The image is resampled to this grid (nearest neighbour for integer
        images, linear then thresholded otherwise).

        Parameters
        ----------
        mask_img : str, path or nibabel image
            3D mask or probability image.
        threshold : float
            Voxels with value above this are inside.
        name : str
            Used in error messages.

        Returns
        -------
        numpy.ndarray of int
        """
        img = image.load_img(mask_img)
        if img.ndim != 3:
            raise InputError(f"{name}: expected a 3D mask image, got {img.ndim}D")
        data = self.resample_values(img)
        return np.flatnonzero(data[self.mask] > threshold)

    def resample_values(self, img) -> np.ndarray:
        """Values of a 3D image on this grid (full grid array, shape ``self.shape``)."""
        img = image.load_img(img)
        if img.shape[:3] == self.shape and np.allclose(img.affine, self.affine, atol=1e-3):
            return np.asanyarray(img.dataobj, dtype=np.float32)
        kind = "nearest" if np.issubdtype(img.get_data_dtype(), np.integer) else "linear"
        resampled = image.resample_img(
            img,
            target_affine=self.affine,
            target_shape=self.shape,
            interpolation=kind,
            force_resample=True,
            copy_header=True,
        )
        return np.asanyarray(resampled.dataobj, dtype=np.float32)

    def to_img(self, values: np.ndarray, fill: float = 0.0, dtype=np.float32) -> nib.Nifti1Image:
        """Put one value per column back into a 3D NIfTI image of this grid."""
        values = np.asarray(values)
        if values.shape[0] != self.n_voxels:
            raise ValueError(f"expected {self.n_voxels} values, got {values.shape[0]}")
        volume = np.full(self.shape, fill, dtype=dtype)
        volume[self.mask] = values
        img = nib.Nifti1Image(volume, self.affine)
        img.header.set_xyzt_units("mm")
        img.header.set_sform(self.affine, code=4 if self.space.startswith("MNI") else 2)
        img.header.set_qform(self.affine, code=4 if self.space.startswith("MNI") else 2)
        return img

    def nearest_column(self, point_mm, candidates: np.ndarray | None = None) -> int:
        """Column whose voxel centre is nearest to ``point_mm`` (among ``candidates``)."""
        xyz = self.xyz
        cols = np.arange(self.n_voxels) if candidates is None else np.asarray(candidates)
        if cols.size == 0:
            raise ValueError("no candidate voxels")
        dist = np.linalg.norm(xyz[cols] - np.asarray(point_mm, dtype=float), axis=1)
        return int(cols[np.argmin(dist)])
