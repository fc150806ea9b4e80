"""The SIMULATED fsaverage5 cohort: fMRIPrep's surface layout, planted targets the seed map can see."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from trdnet.cli import main
from trdnet.config import TargetSettings
from trdnet.geometry import MeshGeometry
from trdnet.inputs.bids import find_runs
from trdnet.inputs.simulate.surface import GROUP_REGION, TARGET_CENTRE, simulate_surface_cohort
from trdnet.inputs.surface import MNI305_TO_MNI152, SurfaceRun, standard_meshes
from trdnet.targeting.regions import site_coordinates


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("simulated")
    truth = simulate_surface_cohort(out, n_subjects=3, n_volumes=300, random_state=3)  # 10-minute runs
    code = main(["run", str(out / "fmriprep"), str(out / "trdnet"), "participant", "--space", "fsaverage5",
                 "--no-report"])
    return {"out": out, "truth": truth, "code": code}


def test_written_as_fmriprep_surface_outputs_and_labelled_simulated(cohort):
    root = cohort["out"] / "fmriprep"
    runs = find_runs(root, space="fsaverage5")
    assert [r.subject for r in runs] == ["01", "02", "03"]
    assert all(isinstance(r, SurfaceRun) and r.simulated and r.tr == 2.0 for r in runs)
    img = nib.load(runs[0].hemi_bold["R"])
    assert len(img.darrays) == 300 and img.darrays[0].data.shape == (10242,)
    assert json.loads((root / "dataset_description.json").read_text())["Simulated"] is True
    confounds = pd.read_csv(runs[0].confounds, sep="\t")
    assert {"trans_x", "rot_z_derivative1_power2", "framewise_displacement", "std_dvars", "csf"} <= set(confounds)
    truth = pd.read_csv(cohort["out"] / "truth" / "targets_truth.tsv", sep="\t")
    assert (truth["hemi"] == "L").all() and truth["note"].str.contains("SIMULATED").all()
    planted = truth[["x", "y", "z"]].to_numpy(float)
    assert (np.linalg.norm(planted - TARGET_CENTRE, axis=1) <= 15).all()
    # the planted vertex's MNI152 position, recomputed from nilearn's mesh
    meshes, _ = standard_meshes("fsaverage5")
    vertex = np.c_[meshes["L"][0][truth["vertex"]], np.ones(len(truth))] @ MNI305_TO_MNI152.T
    np.testing.assert_allclose(vertex[:, :3], planted, atol=1e-3)


def test_the_seed_map_is_most_negative_near_each_planted_target(cohort):
    assert cohort["code"] == 0
    meshes, _ = standard_meshes("fsaverage5")
    left = MeshGeometry.from_meshes({"L": meshes["L"]}, "fsaverage5", template_affine=MNI305_TO_MNI152)
    xyz = left.template_xyz
    sites = np.array(list(site_coordinates(TargetSettings().search_sites).values()))
    search = np.flatnonzero(np.linalg.norm(xyz[:, None] - sites[None], axis=2).min(axis=1) <= 20)
    group = left.nearest_column(GROUP_REGION)
    distances = []
    for row in cohort["truth"].itertuples():
        func = cohort["out"] / "trdnet" / row.participant_id / "func"
        r = nib.load(func / f"{row.participant_id}_task-rest_hemi-L_space-fsaverage5_stat-r_desc-sgacc_boldmap"
                            ".func.gii").darrays[0].data
        smoothed = left.smooth(r[search], 4.0, columns=search)
        best = search[np.argmin(smoothed)]
        distances.append(np.linalg.norm(xyz[best] - [row.x, row.y, row.z]))
        assert r[group] < 0  # the shared, competing region is anticorrelated too
    # the planted patch is a Gaussian of sigma 5 mm: its peak must show within that, typically
    assert np.median(distances) < 5.0 and max(distances) < 10.0, distances
