"""End to end on derivatives folders trdnet did not write."""

import html
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from trdnet.cli import main
from trdnet.config import Settings
from trdnet.errors import SettingsError
from trdnet.inputs.bids import find_runs
from trdnet.outputs import read_tsv
from trdnet.pipeline import process_run

from conftest import write_mni_run

FAST = ["--n-bootstrap", "5", "--no-report"]


@pytest.fixture(scope="module")
def foreign_derivatives(tmp_path_factory):
    """4 mm MNI grid, two sessions, two runs, the old confounds name, TR 1.5 s."""
    root = tmp_path_factory.mktemp("foreign") / "fmriprep"
    write_mni_run(root, "A01", ses="pre", run="1", tr=1.5, seed=1, confounds_suffix="regressors")
    write_mni_run(root, "A01", ses="post", run="2", tr=1.5, seed=2)
    write_mni_run(root, "B02", tr=1.5, seed=3, confounds_suffix="regressors")
    return root


#: sub-B02's settings in the tests that call ``process_run`` (the run's minimum length, 5 resamples).
B02_SETTINGS = {"denoise": {"min_volumes": 40, "min_minutes": 1.0}, "targeting": {"n_bootstrap": 5}}


@pytest.fixture(scope="module")
def processed_b02(foreign_derivatives, tmp_path_factory):
    """sub-B02 of ``foreign_derivatives`` processed by ``process_run`` with :data:`B02_SETTINGS`, once per module:
    (output folder, the run's result). Read only: a test works on a copy. The same inputs and settings give the
    same files (:func:`test_same_inputs_give_byte_identical_tables`), so a copy stands for a run of the test's own.
    """
    out = tmp_path_factory.mktemp("processed-b02") / "out"
    run = find_runs(foreign_derivatives, participant_labels=["B02"])[0]
    result = process_run(run, out, Settings.from_dict(B02_SETTINGS))
    assert result.status == "done", result.error
    return out, result


def test_cli_runs_a_foreign_folder_and_resumes(foreign_derivatives, tmp_path, capsys):
    out = tmp_path / "out"
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({"denoise": {"min_volumes": 40, "min_minutes": 1.0}}))
    args = [str(foreign_derivatives), str(out), "participant", "--settings", str(settings_file), *FAST]
    assert main(["run", *args]) == 0
    first = capsys.readouterr().out
    assert first.count(": done;") == 4  # three runs, and the participant step of sub-A01's two runs
    prefix = "sub-A01_ses-pre_task-rest_run-1_space-MNI152NLin2009cAsym"
    func = out / "sub-A01" / "ses-pre" / "func"
    for suffix in ("_seg-Seitzman2018_timeseries.tsv", "_seg-Seitzman2018_meas-PearsonCorrelation_relmat.tsv",
                   "_networks.tsv", "_graph.tsv", "_stat-r_desc-sgacc_boldmap.nii.gz", "_targets.tsv", "_qc.tsv"):
        assert (func / f"{prefix}{suffix}").is_file(), suffix
        sidecar = json.loads((func / f"{prefix}{suffix.split('.')[0]}.json").read_text())
        assert sidecar["Simulated"] is False and sidecar["Settings"]["denoise"]["min_volumes"] == 40
    targets = read_tsv(func / f"{prefix}_targets.tsv")
    assert {"personalised", "5cm", "f3_beam", "ba9", "ba46"} <= set(targets["target"])
    assert set(targets["space"]) == {"MNI152NLin2009cAsym"}
    halves = read_tsv(func / f"{prefix}_desc-splithalf_targets.tsv")
    assert list(halves["half"]) == ["first", "second"]
    assert halves["n_volumes"].sum() == read_tsv(func / f"{prefix}_qc.tsv").loc[0, "n_retained"]
    personalised = targets[targets["target"] == "personalised"].iloc[0]
    between_halves = np.linalg.norm(np.diff(halves[["x", "y", "z"]].to_numpy(float), axis=0))
    assert between_halves == pytest.approx(personalised["split_half_mm"], abs=1e-4)
    assert "half" in json.loads((func / f"{prefix}_desc-splithalf_targets.json").read_text())["Columns"]
    networks = read_tsv(func / f"{prefix}_networks.tsv")
    assert len(networks) == 6 and networks["n_pairs"].gt(0).all()
    qc = read_tsv(func / f"{prefix}_qc.tsv")
    assert qc.loc[0, "tr"] == 1.5
    before = (func / f"{prefix}_targets.tsv").stat().st_mtime_ns

    assert main(["run", *args]) == 0
    assert capsys.readouterr().out.count(": skipped;") == 4
    assert (func / f"{prefix}_targets.tsv").stat().st_mtime_ns == before

    # other settings must not be mixed into the same folder: refused before any work, nothing written
    records = {p: p.read_bytes() for p in sorted((out / "logs").rglob("*")) if p.is_file()}
    assert main(["run", *args, "--no-gsr"]) == 2
    assert "other settings" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in sorted((out / "logs").rglob("*")) if p.is_file()} == records
    assert not (out / "failures.tsv").exists()
    # --overwrite lets them in, run by run: one participant's run is enough to show it (the refusal above is
    # made run by run over the runs selected, so selecting fewer runs does not get round it)
    assert main(["run", *args, "--no-gsr", "--overwrite", "--participant-label", "B02"]) == 0
    assert not (out / "failures.tsv").exists()
    rerun = json.loads(next(out.glob("sub-B02/func/*_targets.json")).read_text())
    assert rerun["Settings"]["denoise"]["global_signal"] == "none"


