"""``trdnet export`` on an output folder as runs leave it: interrupted, failed, or finished with other settings."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from trdnet import pipeline
from trdnet.cli import main
from trdnet.config import Settings
from trdnet.errors import TrdnetError
from trdnet.inputs.bids import find_runs

from conftest import write_mni_run

SETTINGS = {"denoise": {"min_volumes": 40, "min_minutes": 1.0}, "targeting": {"n_bootstrap": 5}}


@pytest.fixture(scope="module")
def derivatives(tmp_path_factory):
    """Three participants on a 4 mm MNI grid; sub-02's run is shorter than the settings accept (it fails)."""
    root = tmp_path_factory.mktemp("reexport") / "fmriprep"
    for label, volumes in (("01", 120), ("02", 30), ("03", 120)):
        write_mni_run(root, label, seed=int(label), n_volumes=volumes)
    return root


def settings(**targeting) -> Settings:
    return Settings.from_dict({**SETTINGS, "targeting": {**SETTINGS["targeting"], **targeting}})


def run_of(derivatives, label):
    return find_runs(derivatives, participant_labels=[label])[0]


def tree_digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
            for p in sorted(Path(root).rglob("*"))}


def export(capsys, derivatives, out, *options):
    capsys.readouterr()  # what processing the runs printed
    code = main(["export", str(derivatives), str(out), *map(str, options)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def test_interrupted_run_is_named_as_interrupted_with_how_to_resume(derivatives, tmp_path, monkeypatch, capsys):
    run = run_of(derivatives, "01")
    out = tmp_path / "out"

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "write_targets", interrupt)
    with pytest.raises(KeyboardInterrupt):
        pipeline.process_run(run, out, settings())
    monkeypatch.undo()
    before = tree_digest(out)
    code, printed, err = export(capsys, derivatives, out, "--participant-label", "01")
    assert code == 1
    assert "\n" not in err and run.prefix in err, err
    assert "was interrupted" in err and f"{run.prefix}_failed.json" in err, err
    assert "resume" in err and "'trdnet run" in err, err
    assert "run 'trdnet run' first" not in printed + err
    assert tree_digest(out) == before


def test_failed_run_is_named_as_failed_with_its_recorded_reason(derivatives, tmp_path, capsys):
    run = run_of(derivatives, "02")
    out = tmp_path / "out"
    with pytest.raises(TrdnetError):
        pipeline.process_run(run, out, settings())
    recorded = json.loads((out / "logs" / f"{run.prefix}_failed.json").read_text())["Reason"]
    code, printed, err = export(capsys, derivatives, out, "--participant-label", "02")
    assert code == 1
    assert "\n" not in err and f"{run.prefix}: the run did not finish" in err and "it failed" in err, err
    assert " ".join(recorded.split()) in err and "fix that, then resume" in err, err


def test_participant_never_processed_here_is_told_to_run_first(derivatives, tmp_path, capsys):
    out = tmp_path / "out"
    assert pipeline.process_run(run_of(derivatives, "01"), out, settings()).status == "done"
    code, printed, err = export(capsys, derivatives, out, "--participant-label", "01", "03")
    assert code == 0, err
    assert f"{run_of(derivatives, '03').prefix}: not processed in {out}; run 'trdnet run' first" in printed
    assert not list(out.glob("logs/sub-03*"))


def test_plain_export_counts_the_runs_never_processed_instead_of_naming_each(derivatives, tmp_path, capsys):
    out = tmp_path / "out"
    assert pipeline.process_run(run_of(derivatives, "01"), out, settings()).status == "done"
    code, printed, err = export(capsys, derivatives, out)
    assert code == 0, err
    others = [run_of(derivatives, label).prefix for label in ("02", "03")]
    assert not any(prefix in printed + err for prefix in others), printed
    assert f"2 other run(s) of {derivatives} (2 participant(s)) were not processed in {out}" in printed
    assert f"{run_of(derivatives, '01').prefix}: " in printed
    # a folder where nothing was processed says so in one line
    code, printed, err = export(capsys, derivatives, tmp_path / "empty")
    assert code == 1 and printed.splitlines() == [
        f"none of the 3 run(s) of {derivatives} (3 participant(s)) was processed in {tmp_path / 'empty'}; "
        "run 'trdnet run' first"], printed


def test_a_run_processed_again_with_other_settings_is_refused_naming_the_settings_that_differ(derivatives,
                                                                                                tmp_path):
    from trdnet.pipeline import FinishedWithOtherSettings

    out = tmp_path / "out"
    run = run_of(derivatives, "01")
    assert pipeline.process_run(run, out, settings()).status == "done"
    with pytest.raises(FinishedWithOtherSettings) as refused:
        pipeline.process_run(run, out, settings(n_bootstrap=6))
    message = str(refused.value)
    # the wording the export and the group step use for the same mixture
    assert "they differ in targeting.n_bootstrap (5 vs 6)" in message and "\n" not in message, message
    assert settings().digest() in message and settings(n_bootstrap=6).digest() in message


def test_runs_of_two_settings_are_refused_together_or_one_digest_is_chosen(derivatives, tmp_path, capsys):
    out = tmp_path / "out"
    first, second = run_of(derivatives, "01"), run_of(derivatives, "03")
    assert pipeline.process_run(first, out, settings()).status == "done"
    assert pipeline.process_run(second, out, settings(n_bootstrap=6)).status == "done"
    digest, other = settings().digest(), settings(n_bootstrap=6).digest()
    before = tree_digest(out)
    code, printed, err = export(capsys, derivatives, out)
    assert code == 2
    assert "\n" not in err and "cannot be exported together" in err, err
    assert digest in err and other in err and "targeting.n_bootstrap (5 vs 6)" in err, err
    assert "--settings-digest" in err
    assert tree_digest(out) == before

    code, printed, err = export(capsys, derivatives, out, "--settings-digest", digest)
    assert code == 0, err
    assert f"{second.prefix}: not exported: processed with other settings (digest {other}; the export keeps " \
           f"{digest})" in printed
    assert f"{first.prefix}: " in printed.replace(f"{second.prefix}: not exported", "")
    changed = {name for name, value in tree_digest(out).items() if before.get(name) != value}
    assert changed and not any("sub-03" in name for name in changed), changed


def test_negative_lock_timeout_is_refused_at_argument_parsing(derivatives, tmp_path, capsys):
    for command in (["export", str(derivatives), str(tmp_path / "out")],
                    ["run", str(derivatives), str(tmp_path / "out"), "participant"]):
        for value in ("-1", "nan", "soon"):
            with pytest.raises(SystemExit) as exit_info:
                main([*command, "--lock-timeout", value])
            assert exit_info.value.code == 2
            err = capsys.readouterr().err
            assert f"argument --lock-timeout: {value!r} is not a number of seconds; accepted: a number >= 0" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("reason", "field", "said"), [
    # the field decides, whatever the reason's wording
    ("stopped by the cluster's job end; re-run to resume", True, "was interrupted"),
    ("interrupted stream in the confounds table (line 12)", False, "failed"),
    # records written before the field existed: the wording trdnet gave stopped runs
    ("terminated by SIGTERM (no outputs published); re-run to resume", None, "was interrupted"),
    ("interrupted (no outputs published); re-run to resume", None, "was interrupted"),
    ("internal error: ValueError: bad", None, "failed"),
])
def test_interrupted_or_failed_is_read_from_the_failure_records_field(tmp_path, reason, field, said):
    from trdnet.reexport import unfinished_reason
    from trdnet.records import failure_record_path, write_failure_record

    prefix = "sub-01_task-rest_space-MNI152NLin2009cAsym"
    path = write_failure_record(tmp_path, prefix, "sub-01", reason, "digest", interrupted=bool(field))
    if field is None:
        content = json.loads(path.read_text())
        del content["Interrupted"]
        path.write_text(json.dumps(content))
    assert path == failure_record_path(tmp_path, prefix)
    line = unfinished_reason(tmp_path, prefix)
    assert f"it {said} ({path.name}: {reason})" in line
    assert ("fix that, then resume" in line) == (said == "failed")


