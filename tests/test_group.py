"""Group step: cohort tables, statistics, QC-FC, exclusions and the group sgACC map.

Most tests build a small fake trdnet output folder with known values; the last
one runs the real pipeline on a tiny SIMULATED cohort.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from trdnet.errors import InputError, SettingsError
from trdnet.group import QcThresholds, group_seed_map, hedges_g, run_group
from trdnet.outputs import read_tsv
from trdnet.records import write_failure_record

PAIRS = [("DMN", "DMN"), ("DMN", "SN"), ("SN", "SN")]
SPACE = "MNI152NLin2009cAsym"
AFFINE = np.diag([4.0, 4.0, 4.0, 1.0])
SHAPE = (4, 5, 3)


def make_run(out: Path, sub: str, z, mean_fd=0.1, minutes=8.0, ses=None, r_map=None, simulated=False,
             sources=None, affine=AFFINE, done=True):
    """Write one fake finished run: networks, targets, QC, sgACC map, completion record."""
    prefix = "_".join([f"sub-{sub}"] + ([f"ses-{ses}"] if ses else []) + ["task-rest", f"space-{SPACE}"])
    func = out / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "func"
    func.mkdir(parents=True, exist_ok=True)
    networks = pd.DataFrame({"network_a": [a for a, _ in PAIRS], "network_b": [b for _, b in PAIRS],
                             "mean_z": z, "mean_r": np.tanh(z), "n_pairs": 10})
    targets = pd.DataFrame({"participant_id": [f"sub-{sub}"], "target": ["personalised"], "method": ["cluster"],
                            "primary": [True], "space": [SPACE], "x": [-40.0 + float(sub)], "y": [30.0],
                            "z": [40.0], "r_sgacc": [-0.3]})
    qc = pd.DataFrame({"participant_id": [f"sub-{sub}"], "n_volumes": [300], "minutes_retained": [minutes],
                       "mean_fd": [mean_fd]})
    files = []
    for name, table in (("networks", networks), ("targets", targets), ("qc", qc)):
        path = func / f"{prefix}_{name}.tsv"
        table.to_csv(path, sep="\t", index=False)
        files.append(path)
    (func / f"{prefix}_qc.json").write_text(json.dumps({"Sources": sources or []}))
    if r_map is not None:
        path = func / f"{prefix}_stat-r_desc-sgacc_boldmap.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(r_map, np.float32), affine), path)
        files.append(path)
    if done:
        (out / "logs").mkdir(exist_ok=True)
        (out / "logs" / f"{prefix}_done.json").write_text(json.dumps(
            {"Run": prefix, "Files": [str(f.relative_to(out)) for f in files], "Simulated": simulated}))
    return prefix


def write_participants(path: Path, groups: dict, column="group"):
    rows = [{"participant_id": f"sub-{s}", column: g, "age": 30} for s, g in groups.items()]
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False, na_rep="n/a")
    return path


# Known per-participant values: z for the three pairs, mean FD, group.
COHORT = {
    "01": ([0.50, -0.10, 0.40], 0.10, "patient"),
    "02": ([0.60, -0.20, 0.30], 0.20, "patient"),
    "03": ([0.70, 0.05, 0.45], 0.15, "patient"),
    "04": ([0.30, 0.10, 0.60], 0.12, "control"),
    "05": ([0.20, 0.15, 0.65], 0.30, "control"),
    "06": ([0.35, 0.00, 0.50], 0.25, "control"),
}


@pytest.fixture
def cohort(tmp_path):
    out = tmp_path / "out"
    for sub, (z, fd, _) in COHORT.items():
        make_run(out, sub, z, mean_fd=fd)
    participants = write_participants(tmp_path / "participants.tsv", {s: g for s, (_, _, g) in COHORT.items()})
    return out, participants


def bh(p):
    """Benjamini-Hochberg written out, to check the package's call of scipy."""
    p = np.asarray(p, float)
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(ranked, 1.0)
    return adjusted


