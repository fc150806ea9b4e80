"""
Your own data: fMRIPrep derivatives and public datasets
=======================================================

**What it teaches.** How to point trdnet at real data. (1) Your fMRIPrep
output folder, from the command line (``trdnet run FMRIPREP_DIR OUT
participant``, then ``... group``) and the Python equivalent. (2) nilearn's
public datasets (``development_fmri``, ``adhd``, ``abide_pcp``) through
``trdnet.inputs.public.fetch_dataset``, which tells you what the provider
already did to the images and how trdnet adapts.

**What it needs.** trdnet. The fMRIPrep part runs offline on a small
SIMULATED folder standing in for yours. The public-dataset part needs
internet access or a filled nilearn cache; offline it prints what to do
and the script still ends successfully.

**How long.** About 30 s (plus the download, when online).

Output goes to ``examples/output/05_your_own_data/``. Set
``TRDNET_FMRIPREP_DIR`` to run part 1 on your own fMRIPrep folder instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from trdnet.cohort import run_cohort
from trdnet.config import Settings
from trdnet.errors import DatasetError
from trdnet.inputs.bids import find_runs
from trdnet.inputs.dataset_runs import adapt_settings, dataset_runs
from trdnet.inputs.public import fetch_dataset
from trdnet.inputs.simulate import simulate_cohort

FAST = os.environ.get("TRDNET_EXAMPLES_FAST") == "1"
OUT = Path(os.environ.get("TRDNET_EXAMPLES_OUTPUT", Path(__file__).resolve().parent / "output")) / "05_your_own_data"
OUT.mkdir(parents=True, exist_ok=True)

# %%
# Part 1: an fMRIPrep folder
# --------------------------
# trdnet reads fMRIPrep's standard-space outputs:
# ``sub-<l>/[ses-<l>/]func/*_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz``
# with its ``desc-brain_mask`` and ``desc-confounds_timeseries.tsv``, and,
# for the navigation export, ``anat/`` (T1w and the two ``.h5`` transforms).
# Ask fMRIPrep for ``--output-spaces MNI152NLin2009cAsym`` (plus ``T1w``).
fmriprep_dir = os.environ.get("TRDNET_FMRIPREP_DIR")
if fmriprep_dir is None:
    # Stand-in for your data: a one-participant SIMULATED folder.
    fmriprep_dir = simulate_cohort(OUT / "simulated", n_subjects=1, n_volumes=200 if FAST else 300,
                                   resolution_mm=4 if FAST else 3, random_state=5).fmriprep_dir
out_dir = OUT / "trdnet"

# %%
# On the command line (BIDS-App style: input, output, analysis level)::
#
#     trdnet run FMRIPREP_DIR OUT participant --participant-label 01 --n-jobs 4
#     trdnet run OUT group
#
# Here we call the same command through the current Python.
command = [sys.executable, "-m", "trdnet.cli", "run", str(fmriprep_dir), str(out_dir), "participant",
           "--n-bootstrap", "10" if FAST else "100"]
print("$ trdnet " + " ".join(command[3:]))
completed = subprocess.run(command, capture_output=True, text=True)
print(completed.stdout[-2000:] + completed.stderr[-2000:])
if completed.returncode != 0:
    sys.exit(f"trdnet run failed with exit code {completed.returncode}")

# %%
# The Python equivalent. The same settings on the same folder find the runs
# already finished and skip them (outputs carry a digest of the settings;
# other settings in the same folder are refused, so results never mix).
settings = Settings()
settings.targeting.n_bootstrap = 10 if FAST else 100
runs = find_runs(Path(fmriprep_dir), participant_labels=None, space=settings.space)
for result in run_cohort(runs, out_dir, settings):
    print(f"python API: {result.prefix}: {result.status}")

# %%
# Part 2: a public dataset through nilearn
# ----------------------------------------
# ``fetch_dataset`` reads nilearn's cache (``$NILEARN_DATA`` or
# ``~/nilearn_data``) and downloads what is missing. Without internet it
# raises ``DatasetError`` whose message says which files to put where.
try:
    dataset = fetch_dataset("development_fmri", n_subjects=1)
except DatasetError as error:
    print("public dataset not available (offline?):")
    print(f"  {error}")
    print("nothing else to do offline; this example ends here.")
    sys.exit(0)

# %%
# Online (or with a filled cache): what the provider did, and what trdnet
# changes because of it. ``development_fmri`` is a movie-watching task, not
# rest: trdnet says so in every output.
print(f"{dataset.name}: {len(dataset.runs)} run(s) from {dataset.cache_dir}")
public_settings, changes = adapt_settings(Settings(), dataset)
for change in changes:
    print(f"  change: {change}")
public_settings.targeting.n_bootstrap = 10 if FAST else 100
for result in run_cohort(dataset_runs(dataset, changes), OUT / "trdnet_public", public_settings):
    print(f"{result.prefix}: {result.status} {result.error}")
