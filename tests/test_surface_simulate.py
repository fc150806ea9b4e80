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


@pytest.mark.slow  # a simulated surface cohort processed end to end
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


@pytest.mark.slow  # a simulated surface cohort processed end to end
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


def _study():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "validation" / "surface_accuracy.py"
    spec = importlib.util.spec_from_file_location("surface_accuracy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path.parent / "results" / "surface"


@pytest.mark.slow  # a simulated surface cohort processed end to end
def test_cli_targets_on_the_simulated_cortex_carry_their_vertex_and_both_spaces(cohort):
    meshes, _ = standard_meshes("fsaverage5")
    for row in cohort["truth"].itertuples():
        func = cohort["out"] / "trdnet" / row.participant_id / "func"
        targets = pd.read_csv(func / f"{row.participant_id}_task-rest_space-fsaverage5_targets.tsv", sep="\t")
        target = targets[targets.target == "personalised"].iloc[0]
        vertex = int(target.vertex)
        assert target.hemi == "L" and target.space == "MNI305" and target.method == "cluster"
        np.testing.assert_allclose([target.x, target.y, target.z], meshes["L"][0][vertex], atol=1e-4)
        mni152 = np.r_[meshes["L"][0][vertex], 1.0] @ MNI305_TO_MNI152.T
        np.testing.assert_allclose([target.mni152_x, target.mni152_y, target.mni152_z], mni152[:3], atol=1e-4)
        assert json.loads((func / f"{row.participant_id}_task-rest_space-fsaverage5_targets.json").read_text())[
            "Simulated"] is True


@pytest.mark.slow  # the surface accuracy study on two participants
def test_surface_accuracy_study_measures_distances_to_the_planted_vertex(tmp_path):
    study, _ = _study()
    accuracy, summary = study.surface_accuracy(tmp_path, n_subjects=2, n_volumes=120, random_state=11)
    truth = pd.read_csv(tmp_path / "truth" / "targets_truth.tsv", sep="\t").set_index("participant_id")
    meshes, _ = standard_meshes("fsaverage5")
    for row in accuracy.itertuples():
        # recomputed here: the target vertex's MNI152 position against the planted vertex's
        target = (np.r_[meshes["L"][0][row.vertex], 1.0] @ MNI305_TO_MNI152.T)[:3]
        planted = truth.loc[row.participant_id, ["x", "y", "z"]].to_numpy(float)
        assert row.planted_vertex == truth.loc[row.participant_id, "vertex"]
        assert row.distance_mm == pytest.approx(np.linalg.norm(target - planted), abs=1e-3)
    assert sorted(accuracy["method"].unique()) == ["cluster", "peak"] and len(accuracy) == 4
    cluster = accuracy[accuracy.method == "cluster"].distance_mm
    assert summary.set_index("method").loc["cluster", "median_mm"] == pytest.approx(np.median(cluster))


def test_committed_surface_summary_is_the_summary_of_the_committed_distances():
    study, results = _study()
    accuracy = pd.read_csv(results / "accuracy.tsv", sep="\t")
    committed = pd.read_csv(results / "summary.tsv", sep="\t")
    assert (committed["data"] == "SIMULATED").all() and accuracy["minutes"].between(8.0, 10.0).all()  # 10-min runs, censored
    recomputed = study.summarise(accuracy)
    pd.testing.assert_frame_equal(committed[recomputed.columns], recomputed, check_dtype=False, atol=1e-3)



def test_committed_fslr_summary_is_the_summary_of_distances_on_the_fslr_mesh():
    # validation/surface_accuracy.py --space fsLR: the same study on one CIFTI file per run
    from trdnet.inputs.surface import fslr_meshes

    study, results = _study()
    results = results.parent / "surface_fslr"
    accuracy = pd.read_csv(results / "accuracy.tsv", sep="\t")
    committed = pd.read_csv(results / "summary.tsv", sep="\t")
    assert (committed["data"] == "SIMULATED").all() and accuracy["minutes"].between(8.0, 10.0).all()
    left = fslr_meshes()["L"][0]
    assert (accuracy["hemi"] == "L").all() and len(accuracy) == 24
    # each distance, recomputed from the two vertices' places on the Conte69 mesh (MNI152)
    np.testing.assert_allclose(accuracy[["x", "y", "z"]].to_numpy(float), left[accuracy["vertex"]], atol=1e-3)
    distance = np.linalg.norm(left[accuracy["vertex"]] - left[accuracy["planted_vertex"]], axis=1)
    np.testing.assert_allclose(accuracy["distance_mm"], distance, atol=1e-3)
    recomputed = study.summarise(accuracy)
    pd.testing.assert_frame_equal(committed[recomputed.columns], recomputed, check_dtype=False, atol=1e-3)


@pytest.mark.slow  # a whole fsLR run through the command line
def test_an_fslr_cohort_is_one_cifti_file_per_run_and_gets_targets_through_trdnet_run(tmp_path):
    from trdnet.inputs.surface import fslr_meshes

    truth = simulate_surface_cohort(tmp_path, n_subjects=1, n_volumes=150, random_state=4, space="fsLR")
    func = tmp_path / "fmriprep" / "sub-01" / "func"
    cifti = nib.load(func / "sub-01_task-rest_space-fsLR_den-91k_bold.dtseries.nii")
    brain = cifti.header.get_axis(1)
    assert cifti.shape[0] == 150 and not list(func.glob("*.func.gii"))
    assert {name for name, _, _ in brain.iter_structures()} == {"CIFTI_STRUCTURE_CORTEX_LEFT",
                                                                  "CIFTI_STRUCTURE_CORTEX_RIGHT"}
    assert brain.size < 2 * len(fslr_meshes()["L"][0])  # the medial wall is left out
    assert truth.mesh.iloc[0] == "fsLR" and json.loads(
        (tmp_path / "fmriprep" / "dataset_description.json").read_text())["Simulated"] is True
    code = main(["run", str(tmp_path / "fmriprep"), str(tmp_path / "out"), "participant", "--space", "fsLR",
                 "--no-report", "--n-bootstrap", "5"])
    assert code == 0
    targets = pd.read_csv(tmp_path / "out" / "sub-01" / "func" / "sub-01_task-rest_space-fsLR_den-91k_targets.tsv",
                          sep="\t")
    row = targets[targets.target == "personalised"].iloc[0]
    assert row.hemi == "L" and row.space == "fsLR"
    np.testing.assert_allclose([row.x, row.y, row.z], fslr_meshes()["L"][0][int(row.vertex)], atol=1e-4)
    # the planted vertex is a cortex column of the file, at the truth table's position
    planted = truth.iloc[0]
    assert planted.vertex in brain.vertex[brain.name == "CIFTI_STRUCTURE_CORTEX_LEFT"]
    np.testing.assert_allclose(fslr_meshes()["L"][0][planted.vertex], planted[["x", "y", "z"]].to_numpy(float))
