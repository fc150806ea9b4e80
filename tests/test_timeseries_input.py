"""ROI time-series input: reading, network labels, folder discovery and errors."""

from __future__ import annotations

import dataclasses
import html
import json

import numpy as np
import pandas as pd
import pytest
from conftest import confounds_table
from nilearn import signal

from trdnet.config import DenoiseSettings
from trdnet.errors import InputError
from trdnet.inputs.timeseries import (
    RoiTimeseriesRun,
    confounds_for,
    find_roi_timeseries_runs,
    normalise_network,
    parse_entities,
    read_labels_table,
    read_roi_timeseries,
)

ROIS = ["PCC", "mPFC", "dACC", "lIns", "lDLPFC", "V1"]
NETWORKS = ["DefaultMode", "Default", "Salience", "SalVentAttn", "FrontoParietal", "Visual"]


def write_tsv(path, n_volumes=20, rois=ROIS, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n_volumes, len(rois)))
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(data, columns=rois).to_csv(path, sep="\t", index=False)
    return data


@pytest.fixture
def labels_file(tmp_path):
    path = tmp_path / "labels.tsv"
    table = pd.DataFrame({"index": range(1, 7), "name": ROIS, "network": NETWORKS})
    table.to_csv(path, sep="\t", index=False)
    return path


def test_read_values_and_networks(tmp_path, labels_file):
    path = tmp_path / "sub-01_task-rest_timeseries.tsv"
    data = write_tsv(path)
    signals, rois = read_roi_timeseries(path, labels_file, tr=2.0)
    assert signals.dtype == np.float64
    np.testing.assert_allclose(signals, data, rtol=1e-12)
    assert list(rois["roi"]) == ROIS
    assert list(rois["network"]) == ["DMN", "DMN", "SN", "SN", "ECN", "Visual"]
    assert rois.attrs["tr"] == 2.0


def test_columns_follow_file_order_not_table_order(tmp_path):
    path = tmp_path / "sub-01_timeseries.tsv"
    data = write_tsv(path, rois=["b", "a"])
    signals, rois = read_roi_timeseries(path, {"a": "DMN", "b": "ECN", "unused": "SN"})
    assert list(rois["roi"]) == ["b", "a"] and list(rois["network"]) == ["ECN", "DMN"]
    np.testing.assert_allclose(signals[:, 1], data[:, 1])


def test_mapping_network_to_rois(tmp_path):
    path = tmp_path / "sub-01_timeseries.tsv"
    write_tsv(path)
    mapping = {"DMN": ["PCC", "mPFC"], "SN": ["dACC", "lIns"], "ECN": ["lDLPFC"], "Visual": ["V1"]}
    _, rois = read_roi_timeseries(path, mapping)
    assert list(rois["network"]) == ["DMN", "DMN", "SN", "SN", "ECN", "Visual"]


def test_tr_from_sidecar(tmp_path, labels_file):
    path = tmp_path / "sub-01_task-rest_timeseries.tsv"
    write_tsv(path)
    assert read_roi_timeseries(path, labels_file)[1].attrs["tr"] is None
    (tmp_path / "sub-01_task-rest_timeseries.json").write_text(json.dumps({"SamplingFrequency": 0.5}))
    assert read_roi_timeseries(path, labels_file)[1].attrs["tr"] == pytest.approx(2.0)
    with pytest.raises(InputError, match="positive"):
        read_roi_timeseries(path, labels_file, tr=-1)


def test_nan_is_refused_naming_the_file(tmp_path, labels_file):
    path = tmp_path / "sub-01_timeseries.tsv"
    write_tsv(path)
    table = pd.read_csv(path, sep="\t")
    table.loc[4, "dACC"] = np.nan
    table.to_csv(path, sep="\t", index=False)
    with pytest.raises(InputError) as info:
        read_roi_timeseries(path, labels_file)
    message = str(info.value)
    assert str(path) in message and "volume 4" in message and "dACC" in message and "\n" not in message


def test_text_values_are_refused(tmp_path, labels_file):
    path = tmp_path / "sub-01_timeseries.tsv"
    write_tsv(path)
    table = pd.read_csv(path, sep="\t").astype(object)
    table.loc[2, "PCC"] = "oops"
    table.to_csv(path, sep="\t", index=False)
    with pytest.raises(InputError, match="non-numeric.*PCC"):
        read_roi_timeseries(path, labels_file)