def test_same_inputs_give_byte_identical_tables(foreign_derivatives, processed_b02, tmp_path):
    first, a = processed_b02  # one run, processed for the module
    run = find_runs(foreign_derivatives, participant_labels=["B02"])[0]
    b = process_run(run, tmp_path / "b", Settings.from_dict(B02_SETTINGS))
    assert a.files == b.files
    for name in a.files:
        if name.endswith(".tsv"):
            assert (first / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_bad_inputs_give_one_line_and_nonzero_exit(tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing"), str(tmp_path / "out"), "participant"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("trdnet: error:") and "\n" not in err and "missing" in err


@pytest.mark.slow  # a folder of runs through the command line
def test_failed_run_is_recorded_and_others_continue(tmp_path, capsys):
    root = tmp_path / "fmriprep"
    write_mni_run(root, "01", seed=1)
    broken = write_mni_run(root, "02", seed=2)
    table = pd.read_csv(broken["confounds"], sep="\t")
    table.iloc[:-5].to_csv(broken["confounds"], sep="\t", index=False, na_rep="n/a")
    settings_file = tmp_path / "s.json"
    settings_file.write_text(json.dumps({"denoise": {"min_volumes": 40, "min_minutes": 1.0}}))
    code = main(["run", str(root), str(tmp_path / "out"), "participant", "--settings", str(settings_file), *FAST])
    assert code == 1
    failures = pd.read_csv(tmp_path / "out" / "failures.tsv", sep="\t")
    assert failures["participant_id"].tolist() == ["sub-02"]
    assert "115 rows" in failures.loc[0, "reason"]
    assert (tmp_path / "out" / "logs" / "sub-01_task-rest_space-MNI152NLin2009cAsym_done.json").is_file()


def test_settings_mismatch_error_names_the_record(foreign_derivatives, processed_b02, tmp_path):
    run = find_runs(foreign_derivatives, participant_labels=["B02"])[0]
    shutil.copytree(processed_b02[0], tmp_path, dirs_exist_ok=True)  # B02 processed with B02_SETTINGS
    other = Settings.from_dict({"denoise": {"min_volumes": 41, "min_minutes": 1.0},
                                "targeting": {"n_bootstrap": 5}})
    with pytest.raises(SettingsError, match="_done.json"):
        process_run(run, tmp_path, other)
    assert np.isfinite(process_run(run, tmp_path, other, overwrite=True).summary["target_x"])


def test_a_run_finished_under_an_earlier_versions_names_is_rewritten_not_mixed(foreign_derivatives, processed_b02,
                                                                             tmp_path):
    settings = Settings.from_dict(B02_SETTINGS)
    run = find_runs(foreign_derivatives, participant_labels=["B02"])[0]
    shutil.copytree(processed_b02[0], tmp_path, dirs_exist_ok=True)  # B02 processed with these settings
    func = tmp_path / run.subject_dir
    new, old = (f"{run.prefix}_{tail}_boldmap" for tail in ("stat-r_desc-sgacc", "desc-sgacc_stat-r"))
    # the seed map as an earlier version named it, listed so in the run's completion record
    for extension in (".nii.gz", ".json"):
        (func / f"{new}{extension}").rename(func / f"{old}{extension}")
    record = tmp_path / "logs" / f"{run.prefix}_done.json"
    record.write_text(record.read_text().replace(new, old))
    result = process_run(run, tmp_path, settings)
    assert result.status == "done"  # not skipped: rewritten under the current names
    assert (func / f"{new}.nii.gz").is_file() and (func / f"{new}.json").is_file()
    assert not list(func.glob("*desc-sgacc_stat-r*"))
    assert process_run(run, tmp_path, settings).status == "skipped"


@pytest.mark.slow  # three whole runs
def test_gsr_both_reports_the_distance_between_targets(foreign_derivatives, tmp_path):
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({"denoise": {"min_volumes": 40, "min_minutes": 1.0}}))
    out = tmp_path / "out"
    assert main(["run", str(foreign_derivatives), str(out), "participant", "--participant-label", "B02",
                 "--settings", str(settings_file), "--gsr", "both", *FAST]) == 0
    table = read_tsv(next(out.glob("sub-B02/func/*_space-MNI152NLin2009cAsym_targets.tsv")))
    personalised = table[table["target"] == "personalised"].iloc[0]
    assert personalised["other_gsr"] == "off"
    expected = np.linalg.norm(personalised[["x", "y", "z"]].to_numpy(float)
                              - personalised[["other_gsr_x", "other_gsr_y", "other_gsr_z"]].to_numpy(float))
    assert personalised["gsr_distance_mm"] == pytest.approx(expected, abs=1e-5)
    assert table.loc[table["target"] == "5cm", "gsr_distance_mm"].isna().all()
    # The comparison target is the one a separate run without GSR finds, and that run's target differs
    # from the GSR run's: a comparison cleaned with GSR again would fail here.
    run = find_runs(foreign_derivatives, participant_labels=["B02"])[0]
    targets = {}
    for gsr in ("basic", "none"):
        settings = Settings.from_dict({"denoise": {"min_volumes": 40, "min_minutes": 1.0, "global_signal": gsr},
                                       "targeting": {"reliability": False}})
        process_run(run, tmp_path / gsr, settings)
        alone = read_tsv(next((tmp_path / gsr).glob("sub-B02/func/*_space-MNI152NLin2009cAsym_targets.tsv")))
        targets[gsr] = alone.loc[alone["target"] == "personalised", ["x", "y", "z"]].to_numpy(float)[0]
    np.testing.assert_allclose(personalised[["x", "y", "z"]].to_numpy(float), targets["basic"], atol=1e-4)
    np.testing.assert_allclose(personalised[["other_gsr_x", "other_gsr_y", "other_gsr_z"]].to_numpy(float),
                               targets["none"], atol=1e-4)
    assert np.linalg.norm(targets["basic"] - targets["none"]) > 1.0


@pytest.mark.slow  # the folder processed twice, then resumed
def test_group_map_is_a_setting_checked_on_resume(foreign_derivatives, tmp_path, capsys):
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({"denoise": {"min_volumes": 40, "min_minutes": 1.0}}))
    out = tmp_path / "out"
    base = ["run", str(foreign_derivatives), str(out), "participant", "--settings", str(settings_file), *FAST]
    assert main(base) == 0
    loo = [*base, "--target-method", "cluster", "seedmap", "--group-map", "loo"]
    assert main(loo) == 2  # a different group map is a different analysis: refused before any work
    assert "other settings" in capsys.readouterr().err
    assert main([*loo, "--overwrite"]) == 0
    capsys.readouterr()
    targets = next(out.glob("sub-B02/func/*_targets.tsv"))
    table = read_tsv(targets)
    assert set(table["method"].dropna()) >= {"cluster", "seedmap"}
    sidecar = json.loads(targets.with_suffix(".json").read_text())
    assert sidecar["Settings"]["targeting"]["group_map"] == "loo"
    assert main(loo) == 0
    assert capsys.readouterr().out.count(": skipped;") == 4  # three runs and sub-A01's participant step


