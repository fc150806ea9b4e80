"""Tests of the simulated cohort (small 4 mm runs)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn import datasets
from nilearn.interfaces.fmriprep import load_confounds

from trdnet.errors import InputError, SettingsError
from trdnet.grid import VoxelSpace
from trdnet.inputs.simulate import (
    DLPFC_SITES,
    SignalParameters,
    cosine_basis,
    framewise_displacement,
    preset_parameters,
    simulate_cohort,
)

SPACE = "MNI152NLin2009cAsym"
SMALL = dict(n_subjects=2, n_volumes=50, resolution_mm=4)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return simulate_cohort(tmp_path_factory.mktemp("sim"), **SMALL, random_state=3)


@pytest.fixture(scope="module")
def sessions_cohort(tmp_path_factory):
    return simulate_cohort(
        tmp_path_factory.mktemp("sim_ses"), n_subjects=1, n_volumes=40, resolution_mm=4,
        sessions=["1", "2"], runs=2, confounds_suffix="regressors", random_state=5,
        anatomy=False,  # its tests read the runs; ``cohort``'s anatomy is checked (every JSON says SIMULATED)
    )


def _bold(cohort, subject="01"):
    return cohort.fmriprep_dir / f"sub-{subject}" / "func" / (
        f"sub-{subject}_task-rest_space-{SPACE}_desc-preproc_bold.nii.gz"
    )


def test_layout_and_names(cohort):
    root = cohort.fmriprep_dir
    description = json.loads((root / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "trdnet-simulator"
    assert "SIMULATED" in description["Name"]
    assert cohort.subjects == ["01", "02"]
    for sub in cohort.subjects:
        func = root / f"sub-{sub}" / "func"
        stem = f"sub-{sub}_task-rest"
        expected = {
            f"{stem}_space-{SPACE}_desc-preproc_bold.nii.gz",
            f"{stem}_space-{SPACE}_desc-preproc_bold.json",
            f"{stem}_space-{SPACE}_desc-brain_mask.nii.gz",
            f"{stem}_space-{SPACE}_desc-brain_mask.json",
            f"{stem}_desc-confounds_timeseries.tsv",
            f"{stem}_desc-confounds_timeseries.json",
        }
        assert {p.name for p in func.iterdir()} == expected
        sidecar = json.loads((func / f"{stem}_space-{SPACE}_desc-preproc_bold.json").read_text())
        assert sidecar["RepetitionTime"] == 2.0 and sidecar["TaskName"] == "rest"
        assert "SkullStripped" in sidecar and sidecar["Simulated"] is True
    img = nib.load(_bold(cohort))
    assert img.shape[3] == 50
    assert img.header["sform_code"] == 4 and img.header["qform_code"] == 4
    assert img.header.get_zooms()[3] == pytest.approx(2.0)
    mask = nib.load(str(_bold(cohort)).replace("desc-preproc_bold", "desc-brain_mask"))
    assert np.allclose(mask.affine, img.affine)
    reference = datasets.load_mni152_brain_mask(resolution=4)
    assert mask.shape == reference.shape and np.allclose(mask.affine, reference.affine)
    assert (cohort.fmriprep_dir.parent / "SIMULATED_DATA.txt").is_file()


def test_sessions_and_runs_share_the_target(sessions_cohort):
    func = sessions_cohort.fmriprep_dir / "sub-01"
    bolds = sorted(func.glob("ses-*/func/*_desc-preproc_bold.nii.gz"))
    assert [b.name.split("_space")[0] for b in bolds] == [
        "sub-01_ses-1_task-rest_run-1", "sub-01_ses-1_task-rest_run-2",
        "sub-01_ses-2_task-rest_run-1", "sub-01_ses-2_task-rest_run-2",
    ]
    truth = sessions_cohort.truth_table
    assert len(truth) == 4 and list(truth["session"]) == ["1", "1", "2", "2"]
    assert truth[["x", "y", "z"]].drop_duplicates().shape[0] == 1
    data = [np.asanyarray(nib.load(b).dataobj[..., 10]) for b in bolds[:2]]
    assert not np.array_equal(data[0], data[1])


@pytest.mark.parametrize("which", ["cohort", "sessions_cohort"])
def test_nilearn_load_confounds_reads_both_suffixes(which, request):
    sim = request.getfixturevalue(which)
    bold = next(sim.fmriprep_dir.rglob("*_desc-preproc_bold.nii.gz"))
    confounds, sample_mask = load_confounds(
        str(bold), strategy=("motion", "wm_csf", "global_signal", "scrub"), motion="full",
        wm_csf="basic", global_signal="basic", scrub=0, fd_threshold=0.5,
        std_dvars_threshold=1.5,
    )
    n_volumes = nib.load(bold).shape[3]
    assert confounds.shape == (n_volumes, 24 + 2 + 1)
    assert sample_mask is not None and len(sample_mask) < n_volumes
    assert not confounds.isna().any().any()


def test_spikes_exceed_fd_threshold(cohort):
    record = json.loads((cohort.truth_dir / "simulation.json").read_text())
    for run in record["runs_detail"]:
        table = pd.read_csv(cohort.fmriprep_dir.parent / run["bold"].replace(
            f"_space-{SPACE}_desc-preproc_bold.nii.gz", "_desc-confounds_timeseries.tsv"
        ), sep="\t", na_values="n/a")
        fd = table["framewise_displacement"].to_numpy()
        spikes = np.asarray(run["spike_volumes"])
        assert spikes.size >= 2 and np.isnan(fd[0]) and np.isnan(table["std_dvars"][0])
        assert np.all(fd[spikes] > 0.5)
        quiet = np.setdiff1d(np.arange(1, len(fd)), np.concatenate([spikes, spikes + 1]))
        assert np.median(fd[quiet]) < 0.3
        # the spikes leave a trace in the data: std_dvars is higher at spike volumes
        dvars = table["std_dvars"].to_numpy()
        assert np.median(dvars[spikes]) > np.median(dvars[quiet])


def test_confound_columns_match_fmriprep(cohort):
    confounds = cohort.fmriprep_dir / "sub-01/func/sub-01_task-rest_desc-confounds_timeseries.tsv"
    table = pd.read_csv(confounds, sep="\t",
                        na_values="n/a")
    for base in ("global_signal", "csf", "white_matter", "trans_x", "rot_z"):
        for suffix in ("", "_derivative1", "_power2", "_derivative1_power2"):
            assert base + suffix in table.columns
    np.testing.assert_allclose(table["trans_x_power2"], table["trans_x"] ** 2, rtol=1e-6)
    assert table["cosine00"].notna().all()
    n_cos = sum(c.startswith("cosine") for c in table.columns)
    assert n_cos == int(np.floor(2 * 50 * 2.0 / 128))
    # global_signal is the mean of the image over the brain mask
    bold = _bold(cohort)
    mask = np.asanyarray(nib.load(str(bold).replace("desc-preproc_bold", "desc-brain_mask")).dataobj) > 0
    data = nib.load(bold).get_fdata()[mask]
    np.testing.assert_allclose(table["global_signal"], data.mean(axis=0), rtol=1e-4)


def test_framewise_displacement_and_cosines_by_hand():
    motion = np.zeros((3, 6))
    motion[1, 0] = 0.3
    motion[2, 5] = 0.01  # radians -> 0.5 mm arc
    fd = framewise_displacement(motion)
    assert np.isnan(fd[0]) and fd[1] == pytest.approx(0.3) and fd[2] == pytest.approx(0.8)
    basis = cosine_basis(200, 2.0)
    assert basis.shape == (200, 6)
    np.testing.assert_allclose(basis.T @ basis, np.eye(6), atol=1e-10)


def test_patch_planted_off_grid_inside_the_simulators_own_region(cohort):
    # Realistic preset: centres are drawn in the simulator's ellipsoid (not the analysis's search
    # spheres), in grey matter, and moved off the voxel grid by up to half a voxel on each axis.
    params = SignalParameters()
    gm_img = datasets.load_mni152_gm_template(resolution=4)
    gm = gm_img.get_fdata()
    for _, row in cohort.truth_table.iterrows():
        centre = row[["x", "y", "z"]].to_numpy(float)
        assert row["space"] == SPACE and row["note"] == "simulated" and row["preset"] == "realistic"
        ijk_float = nib.affines.apply_affine(np.linalg.inv(gm_img.affine), centre)
        ijk = np.rint(ijk_float).astype(int)
        assert np.abs(ijk_float - ijk).max() <= 0.5 + 1e-9
        assert np.abs(ijk_float - ijk).max() > 1e-3  # not a grid point
        voxel_centre = nib.affines.apply_affine(gm_img.affine, ijk)
        scaled = (voxel_centre - np.array(params.plant_center_mm)) / np.array(params.plant_radii_mm)
        assert (scaled**2).sum() <= 1.0
        assert gm[tuple(ijk)] > params.plant_grey_matter


def test_easy_preset_plants_on_a_voxel_deep_in_the_search_spheres(tmp_path):
    easy = simulate_cohort(tmp_path, n_subjects=3, n_volumes=30, resolution_mm=4, preset="easy",
                           random_state=2, anatomy=False)
    gm_img = datasets.load_mni152_gm_template(resolution=4)
    gm = gm_img.get_fdata()
    sites = np.array(list(DLPFC_SITES.values()))
    for _, row in easy.truth_table.iterrows():
        centre = row[["x", "y", "z"]].to_numpy(float)
        assert row["preset"] == "easy"
        assert np.min(np.linalg.norm(sites - centre, axis=1)) <= 20 - 6 + 1e-6
        ijk = nib.affines.apply_affine(np.linalg.inv(gm_img.affine), centre)
        np.testing.assert_allclose(ijk, np.rint(ijk), atol=1e-6)  # on the grid
        assert gm[tuple(np.rint(ijk).astype(int))] > 0.5
    description = json.loads((easy.fmriprep_dir / "dataset_description.json").read_text())
    assert "easy preset" in description["Name"] and description["SimulatorPreset"] == "easy"
    assert json.loads((easy.truth_dir / "simulation.json").read_text())["preset"] == "easy"
    assert "easy preset" in (tmp_path / "SIMULATED_DATA.txt").read_text()


def test_truth_outside_derivatives(cohort):
    assert not list(cohort.fmriprep_dir.rglob("*truth*"))
    assert cohort.truth_dir.parent == cohort.fmriprep_dir.parent
    assert (cohort.truth_dir / "targets_truth.tsv").is_file()
    record = json.loads((cohort.truth_dir / "simulation.json").read_text())
    assert record["random_state"] == 3 and "trdnet" in record["software"]
    assert record["signal_parameters"]["effect_size"] == SignalParameters().effect_size


def test_every_json_says_simulated(cohort, sessions_cohort):
    for sim in (cohort, sessions_cohort):
        files = list(sim.fmriprep_dir.parent.rglob("*.json"))
        assert len(files) > 5
        for path in files:
            content = json.loads(path.read_text())
            assert content.get("Simulated") is True or all(
                value.get("Simulated") is True for value in content.values()
            ), path


def _roi_signals(cohort, coords):
    bold = _bold(cohort)
    img = nib.load(bold)
    mask = np.asanyarray(nib.load(str(bold).replace("desc-preproc_bold", "desc-brain_mask")).dataobj) > 0
    space = VoxelSpace(mask, img.affine, SPACE)
    data = np.asarray(img.dataobj, dtype=np.float32)[mask].T
    data = data - data.mean(axis=0)
    gs = data.mean(axis=1, keepdims=True)
    data = data - gs @ np.linalg.lstsq(gs, data, rcond=None)[0]  # simple GSR
    signals = [data[:, space.sphere_columns(c, 5.0)].mean(axis=1) for c in coords]
    return np.corrcoef(np.array(signals))


def test_dmn_rois_correlate_more_within_than_with_ecn(cohort):
    rois = datasets.fetch_coords_seitzman_2018()
    labels = np.asarray(rois.networks)
    xyz = rois.rois[["x", "y", "z"]].to_numpy(float)
    dmn = np.flatnonzero(labels == "DefaultMode")[:15]
    ecn = np.flatnonzero(labels == "FrontoParietal")[:15]
    corr = _roi_signals(cohort, xyz[np.concatenate([dmn, ecn])])
    within = corr[:15, :15][~np.eye(15, dtype=bool)].mean()
    between = corr[:15, 15:].mean()
    assert within > between + 0.2


@pytest.mark.slow  # two more simulated cohorts
def test_same_seed_same_tables_other_seed_other_targets(cohort, tmp_path):
    again = simulate_cohort(tmp_path / "again", **SMALL, random_state=3)
    for name in ("sub-01/func/sub-01_task-rest_desc-confounds_timeseries.tsv",
                 "sub-02/func/sub-02_task-rest_desc-confounds_timeseries.tsv"):
        assert (again.fmriprep_dir / name).read_bytes() == (cohort.fmriprep_dir / name).read_bytes()
    assert (again.truth_dir / "targets_truth.tsv").read_bytes() == (
        cohort.truth_dir / "targets_truth.tsv").read_bytes()
    other = simulate_cohort(tmp_path / "other", **SMALL, random_state=4)
    assert not np.allclose(other.truth_table[["x", "y", "z"]], cohort.truth_table[["x", "y", "z"]])


def test_rerun_reuses_or_refuses(cohort):
    out = cohort.fmriprep_dir.parent
    before = (cohort.truth_dir / "simulation.json").stat().st_mtime_ns
    same = simulate_cohort(out, **SMALL, random_state=3)
    assert (cohort.truth_dir / "simulation.json").stat().st_mtime_ns == before
    pd.testing.assert_frame_equal(same.truth_table, cohort.truth_table)
    with pytest.raises(InputError, match="overwrite"):
        simulate_cohort(out, **SMALL, random_state=99)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"resolution_mm": 5}, "resolution_mm"),
        ({"confounds_suffix": "confounds"}, "confounds_suffix"),
        ({"effect_sise": 1.0}, "effect_sise"),
        ({"network_correlations": {"DMN|ECN": -0.99, "SN|ECN": 0.99, "DMN|SN": 0.99}}, "positive"),
    ],
)
def test_bad_arguments_raise(tmp_path, kwargs, match):
    with pytest.raises(SettingsError, match=match):
        simulate_cohort(tmp_path, n_subjects=1, n_volumes=30, **{"resolution_mm": 4, **kwargs})


# ---------------------------------------------------------------- the difficulties, one switch each


@pytest.fixture(scope="module")
def anatomy_3mm():
    from trdnet.inputs.simulate.anatomy import _load_anatomy

    return _load_anatomy(3, preset_parameters("realistic"))


def _neighbour_and_lag_correlation(noise, anat):
    space = VoxelSpace(anat.mask, anat.affine, SPACE)
    index = space.column_index()
    inside = np.argwhere(anat.mask)
    rng = np.random.default_rng(0)
    picks = inside[rng.choice(len(inside), 400, replace=False)]
    pairs = [(index[tuple(p)], index[tuple(p + [1, 0, 0])]) for p in picks
             if anat.mask[tuple(p + [1, 0, 0])]]
    a, b = (noise[:, [p[k] for p in pairs]] for k in (0, 1))
    a, b = (x - x.mean(axis=0) for x in (a, b))
    spatial = np.mean((a * b).sum(axis=0) / np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0)))
    centred = noise - noise.mean(axis=0)
    lag = np.mean((centred[1:] * centred[:-1]).sum(axis=0) / (centred * centred).sum(axis=0))
    return spatial, lag


def test_noise_smoothness_and_autocorrelation_are_as_set(anatomy_3mm):
    from trdnet.inputs.simulate.signals import _noise

    # 200 volumes: the lag-1 estimate's small-sample bias (about -(1 + 4 * 0.4) / 200 = -0.013) is a third of
    # the tolerance; the spatial estimate does not depend on the length
    params = preset_parameters("realistic", noise=2.0, noise_fwhm_mm=6.0, noise_ar1=0.4)
    noise = _noise(np.random.default_rng(1), anatomy_3mm, params, 200)
    spatial, lag = _neighbour_and_lag_correlation(noise, anatomy_3mm)
    # A Gaussian of FWHM f correlates points d apart by exp(-d^2 / (4 sigma^2)), sigma = f / 2.3548:
    # 0.71 for 3 mm neighbours at 6 mm FWHM.
    expected = np.exp(-(3.0**2) / (4 * (6.0 / 2.3548) ** 2))
    assert spatial == pytest.approx(expected, abs=0.04)
    assert lag == pytest.approx(0.4, abs=0.04)
    assert noise.std() == pytest.approx(2.0, rel=0.03)

    white = _noise(np.random.default_rng(1), anatomy_3mm,
                   preset_parameters("easy", noise=2.0), 200)
    spatial, lag = _neighbour_and_lag_correlation(white, anatomy_3mm)
    assert abs(spatial) < 0.03 and abs(lag) < 0.03
    assert white.std() == pytest.approx(2.0, rel=0.03)


def test_shared_region_is_anticorrelated_in_everyone_and_switches_off(anatomy_3mm):
    from trdnet.inputs.simulate.anatomy import _participant

    anat = anatomy_3mm
    params = preset_parameters("realistic")
    space = VoxelSpace(anat.mask, anat.affine, SPACE)
    near = space.sphere_columns(params.shared_center_mm, 4.0)
    rows = {}
    for weight in (params.shared_weight, 0.0):
        changed = preset_parameters("realistic", shared_weight=weight)
        rows[weight] = [_participant(anat, changed, np.random.default_rng(s))["sgacc_row"] for s in range(4)]
    for with_shared, without in zip(rows[params.shared_weight], rows[0.0]):
        # The same draws with and without the shared region differ by its profile alone.
        np.testing.assert_allclose(without - with_shared, params.shared_weight * anat.shared_profile, atol=1e-5)
        assert with_shared[near].mean() < without[near].mean() - 0.8 * params.shared_weight


def test_network_signal_leaks_into_the_sgacc_only_when_set(anatomy_3mm):
    from trdnet.inputs.simulate.anatomy import _load_anatomy

    sealed = _load_anatomy(3, preset_parameters("realistic", sgacc_network_leak=0.0))
    leaky = anatomy_3mm
    core = (sealed.sgacc_loading >= 1.0 - 1e-6) & (sealed.gm > 0.5)
    assert core.sum() > 0
    assert np.abs(sealed.network_loadings[:, core]).max() == 0.0
    dmn = leaky.network_names.index("DMN")
    np.testing.assert_allclose(leaky.network_loadings[dmn, core], 0.5 * leaky.gm[core], rtol=1e-5)
    # The seed region the simulator plants is not the analysis's default Fox 2012 sphere.
    assert tuple(SignalParameters().sgacc_center_mm) != (6.0, 16.0, -10.0)


def test_unknown_preset_or_plant_region_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="preset 'hard'"):
        simulate_cohort(tmp_path, n_subjects=1, n_volumes=30, resolution_mm=4, preset="hard")
    with pytest.raises(SettingsError, match="plant_region"):
        simulate_cohort(tmp_path, n_subjects=1, n_volumes=30, resolution_mm=4, plant_region="cube")