@pytest.mark.parametrize(("stop", "interrupted"), [(KeyboardInterrupt, True), ("Terminated", True),
                                                    (ValueError, False)])
def test_a_run_records_whether_it_was_stopped_or_failed(tmp_path, stop, interrupted):
    from trdnet import errors
    from trdnet.staging import run_lock, staged_run

    stop = getattr(errors, stop) if isinstance(stop, str) else stop
    prefix = "sub-01_task-rest_space-MNI152NLin2009cAsym"
    with pytest.raises(stop), run_lock(tmp_path, prefix), staged_run(tmp_path, prefix, "sub-01", "digest"):
        raise stop()
    record = json.loads((tmp_path / "logs" / f"{prefix}_failed.json").read_text())
    assert record["Interrupted"] is interrupted


def _participant_set(out: Path, prefix: str) -> tuple[set, set]:
    """The participant step's files its record lists, and those on disk."""
    record = json.loads((out / "logs" / "participant" / f"{prefix}_done.json").read_text())
    subject = prefix.split("_")[0]
    return set(record["Files"]), {str(p.relative_to(out)) for p in out.rglob(f"{subject}_*desc-participant*")}


def test_export_rewrites_the_participant_navigator_files_as_one_set(processed_cohort, tmp_path, capsys):
    from trdnet.export.coil import IDENTITY_LABEL
    from trdnet.participants import participant_prefix

    out = processed_cohort.copy(tmp_path / "out")
    fmriprep = processed_cohort.fmriprep_dir
    prefix = participant_prefix(find_runs(fmriprep, participant_labels=["01"])[0])
    listed, on_disk = _participant_set(out, prefix)
    before = {name: (out / name).read_bytes() for name in listed if "desc-participantnavtargets" not in name}
    code, printed, err = export(capsys, fmriprep, out, "--participant-label", "01", "--coil-orientation", "identity")
    assert code == 0, err
    assert f"{prefix} (participant):" in printed, printed
    listed, on_disk = _participant_set(out, prefix)
    assert listed == on_disk
    brainsight = [out / f for f in listed if f.endswith("desc-participantnavtargets_brainsight.txt")]
    runs = list(out.rglob("sub-01_*_desc-navtargets_brainsight.txt"))
    assert brainsight and runs
    for path in brainsight + runs:  # run-level and participant-level files now agree
        assert IDENTITY_LABEL in path.read_text(), path.name
    # the participant step's other files are as they were
    assert {name: (out / name).read_bytes() for name in before} == before
    # a format no longer asked for is withdrawn, and the record lists exactly what is on disk
    only = tmp_path / "brainsight.json"
    only.write_text(json.dumps({**SETTINGS, "export": {"formats": ["brainsight"]}}))
    code, printed, err = export(capsys, fmriprep, out, "--participant-label", "01", "--settings", only)
    assert code == 0, err
    listed, on_disk = _participant_set(out, prefix)
    assert listed == on_disk
    navigation = {Path(f).name.split("desc-participantnavtargets_")[1] for f in listed if "participantnavtargets" in f}
    assert navigation == {"coords.tsv", "coords.json", "brainsight.txt", "brainsight.json"}, navigation


