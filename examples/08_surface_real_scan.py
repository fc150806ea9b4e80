"""
A real resting-state run on the cortical surface: networks, the sgACC seed map and a target on fsaverage5
=======================================================================================================

**What it teaches.** How trdnet reads fMRIPrep's surface outputs (one GIFTI
per hemisphere, the TR in the JSON sidecar), what a vertex-wise analysis
keeps and leaves out (the medial wall carries no data), and how to read the
network table, the sgACC seed map on the cortex and the target vertex with its
reliability.

**The data.** One real run of one participant of the MPI-LEMON study
(Babayan et al. 2019), shipped on fsaverage5 inside the ``brainspace`` 0.3.0
wheel on PyPI (BSD-3-Clause; the wheel file alone is fetched, brainspace is
not installed) and laid out by trdnet as fMRIPrep writes surface outputs.
The provider already cleaned and band-passed it; trdnet only regresses the
cortical global signal. The files' headers say TR = 1.0 s; LEMON's protocol
says 1.4 s (657 volumes in 15:30 min), which trdnet uses and states.

**What it cannot show.** One person, one run: nothing here measures the
accuracy of a target (the target is where this run's map is most
anticorrelated, and its reliability says how much it moves when the run is
resampled, nothing more).

**What it needs.** trdnet and access to PyPI the first time (the 61 MB
wheel is then kept in trdnet's cache). Without the registry, one line says
which file to put in which folder, and the script exits with an error.

**How long.** About a minute.

Output goes to ``examples/output/08_surface_real_scan/``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from nilearn import datasets, plotting  # noqa: E402

from trdnet.cohort import run_cohort  # noqa: E402
from trdnet.config import Settings  # noqa: E402
from trdnet.errors import DatasetError  # noqa: E402
from trdnet.inputs.dataset_runs import adapt_settings, dataset_runs  # noqa: E402
from trdnet.inputs.public import fetch_dataset  # noqa: E402

OUT = (Path(os.environ.get("TRDNET_EXAMPLES_OUTPUT", Path(__file__).resolve().parent / "output"))
       / "08_surface_real_scan")
OUT.mkdir(parents=True, exist_ok=True)
CORE = ("DMN", "SN", "ECN")

# %%
# Fetch the run
# -------------
# ``trdnet fetch lemon_fsaverage5`` does the same from the command line, and
# ``trdnet run --dataset lemon_fsaverage5 OUTPUT_DIR participant`` processes it.
try:
    dataset = fetch_dataset("lemon_fsaverage5", data_dir=OUT / "data")
except DatasetError as error:
    print(f"cannot fetch the run: {error}", file=sys.stderr)
    sys.exit(1)
(run,) = dataset.runs
for hemi, path in run.hemi_bold.items():
    print(f"{hemi}: {path.name}")
print(f"TR {run.tr} s (from the JSON sidecar: a GIFTI file carries no TR)")
for note in dataset.preprocessing.notes:
    print(f"  note: {note}")

# %%
# Process it
# ----------
# ``adapt_settings`` turns off what the provider already did (band-pass) and
# what the data cannot support (scrubbing without framewise displacement).
settings, changes = adapt_settings(Settings(), dataset)
for change in changes:
    print(f"  change: {change}")
out_dir = OUT / "trdnet"
(result,) = run_cohort(dataset_runs(dataset, changes), out_dir, settings, progress=False)
if result.status == "failed":
    raise SystemExit(result.error)
summary = result.summary
func = next(out_dir.rglob("*_networks.tsv")).parent
qc = pd.read_csv(next(func.glob("*_qc.tsv")), sep="\t").iloc[0]
print(f"\n{int(qc['n_voxels'])} of 20484 vertices carry signal (the rest: medial wall, all zero)")
print(f"sgACC seed: {summary['sgacc_seed_vertices']} vertices with signal within 10 mm of MNI152 (6, 16, -10)")
print(f"DLPFC search region: {summary['search_vertices']} left-hemisphere vertices")
print(f"target: vertex {summary['target_vertex']} of the {summary['target_hemi']} hemisphere at "
      f"({summary['target_x']:.1f}, {summary['target_y']:.1f}, {summary['target_z']:.1f}) mm {summary['target_space']}, "
      f"r_sgacc {summary['r_sgacc']:+.2f}, reliability {summary['reliability']}")

# %%
# Networks
# --------
# DMN, SN and ECN are the Seitzman et al. 2018 spheres; on the surface each
# sphere holds the cortical vertices within its radius (subcortical and
# cerebellar spheres hold none and are listed as dropped in the sidecar).
table = pd.read_csv(next(func.glob("*_networks.tsv")), sep="\t")
print("\nnetworks (mean Fisher z):")
print(table.to_string(index=False))
values = pd.DataFrame(index=list(CORE), columns=list(CORE), dtype=float)
for a, b, z in zip(table["network_a"], table["network_b"], table["mean_z"]):
    values.loc[a, b] = values.loc[b, a] = z
fig, ax = plt.subplots(figsize=(4.5, 4))
image = ax.imshow(values.to_numpy(float), vmin=-0.3, vmax=0.3, cmap="RdBu_r")
ax.set_xticks(range(3), CORE)
ax.set_yticks(range(3), CORE)
for i in range(3):
    for j in range(3):
        ax.text(j, i, f"{values.iloc[i, j]:+.2f}", ha="center", va="center")
fig.colorbar(image, ax=ax, label="mean Fisher z")
ax.set_title("LEMON sub-010188, fsaverage5")
fig.savefig(OUT / "surface_networks.png", dpi=100)
plt.close(fig)

# %%
# The sgACC seed map on the cortex
# --------------------------------
# One GIFTI per hemisphere, one value per vertex of the whole mesh (NaN on
# the medial wall). Drawn with nilearn on the inflated fsaverage5 surface.
fsaverage = datasets.fetch_surf_fsaverage("fsaverage5")
seed_map = nib.load(next(func.glob("*_hemi-L_*_boldmap.func.gii"))).darrays[0].data
fig, axes = plt.subplots(1, 2, figsize=(9, 4), subplot_kw={"projection": "3d"})
for ax, view in zip(axes, ("lateral", "medial")):
    plotting.plot_surf_stat_map(fsaverage["infl_left"], np.nan_to_num(seed_map), hemi="left", view=view,
                                bg_map=fsaverage["sulc_left"], colorbar=view == "medial", vmax=0.5,
                                axes=ax, figure=fig, title=f"sgACC seed map (r), left {view}")
fig.savefig(OUT / "surface_seed_map.png", dpi=100)
plt.close(fig)
print(f"most negative r in the left hemisphere: {np.nanmin(seed_map):+.2f}")

# %%
# The target on the mesh
# ----------------------
# The cluster method on the mesh: the seed map smoothed along the cortex
# inside the DLPFC search region, the most negative 10% of its vertices,
# clusters joined by mesh edges, the target the vertex nearest the chosen
# cluster's centre. Its row gives the vertex, its MNI305 position (fsaverage's
# own space) and its MNI152 position through FreeSurfer's linear matrix.
targets = pd.read_csv(next(func.glob("*_targets.tsv")), sep="\t", dtype={"vertex": "Int64"})
print(targets[["target", "method", "hemi", "vertex", "space", "x", "y", "z", "mni152_x", "mni152_y", "mni152_z",
               "r_sgacc", "bootstrap_r95_mm", "reliability"]].to_string(index=False))

# %%
# What the numbers mean, and their limits
# ---------------------------------------
# Within-network connectivity exceeds between-network connectivity on
# average, as on real data in general. The seed map's anticorrelations are
# weak on this one run (the provider's cleaning and a single 15-minute scan);
# nothing here says where this person should be stimulated.
within = table[table["network_a"] == table["network_b"]]["mean_z"].mean()
between = table[table["network_a"] != table["network_b"]]["mean_z"].mean()
print(f"mean within {within:+.3f}, mean between {between:+.3f}")
print("within-network connectivity exceeds between-network connectivity on the cortex" if within > between
      else "within-network connectivity does NOT exceed between-network connectivity here")
print(f"outputs: {out_dir}")
