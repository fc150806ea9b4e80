"""sgACC seed and DLPFC search region as columns of a :class:`~trdnet.geometry.Geometry` (voxels or vertices)."""

from __future__ import annotations

import functools
import warnings

import nibabel as nib
import numpy as np
from nilearn import image
from scipy import ndimage

from ..config import TargetSettings
from ..errors import InputError, NotImplementedFeatureError, TargetingError
from ..geometry import Geometry
from ..resources import read_table
from ..templates import mni152_2mm


def is_mni(space: Geometry) -> bool:
    """Whether the grid is in an MNI152 template space (shipped coordinates apply)."""
    return space.is_template


def has_template_coordinates(space: Geometry) -> bool:
    """Whether MNI coordinates can be looked up: an MNI grid, or a native one pulled back to MNI."""
    return space.template_coordinates is not None


def reference_sites() -> dict[str, tuple[float, float, float]]:
    """Reference DLPFC sites shipped in ``data/reference_targets.tsv``.

    Returns
    -------
    dict
        Site name -> (x, y, z), MNI152 world RAS mm.
    """
    table = read_table("reference_targets.tsv")
    return {
        str(row.name): (float(row.x), float(row.y), float(row.z))
        for row in table.itertuples(index=False)
    }


def site_coordinates(names) -> dict[str, tuple[float, float, float]]:
    """Look up reference sites by name, failing with the accepted names."""
    sites = reference_sites()
    unknown = [n for n in names if n not in sites]
    if unknown:
        raise TargetingError(
            f"unknown reference site(s) {unknown}; accepted: {sorted(sites)} "
            "(data/reference_targets.tsv)"
        )
    return {n: sites[n] for n in names}


def _mask_image_columns(space: Geometry, path, what: str) -> np.ndarray:
    try:
        img = image.load_img(path)
    except Exception as exc:  # nibabel raises several types for unreadable files
        raise InputError(f"{path}: cannot read {what} image ({exc})") from None
    if img.ndim != 3:
        raise InputError(f"{path}: {what} must be a 3D image, got {img.ndim}D")
    if img.shape[:3] != space.shape or not np.allclose(img.affine, space.affine, atol=1e-3):
        warnings.warn(
            f"{path}: {what} is on another grid; resampled to the data grid",
            stacklevel=3,
        )
    cols = space.mask_columns(img, threshold=0.5, name=str(path))
    if cols.size == 0:
        raise TargetingError(
            f"{path}: {what} does not overlap the brain mask of the data; "
            f"give a mask in {space.space} covering in-brain voxels"
        )
    return cols


def seed_columns(space: Geometry, settings: TargetSettings) -> np.ndarray:
    """Columns of the sgACC seed.

    A sphere of ``settings.seed_radius_mm`` at ``settings.seed_center_mm``
    (MNI152, default Fox 2012 (6, 16, -10)); ``seed_bilateral`` adds the mirror
    sphere at (-x, y, z). ``settings.seed_mask`` (an image path) overrides the
    spheres and is resampled to the grid with a warning if needed.

    Parameters
    ----------
    space : Geometry
    settings : TargetSettings

    Returns
    -------
    numpy.ndarray of int
        Sorted column numbers.

    Raises
    ------
    TargetingError
        When the seed has no voxel in the brain mask.
    NotImplementedFeatureError
        When the space is not MNI-like and no seed mask is given.
    """
    user = _user_mask_or_mni(space, settings.seed_mask, "sgACC seed", "seed_mask")
    if user is not None:
        return user
    center = np.asarray(settings.seed_center_mm, dtype=float)
    centers = [center]
    if settings.seed_bilateral:
        centers.append(center * np.array([-1.0, 1.0, 1.0]))
    cols = _sphere_union(space, centers, settings.seed_radius_mm)
    if space.kind == "mesh" and cols.size < MIN_SEED_VERTICES:
        raise TargetingError(
            f"sgACC seed at MNI152 {tuple(settings.seed_center_mm)} (r={settings.seed_radius_mm} mm): only "
            f"{cols.size} cortical vertices with signal on the {space.space} mesh (at least {MIN_SEED_VERTICES} "
            "needed); the medial wall carries no data"
        )
    if cols.size == 0:
        raise TargetingError(
            f"sgACC seed sphere at {tuple(float(v) for v in center)} (r={settings.seed_radius_mm} mm, "
            f"{space.space}) has no voxel inside the brain mask; give targeting.seed_mask"
        )
    return cols


#: Fewest sgACC seed vertices with signal accepted on a mesh (trdnet's choice, not from the literature: a
#: 10 mm seed on fsaverage5 holds a few dozen vertices, about 40% of them on the medial wall, which has no data).
MIN_SEED_VERTICES = 5


@functools.lru_cache(maxsize=1)
def _grey_matter_template() -> tuple[np.ndarray, np.ndarray]:
    template = mni152_2mm("GM")
    # The template's header says uint8 while its values are probabilities.
    return template.get_fdata(dtype=np.float32), template.affine


def grey_matter_probability(space: Geometry, columns: np.ndarray | None = None) -> np.ndarray:
    """MNI152 grey-matter probability (nilearn's template) at columns of the grid.

    Trilinear interpolation of the template at the voxel centres, the same
    values nilearn's linear ``resample_img`` gives, but only where asked: the
    DLPFC search region needs a few thousand voxels, not the whole grid.

    Parameters
    ----------
    space : Geometry
    columns : numpy.ndarray of int, optional
        Columns to evaluate; default every column.

    Returns
    -------
    numpy.ndarray, float32, shape (len(columns),) or (V,)
    """
    if not has_template_coordinates(space):
        raise NotImplementedFeatureError(
            f"the grey-matter template is MNI152 but the data are in {space.space!r} without a transform to "
            "MNI; set targeting.restrict_to_grey_matter=false (and give targeting.search_mask in the data space)"
        )
    return sample_template_image(_grey_matter_template(), space, columns)


