"""The participant step in a cohort: which runs it may join, and what it tells the user."""

from __future__ import annotations

import html
from pathlib import Path

from trdnet.config import Settings
from trdnet.console import report_results
from trdnet.inputs.runs import Run
from trdnet.participants import (KEPT, process_participants, runs_left_out, withdrawal_record_path,
                                 withdrawals)
from trdnet.pipeline import RunResult
from trdnet.records import participant_record_path, write_completion_record
from trdnet.report.participant import participant_block
from trdnet.outputs import write_json

SPACE = "MNI152NLin2009cAsym"


def _runs(sessions, runs=("1", "2")):
    return [Run(bold=Path(f"sub-01_ses-{ses}_task-rest_run-{r}_space-{SPACE}_desc-preproc_bold.nii.gz"),
                entities={"sub": "01", "ses": ses, "task": "rest", "run": r, "space": SPACE})
            for ses in sessions for r in runs]


def _finished(out, runs):
    for run in runs:
        write_completion_record(out, run.prefix, "sub-01", Settings().digest(), [], {"target_x": 0.0}, simulated=True)
    return [RunResult(run.prefix, "01", "done", summary={"target_x": 0.0}) for run in runs]


def test_a_selection_of_some_sessions_leaves_the_participant_target_as_it_was(tmp_path, capsys):
    everything = _runs(["1", "2"])
    _finished(tmp_path, everything)
    prefix = f"sub-01_task-rest_space-{SPACE}"
    record = participant_record_path(tmp_path, prefix)
    write_json(record, {"Participant": prefix, "Runs": sorted(r.prefix for r in everything), "Files": [],
                        "SettingsDigest": Settings().digest()})
    before = record.read_text()
    session_1 = everything[:2]
    assert runs_left_out(tmp_path, prefix, session_1) == sorted(r.prefix for r in everything[2:])
    # The runs' files do not exist: any attempt to recompute the participant target would fail.
    results = process_participants(session_1, _finished(tmp_path, session_1), tmp_path, Settings())
    assert [(r.prefix, r.status) for r in results] == [(prefix, KEPT)]
    assert record.read_text() == before
    # --overwrite asks for a participant target from the selected runs only (here it fails: no files).
    forced = process_participants(session_1, _finished(tmp_path, session_1), tmp_path, Settings(), overwrite=True)
    assert [r.status for r in forced] == ["failed"]
    assert report_results(results, tmp_path) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith(prefix) and "left as it was" in line and "leaves out 2" in line


def test_runs_known_only_from_the_participant_record_count_as_left_out(tmp_path):
    everything = _runs(["1", "2"])
    prefix = f"sub-01_task-rest_space-{SPACE}"
    write_json(participant_record_path(tmp_path, prefix), {"Runs": [r.prefix for r in everything]})
    assert runs_left_out(tmp_path, prefix, everything[:2]) == sorted(r.prefix for r in everything[2:])
    assert runs_left_out(tmp_path, prefix, everything) == []


def test_the_participant_line_names_space_r_retest_and_sufficiency(tmp_path, capsys):
    summary = {"n_runs": 4, "target_x": -40.0, "target_y": 42.0, "target_z": 30.0, "target_space": SPACE,
               "r_sgacc": -0.357, "retest_mm": 41.8, "reliability": "poor", "minutes_for_5mm": float("nan"),
               "sufficiency_note": "the retest distance 41.8 mm exceeds 5 mm"}
    report_results([RunResult(f"sub-01_task-rest_space-{SPACE}", "01", "done", summary=summary)], tmp_path)
    line = capsys.readouterr().out.splitlines()[0]
    assert f"mm {SPACE}" in line and "r_sgacc -0.36" in line and "retest 41.8 mm" in line
    assert line.endswith("the retest distance 41.8 mm exceeds 5 mm")


