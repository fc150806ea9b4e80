"""A run's columns as points in space: voxels of a grid and vertices of a mesh.

Every column of a cleaned T x V matrix is a point with world coordinates (RAS
mm) in a named space, neighbours, and possibly a position in the MNI152
template. Seeds, search regions, ROIs, clusters and targets need only that, so
they are written once against :class:`Geometry` and work for both kinds:

- :class:`VoxelGeometry` (also named :class:`trdnet.grid.VoxelSpace`): in-mask
  voxels of a 3D grid; neighbours are the 26 voxels around a voxel; smoothing
  is a Gaussian kernel.
- :class:`MeshGeometry`: vertices of one or two cortical meshes (left then
  right hemisphere) without the medial wall and no-signal vertices;
  neighbours are the mesh's edges; smoothing is iterated neighbour averaging
  calibrated to a Gaussian FWHM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import nibabel as nib
import numpy as np
from nilearn import image
from scipy import ndimage, sparse
from scipy.sparse import csgraph

from .errors import InputError

#: FWHM = this factor x Gaussian sigma.
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))

#: Hemisphere labels in column order (BIDS ``hemi`` entity values).
HEMISPHERES = ("L", "R")

# Largest weight of the neighbour mean in one smoothing step; at most 0.5 keeps
# every step a positive averaging kernel (no oscillation on the mesh).
_MAX_STEP_WEIGHT = 0.5


class Geometry:
    """Columns of a run as points in space (the interface shared by voxels and vertices).

    Subclasses provide ``xyz`` (V x 3, RAS mm in ``space``), ``space`` (name),
    ``template_xyz`` (V x 3 MNI152 RAS mm, or None) and :meth:`adjacency` and
    :meth:`smooth`. Everything else is written once here.
    """

    kind = "points"

    @property
    def n_points(self) -> int:
        """Number of columns."""
        return int(self.xyz.shape[0])

    @property
    def is_template(self) -> bool:
        """Whether the columns' own coordinates are MNI152 template coordinates."""
        return self.space.upper().startswith("MNI")

    @property
    def coordinate_space(self) -> str:
        """Name of the space the columns' own coordinates (:attr:`xyz`) are in."""
        return self.space

    @property
    def template_coordinates(self) -> np.ndarray | None:
        """MNI152 coordinates of the columns: their own, mapped ones, or None."""
        return self.xyz if self.is_template else self.template_xyz

    def adjacency(self, columns=None) -> sparse.csr_matrix:  # pragma: no cover - interface
        """Symmetric boolean adjacency among ``columns`` (all columns if None)."""
        raise NotImplementedError

    def smooth(self, values, fwhm_mm, columns=None) -> np.ndarray:  # pragma: no cover
        """Smooth one value per column of ``columns`` within those columns."""
        raise NotImplementedError

    def sphere_columns(self, center_mm, radius_mm: float) -> np.ndarray:
        """Columns within ``radius_mm`` of ``center_mm`` (own space), sorted."""
        return _within(self.xyz, center_mm, radius_mm)

    def template_sphere_columns(self, center_mm, radius_mm: float) -> np.ndarray:
        """Columns within ``radius_mm`` of an MNI152 point (see :attr:`template_coordinates`).

        Raises
        ------
        ValueError
            If the columns have no template coordinates.
        """
        if self.is_template:
            return self.sphere_columns(center_mm, radius_mm)
        if self.template_xyz is None:
            raise ValueError(f"geometry in {self.space!r} has no template coordinates")
        return _within(self.template_xyz, center_mm, radius_mm)

    def nearest_column(self, point_mm, candidates=None) -> int:
        """Column whose point is nearest to ``point_mm`` (own space), among ``candidates``."""
        cols = np.arange(self.n_points) if candidates is None else np.asarray(candidates)
        if cols.size == 0:
            raise ValueError("no candidate columns")
        dist = np.linalg.norm(self.xyz[cols] - np.asarray(point_mm, dtype=float), axis=1)
        return int(cols[np.argmin(dist)])

    #: Volume of one column in mm^3 (None where a column is not a volume element, e.g. a vertex).
    column_volume_mm3: float | None = None

    def same_columns(self, other) -> bool:  # pragma: no cover - interface
        """Whether ``other`` has the same columns at the same places (runs that can be joined)."""
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        """A few words naming the columns (for messages)."""
        raise NotImplementedError

    def centre(self, columns, weights=None) -> np.ndarray:
        """Weighted mean position of ``columns`` (own space, RAS mm).

        Parameters
        ----------
        columns : numpy.ndarray of int, shape (S,)
        weights : numpy.ndarray, shape (S,), optional
            Non-negative weights (equal weights if None).

        Returns
        -------
        numpy.ndarray, shape (3,)
        """
        xyz = self.xyz[np.asarray(columns, dtype=np.int64)]
        w = np.ones(xyz.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
        return (xyz * w[:, None]).sum(axis=0) / w.sum()

    def place(self, point_mm, columns) -> tuple[int, np.ndarray, bool, float]:
        """Put a point (e.g. a cluster's centre) on one of ``columns``.

        Here: the nearest column's own point (a mesh: the vertex nearest the
        point, so a target lies on the cortex by construction; a centre off a
        curved surface is not "moved"). Voxels override this (see
        :meth:`VoxelGeometry.place`).

        Returns
        -------
        column : int
        xyz : numpy.ndarray, shape (3,)
        moved : bool
            Whether the point had to leave the region to land on a column.
        distance_mm : float
            From the point to the returned position.
        """
        point = np.asarray(point_mm, dtype=float)
        column = self.nearest_column(point, columns)
        return column, self.xyz[column].copy(), False, float(np.linalg.norm(self.xyz[column] - point))

    def target_columns(self, columns) -> dict:
        """Extra target-table columns naming where ``columns`` are (none for voxels).

        Returns
        -------
        dict
            Column name -> list of values, one per entry of ``columns``.
        """
        return {}

    def clusters(self, selected, columns=None) -> np.ndarray:
        """Connected clusters of a selection, neighbours as in :meth:`adjacency`.

        Parameters
        ----------
        selected : numpy.ndarray of bool, shape (S,)
            Which of ``columns`` are selected.
        columns : numpy.ndarray of int, shape (S,), optional
            The columns ``selected`` refers to (all columns if None).

        Returns
        -------
        numpy.ndarray of int, shape (S,)
            Cluster label 1..K per selected column (numbered in column order
            of each cluster's first member), 0 where not selected.
        """
        columns = np.arange(self.n_points) if columns is None else np.asarray(columns)
        selected = np.asarray(selected, dtype=bool)
        if selected.shape != columns.shape:
            raise ValueError(f"selected has shape {selected.shape}, columns {columns.shape}")
        labels = np.zeros(columns.shape[0], dtype=np.int64)
        picked = np.flatnonzero(selected)
        if picked.size == 0:
            return labels
        labels[picked] = _by_first_appearance(self._components(columns[picked]))
        return labels

    def _components(self, columns: np.ndarray) -> np.ndarray:
        """Connected-component id of each of ``columns`` (any numbering)."""
        return csgraph.connected_components(self.adjacency(columns), directed=False)[1]


def _by_first_appearance(component: np.ndarray) -> np.ndarray:
    """Component ids renumbered 1..K in order of first appearance (independent of the labeller's order)."""
    _, first, inverse = np.unique(component, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(1, first.size + 1)
    return rank[inverse]


def _within(xyz: np.ndarray, center_mm, radius_mm: float) -> np.ndarray:
    dist = np.linalg.norm(xyz - np.asarray(center_mm, dtype=float), axis=1)
    return np.flatnonzero(dist <= radius_mm)


def _positions(n: int, columns: np.ndarray) -> np.ndarray:
    """Array of length ``n`` giving each column's position in ``columns`` (-1 if absent)."""
    pos = np.full(n, -1, dtype=np.int64)
    pos[columns] = np.arange(columns.size)
    return pos


@dataclass(frozen=True)
class VoxelGeometry(Geometry):
    """In-mask voxels of a 3D grid.

    Neighbours are the 26 voxels sharing a face, edge or corner; smoothing is
    a Gaussian kernel. (Also known as :class:`trdnet.grid.VoxelSpace`.)

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

    kind = "voxel"

    mask: np.ndarray
    affine: np.ndarray
    space: str
    template_xyz: np.ndarray | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_mask(cls, mask_img, space: str) -> "VoxelGeometry":
        """In-mask voxels of a 3D mask image (path or nibabel image; non-zero = inside) in the named space."""
        img = mask_img if isinstance(mask_img, nib.spatialimages.SpatialImage) else nib.load(mask_img)
        data = np.asanyarray(img.dataobj)
        if data.ndim != 3:
            raise ValueError(f"expected a 3D mask, got shape {data.shape}")
        return cls(data != 0, np.asarray(img.affine, dtype=float), space)

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
    def n_points(self) -> int:
        return self.n_voxels

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm^3."""
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    @property
    def column_volume_mm3(self) -> float:
        """Volume of one voxel in mm^3 (see :attr:`Geometry.column_volume_mm3`)."""
        return self.voxel_volume_mm3

    @property
    def voxel_size_mm(self) -> np.ndarray:
        """Voxel edge lengths in mm."""
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    def same_columns(self, other) -> bool:
        """Same grid, same in-mask voxels, same space."""
        return (
            isinstance(other, VoxelGeometry)
            and self.shape == other.shape
            and np.allclose(self.affine, other.affine, atol=1e-4)
            and self.n_voxels == other.n_voxels
            and np.array_equal(self.ijk, other.ijk)
            and self.space == other.space
        )

    def describe(self) -> str:
        return f"{self.space} grid {self.shape}"

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

    def subset(self, columns: np.ndarray) -> "VoxelGeometry":
        """The grid restricted to ``columns`` (sorted), keeping template coordinates."""
        columns = np.asarray(columns)
        mask = np.zeros(self.shape, dtype=bool)
        mask[tuple(self.ijk[columns].T)] = True
        template = None if self.template_xyz is None else self.template_xyz[columns]
        return type(self)(mask, self.affine, self.space, template)

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

    def adjacency(self, columns=None) -> sparse.csr_matrix:
        """26-neighbour adjacency among ``columns`` (rows/cols in the order given).

        Returns
        -------
        scipy.sparse.csr_matrix of bool, shape (S, S)
        """
        columns = np.arange(self.n_voxels) if columns is None else np.asarray(columns, dtype=np.int64)
        pos = _positions(self.n_voxels, columns)
        ijk = self.ijk[columns]
        index = self.column_index()
        rows, cols = [], []
        offsets = np.array([o for o in np.ndindex(3, 3, 3) if o != (1, 1, 1)]) - 1
        upper = np.asarray(self.shape) - 1
        for offset in offsets:
            other = ijk + offset
            ok = np.all((other >= 0) & (other <= upper), axis=1)
            neighbour = np.full(columns.size, -1, dtype=np.int64)
            neighbour[ok] = index[tuple(other[ok].T)]
            hit = neighbour >= 0
            where = np.full(columns.size, -1, dtype=np.int64)
            where[hit] = pos[neighbour[hit]]
            keep = where >= 0
            rows.append(np.flatnonzero(keep))
            cols.append(where[keep])
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        data = np.ones(rows.size, dtype=bool)
        return sparse.csr_matrix((data, (rows, cols)), shape=(columns.size, columns.size))

    def smooth(self, values, fwhm_mm, columns=None) -> np.ndarray:
        """Gaussian smoothing within ``columns`` (normalised convolution: nothing leaks in).

        Parameters
        ----------
        values : numpy.ndarray, shape (S,)
            One value per column of ``columns``.
        fwhm_mm : float or None
            Kernel full width at half maximum; None or 0 returns the values.
        columns : numpy.ndarray of int, shape (S,), optional
            All columns if None.

        Returns
        -------
        numpy.ndarray, float32, shape (S,)
        """
        values = np.asarray(values, dtype=np.float32)
        if not fwhm_mm:
            return values
        columns = np.arange(self.n_voxels) if columns is None else np.asarray(columns)
        local, shape = self._box(columns)
        sigma = fwhm_mm * (1.0 / FWHM_PER_SIGMA) / self.voxel_size_mm
        inside = np.zeros(shape, dtype=np.float32)
        inside[local] = 1.0
        filled = np.zeros(shape, dtype=np.float32)
        filled[local] = values
        # normalised convolution: the map (zero outside) and the region's indicator are smoothed and divided
        num = ndimage.gaussian_filter(filled, sigma, mode="constant", cval=0.0)
        den = ndimage.gaussian_filter(inside, sigma, mode="constant", cval=0.0)
        return (num[local] / np.maximum(den[local], 1e-12)).astype(np.float32)

    def _box(self, columns: np.ndarray) -> tuple[tuple, tuple]:
        """Indices of ``columns`` in their bounding box, and the box's shape."""
        ijk = self.ijk[np.asarray(columns, dtype=np.int64)]
        origin = ijk.min(axis=0)
        return tuple((ijk - origin).T), tuple(int(v) for v in ijk.max(axis=0) - origin + 1)

    def _components(self, columns: np.ndarray) -> np.ndarray:
        # labelling the bounding box is much faster than building the adjacency graph
        local, shape = self._box(columns)
        box = np.zeros(shape, dtype=bool)
        box[local] = True
        return ndimage.label(box, np.ones((3, 3, 3), dtype=bool))[0][local]

    def place(self, point_mm, columns) -> tuple[int, np.ndarray, bool, float]:
        """Put a point on the region ``columns`` (see :meth:`Geometry.place`).

        If the voxel containing the point belongs to the region, the point
        is kept (sub-voxel precision) with that voxel's column; otherwise it
        moves to the centre of the nearest region voxel.
        """
        point = np.asarray(point_mm, dtype=float)
        columns = np.asarray(columns, dtype=np.int64)
        ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(self.affine), point)).astype(int)
        hit = np.flatnonzero((self.ijk[columns] == ijk).all(axis=1))
        if hit.size:
            return int(columns[hit[0]]), point, False, 0.0
        dist = np.linalg.norm(self.xyz[columns] - point, axis=1)
        best = int(np.argmin(dist))
        return int(columns[best]), self.xyz[columns[best]].copy(), True, float(dist[best])


