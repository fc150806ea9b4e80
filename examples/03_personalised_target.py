"""
A personalised left-DLPFC target, three ways
============================================

**What it teaches.** The sgACC seed map (correlation of every voxel with the
mean subgenual cingulate signal), the DLPFC search region, and the three
target-selection methods that need no group data: ``cluster`` (centre of
the most anticorrelated cluster), ``peak`` (the most anticorrelated voxel
after smoothing) and ``hierarchical`` (spatial clusters ranked by mean
anticorrelation). It compares where they land, reads their reliability
(split-half distance and block-bootstrap spread) and plots the seed map
with nilearn.

**What it needs.** trdnet only; offline; SIMULATED data with a planted
target, so accuracy can be measured.

**How long.** About a minute (``TRDNET_EXAMPLES_FAST=1``: about 20 s).

Output goes to ``examples/output/03_personalised_target/``.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from nilearn import plotting  # noqa: E402

from trdnet.config import Settings  # noqa: E402
from trdnet.denoise import clean_run  # noqa: E402
from trdnet.inputs.bids import find_runs  # noqa: E402
from trdnet.inputs.simulate import simulate_cohort  # noqa: E402
from trdnet.targeting import compute_targets  # noqa: E402

FAST = os.environ.get("TRDNET_EXAMPLES_FAST") == "1"
OUT = Path(os.environ.get("TRDNET_EXAMPLES_OUTPUT", Path(__file__).resolve().parent / "output")) / "03_personalised_target"
OUT.mkdir(parents=True, exist_ok=True)

# %%
# One simulated participant (SIMULATED DATA)
# ------------------------------------------
cohort = simulate_cohort(OUT / "simulated", n_subjects=1, n_volumes=200 if FAST else 300,
                         resolution_mm=4 if FAST else 3, random_state=2, anatomy=False)
planted = cohort.truth_table.iloc[0][["x", "y", "z"]].to_numpy(dtype=float)
print(f"planted target (SIMULATED): {planted} mm, MNI152NLin2009cAsym RAS")

# %%
# Settings: all three methods, the first is the primary target
# -----------------------------------------------------------
# Every literature value here (seed centre, search spheres, cluster
# fraction, smoothing) is a setting; see ``trdnet.config.TargetSettings``.
settings = Settings()
settings.targeting.methods = ("cluster", "peak", "hierarchical")
settings.targeting.n_bootstrap = 10 if FAST else 100
targeting = settings.targeting
print(f"sgACC seed: {targeting.seed_radius_mm} mm sphere at {targeting.seed_center_mm} (MNI152 mm)")
print(f"search region: {targeting.search_radius_mm} mm spheres at {targeting.search_sites}, grey matter only")

# %%
# Clean once, then target
# -----------------------
# ``clean_run`` returns the cleaned time x voxel matrix (float32, z-scored);
# ``compute_targets`` builds the seed map and runs every method on it.
run = find_runs(cohort.fmriprep_dir, space=settings.space)[0]
cleaned = clean_run(run, settings.denoise)
result = compute_targets(cleaned, targeting, random_state=settings.random_state,
                         high_pass_hz=settings.denoise.high_pass)
print(f"seed voxels: {result.seed_columns.size}, search-region voxels: {result.search_columns.size}")

personal = result.table[result.table["target"].str.startswith("personalised")].set_index("method")
print(personal[["x", "y", "z", "r_sgacc", "n_voxels"]].round(2).to_string())

# %%
# Agreement between methods, and with the truth
# ---------------------------------------------
xyz = personal[["x", "y", "z"]].to_numpy(dtype=float)
for (a, pa), (b, pb) in itertools.combinations(zip(personal.index, xyz), 2):
    print(f"  {a} vs {b}: {np.linalg.norm(pa - pb):.1f} mm apart")
for method, point in zip(personal.index, xyz):
    print(f"  {method}: {np.linalg.norm(point - planted):.1f} mm from the planted target (SIMULATED)")

# %%
# Reliability
# -----------
# ``split_half_mm``: distance between the targets of the two halves of the
# run. ``bootstrap_r95_mm``: radius holding 95 % of the targets found on
# block-bootstrap resamples of the volumes. The word summarises both against
# ``targeting.good_split_half_mm`` and its companions.
print(personal[["split_half_mm", "bootstrap_median_mm", "bootstrap_r95_mm", "reliability"]].round(1).to_string())

# %%
# Figures: the seed map with the targets
# --------------------------------------
# ``VoxelSpace.to_img`` turns a per-column vector back into a NIfTI image.
seed_img = cleaned.space.to_img(result.seed_map)
search = np.zeros(cleaned.space.n_voxels, dtype=np.float32)
search[result.search_columns] = 1.0
search_img = cleaned.space.to_img(search)

display = plotting.plot_stat_map(seed_img, threshold=0.1, cut_coords=tuple(planted), cmap="RdBu_r",
                                  title="sgACC seed map (r), SIMULATED")
display.add_contours(search_img, levels=[0.5], colors="k", linewidths=0.8)
styles = {"cluster": "tab:red", "peak": "tab:orange", "hierarchical": "tab:purple"}
for method, point in zip(personal.index, xyz):
    display.add_markers([point], marker_color=styles[method], marker_size=40)
display.add_markers([planted], marker_color="lime", marker_size=40)
display.savefig(OUT / "seed_map_targets.png", dpi=100)
display.close()

cloud = result.bootstrap_cloud.dropna()
fig, ax = plt.subplots(figsize=(5, 4))
for method, group in cloud.groupby("method"):
    ax.scatter(group["y"], group["z"], s=8, alpha=0.5, color=styles[method], label=f"{method} (bootstrap)")
ax.scatter([planted[1]], [planted[2]], marker="x", color="k", s=60, label="planted (simulated)")
ax.set_xlabel("y (mm, MNI152NLin2009cAsym)")
ax.set_ylabel("z (mm)")
ax.legend(fontsize=7)
ax.set_title("Bootstrap targets")
fig.tight_layout()
fig.savefig(OUT / "bootstrap_targets.png", dpi=100)
print(f"figures in {OUT}; settings used: {dataclasses.asdict(targeting)['methods']}")
