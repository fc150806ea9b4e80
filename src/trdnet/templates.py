"""nilearn's bundled MNI152 (2009) templates on a grid of 1 mm or coarser, loaded once.

nilearn resamples its 1 mm files at every ``load_mni152_*(resolution=r)``
call (about half a second to a second each). trdnet needs them per run
(grey matter for the search region; template, brain mask and grey matter for
the navigator export without anatomy), per report and per simulated
participant, so each is computed once and kept in trdnet's on-disk cache
(:mod:`trdnet.cache`), keyed by the nilearn and scipy versions. The images returned equal
nilearn's: same data, affine and header.
"""

from __future__ import annotations

import functools

import nibabel as nib
import nilearn
import numpy as np
import scipy

from .cache import cached_array

#: Template kinds -> nilearn loader name.
KINDS = {
    "T1w": "load_mni152_template",
    "brain_mask": "load_mni152_brain_mask",
    "GM": "load_mni152_gm_template",
    "WM": "load_mni152_wm_template",
}


def mni152_2mm(kind: str) -> nib.Nifti1Image:
    """:func:`mni152` at 2 mm, the grid of trdnet's search regions and exports."""
    return mni152(kind, 2)


@functools.lru_cache(maxsize=None)
def mni152(kind: str, resolution_mm: int = 2) -> nib.Nifti1Image:
    """One of nilearn's MNI152 templates (``T1w``, ``brain_mask``, ``GM``, ``WM``) on a ``resolution_mm`` grid.

    Parameters
    ----------
    kind : str
        A key of :data:`KINDS`.
    resolution_mm : int
        Voxel size in mm (1 is nilearn's file itself), as nilearn's ``resolution``.

    Returns
    -------
    nibabel.Nifti1Image
        Equal to ``nilearn.datasets.<loader>(resolution=resolution_mm)``. Treat as read-only:
        the same image is returned to every caller of this process.

    Raises
    ------
    ValueError
        For a kind not in :data:`KINDS`.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown template kind {kind!r}; one of {sorted(KINDS)}")
    resolution_mm = int(resolution_mm)

    @functools.cache
    def load() -> nib.Nifti1Image:
        from nilearn import datasets

        return getattr(datasets, KINDS[kind])(resolution=resolution_mm)

    # nilearn resamples its 1 mm files with scipy.ndimage: both versions make the values
    key = f"mni152_{kind}_{resolution_mm}mm_nilearn-{nilearn.__version__}_scipy-{scipy.__version__}"
    data = cached_array(key, lambda: np.asanyarray(load().dataobj))
    affine = cached_array(f"{key}_affine", lambda: np.asarray(load().affine, dtype=float))
    header = cached_array(f"{key}_header", lambda: np.frombuffer(load().header.binaryblock, dtype=np.uint8))
    data.setflags(write=False)
    return nib.Nifti1Image(data, affine, header=nib.Nifti1Header(binaryblock=header.tobytes()))


@functools.lru_cache(maxsize=None)
def dilated_brain_mask(iterations: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """nilearn's MNI152 2 mm brain mask dilated by ``iterations`` voxels, computed once per process.

    Parameters
    ----------
    iterations : int
        Passes of :func:`scipy.ndimage.binary_dilation` (6-connected), each one voxel (2 mm).

    Returns
    -------
    dilated : numpy.ndarray of bool, shape (91, 109, 91)
        The dilated mask on the template's grid.
    affine : numpy.ndarray, shape (4, 4)
        The template's voxel-to-world (RAS mm) affine.
    brain_xyz : numpy.ndarray, shape (n, 3)
        World coordinates (mm) of the undilated mask's voxels.

    All three are read-only: the same arrays are returned to every caller of this process.
    """
    from scipy import ndimage

    template = mni152_2mm("brain_mask")
    mask = np.asanyarray(template.dataobj) > 0
    dilated = ndimage.binary_dilation(mask, iterations=iterations)
    affine = np.array(template.affine, dtype=float)
    brain_xyz = nib.affines.apply_affine(affine, np.argwhere(mask))
    for array in (dilated, affine, brain_xyz):
        array.setflags(write=False)
    return dilated, affine, brain_xyz
