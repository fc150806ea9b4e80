"""
The three networks: DMN, salience and executive control
=======================================================

**What it teaches.** Where the default mode (DMN), salience (SN) and
executive control (ECN) networks come from (ROI spheres of the Seitzman 2018
atlas, MNI152 mm), how their time series are extracted from a cleaned run,
how within- and between-network connectivity is summarised in
``<prefix>_networks.tsv``, and a graph view of the ROIs with networkx
(degree, modularity of the three-network partition).

**What it needs.** trdnet only; offline; SIMULATED data.

**How long.** Under a minute (``TRDNET_EXAMPLES_FAST=1``: about 20 s).

Output goes to ``examples/output/02_networks/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from trdnet.cohort import run_cohort  # noqa: E402
from trdnet.config import Settings  # noqa: E402
from trdnet.denoise import clean_run  # noqa: E402
from trdnet.inputs.bids import find_runs  # noqa: E402
from trdnet.inputs.simulate import simulate_cohort  # noqa: E402
from trdnet.networks import connectivity_matrix, network_rois, roi_signals, threshold_graph  # noqa: E402

FAST = os.environ.get("TRDNET_EXAMPLES_FAST") == "1"
OUT = Path(os.environ.get("TRDNET_EXAMPLES_OUTPUT", Path(__file__).resolve().parent / "output")) / "02_networks"
OUT.mkdir(parents=True, exist_ok=True)

# %%
# One simulated participant (SIMULATED DATA)
# ------------------------------------------
cohort = simulate_cohort(OUT / "simulated", n_subjects=1, n_volumes=200 if FAST else 300,
                         resolution_mm=4 if FAST else 3, random_state=1, anatomy=False)
settings = Settings()
settings.targeting.reliability = False  # this example is about networks
run = find_runs(cohort.fmriprep_dir, space=settings.space)[0]

# %%
# 1. The ROIs
# -----------
# ``network_rois`` returns one row per ROI sphere; coordinates are MNI152
# RAS world mm. The atlas is a setting (``settings.networks.atlas``:
# ``seitzman2018``, ``dosenbach2010``, ``raichle_nodes`` or your own labels).
rois = network_rois(settings.networks)
print(f"atlas {settings.networks.atlas}: ROIs per network")
print(rois["network"].value_counts().reindex(["DMN", "SN", "ECN"]).to_string())

# %%
# 2. Their time series
# --------------------
# ``clean_run`` loads and cleans the run once (confounds, scrubbing,
# band-pass); ``roi_signals`` averages the cleaned voxels in each sphere.
# ROIs outside the brain mask are reported in ``dropped``, never lost silently.
cleaned = clean_run(run, settings.denoise)
signals, kept, dropped = roi_signals(cleaned, rois)
print(f"{signals.shape[1]} ROI signals over {signals.shape[0]} retained volumes; {len(dropped)} ROIs dropped")

fig, ax = plt.subplots(figsize=(8, 3))
time_s = cleaned.retained * cleaned.tr
for name, color in zip(["DMN", "SN", "ECN"], ["tab:blue", "tab:orange", "tab:green"]):
    ax.plot(time_s, signals[:, (kept["network"] == name).to_numpy()].mean(axis=1), color=color, lw=1, label=name)
ax.set_xlabel("time (s; censored volumes skipped)")
ax.set_ylabel("mean z")
ax.set_title("Network mean signals, SIMULATED participant")
ax.legend(fontsize=8, ncol=3)
fig.tight_layout()
fig.savefig(OUT / "network_timeseries.png", dpi=100)

# %%
# 3. Within- and between-network connectivity
# -------------------------------------------
# The pipeline writes ``<prefix>_networks.tsv``: one row per network pair,
# the mean Fisher-z (and r) of the ROI-to-ROI correlations. Within-network
# rows (DMN-DMN) should be positive; in this simulation the DMN is
# anticorrelated with the ECN, as is usually seen after global signal
# regression.
run_cohort([run], OUT / "trdnet", settings)
networks_tsv = next((OUT / "trdnet").glob("sub-*/func/*_networks.tsv"))
table = pd.read_csv(networks_tsv, sep="\t")
print(table.to_string(index=False))

square = table.pivot(index="network_a", columns="network_b", values="mean_z")
square = square.combine_first(square.T).reindex(index=["DMN", "SN", "ECN"], columns=["DMN", "SN", "ECN"])
fig, ax = plt.subplots(figsize=(4, 3.5))
image = ax.imshow(square.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
ax.set_xticks(range(3), square.columns)
ax.set_yticks(range(3), square.index)
for (i, j), value in np.ndenumerate(square.to_numpy()):
    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=9)
fig.colorbar(image, ax=ax, label="mean Fisher z")
ax.set_title("Within / between networks")
fig.tight_layout()
fig.savefig(OUT / "network_connectivity.png", dpi=100)

# %%
# 4. A graph view with networkx
# -----------------------------
# Keep the strongest positive edges (proportional threshold at
# ``settings.networks.graph_density``), then ask networkx for each ROI's
# degree and for the modularity of the DMN / SN / ECN partition. The
# pipeline writes the same measures to ``<prefix>_graph.tsv``.
matrix = connectivity_matrix(signals)
names = list(kept["roi"])
graph, threshold_r = threshold_graph(matrix, settings.networks.graph_density, names)
network_of = dict(zip(kept["roi"], kept["network"]))
partition = [{n for n in names if network_of[n] == net} for net in ["DMN", "SN", "ECN"]]
partition = [part for part in partition if part]
modularity = nx.community.modularity(graph, partition, weight="weight")
degree = pd.Series(dict(graph.degree()), name="degree")
print(f"graph: {graph.number_of_edges()} edges kept (r >= {threshold_r:.2f}), modularity {modularity:.2f}")
print("mean degree per network:")
print(degree.groupby(pd.Series(network_of)).mean().round(1).to_string())

fig, ax = plt.subplots(figsize=(5, 5))
colors = {"DMN": "tab:blue", "SN": "tab:orange", "ECN": "tab:green"}
positions = nx.spring_layout(graph, seed=0, weight="weight")
nx.draw_networkx_edges(graph, positions, ax=ax, alpha=0.15)
nx.draw_networkx_nodes(graph, positions, ax=ax, node_size=20 + 4 * degree.reindex(names).to_numpy(),
                       node_color=[colors[network_of[n]] for n in names])
ax.set_title(f"ROI graph (modularity {modularity:.2f}), SIMULATED")
ax.axis("off")
fig.tight_layout()
fig.savefig(OUT / "network_graph.png", dpi=100)
print(f"figures in {OUT}")