def test_export_reads_the_run_settings_file(foreign_derivatives, tmp_path):
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({"denoise": {"min_volumes": 40, "min_minutes": 1.0},
                                         "export": {"formats": ["localite"]}}))
    out = tmp_path / "out"
    assert main(["run", str(foreign_derivatives), str(out), "participant", "--participant-label", "B02",
                 "--settings", str(settings_file), *FAST]) == 0
    func = out / "sub-B02" / "func"
    for written in func.glob("*desc-navtargets*"):
        written.unlink()
    assert main(["export", str(foreign_derivatives), str(out), "--participant-label", "B02",
                 "--settings", str(settings_file)]) == 0
    formats = {p.name.split("desc-navtargets_")[1] for p in func.glob("*desc-navtargets*")}
    assert any(name.startswith("localite") for name in formats)
    assert not any(name.startswith(("brainsight", "dseg")) for name in formats)


@pytest.mark.slow  # a folder of runs, then the group step and the reports
def test_cli_group_and_report_commands(foreign_derivatives, tmp_path, capsys):
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({"denoise": {"min_volumes": 40, "min_minutes": 1.0}}))
    out = tmp_path / "out"
    assert main(["run", str(foreign_derivatives), str(out), "participant", "--settings", str(settings_file),
                 *FAST]) == 0
    participants = tmp_path / "participants.tsv"
    participants.write_text("participant_id\tdiagnosis\nsub-A01\tTRD\nsub-B02\tcontrol\n")
    assert main(["run", str(foreign_derivatives), str(out), "group", "--participants-tsv", str(participants),
                 "--group-column", "diagnosis", "--exclude-fd", "10", "--no-report"]) == 0
    networks = read_tsv(out / "group" / "networks.tsv")
    assert sorted(networks["participant_id"].unique()) == ["sub-A01", "sub-B02"]
    assert not (out / "group.html").exists()
    capsys.readouterr()
    assert main(["report", str(out), "--participant-label", "B02", "--n-jobs", "1"]) == 0
    printed = capsys.readouterr().out.split()
    assert any(p.endswith("sub-B02.html") for p in printed) and any(p.endswith("group.html") for p in printed)
    assert not (out / "sub-A01.html").exists() and (out / "sub-B02.html").is_file()


