"""The same surface analysis written the way a nibabel + nilearn user would write it.

Usage: ``python reference_nilearn_surface.py RUN_ROOT OUT.npz``. No trdnet: the
two ``.func.gii`` files read with nibabel, vertices without signal dropped,
confounds with nilearn's ``load_confounds`` (the same arguments as trdnet's
defaults), ``nilearn.signal.clean`` (detrend, z-score, 0.01-0.1 Hz Butterworth,
the confounds and the censoring mask, nilearn's default for censored edge volumes), the vertices' MNI152 positions from
nilearn's fsaverage5 midthickness (mean of pial and white) and FreeSurfer's
MNI305-to-MNI152 matrix, the sgACC seed as the mean of the cleaned vertices within
10 mm of (6, 16, -10), the seed map as a product, the Fox 2012 peak target (most
negative left-hemisphere vertex within 20 mm of the four search sites), and the
Raichle-style nodes (6 mm) with ``ConnectivityMeasure``.
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from nilearn import signal  # noqa: E402
from nilearn.connectome import ConnectivityMeasure  # noqa: E402
from nilearn.datasets import load_fsaverage  # noqa: E402
from nilearn.interfaces.fmriprep import load_confounds  # noqa: E402

from reference_nilearn import NODES, SEARCH_SITES, SEED  # noqa: E402

# FreeSurfer's MNI305 -> MNI152 matrix (FreeSurfer wiki, CoordinateSystems), written out as a user would.
MNI305_TO_MNI152 = np.array([[0.9975, -0.0073, 0.0176, -0.0429], [0.0146, 1.0009, -0.0024, 1.5496],
                             [-0.0130, -0.0093, 0.9971, 1.1840], [0.0, 0.0, 0.0, 1.0]])


def main(root: str, out: str) -> None:
    """Run the plain nibabel + nilearn surface pipeline on the one fsaverage5 run under ``root``."""
    t_imported = time.perf_counter()
    func = Path(root) / "sub-01" / "func"
    left = next(func.glob("*_hemi-L_space-fsaverage5_bold.func.gii"))
    files = {"L": left, "R": Path(str(left).replace("hemi-L", "hemi-R"))}
    tr = float(json.loads(left.with_name(left.name.replace(".func.gii", ".json")).read_text())["RepetitionTime"])
    mesh = load_fsaverage("fsaverage5")
    data, xyz, hemi, vertex = [], [], [], []
    for h, part in (("L", "left"), ("R", "right")):
        series = np.stack([d.data for d in nib.load(files[h]).darrays]).astype(np.float32)
        keep = np.ptp(series, axis=0) > 0
        mid = (mesh["pial"].parts[part].coordinates + mesh["white_matter"].parts[part].coordinates) / 2
        data.append(series[:, keep])
        xyz.append(nib.affines.apply_affine(MNI305_TO_MNI152, mid[keep]))
        hemi += [h] * int(keep.sum())
        vertex.append(np.flatnonzero(keep))
    data, xyz, hemi, vertex = np.concatenate(data, axis=1), np.concatenate(xyz), np.array(hemi), np.concatenate(vertex)

    confounds, sample_mask = load_confounds(
        str(left), strategy=("motion", "wm_csf", "global_signal", "scrub"), motion="full", wm_csf="basic",
        global_signal="basic", scrub=5, fd_threshold=0.5, std_dvars_threshold=1.5, demean=True,
    )
    cleaned = signal.clean(data, confounds=confounds, sample_mask=sample_mask, detrend=True,
                           standardize="zscore_sample", low_pass=0.1, high_pass=0.01, t_r=tr,
                           filter="butterworth")
    within = np.linalg.norm(xyz - SEED[0], axis=1) <= 10.0
    seed = cleaned[:, within].mean(axis=1)
    seed = (seed - seed.mean()) / seed.std(ddof=1)
    seed_map = (cleaned.T @ seed) / (seed.shape[0] - 1)
    search = (hemi == "L") & (np.min([np.linalg.norm(xyz - s, axis=1) for s in SEARCH_SITES], axis=0) <= 20.0)
    peak = np.flatnonzero(search)[np.argmin(seed_map[search])]
    t_seed = time.perf_counter()

    nodes = [cleaned[:, np.linalg.norm(xyz - n, axis=1) <= 6.0] for n in NODES]
    nodes = np.column_stack([n.mean(axis=1) for n in nodes if n.shape[1]])
    matrix = ConnectivityMeasure(kind="correlation").fit_transform([nodes])[0]
    t_end = time.perf_counter()
    full = {h: np.full(10242, np.nan, dtype=np.float32) for h in ("L", "R")}
    for h in ("L", "R"):
        full[h][vertex[hemi == h]] = seed_map[hemi == h]
    np.savez(
        out,
        seed_map=np.concatenate([full["L"], full["R"]]),
        target_vertex=int(vertex[peak]),
        target_xyz=(mesh["pial"].parts["left"].coordinates[vertex[peak]]
                    + mesh["white_matter"].parts["left"].coordinates[vertex[peak]]) / 2,
        search_vertices=np.sort(vertex[search]),
        connectivity=np.asarray(matrix, dtype=float),
        n_retained=cleaned.shape[0],
        import_s=t_imported - _T_START,
        work_s=t_end - t_imported,
        seed_s=t_seed - t_imported,
        networks_s=t_end - t_seed,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
