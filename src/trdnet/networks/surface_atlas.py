"""Surface atlases the user gives: GIFTI ``.label.gii`` per hemisphere or a CIFTI-2 ``.dlabel.nii``.

A surface atlas plays the part a 3D labels image plays for volume runs
(:func:`trdnet.networks.network_rois` with ``atlas="labels"``): the labels
table (``index``, ``name``, ``network``) maps each label value to a network,
and each parcel becomes one ROI whose signal is the mean of its vertices.

- GIFTI: ``networks.labels_img`` names the left hemisphere's file, whose name
  carries ``hemi-L`` (TemplateFlow and fMRIPrep style,
  ``tpl-fsaverage_hemi-L_den-10k_..._dseg.label.gii``); its ``hemi-R``
  partner is read from beside it. A label value found in both files is one
  ROI spanning both hemispheres (e.g. a network-level atlas such as Yeo's).
- CIFTI-2: a dense label file (``.dlabel.nii``, one label map) read with
  nibabel's ``cifti2``: the left and right cortex by their vertex indices and
  the subcortical voxels by their coordinates.

The atlas must be on the run's mesh: its vertex count per hemisphere must
equal the run's (fsaverage5 = 10,242, fsLR-32k = 32,492, ...), otherwise the
run is refused in one line naming both.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np

from ..entities import parse_bids_name, parse_entities, replace_entities
from ..errors import InputError
from ..geometry import HEMISPHERES

#: File-name endings of the surface atlases trdnet reads.
GIFTI_LABEL_SUFFIX = ".label.gii"
CIFTI_LABEL_SUFFIX = ".dlabel.nii"

# Voxel coordinates are matched after rounding to this many decimals (mm): the atlas and the run share the
# CIFTI volume grid, so equal voxels agree far beyond it.
_VOXEL_DECIMALS = 2


def is_surface_atlas(path) -> bool:
    """Whether ``path`` names a surface atlas (``.label.gii`` or ``.dlabel.nii``)."""
    name = Path(str(path)).name
    return name.endswith(GIFTI_LABEL_SUFFIX) or name.endswith(CIFTI_LABEL_SUFFIX)


@dataclass(frozen=True)
class SurfaceLabels:
    """Label values of a surface atlas.

    Attributes
    ----------
    path : str
        The file given (the left hemisphere's for GIFTI).
    files : tuple of str
        Every file read.
    vertices : dict
        Hemisphere -> int array, one label value per vertex of its mesh (0: unlabelled).
    voxel_xyz : numpy.ndarray, shape (K, 3)
        RAS mm of the labelled subcortical voxels (CIFTI; empty for GIFTI).
    voxel_labels : numpy.ndarray of int, shape (K,)
    """

    path: str
    files: tuple
    vertices: dict
    voxel_xyz: np.ndarray
    voxel_labels: np.ndarray

    @property
    def n_vertices(self) -> dict:
        """Hemisphere -> number of mesh vertices the atlas is defined on."""
        return {hemi: int(v.size) for hemi, v in self.vertices.items()}

    def file_of(self, hemi: str) -> str:
        """The file holding a hemisphere's labels (its own GIFTI, or the one CIFTI file)."""
        return self.files[HEMISPHERES.index(hemi)] if len(self.files) == len(HEMISPHERES) else self.path

    def present(self, values) -> np.ndarray:
        """Which of ``values`` label at least one vertex or voxel (bool array)."""
        found = np.concatenate([*self.vertices.values(), self.voxel_labels])
        return np.isin(np.asarray(values, dtype=np.int64), found)


def read_surface_labels(path) -> SurfaceLabels:
    """Read a surface atlas (see the module docstring for the accepted forms).

    Parameters
    ----------
    path : str or Path
        ``..._hemi-L_....label.gii`` (its ``hemi-R`` partner beside it) or ``....dlabel.nii``.

    Returns
    -------
    SurfaceLabels

    Raises
    ------
    InputError
        Unreadable file, a GIFTI name without ``hemi-L`` or without its
        right-hemisphere partner, non-integer labels, or a CIFTI file that is
        not a dense label file with one map.
    """
    path = Path(str(path))
    if not path.is_file():
        raise InputError(f"{path}: surface atlas not found")
    stat = path.stat()
    return _read_cached(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _read_cached(path: str, _mtime: int, _size: int) -> SurfaceLabels:
    if path.endswith(CIFTI_LABEL_SUFFIX):
        return _read_dlabel(Path(path))
    return _read_gifti_pair(Path(path))


def _read_gifti_pair(left: Path) -> SurfaceLabels:
    if parse_entities(left.name).get("hemi") != "L":
        raise InputError(
            f"{left}: name the left hemisphere's atlas file, with hemi-L in its name "
            "(its hemi-R partner is read from beside it)"
        )
    # the partner is the file with the same entities but hemi-R, whatever order its name writes them in
    parsed = parse_bids_name(left.name)
    wanted = (parsed.entities | {"hemi": "R"}, parsed.suffix)
    partners = [p for p in sorted(left.parent.glob(f"*{GIFTI_LABEL_SUFFIX}"))
                if (parse_bids_name(p.name).entities, parse_bids_name(p.name).suffix) == wanted]
    if not partners:
        raise InputError(f"{left}: no right-hemisphere atlas beside it (expected "
                         f"{replace_entities(left.name, keep_order=True, hemi='R')})")
    right = partners[0]
    vertices = {hemi: _gifti_labels(file) for hemi, file in (("L", left), ("R", right))}
    return SurfaceLabels(str(left), (str(left), str(right)), vertices, np.empty((0, 3)), np.empty(0, np.int64))


def _gifti_labels(path: Path) -> np.ndarray:
    from ..inputs.surface import gifti_arrays

    data = np.asarray(gifti_arrays(path, "one label value per vertex")[0].data)
    if data.ndim != 1 and not (data.ndim == 2 and 1 in data.shape):
        raise InputError(f"{path}: expected one label value per vertex, got an array of shape {data.shape}")
    return _integer_labels(data.ravel(), path)


def _integer_labels(data: np.ndarray, path) -> np.ndarray:
    if not np.all(np.isfinite(data)) or not np.allclose(data, np.round(data)):
        raise InputError(f"{path}: label values are not integers")
    return np.round(data).astype(np.int64)


def _read_dlabel(path: Path) -> SurfaceLabels:
    from ..inputs.surface import read_cifti_dense

    img, labels_axis, models = read_cifti_dense(path, nib.cifti2.LabelAxis,
                                                "a dense label file (label maps x brain models)")
    if labels_axis.size != 1:
        raise InputError(f"{path}: {labels_axis.size} label maps; trdnet reads a file with one")
    values = _integer_labels(np.asarray(img.dataobj)[0], path)
    vertices = {}
    for hemi, (cols, vertex, size) in models["cortex"].items():
        vertices[hemi] = np.zeros(size, dtype=np.int64)
        vertices[hemi][vertex] = values[cols]
    if not vertices:
        raise InputError(f"{path}: no CIFTI_STRUCTURE_CORTEX_LEFT or _RIGHT (a surface atlas labels the cortex)")
    vox_cols, vox_xyz, _ = models["voxels"]
    return SurfaceLabels(str(path), (str(path),), vertices, vox_xyz, values[vox_cols])


def check_atlas_mesh(labels: SurfaceLabels, n_mesh_vertices: dict, space: str) -> None:
    """Refuse an atlas whose meshes are not the run's.

    Parameters
    ----------
    labels : SurfaceLabels
    n_mesh_vertices : dict
        Hemisphere -> vertex count of the run's mesh.
    space : str
        The run's space (for the message).

    Raises
    ------
    InputError
        A hemisphere of the run without atlas labels, or another vertex count.
    """
    for hemi in HEMISPHERES:
        if hemi not in n_mesh_vertices:
            continue
        if hemi not in labels.vertices:
            raise InputError(f"{labels.path}: no labels for hemisphere {hemi}, which the run's {space} mesh has")
        if labels.n_vertices[hemi] != n_mesh_vertices[hemi]:
            raise InputError(
                f"{labels.file_of(hemi)}: the atlas is on a mesh of {labels.n_vertices[hemi]} vertices per hemisphere "
                f"({mesh_name(labels.n_vertices[hemi])}) but the run's {space} mesh has {n_mesh_vertices[hemi]}; "
                "give the atlas on the run's mesh"
            )


def mesh_name(n_vertices: int) -> str:
    """The standard mesh with this many vertices per hemisphere, or ``an unknown mesh``."""
    from ..inputs.surface import FSAVERAGE_VERTICES, FSLR_VERTICES

    names = [name for name, n in FSAVERAGE_VERTICES.items() if n == n_vertices]
    if n_vertices == FSLR_VERTICES:
        names.append("fsLR-32k")
    return " or ".join(names) if names else "an unknown mesh"


def labels_on_mesh(geometry, path) -> np.ndarray:
    """Label value of every column of a surface run (0 where the atlas has none).

    Parameters
    ----------
    geometry : trdnet.geometry.MeshGeometry
    path : str or Path
        The surface atlas.

    Returns
    -------
    numpy.ndarray of int, shape (V,)

    Raises
    ------
    InputError
        The atlas is not on the run's mesh (see :func:`check_atlas_mesh`) or cannot be read.
    """
    labels = read_surface_labels(path)
    check_atlas_mesh(labels, geometry.n_mesh_vertices, geometry.space)
    out = np.zeros(geometry.n_points, dtype=np.int64)
    for hemi in HEMISPHERES:
        cols = geometry.hemisphere_columns(hemi)
        if cols.size:
            out[cols] = labels.vertices[hemi][geometry.vertex[cols]]
    off_mesh = np.flatnonzero(geometry.vertex < 0)
    if off_mesh.size and labels.voxel_labels.size:
        index = {tuple(p): v for p, v in zip(np.round(labels.voxel_xyz, _VOXEL_DECIMALS), labels.voxel_labels)}
        points = np.round(geometry.xyz[off_mesh], _VOXEL_DECIMALS)
        out[off_mesh] = [index.get(tuple(p), 0) for p in points]
    return out