def _mask_like(reference_img, xyz_center, radius_mm, path):
    """A sphere mask on ``reference_img``'s grid, inside its non-zero voxels."""
    inside = np.asanyarray(reference_img.dataobj) > 0
    ijk = np.argwhere(inside)
    xyz = nib.affines.apply_affine(reference_img.affine, ijk)
    mask = np.zeros(inside.shape, np.uint8)
    mask[tuple(ijk[np.linalg.norm(xyz - xyz_center, axis=1) < radius_mm].T)] = 1
    nib.save(nib.Nifti1Image(mask, reference_img.affine), path)
    return str(path)


@pytest.mark.slow  # a whole run through the command line
def test_t1w_space_run_with_user_regions(tmp_path, capsys):
    """A run in the participant's T1w space: user masks and atlas, targets and sites keep their own spaces."""
    root = tmp_path / "fmriprep"
    paths = write_mni_run(root, "01", space="T1w", seed=1)
    brain = nib.load(paths["mask"])
    labels = np.zeros(brain.shape, np.int16)
    networks = {1: ((0, -52, 26), "DMN"), 2: ((0, 50, -5), "DMN"), 3: ((38, 20, 0), "SN"),
                4: ((-38, 20, 0), "SN"), 5: ((44, 30, 30), "ECN"), 6: ((-44, 30, 30), "ECN")}
    for value, (center, _) in networks.items():
        sphere = nib.load(_mask_like(brain, center, 10, tmp_path / "tmp.nii.gz"))
        labels[np.asanyarray(sphere.dataobj) > 0] = value
    nib.save(nib.Nifti1Image(labels, brain.affine), tmp_path / "atlas.nii.gz")
    pd.DataFrame({"index": list(networks), "name": [f"roi{v}" for v in networks],
                  "network": [n for _, n in networks.values()]}).to_csv(tmp_path / "atlas.tsv", sep="\t", index=False)
    settings = {
        "denoise": {"min_volumes": 40, "min_minutes": 1.0},
        "networks": {"atlas": "labels", "labels_img": str(tmp_path / "atlas.nii.gz"),
                     "labels_table": str(tmp_path / "atlas.tsv")},
        "targeting": {"seed_mask": _mask_like(brain, (6, 16, -10), 12, tmp_path / "seed.nii.gz"),
                      "search_mask": _mask_like(brain, (-40, 30, 40), 22, tmp_path / "search.nii.gz")},
    }
    out = tmp_path / "out"
    # Each missing region gets a reason naming what to set.
    for missing, reason in (("networks", "or a labels image in the run's space"),
                            ("seed_mask", "give targeting.seed_mask in the data space"),
                            ("search_mask", "give targeting.search_mask in the data space")):
        partial = json.loads(json.dumps(settings))
        partial.pop(missing, None)
        partial["targeting"].pop(missing, None)
        (tmp_path / "partial.json").write_text(json.dumps(partial))
        assert main(["run", str(root), str(tmp_path / "refused"), "participant", "--space", "T1w", "--settings",
                     str(tmp_path / "partial.json"), "--no-report"]) == 1
        assert reason in pd.read_csv(tmp_path / "refused" / "failures.tsv", sep="\t").loc[0, "reason"]
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    assert main(["run", str(root), str(out), "participant", "--space", "T1w", "--settings",
                 str(tmp_path / "settings.json"), "--n-bootstrap", "5", "--n-jobs", "1"]) == 0
    assert "mm T1w" in capsys.readouterr().out
    table = read_tsv(next(out.glob("sub-01/func/*_space-T1w_targets.tsv")))
    personalised = table[table["target"] == "personalised"].iloc[0]
    assert personalised["space"] == "T1w"
    sites = table[table["method"] == "reference"]
    assert set(sites["space"]) == {"MNI152NLin2009cAsym"} and sites["r_sgacc"].isna().all()
    record = json.loads(next((out / "logs").glob("*_done.json")).read_text())
    assert "no navigator files" in record["Summary"]["navigation_note"]
    page = (out / "sub-01.html").read_text()
    assert "sites given in another space are listed but not drawn" in page


