"""What a finished run and a finished participant result are: the records of an output folder."""

from __future__ import annotations

import json

import pytest

from trdnet.errors import InputError
from trdnet.records import (completion_record_path, finished_participants, finished_runs, participant_record_path,
                            participant_records, read_participant_record, write_completion_record,
                            write_participant_record)

PREFIX = "sub-01_task-rest_space-MNI152NLin2009cAsym"
RUNS = [f"sub-01_ses-{s}_task-rest_space-MNI152NLin2009cAsym" for s in ("1", "2")]


def _touch(out, *names):
    for name in names:
        path = out / "sub-01" / "func" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    return [f"sub-01/func/{name}" for name in names]


def test_participant_record_is_read_back_with_its_runs(tmp_path):
    files = _touch(tmp_path, f"{PREFIX}_desc-participant_targets.tsv")
    for run in RUNS:  # a participant result is finished only while the runs it joins are
        write_completion_record(tmp_path, run, "sub-01", "abc", [], {}, simulated=True)
    path = write_participant_record(tmp_path, PREFIX, RUNS[::-1], "abc", files, {"n_runs": 2}, simulated=True)
    assert path == tmp_path / "logs" / "participant" / f"{PREFIX}_done.json"
    record = read_participant_record(path)
    assert (record.prefix, record.participant_id, record.runs) == (PREFIX, "sub-01", RUNS)
    assert (record.settings_digest, record.files, record.summary, record.simulated) == ("abc", files, {"n_runs": 2},
                                                                                       True)
    assert [r.prefix for r in finished_participants(tmp_path)] == [PREFIX]
    assert finished_participants(tmp_path, "02") == []
    (tmp_path / files[0]).unlink()
    assert finished_participants(tmp_path) == [] and len(participant_records(tmp_path)) == 1


def test_participant_record_of_an_earlier_version_is_read(tmp_path):
    path = participant_record_path(tmp_path, PREFIX)
    path.parent.mkdir(parents=True)
    # earlier versions wrote the participant prefix as "Participant" and no "Prefix"
    path.write_text(json.dumps({"Participant": PREFIX, "Runs": RUNS, "SettingsDigest": "abc", "Files": []}))
    record = read_participant_record(path)
    assert (record.prefix, record.participant_id, record.runs) == (PREFIX, "sub-01", RUNS)


@pytest.mark.parametrize("content, words", [("{not json", "unreadable completion record"),
                                            ("[1, 2]", "not a trdnet completion record"),
                                            ('{"Runs": "sub-01_ses-1"}', "Runs must be a list")])
def test_a_broken_participant_record_is_refused_in_one_line_naming_it(tmp_path, content, words):
    path = participant_record_path(tmp_path, PREFIX)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(InputError, match=words) as error:
        read_participant_record(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_run_whose_record_lists_a_name_of_an_earlier_version_is_not_finished(tmp_path):
    run = "sub-01_task-rest_space-MNI152NLin2009cAsym"
    current = _touch(tmp_path, f"{run}_stat-r_desc-sgacc_boldmap.nii.gz", f"{run}_targets.tsv")
    write_completion_record(tmp_path, run, "sub-01", "abc", current, {}, simulated=False)
    finished, broken = finished_runs(tmp_path)
    assert [r.prefix for r in finished] == [run] and broken == []
    old = _touch(tmp_path, f"{run}_desc-sgacc_stat-r_boldmap.nii.gz", f"{run}_targets.tsv")
    write_completion_record(tmp_path, run, "sub-01", "abc", old, {}, simulated=False)
    finished, broken = finished_runs(tmp_path)
    assert finished == [] and len(broken) == 1
    assert f"{run}_desc-sgacc_stat-r_boldmap.nii.gz" in broken[0]["reason"]
    assert "earlier trdnet version" in broken[0]["reason"] and "targets.tsv" not in broken[0]["reason"]


def test_a_participant_result_is_valid_only_while_its_runs_are_unchanged(tmp_path):
    runs = ["sub-01_ses-1_task-rest_space-MNI", "sub-01_ses-2_task-rest_space-MNI"]
    for run in runs:
        write_completion_record(tmp_path, run, "sub-01", "aaa", [], {"target_x": 0.0}, simulated=True)
    write_participant_record(tmp_path, "sub-01_task-rest_space-MNI", runs, "aaa", [], {}, simulated=True)
    assert [r.runs for r in finished_participants(tmp_path)] == [runs]
    # trdnet export rewrites a run's navigator files and navigation_* values: the analysis is the same
    navigator = "sub-01/ses-1/func/sub-01_ses-1_task-rest_space-T1w_desc-navtargets_coords.tsv"
    (tmp_path / navigator).parent.mkdir(parents=True)
    (tmp_path / navigator).write_text("x")
    write_completion_record(tmp_path, runs[0], "sub-01", "aaa", [navigator],
                            {"target_x": 0.0, "navigation_x": 1.0}, simulated=True)
    assert [r.runs for r in finished_participants(tmp_path)] == [runs]
    # the same settings, but the run was processed again (another summary): the result no longer describes it
    write_completion_record(tmp_path, runs[0], "sub-01", "aaa", [], {"target_x": 1.0}, simulated=True)
    assert finished_participants(tmp_path) == []
    write_participant_record(tmp_path, "sub-01_task-rest_space-MNI", runs, "aaa", [], {}, simulated=True)
    assert len(finished_participants(tmp_path)) == 1
    # another settings digest, as a partial --overwrite with other settings leaves it
    write_completion_record(tmp_path, runs[1], "sub-01", "bbb", [], {"target_x": 0.0}, simulated=True)
    reason = participant_records(tmp_path)[0].unfinished_reason(tmp_path)
    assert runs[1] in reason and "bbb" in reason and "aaa" in reason
    assert finished_participants(tmp_path) == []
    completion_record_path(tmp_path, runs[1]).unlink()
    assert "no readable completion record" in participant_records(tmp_path)[0].unfinished_reason(tmp_path)