def test_runs_of_other_sessions_in_the_input_folder_count_as_left_out_even_before_any_output(tmp_path):
    from conftest import write_fmriprep_run
    from trdnet.inputs.bids import find_runs

    # two sessions of two runs each; no run is read, only found
    root = tmp_path / "fmriprep"
    for seed, (ses, run) in enumerate((ses, run) for ses in ("1", "2") for run in ("1", "2")):
        write_fmriprep_run(root, ses=ses, run=run, n_volumes=30, seed=seed)
    settings = Settings()
    everything = find_runs(root, space=settings.space)
    session_1 = [run for run in everything if run.entities["ses"] == "1"]
    assert len(everything) == 4 and len(session_1) == 2
    prefix = f"sub-01_task-rest_space-{SPACE}"
    out = tmp_path / "out"
    assert runs_left_out(out, prefix, session_1, settings) == sorted(r.prefix for r in everything
                                                                       if r.entities["ses"] == "2")
    assert runs_left_out(out, prefix, everything, settings) == []
    results = process_participants(session_1, [RunResult(r.prefix, "01", "done", summary={"target_x": 0.0})
                                               for r in session_1], out, settings)
    assert [r.status for r in results] == [KEPT] and not participant_record_path(out, prefix).exists()
    assert results[0].error.startswith("participant target not written: this selection leaves out 2")


def test_a_participant_step_left_as_it_was_keeps_its_failure_record(tmp_path):
    from trdnet.cohort import record_participant_step
    from trdnet.records import failure_record_path, write_failure_record

    prefix = f"sub-01_task-rest_space-{SPACE}"
    write_failure_record(tmp_path, prefix, "sub-01", "participant step: earlier failure", "digest")
    record_participant_step(tmp_path, [RunResult(prefix, "01", KEPT, error="left out")], Settings())
    assert failure_record_path(tmp_path, prefix).is_file()
    record_participant_step(tmp_path, [RunResult(prefix, "01", "done")], Settings())
    assert not failure_record_path(tmp_path, prefix).is_file()


def _quick_settings():
    import dataclasses

    settings = Settings()
    return dataclasses.replace(settings, targeting=dataclasses.replace(settings.targeting, reliability=False))


def test_sessions_processed_in_two_commands_make_one_target_that_a_partial_overwrite_withdraws(tmp_path, capsys):
    from trdnet.cohort import run_cohort
    from trdnet.config import with_gsr
    from trdnet.inputs.bids import find_runs
    from trdnet.inputs.simulate import simulate_cohort
    from trdnet.records import finished_participants

    sim = simulate_cohort(tmp_path / "sim", n_subjects=1, n_volumes=80, resolution_mm=4, sessions=["pre", "post"],
                          random_state=0, anatomy=False, preset="easy")
    settings = _quick_settings()
    out = tmp_path / "out"
    prefix = f"sub-01_task-rest_space-{SPACE}"
    record = participant_record_path(out, prefix)

    def command(session, chosen, overwrite=False):
        runs = find_runs(sim.fmriprep_dir, space=chosen.space, sessions=[session])
        return run_cohort(runs, out, chosen, overwrite=overwrite, progress=False)

    first = command("pre", settings)
    assert [r.status for r in first] == ["done", KEPT] and not record.exists()
    assert first[-1].error.startswith("participant target not written: this selection leaves out 1")
    second = command("post", settings)
    assert [r.status for r in second] == ["done", "done"], [r.error for r in second]
    assert second[-1].error.startswith("participant target made from 2 runs: 1 of this selection and 1 finished")
    assert [r.runs for r in finished_participants(out)] == [sorted(r.prefix for r in find_runs(sim.fmriprep_dir))]
    participant_files = [out / f for f in finished_participants(out)[0].files]
    report_results(second, out)
    assert "participant target made from 2 runs" in capsys.readouterr().out

    # ses-pre again with other settings: the participant target would mix two settings digests.
    other = with_gsr(settings, not settings.denoise.gsr)
    third = command("pre", other, overwrite=True)
    assert [r.status for r in third] == ["done", KEPT], [r.error for r in third]
    line = third[-1].error
    assert line.startswith("participant target withdrawn") and settings.digest() in line and other.digest() in line
    assert "they differ in denoise.global_signal" in line, line  # as the export names a mixture
    assert not record.exists() and finished_participants(out) == []
    assert not any(path.exists() for path in participant_files)
    # the report says, where the target was, that it was withdrawn and why (from the step's record)
    reason = line.removeprefix("participant target withdrawn: ")
    assert withdrawals(out, "01") == {prefix: reason}
    block = participant_block(out, "01")
    assert f'data-name="participant_withdrawn" data-run="{prefix}">{html.escape(reason)}</span>' in block