def test_collected_tables_hold_every_run(cohort):
    out, participants = cohort
    result = run_group(out, participants_tsv=participants)
    networks = read_tsv(result.files["networks"])
    assert len(networks) == len(COHORT) * len(PAIRS)
    for sub, (z, _, _) in COHORT.items():
        rows = networks[networks["participant_id"] == f"sub-{sub}"]
        np.testing.assert_allclose(rows["mean_z"], z, atol=1e-6)
        assert rows["run"].iloc[0] == f"sub-{sub}_task-rest_space-{SPACE}"
    assert networks["included"].all() and networks["session"].isna().all()
    qc = read_tsv(result.files["qc"])
    np.testing.assert_allclose(qc.set_index("participant_id")["mean_fd"],
                               [COHORT[s][1] for s in sorted(COHORT)])
    targets = read_tsv(result.files["targets"])
    assert list(targets["participant_id"]) == [f"sub-{s}" for s in sorted(COHORT)]
    sidecar = json.loads((out / "group" / "networks.json").read_text())
    assert sidecar["Simulated"] is False and "mean_z" in sidecar["Columns"] and len(sidecar["Inputs"]) == 6


def test_statistics_match_scipy_and_hand_formulas(cohort):
    out, participants = cohort
    result = run_group(out, participants_tsv=participants)
    table = read_tsv(result.files["statistics"])
    assert list(table["group_a"].unique()) == ["control"]  # sorted labels: control - patient
    for i, pair in enumerate(PAIRS):
        row = table[(table["network_a"] == pair[0]) & (table["network_b"] == pair[1])].iloc[0]
        a = np.array([COHORT[s][0][i] for s in COHORT if COHORT[s][2] == "control"])
        b = np.array([COHORT[s][0][i] for s in COHORT if COHORT[s][2] == "patient"])
        t, p = stats.ttest_ind(a, b, equal_var=False)
        assert row["n_a"] == 3 and row["n_b"] == 3
        assert row["mean_a"] == pytest.approx(a.mean(), abs=1e-6)
        assert row["t"] == pytest.approx(t, abs=1e-5) and row["p"] == pytest.approx(p, abs=1e-6)
        pooled = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)  # equal n
        assert row["hedges_g"] == pytest.approx((a.mean() - b.mean()) / pooled * (1 - 3 / (4 * 4 - 1)), abs=1e-5)
    np.testing.assert_allclose(table["p_fdr"], bh(table["p"]), atol=1e-6)
    sidecar = json.loads((out / "group" / "statistics.json").read_text())
    assert "Welch" in sidecar["Test"] and sidecar["EffectSize"] == "Hedges' g"


def test_student_t_and_explicit_contrast(cohort):
    out, participants = cohort
    table = read_tsv(run_group(out, participants, contrast=("patient", "control"), equal_var=True)
                     .files["statistics"])
    a = np.array([COHORT[s][0][0] for s in COHORT if COHORT[s][2] == "patient"])
    b = np.array([COHORT[s][0][0] for s in COHORT if COHORT[s][2] == "control"])
    assert table["t"].iloc[0] == pytest.approx(stats.ttest_ind(a, b).statistic, abs=1e-5)
    assert table["hedges_g"].iloc[0] > 0  # patients have higher DMN-DMN values
    with pytest.raises(SettingsError, match="contrast"):
        run_group(out, participants, contrast=("patient", "sham"))


def test_hedges_g_is_nan_for_tiny_groups():
    assert np.isnan(hedges_g([1.0], [2.0, 3.0]))
    assert hedges_g([1.0, 3.0], [0.0, 2.0]) == pytest.approx(1 / np.sqrt(2) * (1 - 3 / 7))


def test_qcfc_is_the_correlation_with_mean_fd(cohort):
    out, participants = cohort
    table = read_tsv(run_group(out, participants).files["qcfc"])
    fd = np.array([COHORT[s][1] for s in sorted(COHORT)])
    for i, pair in enumerate(PAIRS):
        z = np.array([COHORT[s][0][i] for s in sorted(COHORT)])
        row = table[(table["network_a"] == pair[0]) & (table["network_b"] == pair[1])].iloc[0]
        assert row["r"] == pytest.approx(np.corrcoef(z, fd)[0, 1], abs=1e-6)
        assert row["n"] == len(COHORT)


def test_several_runs_average_per_participant(tmp_path):
    out = tmp_path / "out"
    make_run(out, "01", [0.2, 0.0, 0.4], mean_fd=0.1, ses="a")
    make_run(out, "01", [0.6, 0.2, 0.8], mean_fd=0.3, ses="b")
    make_run(out, "02", [0.1, 0.1, 0.1], mean_fd=0.2)
    make_run(out, "03", [0.3, 0.3, 0.3], mean_fd=0.4)
    table = read_tsv(run_group(out).files["qcfc"])
    z = np.array([0.4, 0.1, 0.3])  # sub-01: mean of its two sessions
    fd = np.array([0.2, 0.2, 0.4])
    assert table["r"].iloc[0] == pytest.approx(np.corrcoef(z, fd)[0, 1], abs=1e-6)
    networks = read_tsv(out / "group" / "networks.tsv")
    assert sorted(networks["session"].dropna().unique()) == ["a", "b"]