def test_labels_not_matching_columns(tmp_path, labels_file):
    path = tmp_path / "sub-01_timeseries.tsv"
    write_tsv(path, rois=[*ROIS, "Amygdala"])
    expected = r"1 of 7 columns are not in the labels table's 'name' column \(Amygdala\)"
    with pytest.raises(InputError, match=expected) as info:
        read_roi_timeseries(path, labels_file)
    assert str(path) in str(info.value)


def test_labels_without_network_column(tmp_path):
    path = tmp_path / "sub-01_timeseries.tsv"
    write_tsv(path)
    labels = tmp_path / "atlas_labels.tsv"
    pd.DataFrame({"name": ROIS, "hemisphere": ["L"] * 6}).to_csv(labels, sep="\t", index=False)
    with pytest.raises(InputError, match="atlas_labels.tsv: no network column"):
        read_roi_timeseries(path, labels)


def test_labels_without_core_networks(tmp_path):
    path = tmp_path / "sub-01_timeseries.tsv"
    write_tsv(path, rois=["a", "b"])
    with pytest.raises(InputError, match="no column in DMN, SN or ECN"):
        read_roi_timeseries(path, {"a": "Visual", "b": "Motor"})


def test_duplicate_and_bad_mapping(tmp_path):
    with pytest.raises(InputError, match="more than once: a"):
        read_labels_table(pd.DataFrame({"roi": ["a", "a"], "network": ["DMN", "SN"]}))
    with pytest.raises(InputError, match="accepted"):
        read_labels_table({"a": 3})


def test_abide_1d_file(tmp_path):
    path = tmp_path / "Pitt_0050003_rois_cc200.1D"
    data = np.arange(30, dtype=float).reshape(10, 3)
    np.savetxt(path, data, header="#1\t#2\t#3", comments="")
    labels = pd.DataFrame({"roi": [1.0, 2.0, 3.0], "network": ["DMN", "SN", "ECN"]})
    signals, rois = read_roi_timeseries(path, labels)
    np.testing.assert_array_equal(signals, data)
    assert list(rois["roi"]) == ["1", "2", "3"]


def test_normalise_network_aliases():
    assert normalise_network("Default Mode") == "DMN"
    assert normalise_network("fronto-parietal") == "ECN"
    assert normalise_network("Cont") == "ECN"
    assert normalise_network("salience") == "SN"
    assert normalise_network("CinguloOpercular") == "CinguloOpercular"
    assert normalise_network(float("nan")) == ""


def test_parse_entities():
    assert parse_entities("sub-01_ses-2_task-rest_run-1_seg-Schaefer100_timeseries.tsv") == {
        "sub": "01",
        "ses": "2",
        "task": "rest",
        "run": "1",
        "seg": "Schaefer100",
    }


def test_find_runs_in_a_folder(tmp_path, labels_file):
    root = tmp_path / "derivs"
    write_tsv(root / "sub-02" / "func" / "sub-02_task-rest_seg-demo_timeseries.tsv", seed=2)
    data1 = write_tsv(root / "sub-01" / "ses-a" / "func" / "sub-01_ses-a_task-rest_timeseries.tsv", seed=1)
    (root / "sub-01" / "ses-a" / "func" / "sub-01_ses-a_task-rest_timeseries.json").write_text(
        json.dumps({"RepetitionTime": 0.8})
    )
    (root / "sub-01" / "notes.tsv").write_text("ignored\n")
    runs = find_roi_timeseries_runs(root, labels_file, already_cleaned=True)
    assert [r.subject for r in runs] == ["01", "02"]
    assert all(r.already_cleaned and r.confounds is None and "already cleaned" in r.notes[-1] for r in runs)
    assert all(isinstance(r, RoiTimeseriesRun) for r in runs)
    assert runs[0].tr == 0.8 and runs[1].tr is None
    assert runs[0].prefix == "sub-01_ses-a_task-rest"
    assert runs[1].prefix == "sub-02_task-rest"
    assert runs[1].entities["seg"] == "demo"
    signals, rois = runs[0].load()
    np.testing.assert_allclose(signals, data1)
    assert rois.attrs["tr"] == 0.8