def _finished_with(out, runs, settings):
    """Completion records of ``runs`` made with ``settings``, each with a networks sidecar recording them."""
    from trdnet.entities import output_name

    for run in runs:
        name = f"sub-01/ses-{run.entities['ses']}/func/{output_name(run.prefix, 'networks', '.tsv')}"
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("network_a\tnetwork_b\tz\n")
        write_json(out / name.replace(".tsv", ".json"), {"Settings": settings.to_dict()})
        write_completion_record(out, run.prefix, "sub-01", settings.digest(), [name, name.replace(".tsv", ".json")],
                                {"target_x": 0.0}, simulated=True)
    return [RunResult(run.prefix, "01", "done", summary={"target_x": 0.0}) for run in runs]


def test_runs_left_out_with_other_settings_are_named_with_the_settings_that_differ(tmp_path):
    import dataclasses

    everything = _runs(["1", "2"], runs=("1",))
    settings = Settings()
    other = dataclasses.replace(settings, denoise=dataclasses.replace(settings.denoise, fd_threshold=0.3))
    _finished_with(tmp_path, everything[1:], other)
    results = process_participants(everything[:1], _finished_with(tmp_path, everything[:1], settings), tmp_path,
                                   settings)
    assert [r.status for r in results] == [KEPT]
    line = results[0].error
    assert line.startswith("participant target not written: 1 of the participant's runs left out of this "
                           f"selection was processed with other settings ({everything[1].prefix} (digest "
                           f"{other.digest()}); this command {settings.digest()})"), line
    # the wording of the export's and the group step's refusals, this command's value first
    assert "they differ in denoise.fd_threshold (0.5 vs 0.3)" in line, line


def test_a_participant_target_made_again_is_no_longer_reported_withdrawn(tmp_path, monkeypatch):
    from trdnet import participants
    from trdnet.participants import process_participant, write_withdrawal_record

    prefix = f"sub-01_task-rest_space-{SPACE}"
    everything = _runs(["1", "2"], runs=("1",))
    write_withdrawal_record(tmp_path, prefix, "run X it joins was processed again", [r.prefix for r in everything])
    assert withdrawals(tmp_path, "01") == {prefix: "run X it joins was processed again"}

    def made(runs, prefix, names, out_dir, settings, group_map, stage):  # the computation, not under test here
        from trdnet.records import write_participant_record

        write_participant_record(out_dir, prefix, names, settings.digest(), [], {}, True)
        return [], {}

    monkeypatch.setattr(participants, "_write_participant", made)
    assert process_participant(everything, prefix, tmp_path, Settings())[2] == "done"
    assert not withdrawal_record_path(tmp_path, prefix).exists() and withdrawals(tmp_path, "01") == {}


def test_each_participant_target_is_counted_in_a_progress_line(tmp_path, caplog):
    """After the runs' ``[k/N]`` lines, the participant step says how far it is, one line per participant."""
    caplog.set_level("INFO", logger="trdnet")
    runs = _runs(["1"]) + [Run(bold=Path(f"sub-02_task-rest_run-{r}_space-{SPACE}_desc-preproc_bold.nii.gz"),
                               entities={"sub": "02", "task": "rest", "run": r, "space": SPACE})
                           for r in ("1", "2")]
    single = Run(bold=Path(f"sub-03_task-rest_space-{SPACE}_desc-preproc_bold.nii.gz"),
                 entities={"sub": "03", "task": "rest", "space": SPACE})  # one run: no participant step
    finished = [RunResult(run.prefix, run.subject, "done", summary={"target_x": 0.0}) for run in runs + [single]]
    # The runs' files do not exist: each participant target fails, and is counted all the same.
    results = process_participants(runs + [single], finished, tmp_path, Settings())
    assert [r.status for r in results] == ["failed", "failed"]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[participant ")]
    assert [line.split(": ")[0] for line in lines] == [
        f"[participant 1/2] sub-01_task-rest_space-{SPACE}", f"[participant 2/2] sub-02_task-rest_space-{SPACE}"]
    assert all(": failed: participant step: " in line for line in lines)
    caplog.clear()
    process_participants(runs, finished[:4], tmp_path, Settings(), progress=False)
    assert not [r for r in caplog.records if r.getMessage().startswith("[participant ")]