def test_qc_exclusions_and_broken_runs_are_written_down(tmp_path, cohort):
    out, participants = cohort
    make_run(out, "07", [0.1, 0.1, 0.1], mean_fd=0.9)  # too much motion
    make_run(out, "08", [0.1, 0.1, 0.1], minutes=3.0)  # too little data
    make_run(out, "09", [0.1, 0.1, 0.1], done=False)  # outputs but no completion record
    write_failure_record(out, "sub-10_task-rest_space-X", "sub-10", "boom")
    write_failure_record(out, "sub-11_task-rest_space-X", "sub-11", "stopped by Ctrl-C", interrupted=True)
    result = run_group(out, participants, exclude=QcThresholds(max_mean_fd=0.5, min_minutes=5.0))
    exclusions = read_tsv(result.files["exclusions"]).set_index("participant_id")
    assert "mean FD 0.900 mm > 0.5 mm" in exclusions.loc["sub-07", "reason"]
    assert "3.00 min retained < 5 min" in exclusions.loc["sub-08", "reason"]
    assert "no completion record" in exclusions.loc["sub-09", "reason"]
    assert exclusions.loc["sub-10", "reason"] == "run failed: boom"
    assert exclusions.loc["sub-11", "reason"] == "run was interrupted: stopped by Ctrl-C"
    assert (exclusions.loc[["sub-07", "sub-08"], "applies_to"] == "all").all()
    qc = read_tsv(result.files["qc"]).set_index("participant_id")
    assert not qc.loc["sub-07", "included"] and qc.loc["sub-01", "included"]
    assert "sub-09" not in qc.index
    # sub-07 and sub-08 have no group label: they would be listed for statistics, but QC removed them first.
    stats_table = read_tsv(result.files["statistics"])
    assert (stats_table["n_a"] + stats_table["n_b"] == 6).all()
    sidecar = json.loads((out / "group" / "statistics.json").read_text())
    assert sidecar["QcThresholds"] == {"max_mean_fd": 0.5, "min_minutes": 5.0}


def test_every_run_excluded_still_writes_the_tables(cohort):
    out, participants = cohort
    result = run_group(out, participants, exclude=QcThresholds(max_mean_fd=0.01, min_minutes=None))
    assert result.n_runs_included == 0 and "seedmap" not in result.files and "statistics" not in result.files
    assert len(read_tsv(result.files["exclusions"])) == len(COHORT)
    assert read_tsv(result.files["qcfc"]).empty
    assert any("every run broke" in note for note in result.notes)


def test_participants_without_label_are_left_out_of_statistics_only(tmp_path, cohort):
    out, _ = cohort
    groups = {s: g for s, (_, _, g) in COHORT.items()}
    groups["06"] = None
    participants = write_participants(tmp_path / "p2.tsv", groups)
    result = run_group(out, participants)
    exclusions = read_tsv(result.files["exclusions"])
    assert exclusions.to_dict("records") == [{"participant_id": "sub-06", "run": "all", "applies_to": "statistics",
                                              "reason": "no 'group' label in p2.tsv"}]
    assert read_tsv(result.files["statistics"])["n_a"].iloc[0] == 2


def test_missing_participants_file_means_no_statistics(cohort):
    out, participants = cohort
    run_group(out, participants)
    assert (out / "group" / "statistics.tsv").is_file()
    result = run_group(out)  # no file given, none beside the outputs or the inputs
    assert "statistics" not in result.files
    assert not (out / "group" / "statistics.tsv").exists()  # the stale table is gone
    assert any("participants.tsv" in note for note in result.notes)
    assert "statistics not computed" in (out / "group" / "notes.json").read_text()
    with pytest.raises(InputError, match="not found"):
        run_group(out, participants.with_name("nope.tsv"))
    with pytest.raises(InputError, match="diagnosis"):
        run_group(out, participants, group_column="diagnosis")


def test_group_notes_are_messages_that_name_the_option_and_obey_quiet(cohort, capsys):
    """The command's notes are warnings on stderr like its other messages (-qq: errors only), naming the flag."""
    from trdnet.cli import main

    out, _ = cohort
    assert main(["run", str(out), "group", "--no-report"]) == 0
    printed = capsys.readouterr()
    assert "note:" not in printed.out and "participants.tsv" not in printed.out
    warned = [line for line in printed.err.splitlines() if "no participants.tsv found" in line]
    assert len(warned) == 1 and warned[0].startswith("trdnet: warning: group: ")
    assert "--participants-tsv" in warned[0] and "pass participants_tsv" not in warned[0]
    assert main(["run", str(out), "group", "--no-report", "-qq"]) == 0
    printed = capsys.readouterr()
    assert "participants.tsv" not in printed.out + printed.err


