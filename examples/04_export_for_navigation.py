"""
Export targets for neuronavigation (Brainsight, Localite)
=========================================================

**What it teaches.** Spaces and conventions. trdnet finds targets on the
MNI152NLin2009cAsym template grid, in RAS world millimetres (x to the
Right, y Anterior, z Superior). A TMS team needs them on the participant's
own T1w image, in that image's world frame. ``export_targets`` maps the
points through fMRIPrep's template-to-T1w transform, checks them (inside
the field of view, the brain mask, grey matter), projects them to the scalp,
names the nearest 10-20 electrode and writes Brainsight and Localite files
plus a TSV/JSON table and a NIfTI of marker spheres.

**What it needs.** trdnet only; offline; a SIMULATED anatomy whose true
MNI -> T1w mapping is known, so the export can be checked exactly.

**How long.** Under a minute (``TRDNET_EXAMPLES_FAST=1``: about 30 s).

Output goes to ``examples/output/04_export_for_navigation/``.

Not for clinical use as is: a navigator file must be checked on the
participant's own image by the TMS team before any stimulation.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from nilearn import plotting  # noqa: E402

from trdnet.config import Settings  # noqa: E402
from trdnet.denoise import clean_run  # noqa: E402
from trdnet.export import export_targets, find_native_anatomy  # noqa: E402
from trdnet.inputs.bids import find_runs  # noqa: E402
from trdnet.inputs.simulate import simulate_cohort  # noqa: E402
from trdnet.inputs.simulate.t1w import write_simulated_anat  # noqa: E402
from trdnet.targeting import compute_targets  # noqa: E402

FAST = os.environ.get("TRDNET_EXAMPLES_FAST") == "1"
OUT = Path(os.environ.get("TRDNET_EXAMPLES_OUTPUT", Path(__file__).resolve().parent / "output")) / "04_export_for_navigation"
OUT.mkdir(parents=True, exist_ok=True)

# %%
# 1. A participant with functional data and a simulated T1w (SIMULATED DATA)
# --------------------------------------------------------------------------
# ``write_simulated_anat`` writes what fMRIPrep puts in ``anat/``: the
# preprocessed T1w, brain mask, grey-matter probability, tissue
# segmentation and the two ITK ``.h5`` transforms. The T1w lives in a
# scanner-like RAS frame (rotated, shifted, scaled, gently warped), not in
# MNI, and we keep the true mapping to check the export.
settings = Settings()
cohort = simulate_cohort(OUT / "simulated", n_subjects=1, n_volumes=120 if FAST else 300,
                         resolution_mm=4 if FAST else 3, random_state=3, anatomy=False)
anat_files = write_simulated_anat(cohort.fmriprep_dir, "01", rng_or_seed=3)
truth = anat_files["truth"]

# %%
# 2. Targets in MNI space
# -----------------------
run = find_runs(cohort.fmriprep_dir, space=settings.space)[0]
settings.targeting.reliability = False  # not needed for the export
targets = compute_targets(clean_run(run, settings.denoise), settings.targeting).table
print("targets (MNI152NLin2009cAsym, RAS world mm):")
print(targets[["target", "space", "x", "y", "z"]].round(1).to_string(index=False))

# %%
# 3. Find the participant's anatomy and export
# --------------------------------------------
# ``find_native_anatomy`` looks in ``sub-<label>/anat`` (or a session's
# ``anat``) for ``desc-preproc_T1w`` and the transforms. Note fMRIPrep's
# naming: the *image* transform ``from-T1w_to-MNI...`` moves *points* from
# MNI to T1w; trdnet picks the right one.
anat = find_native_anatomy(cohort.fmriprep_dir, "01", template=settings.space)
print(f"T1w: {anat.t1w.name}; simulated anatomy: {anat.simulated}")
native_dir = OUT / "navigation" / "native"
exported = export_targets(targets.rename(columns={"target": "name"}), anat, native_dir, run.prefix,
                          settings.export, simulated=True)
columns = ["name", "x", "y", "z", "in_brain_mask", "in_grey_matter", "scalp_depth_mm", "nearest_electrode", "ok"]
print(f"exported to space {exported.space} (the T1w image's world frame, RAS mm):")
print(exported.table[columns].round(1).to_string(index=False))
for note in exported.notes:
    print(f"  note: {note}")

# %%
# 4. Check against the truth of the simulation
# --------------------------------------------
# The simulated anatomy knows the exact MNI -> T1w mapping, so the error of
# the exported points can be measured (it comes from the transform's
# displacement-field sampling, well under a voxel).
expected = truth.mni_to_t1w(targets[["x", "y", "z"]].to_numpy(dtype=float))
error = np.linalg.norm(exported.table[["x", "y", "z"]].to_numpy(dtype=float) - expected, axis=1)
print(f"largest export error against the simulated truth: {error.max():.2g} mm")

# %%
# 5. The navigator files
# ----------------------
# Brainsight reads a tab-separated target list; Localite reads an XML
# ``InstrumentMarker`` file. Both hold T1w world coordinates here. Load the
# same T1w (``desc-preproc_T1w``) in the navigator, never another image.
for path in exported.files:
    print(f"  wrote {path.relative_to(OUT)}")
brainsight = next(p for p in exported.files if p.name.endswith("_brainsight.txt"))
print("".join(brainsight.read_text().splitlines(keepends=True)[:12]))

# %%
# Without a T1w: template coordinates
# -----------------------------------
# With ``anat=None`` the files stay in MNI152NLin2009cAsym, with the scalp
# of the template head; every output says so. Use this only with a
# navigator that registers the MNI template to the participant itself.
template = export_targets(targets.rename(columns={"target": "name"}), None, OUT / "navigation" / "template",
                          run.prefix, settings.export, simulated=True)
print(f"template export in space {template.space}; {len(template.files)} files")

# %%
# Figure: the personalised target on the participant's T1w
# --------------------------------------------------------
primary = exported.table.iloc[0][["x", "y", "z"]].to_numpy(dtype=float)
display = plotting.plot_anat(str(anat.t1w), cut_coords=tuple(primary),
                             title="Personalised target on the SIMULATED T1w")
display.add_markers([primary], marker_color="r", marker_size=50)
display.savefig(OUT / "target_on_t1w.png", dpi=100)
display.close()
print(f"figure: {OUT / 'target_on_t1w.png'}")
