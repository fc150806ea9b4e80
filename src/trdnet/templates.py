"""nilearn's bundled MNI152 (2009) templates on the 2 mm grid, loaded once.

nilearn resamples its 1 mm files at every ``load_mni152_*(resolution=2)``
call (about half a second to a second each). trdnet needs them per run
(grey matter for the search region; template, brain mask and grey matter for
the navigator export without anatomy) and per report, so each is computed
once and kept in trdnet's on-disk cache (:mod:`trdnet.cache`), keyed by the
nilearn version. The images returned equal nilearn's: same data, affine and
header.
"""

from __future__ import annotations

import functools

import nibabel as nib
import nilearn
import numpy as np

from .cache import cached_array

#: Template kinds -> nilearn loader name.
KINDS = {
    "T1w": "load_mni152_template",
    "brain_mask": "load_mni152_brain_mask",
    "GM": "load_mni152_gm_template",
    "WM": "load_mni152_wm_template",
}


@functools.lru_cache(maxsize=None)
def mni152_2mm(kind: str) -> nib.Nifti1Image:
    """One of nilearn's MNI152 templates at 2 mm (``T1w``, ``brain_mask``, ``GM``, ``WM``).

    Parameters
    ----------
    kind : str
        A key of :data:`KINDS`.

    Returns
    -------
    nibabel.Nifti1Image
        Equal to ``nilearn.datasets.<loader>(resolution=2)``. Treat as read-only:
        the same image is returned to every caller of this process.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown template kind {kind!r}; one of {sorted(KINDS)}")

    @functools.cache
    def load() -> nib.Nifti1Image:
        from nilearn import datasets

        return getattr(datasets, KINDS[kind])(resolution=2)

    key = f"mni152_{kind}_2mm_nilearn-{nilearn.__version__}"
    data = cached_array(key, lambda: np.asanyarray(load().dataobj))
    affine = cached_array(f"{key}_affine", lambda: np.asarray(load().affine, dtype=float))
    header = cached_array(f"{key}_header", lambda: np.frombuffer(load().header.binaryblock, dtype=np.uint8))
    data.setflags(write=False)
    return nib.Nifti1Image(data, affine, header=nib.Nifti1Header(binaryblock=header.tobytes()))