def test_participants_file_found_in_the_raw_bids_root(tmp_path):
    bids = tmp_path / "bids"
    fmriprep = bids / "derivatives" / "fmriprep"
    out = tmp_path / "out"
    for sub, (z, fd, _) in COHORT.items():
        bold = fmriprep / f"sub-{sub}" / "func" / f"sub-{sub}_task-rest_bold.nii.gz"
        make_run(out, sub, z, mean_fd=fd, sources=[str(bold)])
    bids.mkdir()
    write_participants(bids / "participants.tsv", {s: g for s, (_, _, g) in COHORT.items()}, column="dx")
    result = run_group(out, group_column="dx")
    assert "statistics" in result.files
    sidecar = json.loads((out / "group" / "statistics.json").read_text())
    assert sidecar["ParticipantsFile"] == str(bids / "participants.tsv")


def test_more_than_two_groups_need_a_contrast(tmp_path, cohort):
    out, _ = cohort
    groups = {s: g for s, (_, _, g) in COHORT.items()}
    groups["06"] = "sham"
    participants = write_participants(tmp_path / "p3.tsv", groups)
    result = run_group(out, participants)
    assert "statistics" not in result.files and any("needs two" in n for n in result.notes)
    table = read_tsv(run_group(out, participants, contrast=("patient", "control")).files["statistics"])
    assert table["n_b"].iloc[0] == 2


def r_maps():
    """Three participants' r maps: constant per participant; voxel 0 outside sub-03's mask."""
    values = {"01": 0.2, "02": -0.4, "03": 0.6}
    maps = {s: np.full(SHAPE, v, np.float32) for s, v in values.items()}
    maps["03"][0, 0, 0] = 0.0
    return values, maps


def test_group_seed_map_and_leave_one_out(tmp_path):
    out = tmp_path / "out"
    values, maps = r_maps()
    for sub, r_map in maps.items():
        make_run(out, sub, [0.1, 0.2, 0.3], r_map=r_map, simulated=True)
    img = group_seed_map(out)
    data = img.get_fdata()
    assert data.dtype == np.float64 and img.get_data_dtype() == np.float32
    assert data[1, 1, 1] == pytest.approx(np.mean(np.arctanh(list(values.values()))), abs=1e-6)
    assert data[0, 0, 0] == pytest.approx(np.mean(np.arctanh([0.2, -0.4])), abs=1e-6)
    np.testing.assert_allclose(img.affine, AFFINE)
    loo = group_seed_map(out, exclude_subject="02").get_fdata()
    assert loo[1, 1, 1] == pytest.approx(np.mean(np.arctanh([0.2, 0.6])), abs=1e-6)
    assert loo[0, 0, 0] == pytest.approx(np.arctanh(0.2), abs=1e-6)
    with pytest.raises(InputError, match="sub-07"):
        group_seed_map(out, exclude_subject="sub-07")
    result = run_group(out)
    written = nib.load(result.files["seedmap"])
    np.testing.assert_allclose(written.get_fdata(), data, atol=1e-7)
    sidecar = json.loads((out / "group" / "desc-sgacc_stat-z_boldmap.json").read_text())
    assert sidecar["Participants"] == ["sub-01", "sub-02", "sub-03"] and sidecar["Simulated"] is True
    assert "SIMULATED" in sidecar["Note"]


def test_group_seed_map_averages_runs_within_participant_first(tmp_path):
    out = tmp_path / "out"
    make_run(out, "01", [0.1, 0.2, 0.3], ses="a", r_map=np.full(SHAPE, 0.1, np.float32))
    make_run(out, "01", [0.1, 0.2, 0.3], ses="b", r_map=np.full(SHAPE, 0.3, np.float32))
    make_run(out, "02", [0.1, 0.2, 0.3], r_map=np.full(SHAPE, -0.5, np.float32))
    expected = (np.mean(np.arctanh([0.1, 0.3])) + np.arctanh(-0.5)) / 2
    assert group_seed_map(out).get_fdata()[2, 2, 2] == pytest.approx(expected, abs=1e-6)