def test_find_runs_errors(tmp_path, labels_file):
    with pytest.raises(InputError, match="not a folder"):
        find_roi_timeseries_runs(tmp_path / "missing", labels_file)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no \\*_timeseries.tsv file"):
        find_roi_timeseries_runs(tmp_path / "empty", labels_file)
    write_tsv(tmp_path / "nosub" / "task-rest_timeseries.tsv")
    with pytest.raises(InputError, match="no sub-<label>"):
        find_roi_timeseries_runs(tmp_path / "nosub", labels_file)
    bad = tmp_path / "bad" / "sub-03_task-rest_timeseries.tsv"
    write_tsv(bad, rois=["PCC", "Thalamus"])
    with pytest.raises(InputError, match="sub-03_task-rest_timeseries.tsv: 1 of 2 columns.*Thalamus"):
        find_roi_timeseries_runs(tmp_path / "bad", labels_file)


def test_cli_runs_roi_timeseries_through_the_network_stage(tmp_path, labels_file, capsys):
    from trdnet.cli import main

    root = tmp_path / "derivs"
    write_tsv(root / "sub-01" / "func" / "sub-01_task-rest_timeseries.tsv", n_volumes=120, seed=1)
    (root / "sub-01" / "func" / "sub-01_task-rest_timeseries.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    write_confounds(root / "sub-01" / "func" / "sub-01_task-rest_desc-confounds_timeseries.tsv", 120)
    out = tmp_path / "out"
    args = ["run", "--roi-timeseries", str(root), "--labels", str(labels_file), str(out), "participant",
            "--no-report"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "sub-01_task-rest: done; no target (skipped: the input is ROI time series" in printed
    assert "nan" not in printed
    networks = pd.read_csv(next(out.glob("sub-01/func/sub-01_task-rest*_networks.tsv")), sep="\t")
    assert {"DMN", "SN", "ECN"} <= set(networks["network_a"])
    record = json.loads((out / "logs" / "sub-01_task-rest_done.json").read_text())
    assert record["Summary"]["targeting"].startswith("skipped")
    assert main(args) == 0
    assert "sub-01_task-rest: skipped; no target" in capsys.readouterr().out


def write_confounds(path, n_volumes, seed=3, **kwargs):
    table = confounds_table(n_volumes, np.random.default_rng(seed), **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, sep="\t", index=False, na_rep="n/a")
    return table


def roi_run_with_confounds(tmp_path, labels_file, n_volumes=120, spikes=()):
    func = tmp_path / "derivs" / "sub-01" / "func"
    data = write_tsv(func / "sub-01_task-rest_space-MNI152NLin6Asym_seg-toy_timeseries.tsv", n_volumes, seed=1)
    (func / "sub-01_task-rest_space-MNI152NLin6Asym_seg-toy_timeseries.json").write_text(
        json.dumps({"RepetitionTime": 2.0}))
    table = write_confounds(func / "sub-01_task-rest_desc-confounds_timeseries.tsv", n_volumes, spikes=spikes)
    (run,) = find_roi_timeseries_runs(tmp_path / "derivs", labels_file)
    return run, data, table


def test_roi_run_without_confounds_is_refused_in_one_line(tmp_path, labels_file):
    path = tmp_path / "derivs" / "sub-01" / "func" / "sub-01_task-rest_seg-toy_timeseries.tsv"
    write_tsv(path)
    with pytest.raises(InputError) as info:
        find_roi_timeseries_runs(tmp_path / "derivs", labels_file)
    message = str(info.value)
    assert str(path) in message and "sub-01_task-rest_desc-confounds_timeseries.tsv" in message
    assert "--already-cleaned" in message and "\n" not in message


def test_roi_run_to_clean_without_repetition_time_is_refused(tmp_path, labels_file):
    func = tmp_path / "derivs" / "sub-01" / "func"
    write_tsv(func / "sub-01_task-rest_seg-toy_timeseries.tsv", 60)
    write_confounds(func / "sub-01_task-rest_desc-confounds_timeseries.tsv", 60)
    with pytest.raises(InputError, match="no repetition time .*sub-01_task-rest_seg-toy_timeseries.json"):
        find_roi_timeseries_runs(tmp_path / "derivs", labels_file)
    assert find_roi_timeseries_runs(tmp_path / "derivs", labels_file, already_cleaned=True)[0].tr is None


def test_confounds_of_the_same_run_are_found_and_not_taken_as_signals(tmp_path, labels_file):
    run, _, _ = roi_run_with_confounds(tmp_path, labels_file)
    assert run.confounds.name == "sub-01_task-rest_desc-confounds_timeseries.tsv"
    assert run.path.name.startswith("sub-01_task-rest_space-") and not run.already_cleaned


def test_roi_cleaning_equals_nilearn_signal_clean(tmp_path, labels_file):
    from trdnet.roi_denoise import clean_roi_run

    run, data, table = roi_run_with_confounds(tmp_path, labels_file, spikes=(40, 80))
    settings = DenoiseSettings()
    cleaned = clean_roi_run(run, settings)
    # Plain nilearn: the 24 motion parameters, WM/CSF, global signal, FD/DVARS censoring, band-pass.
    motion = [c for c in table if c.startswith(("trans_", "rot_"))]
    # load_confounds replaces the derivatives' n/a at the first volume by the second volume's value
    regressors = table[[*motion, "white_matter", "csf", "global_signal"]].bfill().to_numpy()
    censored = (table["framewise_displacement"] > 0.5) | (table["std_dvars"] > 1.5)
    assert censored.any()
    retained = np.flatnonzero(~censored.to_numpy())
    # nilearn's scrubbing also drops retained segments shorter than 5 volumes
    assert set(cleaned.retained) <= set(retained) and len(cleaned.retained) >= len(retained) - 8
    expected = signal.clean(data, confounds=regressors, sample_mask=cleaned.retained, detrend=True,
                            standardize=None, filter="butterworth", high_pass=0.01, low_pass=0.1, t_r=2.0)
    expected = (expected - expected.mean(0)) / expected.std(0)
    np.testing.assert_allclose(cleaned.signals, expected, atol=1e-3)
    assert cleaned.qc["n_censored"] == 120 - len(cleaned.retained) > 0
    assert cleaned.qc["n_confounds"] == 27


@pytest.mark.parametrize("change, settings, expected", [
    ("matrices", DenoiseSettings(), "rigid-body matrices"),
    ("no_derivatives", DenoiseSettings(), "motion='full' needs fMRIPrep's _derivative1/_derivative1_power2"),
    ("no_dvars", DenoiseSettings(), "scrubbing needs std_dvars"),
    ("no_global", DenoiseSettings(), "global_signal='none' (--gsr off) works without it"),
    ("no_motion", DenoiseSettings(motion="basic"), "every motion setting (basic included) needs fMRIPrep's six"),
])
def test_confounds_in_another_form_say_what_is_missing(tmp_path, labels_file, change, settings, expected):
    from trdnet.roi_denoise import clean_roi_run

    run, _, table = roi_run_with_confounds(tmp_path, labels_file)
    if change == "matrices":
        table = table.drop(columns=[c for c in table if c.startswith(("trans_", "rot_"))])
        for i in range(3):
            for j in range(3):
                table[f"motion_matrix_{i}{j}"] = float(i == j)
    elif change == "no_derivatives":
        table = table.drop(columns=[c for c in table if c.startswith(("trans_", "rot_")) and "derivative" in c])
    elif change == "no_motion":
        table = table.drop(columns=[c for c in table if c.startswith(("trans_", "rot_"))])
    elif change == "no_dvars":
        table = table.drop(columns=["std_dvars", "dvars"])
    else:
        table = table.drop(columns=[c for c in table if c.startswith("global_signal")])
    table.to_csv(run.confounds, sep="\t", index=False, na_rep="n/a")
    with pytest.raises(InputError) as info:
        clean_roi_run(run, settings)
    assert expected in str(info.value) and str(run.confounds) in str(info.value)


def test_settings_that_need_less_work_with_less(tmp_path, labels_file):
    from trdnet.roi_denoise import clean_roi_run

    run, _, table = roi_run_with_confounds(tmp_path, labels_file)
    basic = table[["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "white_matter", "csf",
                   "framewise_displacement"]]
    basic.to_csv(run.confounds, sep="\t", index=False, na_rep="n/a")
    settings = DenoiseSettings(motion="basic", global_signal="none", scrub=False)
    cleaned = clean_roi_run(run, settings)
    assert cleaned.qc["n_confounds"] == 8 and cleaned.qc["n_censored"] == 0


def test_cli_refuses_roi_runs_without_confounds_and_runs_them_when_declared_cleaned(tmp_path, labels_file,
                                                                                    capsys):
    from trdnet.cli import main

    root = tmp_path / "derivs"
    data = write_tsv(root / "sub-01" / "func" / "sub-01_task-rest_timeseries.tsv", n_volumes=60, seed=1)
    out = tmp_path / "out"
    args = ["run", "--roi-timeseries", str(root), "--labels", str(labels_file), str(out), "participant",
            "--no-report"]
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "no confounds table" in error and "Traceback" not in error
    assert not out.exists() or not list(out.rglob("*_networks.tsv"))
    assert main([*args, "--already-cleaned"]) == 0
    sidecar = json.loads(next(out.rglob("*_networks.json")).read_text())
    assert any("already cleaned" in note for note in sidecar["InputNotes"])
    qc = json.loads(next(out.rglob("*_qc.json")).read_text())
    assert qc["Denoising"]["already_cleaned"] is True
    written = pd.read_csv(next(out.rglob("*_seg-*_timeseries.tsv")), sep="\t").to_numpy()
    expected = (data - data.mean(0)) / data.std(0)
    np.testing.assert_allclose(written, expected, atol=1e-5)


def test_roi_run_report_draws_networks_and_qc_and_says_what_was_done(tmp_path, labels_file):
    from trdnet.cli import main

    root = tmp_path / "derivs"
    func = root / "sub-01" / "func"
    write_tsv(func / "sub-01_task-rest_space-MNI152NLin6Asym_timeseries.tsv", n_volumes=120, seed=1)
    (func / "sub-01_task-rest_space-MNI152NLin6Asym_timeseries.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    write_confounds(func / "sub-01_task-rest_desc-confounds_timeseries.tsv", 120, spikes=(50,))
    labels = pd.read_csv(labels_file, sep="\t")
    labels[["x", "y", "z"]] = [[0, -52, 27], [-1, 54, 27], [0, 21, 36], [-41, 3, 6], [-44, 45, 0], [10, -90, 0]]
    labels.to_csv(labels_file, sep="\t", index=False)
    out = tmp_path / "out"
    assert main(["run", "--roi-timeseries", str(root), "--labels", str(labels_file), str(out), "participant"]) == 0
    page = (out / "sub-01.html").read_text()
    assert "Carpet plot of 6 ROI signals" in page and "Framewise displacement" in page
    assert "ROI-by-ROI correlations" in page and "Glass-brain connectome" in page
    assert "Not computed: the input is ROI time series" in page
    assert "parcel-level ROI time series (6 ROIs" in page and "load_confounds" in page
    methods = page.split('<p class="methods">')[1].split("</p>")[0]  # the references cite trdnet's title
    assert "preprocessed with fMRIPrep" not in methods and "sgACC" not in methods
    citation = (out / "logs" / "CITATION.md").read_text()  # the same paragraph as the page: no seed, no target
    assert html.unescape(methods) in citation and "seed was" not in citation
    networks = pd.read_csv(next(out.rglob("*_networks.tsv")), sep="\t")
    dmn = networks[(networks["network_a"] == "DMN") & (networks["network_b"] == "DMN")]["mean_z"].iloc[0]
    assert f">{dmn:.3f}<" in page

    declared = tmp_path / "out-declared"
    (func / "sub-01_task-rest_desc-confounds_timeseries.tsv").unlink()
    assert main(["run", "--roi-timeseries", str(root), "--labels", str(labels_file), str(declared),
                 "participant", "--already-cleaned"]) == 0
    page = (declared / "sub-01.html").read_text()
    assert "About the input" in page and "signals declared already cleaned" in page
    assert "declared already cleaned and analysed as given" in page


def test_a_denoising_strategy_applies_to_roi_runs_with_confounds(tmp_path, labels_file):
    from trdnet.cli import main

    run, _, _ = roi_run_with_confounds(tmp_path, labels_file, spikes=(60,))
    out = tmp_path / "out"
    args = ["run", "--roi-timeseries", str(tmp_path / "derivs"), "--labels", str(labels_file), str(out),
            "participant", "--no-report", "--denoise-strategy", "simple"]
    assert main(args) == 0
    qc = json.loads(next(out.rglob("*_qc.json")).read_text())
    assert qc["Settings"]["denoise"]["scrub"] is False and qc["Denoising"]["input"] == "roi_timeseries"
    used = qc["Denoising"]["confounds_columns"]
    assert "global_signal" not in used and "trans_x_derivative1" in used and "csf" in used


def test_the_confounds_of_the_run_are_used_when_other_runs_tables_share_its_entities(tmp_path, labels_file):
    from trdnet.roi_denoise import clean_roi_run

    func = tmp_path / "derivs" / "sub-01" / "func"
    write_tsv(func / "sub-01_task-rest_run-1_timeseries.tsv", 120, seed=1)
    (func / "sub-01_task-rest_run-1_timeseries.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    own = write_confounds(func / "sub-01_task-rest_run-1_desc-confounds_timeseries.tsv", 120, seed=3)
    write_confounds(func / "sub-01_task-rest_desc-confounds_timeseries.tsv", 120, seed=4, spikes=(30, 90))
    (run,) = [r for r in find_roi_timeseries_runs(tmp_path / "derivs", labels_file, already_cleaned=True)
              if r.entities.get("run") == "1"]
    run = dataclasses.replace(run, already_cleaned=False, confounds=confounds_for(run.path))
    assert run.confounds.name == "sub-01_task-rest_run-1_desc-confounds_timeseries.tsv"
    cleaned = clean_roi_run(run, DenoiseSettings())
    expected_censored = int(((own["framewise_displacement"] > 0.5) | (own["std_dvars"] > 1.5)).sum())
    assert cleaned.qc["n_censored"] >= expected_censored
    assert cleaned.qc["mean_fd"] == pytest.approx(own["framewise_displacement"].mean())


def test_gsr_both_writes_the_roi_network_table_the_other_way(tmp_path, labels_file):
    from trdnet.cli import main

    roi_run_with_confounds(tmp_path, labels_file)
    out = tmp_path / "out"
    assert main(["run", "--roi-timeseries", str(tmp_path / "derivs"), "--labels", str(labels_file), str(out),
                 "participant", "--no-report", "--gsr", "both"]) == 0
    main_table = pd.read_csv(next(out.rglob("*_space-MNI152NLin6Asym_networks.tsv")), sep="\t")
    other = pd.read_csv(next(out.rglob("*_desc-gsroff_networks.tsv")), sep="\t")
    sidecar = json.loads(next(out.rglob("*_desc-gsroff_networks.json")).read_text())
    assert "global_signal" not in sidecar["Denoising"]["confounds_columns"]
    assert list(other.columns) == list(main_table.columns)
    assert not np.allclose(other["mean_z"], main_table["mean_z"])


def _declared_clean_folder(tmp_path, n_volumes=60, tr=None, with_confounds=False):
    root = tmp_path / "derivs"
    func = root / "sub-01" / "func"
    write_tsv(func / "sub-01_task-rest_timeseries.tsv", n_volumes=n_volumes, seed=1)
    if tr is not None:
        (func / "sub-01_task-rest_timeseries.json").write_text(json.dumps({"RepetitionTime": tr}))
    if with_confounds:
        write_confounds(func / "sub-01_task-rest_desc-confounds_timeseries.tsv", n_volumes)
    return root


def _run_cli(capsys, *args):
    from trdnet.cli import main

    code = main(["run", *map(str, args), "--no-report"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def test_changed_labels_table_or_cleaning_statement_is_not_taken_as_finished(tmp_path, labels_file, capsys):
    root = _declared_clean_folder(tmp_path, n_volumes=120, tr=2.0, with_confounds=True)
    out = tmp_path / "out"
    base = ["--roi-timeseries", root, "--labels", labels_file, out, "participant"]
    assert _run_cli(capsys, *base, "--already-cleaned")[0] == 0
    sidecar = json.loads(next(out.rglob("*_networks.json")).read_text())
    assert sidecar["Settings"]["denoise"] == {"already_cleaned": True, "applied": "none"}
    assert sidecar["Settings"]["networks"]["roi_labels"] == str(labels_file.resolve())
    # the statement withdrawn: the confounds beside the signals would now be used, so the old result is stale
    code, _, error = _run_cli(capsys, *base)
    assert code != 0 and "processed with other settings" in error and "--overwrite" in error
    # the labels table changed (V1 now counted in the DMN): refused too, and recomputed with --overwrite
    table = pd.read_csv(labels_file, sep="\t")
    table.loc[table["name"] == "V1", "network"] = "Default"
    table.to_csv(labels_file, sep="\t", index=False)
    code, _, error = _run_cli(capsys, *base, "--already-cleaned")
    assert code != 0 and "processed with other settings" in error
    assert _run_cli(capsys, *base, "--already-cleaned", "--overwrite")[0] == 0
    assert _run_cli(capsys, *base, "--already-cleaned")[0] == 0  # unchanged now: resumes


def test_group_step_collects_roi_only_output_folders(tmp_path, labels_file, capsys):
    from trdnet.cli import main

    root = _declared_clean_folder(tmp_path, tr=2.0)
    out = tmp_path / "out"
    assert _run_cli(capsys, "--roi-timeseries", root, "--labels", labels_file, out, "participant",
                    "--already-cleaned")[0] == 0
    assert main(["run", str(out), "group", "--no-report"]) == 0
    printed = capsys.readouterr().err  # the group step's notes are warnings
    assert "have no targets table" in printed
    networks = pd.read_csv(out / "group" / "networks.tsv", sep="\t")
    assert set(networks["participant_id"]) == {"sub-01"} and {"DMN", "SN", "ECN"} <= set(networks["network_a"])
    assert len(pd.read_csv(out / "group" / "qc.tsv", sep="\t")) == 1


def test_report_of_a_declared_clean_run_without_repetition_time(tmp_path, labels_file, capsys):
    from trdnet.cli import main

    root = _declared_clean_folder(tmp_path, tr=None)
    out = tmp_path / "out"
    assert main(["run", "--roi-timeseries", str(root), "--labels", str(labels_file), str(out), "participant",
                 "--already-cleaned", "--no-report"]) == 0
    assert main(["report", str(out)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    page = (out / "sub-01.html").read_text()
    assert "repetition time is unknown" in page and "Carpet plot of 6 ROI signals" in page
    assert "before and after cleaning" not in page and "censoring threshold" not in page


@pytest.mark.parametrize("extra, n_volumes, tr, expected", [
    (["--already-cleaned"], 60, 2000, "RepetitionTime: repetition time 2000 s .*likely milliseconds"),
    ([], 60, 2000, "RepetitionTime: repetition time 2000 s .*likely milliseconds"),
    (["--already-cleaned"], 3, 2.0, "3 volumes .*at least 50 volumes"),
    (["--already-cleaned", "--gsr", "both"], 60, 2.0, "--gsr both does not apply"),
])
def test_declared_clean_input_the_run_cannot_honour_is_refused(tmp_path, labels_file, capsys, extra, n_volumes,
                                                               tr, expected):
    import re

    root = _declared_clean_folder(tmp_path, n_volumes=n_volumes, tr=tr, with_confounds=not extra)
    out = tmp_path / "out"
    code, _, error = _run_cli(capsys, "--roi-timeseries", root, "--labels", labels_file, out, "participant", *extra)
    assert code == 2 and len(error.splitlines()) == 1 and re.search(expected, error), error
    assert not list(out.rglob("*_networks.tsv"))


@pytest.mark.parametrize("row, value, expected", [
    (30, "n/a", "column trans_x has a missing value \\(n/a\\) at row 31"),
    (40, "abc", "column csf row 41 holds 'abc', not a number"),
])
def test_bad_confound_values_are_refused_naming_the_file(tmp_path, labels_file, capsys, row, value, expected):
    root = _declared_clean_folder(tmp_path, n_volumes=120, tr=2.0, with_confounds=True)
    path = next(root.rglob("*_desc-confounds_timeseries.tsv"))
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    table.loc[row, "trans_x" if value == "n/a" else "csf"] = value
    table.to_csv(path, sep="\t", index=False)
    out = tmp_path / "out"
    code, _, error = _run_cli(capsys, "--roi-timeseries", root, "--labels", labels_file, out, "participant")
    assert code == 2 and len(error.splitlines()) == 1, error
    assert error.startswith(f"trdnet: error: {path}") or str(path) in error
    import re

    assert re.search(expected, error), error
    assert not list(out.rglob("*_networks.tsv"))


def test_flat_rois_are_listed_and_a_network_left_without_signal_stops_the_run(tmp_path, labels_file, capsys):
    root = _declared_clean_folder(tmp_path, n_volumes=60, tr=2.0)
    path = next(root.rglob("*_timeseries.tsv"))
    table = pd.read_csv(path, sep="\t")
    table["V1"] = 0.0
    table.to_csv(path, sep="\t", index=False)
    out = tmp_path / "out"
    assert _run_cli(capsys, "--roi-timeseries", root, "--labels", labels_file, out, "participant",
                    "--already-cleaned")[0] == 0
    sidecar = json.loads(next(out.rglob("*_networks.json")).read_text())
    assert [row["roi"] for row in sidecar["DroppedROIs"]] == ["V1"]
    assert "flat" in sidecar["DroppedROIs"][0]["reason"] and sidecar["QC"]["n_flat_rois"] == 1
    # both SN ROIs flat: the run stops before any work, naming the network
    table["dACC"] = 1.0
    table["lIns"] = 1.0
    table.to_csv(path, sep="\t", index=False)
    code, _, error = _run_cli(capsys, "--roi-timeseries", root, "--labels", labels_file, tmp_path / "out2",
                              "participant", "--already-cleaned")
    assert code == 2 and len(error.splitlines()) == 1 and "SN: only 0 of its 2 ROIs carry signal" in error, error
    assert not (tmp_path / "out2").exists() or not list((tmp_path / "out2").rglob("*_networks.tsv"))


def test_labels_table_roi_column_is_the_one_matching_the_header(tmp_path):
    path = tmp_path / "sub-01_task-rest_timeseries.tsv"
    write_tsv(path, n_volumes=20)
    labels = pd.DataFrame({"roi_id": range(1, 7), "name": ROIS, "network": NETWORKS})
    _, rois = read_roi_timeseries(path, labels)
    assert rois["roi"].tolist() == ROIS
    wrong = pd.DataFrame({"roi_id": range(1, 7), "name": [f"x{i}" for i in range(6)], "network": NETWORKS})
    with pytest.raises(InputError, match="not in the labels table's 'roi_id' column"):
        read_roi_timeseries(path, wrong)


def test_header_only_file_says_it_has_no_volumes(tmp_path, labels_file):
    path = tmp_path / "sub-01_task-rest_timeseries.tsv"
    path.write_text("\t".join(ROIS) + "\n")
    with pytest.raises(InputError, match="a header but no volumes"):
        read_roi_timeseries(path, labels_file)


@pytest.mark.parametrize("problem, expected", [
    ("one_row", "table; expected at least 3 volumes"),
    ("no_core", "puts no column in DMN, SN or ECN"),
    ("rows", "119 rows but the ROI signals have 120 volumes"),
])
def test_problems_inside_a_run_are_refused_before_any_work(tmp_path, labels_file, capsys, problem, expected):
    root = _declared_clean_folder(tmp_path, n_volumes=120, tr=2.0, with_confounds=True)
    signals = next(p for p in root.rglob("*_timeseries.tsv") if "desc-confounds" not in p.name)
    if problem == "one_row":
        write_tsv(signals, n_volumes=1)
    elif problem == "no_core":
        table = pd.read_csv(labels_file, sep="\t")
        table["network"] = "Visual"
        table.to_csv(labels_file, sep="\t", index=False)
    else:
        confounds = next(root.rglob("*_desc-confounds_timeseries.tsv"))
        pd.read_csv(confounds, sep="\t", dtype=str, keep_default_na=False).iloc[:-1].to_csv(
            confounds, sep="\t", index=False)
    out = tmp_path / "out"
    code, printed, error = _run_cli(capsys, "--roi-timeseries", root, "--labels", labels_file, out, "participant")
    assert code == 2 and len(error.splitlines()) == 1 and expected in error, error
    assert "[1/1]" not in printed + error and not (out / "logs").exists()


def test_fd_caption_does_not_mention_a_threshold_when_scrubbing_is_off(tmp_path, labels_file):
    from trdnet.cli import main

    root = _declared_clean_folder(tmp_path, n_volumes=120, tr=2.0, with_confounds=True)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"denoise": {"scrub": False}}))
    out = tmp_path / "out"
    assert main(["run", "--roi-timeseries", str(root), "--labels", str(labels_file), str(out), "participant",
                 "--settings", str(settings)]) == 0
    page = (out / "sub-01.html").read_text()
    assert "Framewise displacement (no volume was censored: scrubbing was off)" in page
    assert "censoring threshold" not in page and "before and after cleaning" in page