def test_export_of_a_participant_without_its_record_says_so_in_one_line(processed_cohort, tmp_path, capsys):
    from trdnet.participants import participant_prefix

    out = processed_cohort.copy(tmp_path / "out")
    fmriprep = processed_cohort.fmriprep_dir
    prefix = participant_prefix(find_runs(fmriprep, participant_labels=["02"])[0])
    (out / "logs" / "participant" / f"{prefix}_done.json").unlink()
    files = {p: p.read_bytes() for p in out.rglob("sub-02_*desc-participantnavtargets*")}
    code, printed, err = export(capsys, fmriprep, out, "--participant-label", "02")
    assert code != 0
    errors = [line for line in err.splitlines() if line.startswith("trdnet: error:")]
    assert len(errors) == 1 and prefix in errors[0] and "no participant record" in errors[0], err
    assert "Traceback" not in err
    assert {p: p.read_bytes() for p in files} == files  # nothing of the participant's files changed
    assert "(participant)" not in printed


def test_a_run_whose_record_lists_names_of_an_earlier_version_is_not_exported(tmp_path):
    from trdnet.reexport import unfinished_reason
    from trdnet.records import write_completion_record

    prefix = "sub-01_task-rest_space-MNI152NLin2009cAsym"
    folder = tmp_path / "sub-01" / "func"
    folder.mkdir(parents=True)
    names = [f"{prefix}_desc-sgacc_stat-r_boldmap.nii.gz", f"{prefix}_targets.tsv",
             "sub-01_task-rest_space-T1w_desc-navtargets_markers.tsv"]  # missing: the export writes it again
    for name in names[:2]:
        (folder / name).write_text("x")
    write_completion_record(tmp_path, prefix, "sub-01", "digest", [f"sub-01/func/{n}" for n in names], {}, False)
    line = unfinished_reason(tmp_path, prefix)
    assert line.startswith(f"{prefix}: the run is not finished") and names[0] in line and "\n" not in line
    (folder / names[0]).rename(folder / f"{prefix}_stat-r_desc-sgacc_boldmap.nii.gz")
    write_completion_record(tmp_path, prefix, "sub-01", "digest",
                            [f"sub-01/func/{n}" for n in [f"{prefix}_stat-r_desc-sgacc_boldmap.nii.gz", *names[1:]]],
                            {}, False)
    assert unfinished_reason(tmp_path, prefix) is None


def test_export_refuses_a_participant_target_its_runs_no_longer_stand_behind(processed_cohort, tmp_path, capsys):
    from trdnet.participants import participant_prefix

    out = processed_cohort.copy(tmp_path / "out")
    fmriprep = processed_cohort.fmriprep_dir
    runs = find_runs(fmriprep, participant_labels=["03"])
    prefix = participant_prefix(runs[0])
    # one of its runs processed again since the participant target was made (its analysis changed)
    path = out / "logs" / f"{runs[0].prefix}_done.json"
    record = json.loads(path.read_text())
    record["Summary"]["r_sgacc"] = -0.99
    path.write_text(json.dumps(record))
    files = {p: p.read_bytes() for p in out.rglob("sub-03_*desc-participant*")}
    code, printed, err = export(capsys, fmriprep, out, "--participant-label", "03")
    assert code != 0
    errors = [line for line in err.splitlines() if line.startswith("trdnet: error:")]
    assert len(errors) == 1 and "out of date" in errors[0] and "processed again" in errors[0], err
    assert {p: p.read_bytes() for p in out.rglob("sub-03_*desc-participant*")} == files