def test_group_seed_map_respects_qc_exclusion(tmp_path):
    out = tmp_path / "out"
    _, maps = r_maps()
    for (sub, r_map), fd in zip(maps.items(), (0.1, 0.9, 0.1)):
        make_run(out, sub, [0.1, 0.2, 0.3], r_map=r_map, mean_fd=fd)
    data = group_seed_map(out, exclude=QcThresholds(max_mean_fd=0.5)).get_fdata()
    assert data[1, 1, 1] == pytest.approx(np.mean(np.arctanh([0.2, 0.6])), abs=1e-6)


def test_grid_mismatch_names_the_file(tmp_path):
    out = tmp_path / "out"
    make_run(out, "01", [0.1, 0.2, 0.3], r_map=np.full(SHAPE, 0.1, np.float32))
    make_run(out, "02", [0.1, 0.2, 0.3], r_map=np.full(SHAPE, 0.1, np.float32), affine=np.diag([3, 3, 3, 1.0]))
    with pytest.raises(InputError, match="sub-02_task-rest.*differs from .*sub-01"):
        group_seed_map(out)


def test_thresholds_and_empty_folders_are_checked(tmp_path):
    with pytest.raises(SettingsError, match="max_mean_fd"):
        QcThresholds(max_mean_fd=-1)
    with pytest.raises(InputError, match="no such"):
        run_group(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no finished run"):
        run_group(tmp_path / "empty")


def test_reads_what_the_pipeline_writes(processed_cohort, tmp_path):
    # The session's processed cohort (3 participants x 2 sessions; its participants.tsv beside the
    # fMRIPrep folder makes sub-01 a patient, sub-02 and sub-03 controls), copied: the group step writes.
    out = processed_cohort.copy(tmp_path / "trdnet")

    result = run_group(out, exclude=QcThresholds(max_mean_fd=None, min_minutes=1.0))
    networks = read_tsv(result.files["networks"])
    run_tables = sorted(out.glob("sub-*/ses-*/func/*_networks.tsv"))
    assert len(run_tables) == 6
    assert len(networks) == sum(len(read_tsv(p)) for p in run_tables)
    first = read_tsv(run_tables[0])
    first_run = networks["run"] == run_tables[0].name.removesuffix("_networks.tsv")
    np.testing.assert_allclose(networks.loc[first_run, "mean_z"], first["mean_z"])
    assert "statistics" in result.files  # participants.tsv found beside the fMRIPrep folder
    stats_table = read_tsv(result.files["statistics"])
    assert (stats_table["n_a"] == 2).all() and (stats_table["n_b"] == 1).all()
    assert json.loads((out / "group" / "qc.json").read_text())["Simulated"] is True

    maps = sorted(out.glob("sub-*/ses-*/func/*_stat-r_desc-sgacc_boldmap.nii.gz"))
    r = np.stack([nib.load(p).get_fdata(dtype=np.float32) for p in maps])
    covered = (r != 0).all(axis=0)
    expected = np.arctanh(np.clip(r, -1 + 1e-6, 1 - 1e-6)).mean(axis=0)
    group = nib.load(result.files["seedmap"]).get_fdata()
    np.testing.assert_allclose(group[covered], expected[covered], atol=1e-5)


def test_a_run_named_by_an_earlier_version_is_left_out_naming_its_file(tmp_path):
    from trdnet.group.collect import discover_runs

    out = tmp_path / "out"
    make_run(out, "01", [0.1, 0.2, 0.3], r_map=np.full(SHAPE, 0.1, np.float32))
    old = make_run(out, "02", [0.1, 0.2, 0.3], r_map=np.full(SHAPE, 0.5, np.float32))
    # sub-02 as trdnet wrote it before the seed map followed the schema's entity order
    func = out / "sub-02" / "func"
    (func / f"{old}_stat-r_desc-sgacc_boldmap.nii.gz").rename(func / f"{old}_desc-sgacc_stat-r_boldmap.nii.gz")
    record = out / "logs" / f"{old}_done.json"
    record.write_text(record.read_text().replace("stat-r_desc-sgacc", "desc-sgacc_stat-r"))
    records, problems = discover_runs(out)
    assert [r.participant_id for r in records] == ["sub-01"]
    reasons = [p["reason"] for p in problems if p["run"] == old]
    assert len(reasons) == 1 and f"{old}_desc-sgacc_stat-r_boldmap.nii.gz" in reasons[0]
    assert "earlier trdnet version" in reasons[0]
    assert group_seed_map(out).get_fdata()[1, 1, 1] == pytest.approx(np.arctanh(0.1), abs=1e-6)
