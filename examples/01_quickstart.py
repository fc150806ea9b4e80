"""
Quickstart: from a simulated cohort to personalised DLPFC targets
=================================================================

**What it teaches.** The shortest path through trdnet: write a SIMULATED
resting-state cohort laid out as fMRIPrep derivatives, find its runs, run the
whole per-run pipeline (cleaning, networks, sgACC seed map, personalised
left-DLPFC target, reliability, navigation export) and read the output tables
with pandas.

**What it needs.** trdnet only. Runs offline: the simulator uses the MNI152
templates bundled with nilearn. Every file it writes says it is simulated.

**How long.** About a minute (``TRDNET_EXAMPLES_FAST=1``: under 30 s).

Output goes to ``examples/output/01_quickstart/`` (or
``$TRDNET_EXAMPLES_OUTPUT/01_quickstart``).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from trdnet.cohort import run_cohort  # noqa: E402
from trdnet.config import Settings  # noqa: E402
from trdnet.inputs.bids import find_runs  # noqa: E402
from trdnet.inputs.simulate import simulate_cohort  # noqa: E402

# %%
# Fast mode and output folder
# ---------------------------
# ``TRDNET_EXAMPLES_FAST=1`` shrinks the cohort so the test suite can run
# every example in seconds; the numbers are then noisier.
FAST = os.environ.get("TRDNET_EXAMPLES_FAST") == "1"
OUT = Path(os.environ.get("TRDNET_EXAMPLES_OUTPUT", Path(__file__).resolve().parent / "output")) / "01_quickstart"
OUT.mkdir(parents=True, exist_ok=True)

# %%
# 1. Simulate a cohort (SIMULATED DATA)
# -------------------------------------
# ``simulate_cohort`` writes ``fmriprep/`` (BOLD, brain masks, confounds
# tables, simulated T1w and transforms) and ``truth/`` (the DLPFC target that
# was planted in every participant, MNI152NLin2009cAsym, RAS world mm).
cohort = simulate_cohort(
    OUT / "simulated",
    n_subjects=2 if FAST else 4,
    n_volumes=200 if FAST else 300,  # 300 volumes at TR 2 s = 10 minutes
    resolution_mm=4 if FAST else 3,
    random_state=0,
)
print(f"SIMULATED cohort in {cohort.fmriprep_dir}")

# %%
# 2. Find the runs and process them
# ---------------------------------
# ``find_runs`` reads an fMRIPrep folder; each ``Run`` knows its BOLD image,
# mask, confounds table and TR. ``run_cohort`` processes every run and never
# stops on a failing one (failures go to ``failures.tsv``).
settings = Settings()
if FAST:
    settings.targeting.n_bootstrap = 10  # fewer bootstrap resamples: a rougher reliability estimate
runs = find_runs(cohort.fmriprep_dir, space=settings.space)
print(f"found {len(runs)} runs, e.g. {runs[0].bold.name}")
results = run_cohort(runs, OUT / "trdnet", settings)
for result in results:
    print(f"  {result.prefix}: {result.status} {result.error}")

# %%
# 3. Read the tables
# ------------------
# Every run gets ``<prefix>_targets.tsv``: one row per target. The row
# ``personalised`` is the primary personalised target; the other rows are the
# literature reference sites (5 cm rule, F3 Beam, BA9, BA46) with their sgACC
# correlation in this participant. Coordinates are world RAS mm of
# ``space`` (MNI152NLin2009cAsym here).
paths = sorted(p for p in (OUT / "trdnet").glob("sub-*/func/*_targets.tsv") if "_desc-" not in p.name)
tables = [pd.read_csv(p, sep="\t") for p in paths]  # _desc-bootstrap_targets.tsv holds the resamples
targets = pd.concat(tables, ignore_index=True)
personal = targets[targets["target"] == "personalised"]
print(personal[["participant_id", "method", "space", "x", "y", "z", "r_sgacc", "reliability"]].to_string(index=False))

# %%
# 4. Compare with the planted (simulated) truth
# ---------------------------------------------
# Only a simulation has a right answer; the distance says how well this
# amount of data recovers it.
truth = cohort.truth_table.set_index("participant_id")
personal = personal.set_index("participant_id")
distance = ((personal[["x", "y", "z"]] - truth.loc[personal.index, ["x", "y", "z"]]) ** 2).sum(axis=1) ** 0.5
print("distance to the planted target (mm, SIMULATED):")
print(distance.round(1).to_string())

fig, ax = plt.subplots(figsize=(5, 4))
ax.scatter(truth["y"], truth["z"], marker="x", color="k", label="planted (simulated)")
ax.scatter(personal["y"], personal["z"], color="tab:red", label="personalised target")
for pid in personal.index:
    ax.plot([truth.loc[pid, "y"], personal.loc[pid, "y"]], [truth.loc[pid, "z"], personal.loc[pid, "z"]],
            color="grey", lw=0.8)
ax.set_xlabel("y (mm, MNI152NLin2009cAsym)")
ax.set_ylabel("z (mm)")
ax.set_title("Left DLPFC targets, SIMULATED cohort")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "targets_vs_truth.png", dpi=100)
print(f"figure: {OUT / 'targets_vs_truth.png'}")
