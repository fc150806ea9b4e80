"""
A cohort on Dask, then the group step
=====================================

**What it teaches.** Processing many runs in parallel on Dask (here a
local cluster of two single-threaded worker processes; a running scheduler
address such as ``tcp://host:8786`` works the same way), then the group
step: cohort tables of network connectivity, targets and QC, the group
sgACC seed map, and patient-versus-control statistics when
``participants.tsv`` has a group column.

**What it needs.** trdnet with ``dask.distributed``; offline; SIMULATED
data (the group labels of the simulated participants are arbitrary, so any
group difference is noise).

**How long.** One to two minutes (``TRDNET_EXAMPLES_FAST=1``: about 40 s).

Output goes to ``examples/output/06_cohort_on_dask/``.
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
from trdnet.group import run_group  # noqa: E402
from trdnet.inputs.bids import find_runs  # noqa: E402
from trdnet.inputs.simulate import simulate_cohort  # noqa: E402

FAST = os.environ.get("TRDNET_EXAMPLES_FAST") == "1"
OUT = Path(os.environ.get("TRDNET_EXAMPLES_OUTPUT", Path(__file__).resolve().parent / "output")) / "06_cohort_on_dask"
OUT.mkdir(parents=True, exist_ok=True)

if __name__ == "__main__":  # Dask starts worker processes that re-import this file
    # %%
    # A SIMULATED cohort
    # ------------------
    # ``participants.tsv`` of the simulated folder labels participants
    # ``patient`` / ``control`` (arbitrarily).
    cohort = simulate_cohort(OUT / "simulated", n_subjects=4 if FAST else 8, n_volumes=200 if FAST else 300,
                             resolution_mm=4 if FAST else 3, random_state=6, anatomy=False)
    settings = Settings()
    settings.targeting.n_bootstrap = 10 if FAST else 100
    runs = find_runs(cohort.fmriprep_dir, space=settings.space)

    # %%
    # The participant step on Dask
    # ----------------------------
    # ``dask="local:2"`` starts a local cluster of two worker processes
    # (one BLAS thread each). A run that fails is recorded in
    # ``failures.tsv``; the others go on.
    out_dir = OUT / "trdnet"
    results = run_cohort(runs, out_dir, settings, dask="local:2")
    for result in results:
        print(f"{result.prefix}: {result.status} ({result.seconds:.0f} s) {result.error}")

    # %%
    # The group step
    # --------------
    # ``run_group`` only reads the per-run outputs: it can run later, on
    # another machine, or after more participants were added. It finds
    # ``participants.tsv`` beside the outputs or in the fMRIPrep input.
    # What it skips and why (e.g. no statistics without participants.tsv)
    # is logged as a warning when it happens, so it is not printed again
    # here; ``group.notes`` and ``group/notes.json`` keep it.
    group = run_group(out_dir)
    print(f"{group.n_runs_included} of {group.n_runs} runs included, {group.n_participants_included} participants")
    for name, path in group.files.items():
        print(f"  {name}: {path.relative_to(OUT)}")

    networks = pd.read_csv(group.files["networks"], sep="\t")
    print(networks.head().to_string(index=False))
    if "statistics" in group.files:
        stats = pd.read_csv(group.files["statistics"], sep="\t")
        print("group statistics (SIMULATED, arbitrary labels):")
        print(stats.head(10).to_string(index=False))

    # %%
    # Figure: cohort targets, coloured by reliability
    # -----------------------------------------------
    targets = pd.read_csv(group.files["targets"], sep="\t")
    personal = targets[targets["target"] == "personalised"] if "target" in targets else targets
    fig, ax = plt.subplots(figsize=(5, 4))
    for word, part in personal.groupby("reliability"):
        ax.scatter(part["y"], part["z"], label=word)
    ax.set_xlabel("y (mm, MNI152NLin2009cAsym)")
    ax.set_ylabel("z (mm)")
    ax.set_title("Personalised targets, SIMULATED cohort")
    ax.legend(fontsize=8, title="reliability")
    fig.tight_layout()
    fig.savefig(OUT / "cohort_targets.png", dpi=100)
    print(f"figure: {OUT / 'cohort_targets.png'}")
