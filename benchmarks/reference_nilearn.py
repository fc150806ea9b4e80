"""The same analysis written the way a nilearn user would write it.

Usage: ``python reference_nilearn.py RUN_ROOT OUT.npz``. Plain nilearn, no
trdnet: confounds with ``load_confounds`` (the same arguments as trdnet's
defaults), a ``NiftiMasker`` for the whole brain, a ``NiftiSpheresMasker`` for
the sgACC seed and another for the network nodes (each masker with detrend,
z-scoring, 0.01-0.1 Hz Butterworth band-pass, the confounds and the censoring
mask), the seed map as a product, ``ConnectivityMeasure`` for the nodes, and
the Fox 2012 peak target (most negative voxel in the DLPFC search region:
20 mm spheres at the four search sites, grey-matter probability > 0.2).
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from nilearn import datasets, image  # noqa: E402
from nilearn.connectome import ConnectivityMeasure  # noqa: E402
from nilearn.interfaces.fmriprep import load_confounds  # noqa: E402
from nilearn.maskers import NiftiMasker, NiftiSpheresMasker  # noqa: E402

SEED = [(6.0, 16.0, -10.0)]
SEARCH_SITES = [(-41.0, 16.0, 54.0), (-37.0, 26.0, 49.0), (-36.0, 39.0, 43.0), (-44.0, 40.0, 29.0)]
NODES = [(0, -52, 27), (-1, 54, 27), (-46, -66, 30), (49, -63, 33), (0, 21, 36), (-41, 3, 6), (41, 3, 6),
         (0, 24, 46), (-44, 45, 0), (44, 45, 0), (-50, -51, 45), (50, -51, 45)]


def main(root: str, out: str) -> None:
    """Run the plain-nilearn pipeline on the one run under ``root``."""
    t_imported = time.perf_counter()
    func = Path(root) / "sub-01" / "func"
    bold = str(next(func.glob("*_desc-preproc_bold.nii.gz")))
    mask = str(next(func.glob("*_desc-brain_mask.nii.gz")))
    tr = float(nib.load(bold).header.get_zooms()[3])

    confounds, sample_mask = load_confounds(
        bold, strategy=("motion", "wm_csf", "global_signal", "scrub"), motion="full", wm_csf="basic",
        global_signal="basic", scrub=5, fd_threshold=0.5, std_dvars_threshold=1.5, demean=True,
    )
    clean = dict(detrend=True, standardize="zscore_sample", low_pass=0.1, high_pass=0.01, t_r=tr)

    brain_masker = NiftiMasker(mask_img=mask, **clean)
    brain = brain_masker.fit_transform(bold, confounds=confounds, sample_mask=sample_mask)
    seed_masker = NiftiSpheresMasker(SEED, radius=10.0, mask_img=mask, **clean)
    seed = seed_masker.fit_transform(bold, confounds=confounds, sample_mask=sample_mask)
    # Both are z-scored with the sample std: Pearson r = x . y / (T - 1).
    seed_map = (brain.T @ seed[:, 0]) / (seed.shape[0] - 1)
    t_seed = time.perf_counter()

    node_masker = NiftiSpheresMasker(NODES, radius=6.0, mask_img=mask, allow_overlap=True, **clean)
    nodes = node_masker.fit_transform(bold, confounds=confounds, sample_mask=sample_mask)
    matrix = ConnectivityMeasure(kind="correlation").fit_transform([nodes])[0]
    t_nodes = time.perf_counter()

    mask_img = image.load_img(mask)
    in_mask = np.asanyarray(mask_img.dataobj) > 0
    xyz = nib.affines.apply_affine(mask_img.affine, np.argwhere(in_mask))
    near = np.zeros(len(xyz), dtype=bool)
    for site in SEARCH_SITES:
        near |= np.linalg.norm(xyz - np.asarray(site), axis=1) <= 20.0
    gm_template = datasets.load_mni152_gm_template(resolution=2)
    gm_template = image.new_img_like(gm_template, gm_template.get_fdata(dtype=np.float32))
    gm = image.resample_to_img(gm_template, mask_img, interpolation="linear",
                               force_resample=True, copy_header=True)
    search = np.flatnonzero(near & (np.asanyarray(gm.dataobj)[in_mask] > 0.2))
    best = search[np.argmin(seed_map[search])]
    t_end = time.perf_counter()
    np.savez(
        out,
        seed_map=seed_map.astype(np.float32),
        target_xyz=xyz[best],
        search_columns=search,
        connectivity=matrix,
        n_retained=brain.shape[0],
        import_s=t_imported - _T_START,
        work_s=t_end - t_imported,
        clean_s=t_seed - t_imported,
        target_s=t_end - t_nodes,
        networks_s=t_nodes - t_seed,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