@dataclass(frozen=True, eq=False)
class MeshGeometry(Geometry):
    """Vertices of cortical meshes (left then right hemisphere) as a :class:`Geometry`.

    Only vertices carrying data are columns: the medial wall and vertices
    without signal are left out (and counted in ``n_excluded``).

    Attributes
    ----------
    xyz : numpy.ndarray, shape (V, 3)
        Vertex coordinates, RAS mm, in ``space`` (fsaverage meshes: MNI305;
        fsnative: the participant's T1w world coordinates).
    hemi : numpy.ndarray of str, shape (V,)
        ``L`` or ``R`` per column.
    vertex : numpy.ndarray of int, shape (V,)
        Index of each column's vertex in its hemisphere's mesh.
    edges : numpy.ndarray of int, shape (E, 2)
        Mesh edges between columns (column numbers, each edge once).
    space : str
        Space name (``fsaverage5``, ``fsnative``, ``fsLR``).
    n_mesh_vertices : dict
        Hemisphere -> number of vertices of its mesh.
    template_xyz : numpy.ndarray, shape (V, 3), optional
        MNI152 RAS mm of each column (e.g. fsaverage's MNI305 mapped by
        FreeSurfer's linear MNI305-to-MNI152 matrix); None when unknown.
    surface : str
        Which surface the coordinates are on (``midthickness``, ``pial``, ...).
    n_excluded : dict
        Hemisphere -> number of mesh vertices left out (medial wall, no signal).
    source_columns : numpy.ndarray of int, shape (V,), optional
        Each column's position in the input file when that is not simply
        hemisphere by hemisphere in mesh order (CIFTI brain models), for
        writing results back in the file's layout.
    template_missing : str
        When ``template_xyz`` is None, what would have given it and is
        missing (named in refusals); ``""`` otherwise.

    Columns after the mesh vertices (``hemi`` ``""``, ``vertex`` -1, no
    edges) are points off the meshes, e.g. CIFTI's subcortical voxels.
    """

    kind = "mesh"

    xyz: np.ndarray
    hemi: np.ndarray
    vertex: np.ndarray
    edges: np.ndarray
    space: str
    n_mesh_vertices: dict
    template_xyz: np.ndarray | None = field(default=None, repr=False)
    surface: str = "midthickness"
    n_excluded: dict = field(default_factory=dict)
    source_columns: np.ndarray | None = field(default=None, repr=False)
    template_missing: str = ""

    @classmethod
    def from_meshes(
        cls,
        meshes: dict,
        space: str,
        keep: dict | None = None,
        template_affine: np.ndarray | None = None,
        surface: str = "midthickness",
        extra_xyz: np.ndarray | None = None,
        source_columns: np.ndarray | None = None,
        template_points: dict | None = None,
        template_missing: str = "",
    ) -> "MeshGeometry":
        """Build the geometry of one or two hemispheres.

        Parameters
        ----------
        meshes : dict
            Hemisphere (``L``, ``R``) -> mesh: anything
            :func:`nilearn.surface.load_surf_mesh` reads (GIFTI path,
            nilearn mesh, ``(coordinates, faces)``). Columns are ordered
            left then right, vertices in mesh order.
        space : str
            Space of the mesh coordinates.
        keep : dict, optional
            Hemisphere -> boolean array over the mesh's vertices, True for
            vertices with data (False: medial wall, no signal). All kept if None.
        template_affine : numpy.ndarray, shape (4, 4), optional
            Linear map from the mesh coordinates to MNI152 (``template_xyz``);
            the identity is used when ``space`` is itself an MNI152 space.
        surface : str
            Name of the surface the coordinates lie on.
        extra_xyz : numpy.ndarray, shape (K, 3), optional
            Points off the meshes (same space), appended after the vertices.
        source_columns : numpy.ndarray of int, optional
            See the class attributes.
        template_points : dict, optional
            Hemisphere -> MNI152 coordinates of every mesh vertex (n_vertices x 3),
            when they come from elsewhere than a linear map (e.g. a registered
            sphere); used instead of ``template_affine``.
        template_missing : str, optional
            See the class attributes.

        Raises
        ------
        ValueError
            Unknown hemisphere, or a ``keep`` array of the wrong length.
        """
        from nilearn.surface import load_surf_mesh

        xyz, hemi, vertex, edges, sizes, excluded, points = [], [], [], [], {}, {}, []
        offset = 0
        for name in HEMISPHERES:
            if name not in meshes:
                continue
            mesh = load_surf_mesh(meshes[name])
            coords = np.asarray(mesh.coordinates, dtype=float)
            faces = np.asarray(mesh.faces, dtype=np.int64)
            mask = np.ones(coords.shape[0], dtype=bool) if keep is None or name not in keep else np.asarray(keep[name], dtype=bool)
            if mask.shape != (coords.shape[0],):
                raise ValueError(
                    f"hemisphere {name}: keep has {mask.shape[0]} values, the mesh {coords.shape[0]} vertices"
                )
            column = np.full(coords.shape[0], -1, dtype=np.int64)
            column[mask] = offset + np.arange(int(mask.sum()))
            pairs = column[mesh_edges(faces)]
            edges.append(pairs[(pairs >= 0).all(axis=1)])
            xyz.append(coords[mask])
            if template_points is not None:
                points.append(np.asarray(template_points[name], dtype=float)[mask])
            hemi.append(np.full(int(mask.sum()), name))
            vertex.append(np.flatnonzero(mask))
            sizes[name] = int(coords.shape[0])
            excluded[name] = int((~mask).sum())
            offset += int(mask.sum())
        unknown = set(meshes) - set(HEMISPHERES)
        if unknown or not sizes:
            raise ValueError(f"hemispheres must be among {HEMISPHERES}, got {sorted(meshes)}")
        if extra_xyz is not None and len(extra_xyz):
            xyz.append(np.asarray(extra_xyz, dtype=float).reshape(-1, 3))
            hemi.append(np.full(len(xyz[-1]), ""))
            vertex.append(np.full(len(xyz[-1]), -1, dtype=np.int64))
        xyz = np.concatenate(xyz)
        template = None
        if template_points is not None:
            template = np.concatenate(points)
        elif template_affine is not None:
            template = nib.affines.apply_affine(np.asarray(template_affine, dtype=float), xyz)
        return cls(
            xyz=xyz,
            hemi=np.concatenate(hemi),
            vertex=np.concatenate(vertex),
            edges=np.concatenate(edges).reshape(-1, 2),
            space=space,
            n_mesh_vertices=sizes,
            template_xyz=template,
            surface=surface,
            n_excluded=excluded,
            source_columns=None if source_columns is None else np.asarray(source_columns, dtype=np.int64),
            template_missing="" if template is not None else template_missing,
        )

    @property
    def coordinate_space(self) -> str:
        """``MNI305`` for fsaverage meshes, ``T1w`` for fsnative, else the mesh's space (fsLR)."""
        if self.space.startswith("fsaverage"):
            return "MNI305"
        return "T1w" if self.space == "fsnative" else self.space

    @property
    def template_mapping(self) -> str:
        """How the columns' MNI152 coordinates (:attr:`template_xyz`) were obtained, in a few words."""
        if self.space.startswith("fsaverage"):
            return "FreeSurfer's MNI305-to-MNI152 matrix (linear approximation; FSL's MNI152, MNI152NLin6Asym)"
        if self.space == "fsnative":
            return "registered sphere: position of the nearest fsaverage5 vertex, through FreeSurfer's matrix"
        return "the mesh's own coordinates (group-average mesh in FSL's MNI152, MNI152NLin6Asym)" if self.is_template or self.space == "fsLR" \
            else "unknown"

    def same_columns(self, other) -> bool:
        """Same mesh space and the same vertices (hemisphere and index) as columns, in the same order."""
        return (
            isinstance(other, MeshGeometry)
            and self.space == other.space
            and np.array_equal(self.hemi, other.hemi)
            and np.array_equal(self.vertex, other.vertex)
            and np.allclose(self.xyz, other.xyz, atol=1e-4)
        )

    def describe(self) -> str:
        return f"{self.space} mesh, {self.n_points} columns"

    def subset(self, columns) -> "MeshGeometry":
        """The geometry restricted to ``columns`` (in the order given), edges among them kept."""
        columns = np.asarray(columns, dtype=np.int64)
        pairs = _positions(self.n_points, columns)[self.edges]
        pick = (lambda a: None if a is None else a[columns])
        return MeshGeometry(
            xyz=self.xyz[columns], hemi=self.hemi[columns], vertex=self.vertex[columns],
            edges=pairs[(pairs >= 0).all(axis=1)], space=self.space, n_mesh_vertices=self.n_mesh_vertices,
            template_xyz=pick(self.template_xyz), surface=self.surface, n_excluded=self.n_excluded,
            source_columns=pick(self.source_columns),
        )

    def target_columns(self, columns) -> dict:
        """``hemi``, ``vertex`` and ``mesh`` of each column, and its MNI152 position (see :class:`Geometry`).

        A column off the meshes (a CIFTI subcortical voxel) has ``hemi`` ``n/a`` and ``vertex`` -1.
        """
        columns = np.asarray(columns, dtype=np.int64)
        template = (np.full((columns.size, 3), np.nan) if self.template_coordinates is None
                    else self.template_coordinates[columns])
        return {
            "hemi": [h or "n/a" for h in self.hemi[columns]],
            "vertex": [int(v) for v in self.vertex[columns]],
            "mesh": [self.space] * columns.size,
            "mni152_x": template[:, 0].tolist(),
            "mni152_y": template[:, 1].tolist(),
            "mni152_z": template[:, 2].tolist(),
            "mni152_mapping": [self.template_mapping] * columns.size,
        }

    def hemisphere_columns(self, hemi: str) -> np.ndarray:
        """Columns of one hemisphere (``L`` or ``R``)."""
        return np.flatnonzero(self.hemi == hemi)

    def hemisphere_values(self, values, hemi: str, fill: float = np.nan) -> np.ndarray:
        """One value per vertex of a hemisphere's whole mesh (``fill`` where a vertex is left out).

        Parameters
        ----------
        values : numpy.ndarray, shape (V,)
            One value per column.
        hemi : str
            ``L`` or ``R``.
        fill : float
            Value of the vertices that are not columns (medial wall, no signal).

        Returns
        -------
        numpy.ndarray, float32, shape (n_mesh_vertices[hemi],)
        """
        values = np.asarray(values)
        if values.shape[0] != self.n_points:
            raise ValueError(f"expected {self.n_points} values, got {values.shape[0]}")
        out = np.full(self.n_mesh_vertices[hemi], fill, dtype=np.float32)
        cols = self.hemisphere_columns(hemi)
        out[self.vertex[cols]] = values[cols]
        return out

    def adjacency(self, columns=None) -> sparse.csr_matrix:
        """Mesh-edge adjacency among ``columns`` (rows/cols in the order given).

        Returns
        -------
        scipy.sparse.csr_matrix of bool, shape (S, S)
        """
        columns = np.arange(self.n_points) if columns is None else np.asarray(columns, dtype=np.int64)
        pos = _positions(self.n_points, columns)
        pairs = pos[self.edges]
        pairs = pairs[(pairs >= 0).all(axis=1)]
        rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
        cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
        data = np.ones(rows.size, dtype=bool)
        return sparse.csr_matrix((data, (rows, cols)), shape=(columns.size, columns.size))

    @cached_property
    def mean_squared_edge_mm2(self) -> float:
        """Mean squared length of the mesh edges between columns (mm^2)."""
        if self.edges.size == 0:
            return float("nan")
        delta = self.xyz[self.edges[:, 0]] - self.xyz[self.edges[:, 1]]
        return float(np.mean(np.sum(delta**2, axis=1)))

    def smoothing_steps(self, fwhm_mm: float) -> tuple[int, float]:
        """Number of averaging steps and the neighbour weight giving a Gaussian of ``fwhm_mm``.

        One step replaces each value by ``(1 - a) * own + a * mean(neighbours)``:
        a random-walk kernel whose variance per in-surface axis grows by
        ``a * d2 / 2`` per step (``d2`` = mean squared edge length; the 2D
        displacement variance ``a * d2`` split over two axes). Steps add
        variance, so ``n`` steps reach a Gaussian of variance
        ``sigma^2 = (FWHM / 2.3548)^2`` when ``n * a * d2 / 2 = sigma^2``; ``n``
        is the smallest number with ``a <= 0.5``. This is the diffusion (heat
        kernel) view of iterated neighbour averaging on a mesh (Chung et al.
        2005, NeuroImage 25:1256-1265; Hagler et al. 2006, NeuroImage
        33:1093-1103, who calibrate FreeSurfer's iterations to a FWHM); it
        assumes locally regular vertex spacing.

        Returns
        -------
        n_steps : int
        weight : float
        """
        if not fwhm_mm:
            return 0, 0.0
        variance = (float(fwhm_mm) / FWHM_PER_SIGMA) ** 2
        per_unit_weight = self.mean_squared_edge_mm2 / 2.0
        n_steps = int(np.ceil(variance / (per_unit_weight * _MAX_STEP_WEIGHT)))
        return n_steps, variance / (n_steps * per_unit_weight)

    def smooth(self, values, fwhm_mm, columns=None) -> np.ndarray:
        """Smooth along the mesh within ``columns`` (see :meth:`smoothing_steps`).

        Neighbours outside ``columns`` (or left out of the geometry) take no
        part, so nothing leaks in from outside the region.

        Parameters
        ----------
        values : numpy.ndarray, shape (S,)
            One value per column of ``columns``.
        fwhm_mm : float or None
            Gaussian FWHM in mm along the surface; None or 0 returns the values.
        columns : numpy.ndarray of int, shape (S,), optional
            All columns if None.

        Returns
        -------
        numpy.ndarray, float32, shape (S,)
        """
        values = np.asarray(values, dtype=np.float64)
        n_steps, weight = self.smoothing_steps(fwhm_mm)
        if n_steps == 0:
            return values.astype(np.float32)
        adjacency = self.adjacency(columns).astype(np.float64)
        degree = np.asarray(adjacency.sum(axis=1)).ravel()
        has = degree > 0
        scale = np.zeros_like(degree)
        scale[has] = weight / degree[has]
        step = sparse.diags(scale) @ adjacency + sparse.diags(np.where(has, 1.0 - weight, 1.0))
        step = step.tocsr()
        for _ in range(n_steps):
            values = step @ values
        return values.astype(np.float32)


def mesh_edges(faces: np.ndarray) -> np.ndarray:
    """Unique undirected edges of a triangle mesh.

    Parameters
    ----------
    faces : numpy.ndarray of int, shape (F, 3)

    Returns
    -------
    numpy.ndarray of int, shape (E, 2)
        Vertex pairs, smaller index first, sorted.
    """
    faces = np.asarray(faces, dtype=np.int64)
    pairs = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    pairs.sort(axis=1)
    return np.unique(pairs, axis=0)
