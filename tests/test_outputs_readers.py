"""Readers of a run's outputs find them by the names the one builder gives (trdnet.entities.output_name)."""

from __future__ import annotations

from trdnet.entities import output_path, participant_output_path
from trdnet.records import write_completion_record, write_participant_record
from trdnet.report.collect import RunOutputs, participant_target_tables

PREFIX = "sub-01_ses-1_task-rest_space-T1w_res-2"


def _write(out, *paths):
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    return paths


def test_find_reads_an_output_by_its_own_entities_whatever_their_order(tmp_path):
    seed_map, relmat, networks, gsroff = _write(
        tmp_path, output_path(tmp_path, PREFIX, "boldmap", ".nii.gz", stat="r", desc="sgacc"),
        output_path(tmp_path, PREFIX, "relmat", ".tsv", seg="Seitzman2018", meas="PearsonCorrelation"),
        output_path(tmp_path, PREFIX, "networks", ".tsv"), output_path(tmp_path, PREFIX, "networks", ".tsv", desc="gsroff"))
    assert relmat.name == "sub-01_ses-1_task-rest_space-T1w_seg-Seitzman2018_res-2_meas-PearsonCorrelation_relmat.tsv"
    run = RunOutputs(seed_map.parent, PREFIX)
    assert run.find("desc-sgacc_stat-r_boldmap.nii.gz") == run.find("stat-r_desc-sgacc_boldmap.nii.gz") == seed_map
    assert run.path("stat-r_desc-sgacc_boldmap.nii.gz") == seed_map
    assert run.find("*_relmat.tsv") == relmat and run.find("relmat.tsv") is None  # seg and meas not named
    assert run.find("networks.tsv") == networks and run.find("desc-gsroff_networks.tsv") == gsroff
    other_run = RunOutputs(seed_map.parent, PREFIX.replace("task-rest", "task-nback"))
    assert other_run.find("networks.tsv") is None


def test_export_files_are_the_runs_navigator_files_only(tmp_path):
    # a T1w-space run: its own outputs carry space-T1w too, and are not navigator files
    targets, coords, brainsight, *_ = _write(
        tmp_path, output_path(tmp_path, PREFIX, "targets", ".tsv"),
        output_path(tmp_path, PREFIX, "coords", ".tsv", desc="navtargets"),
        output_path(tmp_path, PREFIX, "brainsight", ".txt", desc="navtargets"),
        output_path(tmp_path, PREFIX, "coords", ".tsv", desc="participantnavtargets"),
        tmp_path / "sub-01" / "ses-1" / "func" / "sub-01_ses-2_task-rest_space-T1w_res-2_desc-navtargets_coords.tsv")
    run = RunOutputs(targets.parent, PREFIX)
    assert run.export_files() == sorted([coords, brainsight])


def test_participant_tables_come_from_finished_participant_records(tmp_path):
    prefix = "sub-01_task-rest_space-T1w"
    table, = _write(tmp_path, participant_output_path(tmp_path, prefix, "targets", ".tsv", desc="participant"))
    _write(tmp_path, participant_output_path(tmp_path, "sub-01_task-nback_space-T1w", "targets", ".tsv",
                                             desc="participant"))  # a table without a record
    assert participant_target_tables(tmp_path, "01") == []  # no record: not a finished result
    files = [str(table.relative_to(tmp_path))]
    runs = [f"sub-01_ses-{s}_task-rest_space-T1w" for s in ("1", "2")]
    for run in runs:  # a participant result stands only while the runs it joins are finished
        write_completion_record(tmp_path, run, "sub-01", "abc", [], {}, simulated=False)
    write_participant_record(tmp_path, prefix, runs, "abc", files, {}, simulated=False)
    assert participant_target_tables(tmp_path, "sub-01") == [table]
    table.unlink()
    assert participant_target_tables(tmp_path, "01") == []
