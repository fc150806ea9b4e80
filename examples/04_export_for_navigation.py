"""
Export targets for neuronavigation (Brainsight, Localite)
=========================================================

**What it teaches.** Spaces and conventions. trdnet finds targets on the
MNI152NLin2009cAsym template grid, in RAS world millimetres (x to the
Right, y Anterior, z Superior). A TMS team needs them on the participant's
own T1w image, in that image's world frame. ``export_targets`` maps the
points through fMRIPrep's template-to-T1w transform, checks them (inside
the field of view, the brain mask, grey matter), projects them to the scalp,
finds where the coil goes on the scalp (a coil pose: centre, normal into the
head, handle direction), names the nearest 10-20 electrode and writes
Brainsight and Localite files plus a TSV/JSON table and a NIfTI of marker
spheres. Each navigator names and turns the coil's axes its own way; the
example reads both files back and shows they hold the same pose.

**What it needs.** trdnet only; offline; a SIMULATED anatomy whose true
MNI -> T1w mapping is known, so the export can be checked exactly.

**How long.** Under a minute (``TRDNET_EXAMPLES_FAST=1``: about 30 s).

Output goes to ``examples/output/04_export_for_navigation/``.

Not for clinical use as is: a navigator file must be checked on the
participant's own image by the TMS team before any stimulation.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from nilearn import plotting  # noqa: E402

from trdnet.config import Settings  # noqa: E402
from trdnet.denoise import clean_run  # noqa: E402
from trdnet.export import export_targets  # noqa: E402
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
cohort = simulate_cohort(OUT / "simulated", n_subjects=1, n_volumes=200 if FAST else 300,
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
# 3. The participant's anatomy, and export
# ----------------------------------------
# ``find_runs`` already looked in ``sub-<label>/anat`` (or a session's
# ``anat``) for ``desc-preproc_T1w`` and the transforms, once, and keeps
# them on the run (``run.anatomy``). Note fMRIPrep's naming: the *image*
# transform ``from-T1w_to-MNI...`` moves *points* from MNI to T1w; trdnet
# picks the right one.
anat = run.anatomy
print(f"T1w: {anat.t1w.name}; simulated anatomy: {anat.simulated}")
native_dir = OUT / "navigation" / "native"
exported = export_targets(targets.rename(columns={"target": "name"}), anat, native_dir, run.prefix,
                          settings.export, simulated=True)
columns = ["name", "x", "y", "z", "in_brain_mask", "in_grey_matter", "scalp_depth_mm", "nearest_electrode", "ok"]
# Problems of the export (a target outside grey matter, an approximate
# scalp) are logged as warnings when they are found, so they are not
# printed again here; ``exported.notes`` keeps them for your own code.
print(f"exported to space {exported.space} (the T1w image's world frame, RAS mm):")
print(exported.table[columns].round(1).to_string(index=False))

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
# 5. The coil pose
# ----------------
# For each target the coil sits on the scalp point where the line from the
# target along the scalp normal leaves the head, tangential to the scalp,
# with its handle posterior-lateral at 45 degrees to the midline
# (``settings.export.coil_handle_angle_deg``; ``coil_scalp_distance_mm`` adds
# hair or cap thickness). The table has the entry point, the depth and the
# coil's axes in the T1w's RAS millimetres.
columns = ["name", "scalp_depth_mm", "coil_x", "coil_y", "coil_z", "coil_normal_x", "coil_normal_y", "coil_normal_z",
           "coil_handle_x", "coil_handle_y", "coil_handle_z"]
print(exported.table[columns].round(2).to_string(index=False))

# %%
# 6. The navigator files, read back
# ---------------------------------
# Brainsight reads a tab-separated target list whose second line names the
# coordinate system after the T1w's qform/sform code (fMRIPrep's T1w has code
# 1: ``NIfTI:Scanner``); its axes: z out of the head, y away from the handle.
# Localite reads XML from a session folder: an ``EntryTargetList`` (scalp
# entry + cortical target) and an ``InstrumentMarkerList`` whose
# ``Matrix4D`` columns are the coil normal into the head (0) and the handle
# (1). Load the same T1w (``desc-preproc_T1w``) in the navigator, never
# another image; the README says where each file goes.
for path in exported.files:
    print(f"  wrote {path.relative_to(OUT)}")
files = {p.name.split("desc-navtargets_")[1]: p for p in exported.files}
print("".join(files["brainsight.txt"].read_text().splitlines(keepends=True)[:8]))


def brainsight_poses(path):
    """Target name -> (normal into the head, handle, centre) from a Brainsight file."""
    lines = [line.split("\t") for line in path.read_text().splitlines() if not line.startswith("#")]
    out = {}
    for name, *values in lines:
        values = np.asarray(values, dtype=float)
        axes = values[3:].reshape(3, 3)  # row i = axis i
        out[name] = (-axes[2], -axes[1], values[:3])
    return out


def localite_poses(path):
    """Marker description -> (normal into the head, handle, centre) from a Localite InstrumentMarker file."""
    out = {}
    for marker in ET.parse(path).getroot().iter("Marker"):
        m4 = marker.find("Matrix4D").attrib
        matrix = np.array([[float(m4[f"data{r}{c}"]) for c in range(4)] for r in range(4)])
        out[marker.get("description")] = (matrix[:3, 0], matrix[:3, 1], matrix[:3, 3])
    return out


# Each navigator file's JSON sidecar keeps every written target's checks
# (``Targets``: the ok flag and the note, e.g. outside the brain mask) and
# says what the names stand for (``TargetNames``: ``5cm``, ``f3_beam``,
# ``ba9`` and ``ba46`` are fixed reference sites, the same for everyone,
# shown for comparison; ``personalised`` is this participant's own target).
sidecar = json.loads(files["brainsight.json"].read_text())
for name, flags in sidecar["Targets"].items():
    print(f"  {name}: ok={flags['Ok']}{'; ' + flags['Note'] if flags['Note'] else ''}; "
          f"{sidecar['TargetNames'].get(name, '')}")

brainsight, localite = brainsight_poses(files["brainsight.txt"]), localite_poses(files["localiteInstrumentMarker.xml"])
for name, (normal, handle, centre) in localite.items():
    b_normal, b_handle, b_centre = brainsight[name]
    apart = np.degrees(np.arctan2(np.linalg.norm(np.cross(normal, b_normal)), normal @ b_normal))
    print(f"{name}: same coil centre in both files to {np.abs(centre - b_centre).max():.1g} mm, "
          f"coil normals {apart:.1g} degrees apart (Brainsight keeps 4 decimals)")

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