@pytest.mark.slow  # simulated anatomy and a whole run
def test_t1w_space_run_finds_mni_regions_through_the_fmriprep_transform(simulated_anat, tmp_path, capsys):
    """A T1w-space run with fMRIPrep's anat/ transforms: regions are looked up at each voxel's MNI position."""
    from trdnet.denoise import clean_run
    from trdnet.targeting import search_columns, seed_columns
    from trdnet.template_lookup import with_template_coordinates

    root = tmp_path / "fmriprep"
    anat = simulated_anat.copy(root)
    write_mni_run(root, "01", space="T1w", seed=1)
    settings = Settings.from_dict({"denoise": {"min_volumes": 40, "min_minutes": 1.0},
                                   "targeting": {"n_bootstrap": 5}})
    run = find_runs(root, space="T1w")[0]
    native, transform = with_template_coordinates(clean_run(run, settings.denoise), run.anatomy)
    assert transform.name.endswith("_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5")
    truth = anat["truth"].t1w_to_mni(native.space.xyz)  # the simulator's own formula, not nitransforms
    np.testing.assert_allclose(native.space.template_xyz, truth, atol=1e-3)
    near_seed = np.linalg.norm(truth - np.array(settings.targeting.seed_center_mm), axis=1)
    np.testing.assert_array_equal(seed_columns(native.space, settings.targeting),
                                  np.flatnonzero(near_seed <= settings.targeting.seed_radius_mm))
    assert search_columns(native.space, settings.targeting).size > 0

    (tmp_path / "settings.json").write_text(json.dumps(settings.to_dict() | {"space": "T1w"}))
    out = tmp_path / "out"
    assert main(["run", str(root), str(out), "participant", "--space", "T1w", "--settings",
                 str(tmp_path / "settings.json"), "--no-report"]) == 0
    assert "mm T1w" in capsys.readouterr().out
    func = out / "sub-01" / "func"
    table = read_tsv(next(func.glob("*_space-T1w_targets.tsv")))
    personalised = table[table["target"] == "personalised"].iloc[0]
    assert personalised["space"] == "T1w" and np.isfinite(personalised["r_sgacc"])
    sites = table[table["method"] == "reference"]
    assert set(sites["space"]) == {"MNI152NLin2009cAsym"} and np.isfinite(sites["r_sgacc"]).all()
    sidecar = json.loads(next(func.glob("*_space-T1w_targets.json")).read_text())
    assert sidecar["QC"]["template_transform"].endswith("_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5")
    assert "fMRIPrep transform" in sidecar["Targeting"]["regions_located_by"]
    networks = read_tsv(next(func.glob("*_networks.tsv")))
    assert networks["n_pairs"].gt(0).all()
    # navigator files: the T1w target as is, the MNI reference sites mapped to T1w
    coords = read_tsv(next(func.glob("*_space-T1w_desc-navtargets_coords.tsv")))
    assert set(coords["space"]) == {"T1w"}
    row = coords[coords["name"] == "personalised"].iloc[0]
    np.testing.assert_allclose(row[["x", "y", "z"]].to_numpy(float),
                               personalised[["x", "y", "z"]].to_numpy(float), atol=1e-4)
    site = coords[coords["name"] == "5cm"].iloc[0]
    np.testing.assert_allclose(site[["x", "y", "z"]].to_numpy(float),
                               anat["truth"].mni_to_t1w([(-41.0, 16.0, 54.0)])[0], atol=0.05)
    # the report draws the T1w map on the participant's own T1w
    assert main(["report", str(out), "--n-jobs", "1"]) == 0
    page = html.unescape((out / "sub-01.html").read_text())
    assert f"drawn on the participant's T1w ({anat['t1w'].name})" in page


