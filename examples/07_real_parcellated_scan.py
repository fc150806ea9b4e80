"""
A real scan at the parcel level: raw parcel signals, cleaning, networks
========================================================================

**What it teaches.** What denoising does to real parcel-level data, and how
to read trdnet's network table. One real participant's resting-state scan
(150 volumes, TR 2 s, Schaefer 2018 100 parcels / 7 networks) is fetched from
the ``brainfc`` 0.5.1 wheel on PyPI (the wheel file alone: brainfc is not
installed). We compare the network table of the raw parcel signals with the
table after trdnet's cleaning (24 motion parameters, white matter and CSF,
global signal, 0.01-0.1 Hz band-pass: the same nilearn operator as for voxel
data), and with global signal regression switched off.

**Where the data come from.** That the sample is a real, de-identified scan
shared with the data provider's authorisation is the brainfc package's own
statement (its ``README.md``, ``example.json`` and ``privacy-review.json``,
copied beside the data); trdnet has not verified it. The confounds are
converted to fMRIPrep's columns by trdnet (see ``trdnet.inputs.brainfc``).

**What it needs.** trdnet and access to PyPI the first time (the 3.8 MB
wheel is then kept in trdnet's cache). Without the registry, one line says
which file to put in which folder, and the script exits with an error.

**How long.** About 30 s.

Output goes to ``examples/output/07_real_parcellated_scan/``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from trdnet.cohort import run_cohort  # noqa: E402
from trdnet.config import Settings, with_gsr  # noqa: E402
from trdnet.errors import DatasetError  # noqa: E402
from trdnet.inputs.dataset_runs import adapt_settings, dataset_runs  # noqa: E402
from trdnet.inputs.public import fetch_dataset  # noqa: E402
from trdnet.networks import connectivity_matrix, network_table  # noqa: E402
from trdnet.report import figures_qc  # noqa: E402

OUT = (Path(os.environ.get("TRDNET_EXAMPLES_OUTPUT", Path(__file__).resolve().parent / "output"))
       / "07_real_parcellated_scan")
OUT.mkdir(parents=True, exist_ok=True)
CORE = ("DMN", "SN", "ECN")

# %%
# Fetch the sample
# ----------------
# ``trdnet fetch brainfc_rest01`` does the same from the command line. The
# sample is laid out as trdnet's ROI input expects: the parcel signals as
# ``*_timeseries.tsv``, fMRIPrep-named confounds of the same run beside
# them, and a labels table naming each parcel's network.
try:
    dataset = fetch_dataset("brainfc_rest01", data_dir=OUT / "data")
except DatasetError as error:
    print(f"cannot fetch the sample: {error}", file=sys.stderr)
    sys.exit(1)
(run,) = dataset.roi_runs
print(f"sample: {run.path.name}")
print(f"confounds: {run.confounds.name}")
for note in dataset.preprocessing.notes:
    print(f"  note: {note}")

# %%
# Raw parcel signals
# ------------------
# The parcel means as the provider extracted them, before any temporal
# cleaning. Head motion, scanner drift and the global signal are shared by
# every parcel, so every pair of parcels looks connected.
raw, rois = run.load()
raw_table = network_table(connectivity_matrix(raw[5:]), rois["network"])  # the 5 non-steady-state volumes dropped
print("\nraw parcel signals (mean Fisher z):")
print(raw_table[raw_table["network_a"].isin(CORE) & raw_table["network_b"].isin(CORE)].to_string(index=False))

# %%
# Cleaned like voxel data
# -----------------------
# ``adapt_settings`` says what this dataset allows: parcel means carry no
# standardised DVARS, so nilearn's scrubbing (FD and DVARS together) is off;
# the provider reports no volume above 0.5 mm of its own FD measure.
settings, changes = adapt_settings(Settings(), dataset)
for change in changes:
    print(f"  change: {change}")
results = {}
for label, chosen in (("GSR", settings), ("no GSR", with_gsr(settings, False))):
    out_dir = OUT / ("trdnet" if label == "GSR" else "trdnet_nogsr")
    (result,) = run_cohort(dataset_runs(dataset, changes), out_dir, chosen, progress=False)
    if result.status == "failed":
        raise SystemExit(f"{label}: {result.error}")
    results[label] = pd.read_csv(next(out_dir.rglob("*_networks.tsv")), sep="\t")

cleaned = results["GSR"]
core = cleaned[cleaned["network_a"].isin(CORE) & cleaned["network_b"].isin(CORE)]
print("\ncleaned, with global signal regression (mean Fisher z):")
print(core.to_string(index=False))
nogsr = results["no GSR"]
print("\ncleaned, without global signal regression:")
print(nogsr[nogsr["network_a"].isin(CORE) & nogsr["network_b"].isin(CORE)].to_string(index=False))

# %%
# Figures: the 3 x 3 network matrices before and after cleaning, and the
# parcel matrix after cleaning with each network as one block.
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
for ax, (title, table) in zip(axes, (("raw parcel signals", raw_table), ("cleaned (GSR)", cleaned))):
    square = table[table["network_a"].isin(CORE) & table["network_b"].isin(CORE)]
    values = pd.DataFrame(index=list(CORE), columns=list(CORE), dtype=float)
    for a, b, z in zip(square["network_a"], square["network_b"], square["mean_z"]):
        values.loc[a, b] = values.loc[b, a] = z
    image = ax.imshow(values.to_numpy(float), vmin=-0.8, vmax=0.8, cmap="RdBu_r")
    ax.set_xticks(range(3), CORE)
    ax.set_yticks(range(3), CORE)
    for i in range(3):
        for j in range(3):
            value = values.iloc[i, j]
            ax.text(j, i, f"{value:+.2f}", ha="center", va="center", fontsize=10,
                    color="white" if abs(value) > 0.5 else "black")
    ax.set_title(title)
fig.colorbar(image, ax=axes, label="mean Fisher z", shrink=0.8)
fig.savefig(OUT / "raw_vs_cleaned_networks.png", dpi=100)
plt.close(fig)

matrix = pd.read_csv(next((OUT / "trdnet").rglob("*_relmat.tsv")), sep="\t")
figure = figures_qc.roi_matrix(matrix.to_numpy(float), rois.set_index("roi").loc[matrix.columns, "network"].tolist())
figure.savefig(OUT / "parcel_matrix.png", dpi=100)
plt.close(figure)

# %%
# What the numbers mean, and their limits
# ---------------------------------------
# Within-network connectivity (a network with itself) exceeds every
# between-network value for DMN, SN and ECN after cleaning; before cleaning
# every value was high and the networks could not be told apart. The sign of
# DMN-ECN depends on the parcellation and on global signal regression: do
# not read it as a finding. This is one person and 5 minutes of data, with no
# slice-timing or distortion correction: a demonstration that the method
# behaves on a real scan, not a reference value for anyone.
ordered = True
for network in CORE:
    within = float(core[(core["network_a"] == network) & (core["network_b"] == network)]["mean_z"].iloc[0])
    between = cleaned[(cleaned["network_a"] != cleaned["network_b"])
                      & ((cleaned["network_a"] == network) | (cleaned["network_b"] == network))]["mean_z"]
    ordered &= within > between.max()
    print(f"{network}: within {within:+.3f}, highest between-network {between.max():+.3f}")
print("within-network connectivity exceeds between-network connectivity" if ordered
      else "within-network connectivity does NOT exceed every between-network value here")
print(f"outputs: {OUT / 'trdnet'} (`trdnet report {OUT / 'trdnet'}` writes the HTML page)")