def sample_template_image(volume_and_affine, space: Geometry, columns: np.ndarray | None = None) -> np.ndarray:
    """Trilinear values of an MNI-space volume at the template coordinates of columns (0 outside).

    Parameters
    ----------
    volume_and_affine : tuple of (numpy.ndarray, numpy.ndarray)
        3D values and their voxel-to-MNI affine.
    space : Geometry
        A grid with template coordinates (see :func:`has_template_coordinates`).
    columns : numpy.ndarray of int, optional
        Columns to evaluate; default every column.

    Returns
    -------
    numpy.ndarray, float32
    """
    values, affine = volume_and_affine
    xyz = space.template_coordinates
    xyz = xyz if columns is None else xyz[np.asarray(columns)]
    ijk = nib.affines.apply_affine(np.linalg.inv(affine), np.nan_to_num(xyz, nan=-1e6))
    return ndimage.map_coordinates(values, ijk.T, order=1, mode="constant", cval=0.0).astype(np.float32)


def search_columns(space: Geometry, settings: TargetSettings) -> np.ndarray:
    """Columns of the DLPFC search region.

    Union of ``settings.search_radius_mm`` spheres at ``settings.search_sites``
    (names in ``data/reference_targets.tsv``; contarg's "DLPFCspheres"),
    restricted to grey matter (template probability above
    ``settings.grey_matter_threshold``) when ``restrict_to_grey_matter``.
    ``settings.search_mask`` overrides the spheres and is used as given (no
    grey-matter restriction: the user's mask is taken to be what they want).
    On a mesh the region is the left-hemisphere vertices within the spheres
    (at their MNI152 positions); they lie on the cortex by construction, so
    the volume template's grey matter is not consulted.

    Parameters
    ----------
    space : Geometry
    settings : TargetSettings

    Returns
    -------
    numpy.ndarray of int

    Raises
    ------
    TargetingError
        When the region is empty.
    NotImplementedFeatureError
        When the space is not MNI-like and no search mask is given.
    """
    user = _user_mask_or_mni(space, settings.search_mask, "DLPFC search", "search_mask")
    if user is not None:
        return user
    sites = site_coordinates(settings.search_sites)
    cols = _sphere_union(space, sites.values(), settings.search_radius_mm)
    if space.kind == "mesh":
        cols = np.intersect1d(cols, space.hemisphere_columns("L"))
        if cols.size == 0:
            raise TargetingError(
                f"DLPFC search region (sites {list(settings.search_sites)}, r={settings.search_radius_mm} mm) "
                f"has no left-hemisphere vertex with signal on the {space.space} mesh"
            )
    elif cols.size and settings.restrict_to_grey_matter:
        cols = cols[grey_matter_probability(space, cols) > settings.grey_matter_threshold]
    if cols.size == 0:
        raise TargetingError(
            f"DLPFC search region (sites {list(settings.search_sites)}, "
            f"r={settings.search_radius_mm} mm, grey matter > {settings.grey_matter_threshold}) "
            "has no voxel inside the brain mask; check the data's space or give targeting.search_mask"
        )
    return cols


def _sphere_union(space: Geometry, centers, radius_mm: float) -> np.ndarray:
    """Sorted columns within ``radius_mm`` of any of ``centers`` (empty when there are none)."""
    return np.unique(
        np.concatenate([np.empty(0, dtype=np.int64)]
                       + [space.template_sphere_columns(c, radius_mm) for c in centers])
    )


def _user_mask_or_mni(space: Geometry, mask, what: str, setting: str):
    """Columns of a user mask when given; otherwise check that MNI coordinates apply (None)."""
    if mask:
        if space.kind == "mesh":
            raise NotImplementedFeatureError(
                f"targeting.{setting} is a volume image and the run is on the {space.space} mesh: "
                "region masks on meshes are not implemented (leave the setting out to use the spheres)"
            )
        return _mask_image_columns(space, mask, f"{what} mask")
    if not has_template_coordinates(space):
        missing = (getattr(space, "template_missing", "")
                   or "fMRIPrep's anat/*_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5")
        raise NotImplementedFeatureError(
            f"{what} coordinates are MNI152 but the data are in {space.space!r} without a transform to MNI "
            f"({missing}); "
            f"give targeting.{setting} in the data space"
        )
    return None


def usable_regions(cleaned, settings: TargetSettings) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """The sgACC seed and DLPFC search region of a run, flat (no-signal) voxels left out.

    Parameters
    ----------
    cleaned : trdnet.cleaned.CleanedRun
    settings : TargetSettings

    Returns
    -------
    seeds, search : numpy.ndarray of int
        Usable columns of each region.
    counts : list of dict
        Per region: ``region``, ``n_voxels``, ``n_usable``, ``n_flat``.

    Raises
    ------
    InputError
        If a region is mostly flat (see :meth:`trdnet.cleaned.CleanedRun.usable_region`).
    TargetingError
        If a region cannot be located in the run's space.
    """
    seeds, seed_counts = cleaned.usable_region(seed_columns(cleaned.space, settings), "sgACC seed")
    search, search_counts = cleaned.usable_region(search_columns(cleaned.space, settings), "DLPFC search region")
    return seeds, search, [seed_counts, search_counts]