def _own_entities(name: str, owner: dict) -> tuple[dict, str, str]:
    """Entities of an output beyond its owner's (run or participant), after checking the name is the
    one written in schema order and carries every entity of its owner."""
    from trdnet.entities import ENTITY_ORDER, parse_bids_name

    parsed = parse_bids_name(name)
    keys = list(parsed.entities)
    assert keys == sorted(keys, key=ENTITY_ORDER.index), f"{name}: entities out of schema order"
    assert "_".join(f"{k}-{v}" for k, v in parsed.entities.items()) + f"_{parsed.suffix}{parsed.extension}" == name
    navigator = parsed.entities.get("desc", "").endswith("navtargets")  # written in the navigation space
    for key, label in owner.items():
        if not (navigator and key == "space"):
            assert parsed.entities.get(key) == label, f"{name}: {key}-{parsed.entities.get(key)} != {key}-{label}"
    own = {k: v for k, v in parsed.entities.items() if k not in owner or (navigator and k == "space")}
    return own, parsed.suffix, parsed.extension


#: The entities each kind of output adds to its run's (beside desc, which any output may carry).
RUN_OUTPUT_ENTITIES = {"timeseries": {"seg"}, "relmat": {"seg", "meas"}, "boldmap": {"stat"}, "coords": {"space"},
                       "brainsight": {"space"}, "localiteEntryTarget": {"space"},
                       "localiteInstrumentMarker": {"space"}, "dseg": {"space"}}


def test_every_output_name_parses_back_to_its_runs_entities_in_schema_order(processed_cohort):
    from trdnet.entities import parse_entities, subject_folder
    from trdnet.records import finished_participants, finished_runs

    out = processed_cohort.out
    finished, broken = finished_runs(out)
    assert len(finished) == 6 and not broken
    participants = finished_participants(out)
    participant_files = {f for record in participants for f in record.files}
    for record in finished:
        run = parse_entities(record.prefix)
        folder = out / subject_folder(run)
        names = sorted(p.name for p in folder.iterdir() if str(p.relative_to(out)) not in participant_files)
        # the run's folder holds its recorded outputs (and the participant step's) and nothing else
        assert names == sorted(Path(f).name for f in record.files)
        kinds = set()
        for name in names:
            own, suffix, extension = _own_entities(name, run)
            assert set(own) - {"desc"} <= RUN_OUTPUT_ENTITIES.get(suffix, set()), name
            kinds.add((suffix, extension, tuple(own.items())))
        assert ("boldmap", ".nii.gz", (("stat", "r"), ("desc", "sgacc"))) in kinds
        assert f"{record.prefix}_stat-r_desc-sgacc_boldmap.nii.gz" in names
        assert ("relmat", ".tsv", (("seg", "Seitzman2018"), ("meas", "PearsonCorrelation"))) in kinds
        assert {("targets", ".tsv", ()), ("qc", ".tsv", ()), ("networks", ".tsv", ())} <= kinds
    assert len(participants) == 3
    for record in participants:
        owner = parse_entities(record.prefix)
        assert set(owner) == {"sub", "task", "space"}
        for name in (Path(f).name for f in record.files):
            own, suffix, _ = _own_entities(name, owner)
            assert own["desc"].startswith("participant"), name
            if own["desc"] == "participantnavtargets":  # navigator files: in the navigation space, per session
                assert set(own) - {"desc", "ses"} <= RUN_OUTPUT_ENTITIES.get(suffix, set()), name
            else:
                assert suffix == "targets" and set(own) == {"desc"}, name
        assert f"{record.prefix}_desc-participant_targets.tsv" in {Path(f).name for f in record.files}
