"""A results folder that cannot lie: staged publication, failure records, per-run locks,
and requests refused before any work (including as an unprivileged user)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from trdnet import pipeline
from trdnet.cli import main
from trdnet.cohort import run_cohort
from trdnet.config import Settings
from trdnet.errors import TargetingError
from trdnet.group import run_group
from trdnet.inputs.bids import find_runs
from trdnet.output_folder import check_output_folder
from trdnet.outputs import read_tsv, write_dataset_description
from trdnet.records import finished_runs
from trdnet.staging import RunBusyError, run_lock, staging_dir

from conftest import build_once, write_fmriprep_run, write_mni_run

# min_dof 0: the 120-volume runs leave too few temporal DoF, and child processes keep the shipped minimum
SETTINGS = {"denoise": {"min_volumes": 40, "min_minutes": 1.0, "min_dof": 0}, "targeting": {"n_bootstrap": 5}}
PREFIX = "sub-{}_task-rest_space-MNI152NLin2009cAsym"


@pytest.fixture(scope="module")
def derivatives(tmp_path_factory):
    """Three participants on a 4 mm MNI grid; sub-02's confounds table is 5 rows short (it fails).

    Written once per test run and shared by the pytest-xdist workers: read only.
    """
    def build(folder: Path) -> Path:
        root = folder / "fmriprep"
        write_mni_run(root, "01", seed=1)
        broken = write_mni_run(root, "02", seed=2)
        table = pd.read_csv(broken["confounds"], sep="\t")
        table.iloc[:-5].to_csv(broken["confounds"], sep="\t", index=False, na_rep="n/a")
        write_mni_run(root, "03", seed=3)
        return root

    return build_once(tmp_path_factory, "results-derivatives", build)


@pytest.fixture(scope="module")
def processed_01(derivatives, tmp_path_factory):
    """sub-01 of ``derivatives`` processed with :data:`SETTINGS` by ``pipeline.process_run``, once per test run.

    Read only: a test takes a private copy (:func:`copy_of`). The same inputs and settings give the same files
    (test_pipeline.py checks it byte for byte), so the copy stands for a run of the test's own.
    """
    def build(folder: Path) -> Path:
        run = find_runs(derivatives, participant_labels=["01"])[0]
        assert pipeline.process_run(run, folder / "out", settings()).status == "done"
        return folder / "out"

    return build_once(tmp_path_factory, "results-processed-01", build)


@pytest.fixture(scope="module")
def cli_processed_01(derivatives, tmp_path_factory):
    """sub-01 of ``derivatives`` processed by ``trdnet run ... participant --participant-label 01 --no-report
    --settings`` (:data:`SETTINGS`), once per test run: the output folder, with the command's
    ``dataset_description.json`` naming ``derivatives``. Read only: a test takes a private copy (:func:`copy_of`).
    """
    def build(folder: Path) -> Path:
        settings_file = folder / "settings.json"
        settings_file.write_text(json.dumps(SETTINGS))
        assert main(["run", str(derivatives), str(folder / "out"), "participant", "--participant-label", "01",
                     "--no-report", "--settings", str(settings_file)]) == 0
        return folder / "out"

    return build_once(tmp_path_factory, "results-cli-01", build)


def copy_of(processed: Path, out: Path) -> Path:
    """A private copy of a processed output folder at ``out``."""
    return Path(shutil.copytree(processed, out, symlinks=True))


def settings() -> Settings:
    return Settings.from_dict(SETTINGS)


def sub_01_of(derivatives: Path, root: Path) -> Path:
    """sub-01 of ``derivatives`` alone, copied to a new fMRIPrep folder ``root``: the run
    ``write_mni_run(root, "01", seed=1)`` writes, without writing it again."""
    root.mkdir()
    shutil.copy(derivatives / "dataset_description.json", root)
    shutil.copytree(derivatives / "sub-01", root / "sub-01")
    return root


def outputs_of(out: Path, prefix: str) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.glob(f"sub-*/**/{prefix}_*"))


def tree_digest(root: Path) -> dict:
    """Every file and folder of a tree with the hash of its bytes and its mode."""
    found = {}
    for path in sorted(Path(root).rglob("*")):
        mode = path.lstat().st_mode
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        found[str(path.relative_to(root))] = (stat.S_IFMT(mode), digest)
    return found


def assert_records_match_outputs(out: Path) -> None:
    """No completion record lists a file that is missing; no run output lacks a record."""
    finished, broken = finished_runs(out)
    assert broken == []
    listed = {f for record in finished for f in record.files}
    written = {str(p.relative_to(out)) for p in out.glob("sub-*/**/*") if p.is_file()}
    assert written == listed


# --- staging: a run's outputs appear together with its completion record, or not at all ---------------------


def _fail_in_targeting(*args, **kwargs):
    raise TargetingError("planted failure after the QC and network tables were written")


def test_failed_run_leaves_no_outputs_only_its_failure_record(derivatives, tmp_path, monkeypatch):
    run = find_runs(derivatives, participant_labels=["01"])[0]
    out = tmp_path / "out"
    monkeypatch.setattr(pipeline, "write_targets", _fail_in_targeting)
    with pytest.raises(TargetingError):
        pipeline.process_run(run, out, settings())
    assert outputs_of(out, run.prefix) == []
    assert not staging_dir(out, run.prefix).exists()
    record = json.loads((out / "logs" / f"{run.prefix}_failed.json").read_text())
    assert "planted failure" in record["Reason"] and record["Participant"] == "sub-01"
    assert not (out / "logs" / f"{run.prefix}_done.json").exists()


def test_interrupted_overwrite_never_leaves_the_old_record(derivatives, processed_01, tmp_path, monkeypatch):
    run = find_runs(derivatives, participant_labels=["01"])[0]
    out = copy_of(processed_01, tmp_path / "out")
    assert (out / "logs" / f"{run.prefix}_done.json").is_file() and outputs_of(out, run.prefix)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "write_targets", interrupt)
    with pytest.raises(KeyboardInterrupt):
        pipeline.process_run(run, out, settings(), overwrite=True)
    assert not (out / "logs" / f"{run.prefix}_done.json").exists()
    assert outputs_of(out, run.prefix) == []  # the outputs the old record described went with it
    assert "interrupted" in json.loads((out / "logs" / f"{run.prefix}_failed.json").read_text())["Reason"]
    monkeypatch.undo()
    again = pipeline.process_run(run, out, settings())
    assert again.status == "done"  # recomputed, not "skipped"
    assert not (out / "logs" / f"{run.prefix}_failed.json").exists()
    assert_records_match_outputs(out)


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from trdnet import pipeline
    from trdnet.config import Settings
    from trdnet.inputs.bids import find_runs

    root, out, settings = Path(sys.argv[1]), Path(sys.argv[2]), Settings.from_dict(eval(sys.argv[3]))
    write_targets = pipeline.write_targets

    def killed_midway(run, cleaned, stage_root, *args, **kwargs):
        write_targets(run, cleaned, stage_root, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 after some outputs were written

    pipeline.write_targets = killed_midway
    pipeline.process_run(find_runs(root, participant_labels=["01"])[0], out, settings, overwrite=True)
""")


@pytest.mark.slow  # three whole runs, one in a child process
def test_kill_9_during_overwrite_leaves_no_record_and_is_reported(derivatives, processed_01, tmp_path):
    run = find_runs(derivatives, participant_labels=["01"])[0]
    out = copy_of(processed_01, tmp_path / "out")
    old_qc = (out / "sub-01" / "func" / f"{run.prefix}_qc.tsv").read_bytes()
    child = subprocess.run([sys.executable, "-c", KILLED_RUN, str(derivatives), str(out), repr(SETTINGS)],
                           capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert not (out / "logs" / f"{run.prefix}_done.json").exists()  # removed before any new output was written
    assert staging_dir(out, run.prefix).is_dir()  # the new outputs never left the staging folder
    assert (out / "sub-01" / "func" / f"{run.prefix}_qc.tsv").read_bytes() == old_qc
    # the group step does not take the unrecorded outputs for a result; it says what happened
    pipeline.process_run(find_runs(derivatives, participant_labels=["03"])[0], out, settings())
    result = run_group(out)
    reasons = result.exclusions.set_index("run")["reason"]
    assert "interrupted" in reasons[run.prefix]
    assert pipeline.process_run(run, out, settings()).status == "done"
    assert not staging_dir(out, run.prefix).exists()
    assert_records_match_outputs(out)


# --- failures are kept, one record per run -------------------------------------------------------------------


def test_a_later_job_never_erases_an_earlier_failure(derivatives, tmp_path, capsys):
    out = tmp_path / "out"
    args = [str(derivatives), str(out), "participant", "--n-bootstrap", "5", "--no-report", "--settings"]
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({"denoise": SETTINGS["denoise"]}))
    # one job per participant, as on a cluster array
    assert main(["run", *args, str(settings_file), "--participant-label", "02"]) == 1
    assert main(["run", *args, str(settings_file), "--participant-label", "01"]) == 0
    assert main(["run", *args, str(settings_file), "--participant-label", "sub-03"]) == 0
    failures = read_tsv(out / "failures.tsv")
    assert failures["participant_id"].tolist() == ["sub-02"] and "rows" in failures.loc[0, "reason"]
    assert outputs_of(out, PREFIX.format("02")) == []
    capsys.readouterr()

    # a participant neither in the input nor in the output folder is refused, as by the participant step
    _refused(capsys, ["run", str(derivatives), str(out), "group", "--participant-label", "01", "99", "--no-report"],
             "--participant-label 99: not found", "present: 01 02 03")
    assert not (out / "group").exists()
    assert main(["run", str(derivatives), str(out), "group", "--participant-label", "01", "02", "03",
                 "--no-report"]) == 0
    printed = capsys.readouterr().err  # the group step's notes are warnings
    assert "without a usable result" in printed
    exclusions = read_tsv(out / "group" / "exclusions.tsv").set_index("participant_id")
    assert "run failed" in exclusions.loc["sub-02", "reason"] and "rows" in exclusions.loc["sub-02", "reason"]
    assert sorted(read_tsv(out / "group" / "qc.tsv")["participant_id"]) == ["sub-01", "sub-03"]


def test_group_step_lists_input_participants_that_never_ran(derivatives, cli_processed_01, tmp_path, capsys):
    """The output's dataset_description.json names the fMRIPrep folder read; its participants without a result
    are listed, and a label in neither folder is refused."""
    out = copy_of(cli_processed_01, tmp_path / "out")  # 'trdnet run' on sub-01 alone
    assert main(["run", str(out), "group", "--no-report"]) == 0
    exclusions = read_tsv(out / "group" / "exclusions.tsv").set_index("participant_id")
    assert sorted(exclusions.index) == ["sub-02", "sub-03"]
    assert f"in the input {derivatives} but never processed" in exclusions.loc["sub-03", "reason"]
    # sub-03 is in the input: asked for, it is listed, not refused
    assert main(["run", str(out), "group", "--participant-label", "01", "03", "--no-report"]) == 0
    exclusions = read_tsv(out / "group" / "exclusions.tsv").set_index("participant_id")
    assert sorted(exclusions.index) == ["sub-03"] and "never processed" in exclusions.loc["sub-03", "reason"]
    capsys.readouterr()
    _refused(capsys, ["run", str(out), "group", "--participant-label", "01", "07", "--no-report"],
             "--participant-label 07: not found")


def test_failure_record_goes_when_the_run_succeeds(derivatives, tmp_path):
    fixed = tmp_path / "fmriprep"
    shutil.copytree(derivatives, fixed)
    out = tmp_path / "out"
    runs = find_runs(fixed, participant_labels=["02"])
    assert [r.status for r in run_cohort(runs, out, settings())] == ["failed"]
    assert (out / "failures.tsv").is_file()
    shutil.copy(derivatives.parent / "fmriprep" / "sub-01" / "func" / "sub-01_task-rest_desc-confounds_timeseries.tsv",
                runs[0].confounds)
    assert [r.status for r in run_cohort(runs, out, settings())] == ["done"]
    assert not (out / "failures.tsv").exists() and not list((out / "logs").glob("*_failed.json"))


# --- one process per run ---------------------------------------------------------------------------------------


def test_a_second_process_on_the_same_run_is_refused(derivatives, tmp_path, capsys):
    run = find_runs(derivatives, participant_labels=["01"])[0]
    out = tmp_path / "out"
    with run_lock(out, run.prefix):  # another process working on this run
        with pytest.raises(RunBusyError, match="another trdnet process"):
            pipeline.process_run(run, out, settings())
        results = run_cohort([run], out, settings())
        settings_file = tmp_path / "settings.json"
        settings_file.write_text(json.dumps(SETTINGS))
        code = main(["run", str(derivatives), str(out), "participant", "--participant-label", "01", "--no-report",
                     "--settings", str(settings_file)])
    assert [r.status for r in results] == ["busy"]
    assert code == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if run.prefix in line]
    assert len(lines) == 1 and "NOT PROCESSED: " in lines[0] and "another trdnet process" in lines[0]
    assert outputs_of(out, run.prefix) == [] and not list((out / "logs").glob("*.json"))  # no failure recorded
    assert pipeline.process_run(run, out, settings()).status == "done"  # the lock is released


# --- refused before any work ---------------------------------------------------------------------------------


@pytest.fixture
def small_input(tmp_path):
    root = tmp_path / "fmriprep"
    write_fmriprep_run(root, sub="01")
    write_fmriprep_run(root, sub="02", seed=1)
    return root


def _refused(capsys, argv, *expected):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("trdnet: error:") and "\n" not in err, err
    for text in expected:
        assert text in err, err
    return err


def test_output_folder_in_the_input_tree_is_refused(small_input, tmp_path, capsys):
    before = tree_digest(small_input)
    run = ["run", str(small_input)]
    _refused(capsys, [*run, str(small_input), "participant"], "is the input folder")
    _refused(capsys, [*run, str(small_input / "derivatives" / "trdnet"), "participant"], "inside the input folder")
    link = tmp_path / "link"
    link.symlink_to(small_input)
    _refused(capsys, [*run, str(link), "participant"], "is the input folder")
    _refused(capsys, [*run, str(link / "sub-01"), "participant"], "inside the input folder")
    # an input inside the output folder, where trdnet writes its own sub-* folders
    _refused(capsys, ["run", str(tmp_path / "sub-99"), str(tmp_path), "participant"], "holds the input")
    assert tree_digest(small_input) == before


def _raw_dataset(root: Path) -> Path:
    """A raw BIDS root: its description and a raw BOLD beside which derivatives/fmriprep is written."""
    (root / "sub-01" / "func").mkdir(parents=True)
    (root / "sub-01" / "func" / "sub-01_task-rest_bold.nii.gz").write_bytes(b"raw bold")
    (root / "dataset_description.json").write_text(json.dumps({"Name": "A study", "BIDSVersion": "1.9.0",
                                                               "DatasetType": "raw"}))
    write_fmriprep_run(root / "derivatives" / "fmriprep", sub="01")
    return root


def test_output_folder_holding_the_input_is_refused(tmp_path, capsys):
    """The raw BIDS root as the output of its own derivatives/fmriprep: nothing of it is written or replaced."""
    raw = _raw_dataset(tmp_path / "raw")
    fmriprep = raw / "derivatives" / "fmriprep"
    before = tree_digest(raw)
    err = _refused(capsys, ["run", str(fmriprep), str(raw), "participant"], f"{raw}: ", "holds the input",
                   str(fmriprep), str(raw / "derivatives" / "trdnet"))
    assert tree_digest(raw) == before, err
    # a folder with no description of its own holding the input is refused the same way
    (raw / "dataset_description.json").unlink()
    before = tree_digest(raw)
    _refused(capsys, ["run", str(fmriprep), str(raw), "participant"], "holds the input")
    _refused(capsys, ["run", str(fmriprep), str(raw / "derivatives"), "participant"], "holds the input")
    assert tree_digest(raw) == before


def test_output_folder_of_another_dataset_is_refused(small_input, tmp_path, capsys):
    """Another pipeline's derivatives, a raw dataset or an unreadable description: refused, nothing written."""
    xcpd = tmp_path / "derivatives" / "xcpd"
    xcpd.mkdir(parents=True)
    (xcpd / "dataset_description.json").write_text(json.dumps({
        "Name": "XCP-D outputs", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "xcp_d", "Version": "0.7.0"}]}))
    raw = _raw_dataset(tmp_path / "raw")
    garbled = tmp_path / "garbled"
    garbled.mkdir()
    (garbled / "dataset_description.json").write_text("{not json")
    run = ["run", str(small_input)]
    for out, expected in ((xcpd, "derivatives generated by xcp_d"), (raw, "a raw BIDS dataset"),
                          (garbled, "not a JSON object")):
        before = tree_digest(out)
        _refused(capsys, [*run, str(out), "participant"], f"{out}: ", "another dataset", expected)
        assert tree_digest(out) == before
    # the demo's output folder is checked the same way, before anything is simulated
    (tmp_path / "demo" / "trdnet").mkdir(parents=True)
    shutil.copy(xcpd / "dataset_description.json", tmp_path / "demo" / "trdnet")
    _refused(capsys, ["demo", str(tmp_path / "demo")], "derivatives generated by xcp_d")
    assert not (tmp_path / "demo" / "simulated").exists()


def test_empty_folder_and_trdnets_own_output_are_accepted(derivatives, cli_processed_01, tmp_path, capsys):
    """An empty folder, trdnet's description (this version or another) and an earlier run's folder, resumed."""
    folder = tmp_path / "empty"
    folder.mkdir()
    assert check_output_folder(folder, [derivatives]) == folder
    write_dataset_description(folder, simulated=False, sources=[derivatives])
    assert check_output_folder(folder, [derivatives]) == folder
    description = json.loads((folder / "dataset_description.json").read_text())
    description["GeneratedBy"][0]["Version"] = "0.0.1"  # an earlier trdnet's folder is resumed by a newer one
    (folder / "dataset_description.json").write_text(json.dumps(description))
    assert check_output_folder(folder, [derivatives]) == folder
    out = copy_of(cli_processed_01, tmp_path / "out")
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps(SETTINGS))
    before = tree_digest(out / "sub-01")
    assert main(["run", str(derivatives), str(out), "participant", "--participant-label", "01", "--no-report",
                 "--settings", str(settings_file)]) == 0, capsys.readouterr().err
    assert tree_digest(out / "sub-01") == before  # resumed: the finished run is kept


def test_symbolic_link_inside_the_output_folder_into_the_input_is_refused(small_input, tmp_path, capsys):
    before = tree_digest(small_input)
    run = ["run", str(small_input)]
    for name, target in (("sub-01", small_input / "sub-01"), ("logs", small_input)):
        out = tmp_path / f"out-{name}"
        out.mkdir()
        (out / name).symlink_to(target)
        _refused(capsys, [*run, str(out), "participant", "--participant-label", "01"], "symbolic link", name)
    nested = tmp_path / "out-nested" / "sub-01"
    nested.mkdir(parents=True)
    (nested / "func").symlink_to(small_input / "sub-01" / "func")
    _refused(capsys, [*run, str(nested.parent), "participant", "--participant-label", "01"], "symbolic link")
    assert tree_digest(small_input) == before


def test_output_path_that_is_a_file_is_refused(small_input, tmp_path, capsys):
    target = tmp_path / "out.txt"
    target.write_text("keep me")
    _refused(capsys, ["run", str(small_input), str(target), "participant"], "is a file")
    assert target.read_text() == "keep me"


def test_participant_labels_not_present_are_listed(small_input, tmp_path, capsys):
    out = tmp_path / "out"
    err = _refused(capsys, ["run", str(small_input), str(out), "participant", "--participant-label", "01", "99",
                            "sub-98"], "--participant-label 99 98", "present: 01 02")
    assert not out.exists()
    for label in ("*", "01,02", "sub-", "../01"):
        _refused(capsys, ["run", str(small_input), str(out), "participant", "--participant-label", label],
                 "not a BIDS label", repr(label))
    assert not out.exists(), err


@pytest.mark.parametrize("address", ["local:abc", "local:0", "local:-1", "local:", "nonsense"])
def test_malformed_dask_address_is_refused_at_once(small_input, tmp_path, capsys, address):
    _refused(capsys, ["run", str(small_input), str(tmp_path / "out"), "participant", "--dask", address],
             f"--dask {address}:")
    assert not (tmp_path / "out").exists()


def test_report_labels_are_checked(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "logs").mkdir(parents=True)
    (out / "sub-01" / "func").mkdir(parents=True)
    (out / "sub-01" / "func" / "x_networks.tsv").write_text("a\n")
    (out / "logs" / "sub-01_task-rest_done.json").write_text(json.dumps(
        {"Run": "sub-01_task-rest", "Files": ["sub-01/func/x_networks.tsv"]}))
    _refused(capsys, ["report", str(out), "--participant-label", "*"], "not a BIDS label")
    _refused(capsys, ["report", str(out), "--participant-label", "02"], "--participant-label 02: not found",
             "present: 01")
    assert not list(out.glob("*.html"))


# --- permissions, as an unprivileged user (CI runs as root, which reads everything) -------------------------

def _cli_in_child(argv: list[str], cwd: str, stdout: str, stderr: str, as_nobody: bool,
                  sigterm_after_targets: bool) -> None:
    """``trdnet.cli.main(argv)`` in a process forked from :func:`_forkserver`; its value is the exit status.

    ``as_nobody``: as user nobody (uid 65534), the output files opened before privileges are dropped.
    ``sigterm_after_targets``: the process sends itself SIGTERM, as kill or a cluster's job end does, once a
    run has written its targets.
    """
    import trdnet.cli
    import trdnet.config
    from trdnet import pipeline

    os.chdir(cwd)
    for fd, path in ((1, stdout), (2, stderr)):
        with open(path, "w") as file:
            os.dup2(file.fileno(), fd)
    sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", closefd=False)
    if sigterm_after_targets:
        write_targets = pipeline.write_targets

        def terminated_midway(*args, **kwargs):
            written = write_targets(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGTERM)
            return written

        pipeline.write_targets = terminated_midway
    if as_nobody and os.geteuid() == 0:
        # what trdnet reads from its own installation (the settings' name tables), read while it can be: an
        # install is readable by its users, this checkout need not be readable by nobody
        trdnet.config.Settings()
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    try:
        code = trdnet.cli.main(argv)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


_SERVER = []


def _forkserver():
    """A multiprocessing context whose processes fork from one server that imported trdnet and this module
    (everything the refusal path needs) while the interpreter's files were still readable to all: each command
    is a process of its own without paying for a fresh interpreter's imports."""
    if not _SERVER:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__, "trdnet.cli", "trdnet.cohort", "trdnet.config", "trdnet.inputs.bids",
                                        "trdnet.inputs.requested", "trdnet.output_folder", "trdnet.records",
                                        "trdnet.staging"])
        _SERVER.append(context)
    return _SERVER[0]


def run_in_child(*argv: str, cwd: Path, as_nobody: bool = False,
                 sigterm_after_targets: bool = False) -> subprocess.CompletedProcess:
    """``trdnet`` with ``argv`` in a new process in ``cwd`` (see :func:`_cli_in_child`); ends it after 300 s."""
    with tempfile.TemporaryDirectory() as captured:
        stdout, stderr = Path(captured) / "stdout", Path(captured) / "stderr"
        child = _forkserver().Process(target=_cli_in_child, args=(list(argv), str(cwd), str(stdout), str(stderr),
                                                                  as_nobody, sigterm_after_targets))
        child.start()
        child.join(300)
        if child.exitcode is None:
            child.kill()
            child.join()
            pytest.fail(f"trdnet {' '.join(argv)} did not end within 300 s")
        return subprocess.CompletedProcess(argv, child.exitcode, stdout.read_text(), stderr.read_text())


def run_unprivileged(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    """``trdnet`` with ``argv`` in a new process running as user nobody in ``cwd``."""
    return run_in_child(*argv, cwd=cwd, as_nobody=True)


@pytest.fixture
def shared_dir():
    """A folder an unprivileged user can enter (pytest's own temporary folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="trdnet-permissions-"))
    folder.chmod(0o777)
    yield folder
    for path in folder.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(folder)


def _permission_case(shared_dir, make_unreadable, *expected, out_mode=0o777):
    root = shared_dir / "fmriprep"
    write_fmriprep_run(root, sub="01")
    write_fmriprep_run(root, sub="02", seed=1)
    out = shared_dir / "out"
    out.mkdir(mode=0o777)
    out.chmod(out_mode)
    unreadable = make_unreadable(root, out)
    before = tree_digest(root)
    child = run_unprivileged("run", str(root), str(out), "participant", "--no-report", cwd=shared_dir)
    err = child.stderr.strip()
    assert child.returncode == 2, child.stdout + child.stderr
    assert err.startswith("trdnet: error:") and "\n" not in err and "Traceback" not in err, err
    assert str(unreadable) in err, err
    for text in expected:
        assert text in err, err
    assert tree_digest(root) == before
    assert not any(out.iterdir())


def test_unreadable_dataset_description_is_named(shared_dir):
    def lock(root, out):
        (root / "dataset_description.json").chmod(0)
        return root / "dataset_description.json"
    _permission_case(shared_dir, lock, "cannot be read")


def test_unreadable_participant_folder_is_not_called_missing(shared_dir):
    def lock(root, out):
        (root / "sub-02").chmod(0)
        return root / "sub-02"
    _permission_case(shared_dir, lock, "cannot be read")


def test_unreadable_json_sidecar_is_named(shared_dir):
    def lock(root, out):
        sidecar = next((root / "sub-02" / "func").glob("*_bold.json"))
        sidecar.chmod(0)
        return sidecar
    _permission_case(shared_dir, lock, "cannot be read")


def test_read_only_output_folder_is_refused(shared_dir):
    _permission_case(shared_dir, lambda root, out: out, "cannot be written", out_mode=0o555)


# --- one definition of a finished run: ROI time-series runs get a group step and a report ----------------------


def test_roi_timeseries_runs_reach_the_group_step_and_the_reports(tmp_path, capsys):
    import numpy as np

    rois = ["PCC", "mPFC", "LP", "dACC", "lIns", "rIns", "dmPFC", "aPFC", "IPS"]
    networks = ["DMN"] * 3 + ["SN"] * 3 + ["ECN"] * 3
    labels = tmp_path / "labels.tsv"
    pd.DataFrame({"roi": rois, "network": networks}).to_csv(labels, sep="\t", index=False)
    root = tmp_path / "derivs"
    rng = np.random.default_rng(0)
    for sub in ("01", "02", "03"):
        func = root / f"sub-{sub}" / "func"
        func.mkdir(parents=True)
        shared = rng.standard_normal((120, 3)).repeat(3, axis=1)
        table = pd.DataFrame(shared + rng.standard_normal((120, 9)), columns=rois)
        table.to_csv(func / f"sub-{sub}_task-rest_timeseries.tsv", sep="\t", index=False)
        (func / f"sub-{sub}_task-rest_timeseries.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    out = tmp_path / "out"
    roi_run = ["run", "--roi-timeseries", str(root), "--labels", str(labels), str(out), "participant",
               "--already-cleaned"]
    _refused(capsys, [*roi_run, "--participant-label", "01", "04"], "--participant-label 04", "present: 01 02 03")
    assert not (out / "logs").exists()
    assert main([*roi_run, "--participant-label", "01", "02", "03", "--no-report"]) == 0
    description = json.loads((out / "dataset_description.json").read_text())
    assert [entry["URL"] for entry in description["SourceDatasets"]] == [root.resolve().as_uri()]
    from trdnet.report.collect import find_runs as report_runs

    assert [run.prefix for run in report_runs(out)] == [f"sub-{s}_task-rest" for s in ("01", "02", "03")]
    assert main(["run", str(out), "group", "--no-report"]) == 0
    collected = read_tsv(out / "group" / "networks.tsv")
    assert sorted(collected["participant_id"].unique()) == ["sub-01", "sub-02", "sub-03"]
    within = collected[(collected["network_a"] == "DMN") & (collected["network_b"] == "DMN")]
    assert (within["mean_z"] > 0.3).all()  # the planted shared signal, read back from each run's table
    assert read_tsv(out / "group" / "targets.tsv").empty


def test_output_folder_that_cannot_be_created_is_refused(shared_dir):
    root = shared_dir / "fmriprep"
    write_fmriprep_run(root, sub="01")
    parent = shared_dir / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    child = run_unprivileged("run", str(root), str(parent / "out"), "participant", cwd=shared_dir)
    err = child.stderr.strip()
    assert child.returncode == 2 and "\n" not in err, child.stdout + child.stderr
    assert f"{parent / 'out'}: the output folder cannot be created" in err
    assert not (parent / "out").exists()


# --- a read-only part of the output folder with --overwrite -----------------------------------------------------


def _open_to_everyone(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o777 if path.is_dir() else 0o666)


@pytest.mark.parametrize("locked", ["logs", ".trdnet", "sub-01/func"])
def test_read_only_part_of_the_output_folder_is_refused_before_any_work(derivatives, shared_dir, locked):
    root = sub_01_of(derivatives, shared_dir / "fmriprep")
    out = shared_dir / "out"
    argv = ["run", str(root), str(out), "participant", "--no-report", "--n-bootstrap", "5", "--settings"]
    settings_file = shared_dir / "settings.json"
    settings_file.write_text(json.dumps({"denoise": SETTINGS["denoise"]}))
    assert main([*argv, str(settings_file)]) == 0
    _open_to_everyone(out)
    (out / locked).chmod(0o555)
    before = tree_digest(out)
    child = run_unprivileged(*argv, str(settings_file), "--overwrite", cwd=shared_dir)
    err = child.stderr.strip()
    assert child.returncode == 2, child.stdout + child.stderr
    assert err.startswith("trdnet: error:") and "\n" not in err and "Traceback" not in err, err
    assert f"{out / locked}: cannot be written" in err, err
    assert tree_digest(out) == before  # nothing removed, the record still matches its outputs
    assert_records_match_outputs(out)


def test_a_record_that_cannot_be_removed_keeps_its_outputs(derivatives, processed_01, tmp_path, monkeypatch):
    """Past the checks (a folder made read-only during the run): the old record and its outputs stay together."""
    from trdnet import staging

    run = find_runs(derivatives, participant_labels=["01"])[0]
    out = copy_of(processed_01, tmp_path / "out")
    outputs = outputs_of(out, run.prefix)
    unlink = Path.unlink

    def refuse_record(path, *args, **kwargs):
        if path.name.endswith("_done.json") or path.name.endswith("_failed.json"):
            raise PermissionError(13, "Permission denied", str(path))
        return unlink(path, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", refuse_record)
    monkeypatch.setattr(staging, "write_failure_record", lambda *a, **k: (_ for _ in ()).throw(
        PermissionError(13, "Permission denied", "logs")))
    with pytest.raises(PermissionError):
        pipeline.process_run(run, out, settings(), overwrite=True)
    monkeypatch.undo()
    assert (out / "logs" / f"{run.prefix}_done.json").is_file()
    assert outputs_of(out, run.prefix) == outputs
    assert_records_match_outputs(out)


# --- runs of different settings in one folder --------------------------------------------------------------------


def test_group_step_refuses_runs_of_different_settings(derivatives, cli_processed_01, tmp_path, capsys):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps(SETTINGS))
    second.write_text(json.dumps({**SETTINGS, "targeting": {"n_bootstrap": 6}}))
    # two jobs of a cluster array, each with its own settings, each on its own participant: sub-01's job ran
    # with the first settings (cli_processed_01)
    out = copy_of(cli_processed_01, tmp_path / "out")
    assert main(["run", str(derivatives), str(out), "participant", "--participant-label", "03", "--no-report",
                 "--settings", str(second)]) == 0
    digests = {label: Settings.from_json(f).digest() for label, f in (("01", first), ("03", second))}
    capsys.readouterr()
    err = _refused(capsys, ["run", str(out), "group", "--no-report"], digests["01"], digests["03"],
                   PREFIX.format("01"), PREFIX.format("03"), "targeting.n_bootstrap (", "--settings-digest")
    assert "cannot be pooled" in err and not (out / "group").exists()
    assert "targeting.n_bootstrap (5 vs 6)" in err or "targeting.n_bootstrap (6 vs 5)" in err
    assert main(["run", str(out), "group", "--no-report", "--settings-digest", digests["03"]]) == 0
    assert read_tsv(out / "group" / "qc.tsv")["participant_id"].tolist() == ["sub-03"]
    exclusions = read_tsv(out / "group" / "exclusions.tsv").set_index("run")
    assert f"other settings (digest {digests['01']}" in exclusions.loc[PREFIX.format("01"), "reason"]
    capsys.readouterr()  # the pooled group step's notes
    _refused(capsys, ["run", str(out), "group", "--no-report", "--settings-digest", "0123456789ab"],
             "no finished run", digests["01"], digests["03"])


def test_a_run_finished_meanwhile_with_other_settings_is_not_called_a_failure(derivatives, tmp_path, capsys,
                                                                           monkeypatch):
    """Two processes at once: the other one finished this run with its settings after this one's check."""
    import trdnet.cohort

    run = find_runs(derivatives, participant_labels=["01"])[0]
    out = tmp_path / "out"
    other = Settings.from_dict({**SETTINGS, "targeting": {"n_bootstrap": 6}})
    pipeline.process_run(run, out, other)
    monkeypatch.setattr(trdnet.cohort, "check_same_settings", lambda *args: None)
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps(SETTINGS))
    capsys.readouterr()
    code = main(["run", str(derivatives), str(out), "participant", "--participant-label", "01", "--no-report",
                 "--settings", str(settings_file)])
    captured = capsys.readouterr()
    assert code == 1
    assert f"{run.prefix}: NOT PROCESSED: " in captured.out and "other settings" in captured.out
    assert "failures.tsv" not in captured.err and "1 of 1 runs not processed" in captured.err
    assert not (out / "failures.tsv").exists() and not list((out / "logs").glob("*_failed.json"))
    assert_records_match_outputs(out)


# --- no more worker processes than cores -------------------------------------------------------------------------


@pytest.mark.parametrize("option", [["--n-jobs", "64"], ["--dask", "local:200"]])
def test_more_workers_than_cores_are_capped_with_one_warning(derivatives, tmp_path, capsys, monkeypatch, option):
    import trdnet.cohort
    from trdnet.pipeline import RunResult

    monkeypatch.setattr(trdnet.cohort, "available_cores", lambda: 2)
    started = {}

    @contextlib.contextmanager
    def backend(dask, dask_workers, n_jobs, n_runs, timeout):
        started["dask" if dask else "joblib"] = dask_workers if dask else n_jobs
        yield lambda function, tasks: ((i, RunResult(run.prefix, run.subject, "skipped"))
                                       for i, (run, *_) in enumerate(tasks))

    monkeypatch.setattr(trdnet.cohort, "_cohort_map", backend)
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps(SETTINGS))
    assert main(["run", str(derivatives), str(tmp_path / "out"), "participant", "--participant-label", "01", "03",
                 "--no-report", "--settings", str(settings_file), *option]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line and "core" in line]
    assert started == {"joblib" if option[0] == "--n-jobs" else "dask": 2}
    asked = option[1].removeprefix("local:")
    assert warnings == [f"trdnet: warning: {' '.join(option)}: {asked} worker processes asked for, 2 core(s) "
                        "available: using 2"]


# --- signals, busy runs and schedulers ---------------------------------------------------------------------------

def test_sigterm_leaves_a_failure_record_and_no_outputs(derivatives, tmp_path):
    run = find_runs(derivatives, participant_labels=["01"])[0]
    out = tmp_path / "out"
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps(SETTINGS))
    child = run_in_child("run", str(derivatives), str(out), "participant", "--participant-label", "01", "--no-report",
                         "--settings", str(settings_file), cwd=tmp_path, sigterm_after_targets=True)
    assert child.returncode == 143, child.stderr
    assert "Traceback" not in child.stderr
    assert child.stderr.strip().splitlines()[-1] == ("trdnet: terminated (SIGTERM); finished runs are kept, re-run "
                                                     "to resume")
    assert "SIGTERM" in json.loads((out / "logs" / f"{run.prefix}_failed.json").read_text())["Reason"]
    assert not staging_dir(out, run.prefix).exists() and outputs_of(out, run.prefix) == []
    assert not (out / "logs" / f"{run.prefix}_done.json").exists()


def test_lock_timeout_waits_for_a_busy_run(derivatives, tmp_path, capsys):
    import threading

    run = find_runs(derivatives, participant_labels=["01"])[0]
    out = tmp_path / "out"
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps(SETTINGS))
    argv = ["run", str(derivatives), str(out), "participant", "--participant-label", "01", "--no-report",
            "--settings", str(settings_file)]
    taken, release = threading.Event(), threading.Event()

    def other_process():
        with run_lock(out, run.prefix):
            taken.set()
            release.wait(60)

    holder = threading.Thread(target=other_process)
    holder.start()
    taken.wait(60)
    assert main(argv) == 1  # default: refused at once, and told how to wait
    assert "--lock-timeout SECONDS waits for it" in capsys.readouterr().out
    threading.Timer(1.0, release.set).start()
    assert main([*argv, "--lock-timeout", "120"]) == 0
    holder.join()
    assert "done" in capsys.readouterr().err
    assert_records_match_outputs(out)


def test_unreachable_dask_scheduler_writes_nothing(derivatives, tmp_path, capsys):
    out = tmp_path / "out"
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps(SETTINGS))
    _refused(capsys, ["run", str(derivatives), str(out), "participant", "--participant-label", "01",
                      "--no-report", "--settings", str(settings_file), "--dask", "tcp://127.0.0.1:1",
                      "--dask-timeout", "0.5"],
             "--dask tcp://127.0.0.1:1: cannot reach a Dask scheduler there within 0.5 s")
    assert not out.exists()


def test_settings_no_run_can_meet_are_refused_before_any_work(small_input, tmp_path, capsys):
    settings_file = tmp_path / "settings.json"
    out = tmp_path / "out"
    for denoise in ({"min_volumes": 100000}, {"min_minutes": 30}):
        settings_file.write_text(json.dumps({"denoise": denoise}))
        _refused(capsys, ["run", str(small_input), str(out), "participant", "--settings", str(settings_file)],
                 "sub-01_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz: 80 volumes (2.7 min) before "
                 "any censoring", "denoise.min_volumes")
        assert not out.exists()


@pytest.mark.slow  # a joblib pool of two workers, each a new interpreter
def test_ctrl_c_with_worker_processes_is_one_line(derivatives, tmp_path):
    """Ctrl-C reaches the whole process group (the command and its joblib workers), as from a terminal."""
    import time

    out = tmp_path / "out"
    settings_file = tmp_path / "settings.json"
    # enough resamples that a run is still computing when the interrupt comes, on an idle machine too
    settings_file.write_text(json.dumps({**SETTINGS, "targeting": {"n_bootstrap": 2000}}))
    # A command started in the background by a script (``make test &``, a job runner) inherits SIGINT ignored,
    # and Python keeps it ignored (signal module docs): Ctrl-C from a terminal has the default disposition.
    child = subprocess.Popen([sys.executable, "-m", "trdnet", "run", str(derivatives), str(out), "participant",
                              "--no-report", "--settings", str(settings_file), "--n-jobs", "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # a run that computes (sub-01, sub-03), not sub-02, whose staging folder may come first and goes at once
    computing = [staging_dir(out, PREFIX.format(label)) for label in ("01", "03")]
    while child.poll() is None and not any(folder.is_dir() for folder in computing):
        time.sleep(0.1)
    assert child.poll() is None, "the command ended before a run was in progress: nothing was interrupted"
    os.killpg(child.pid, signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    lines = [line for line in err.splitlines() if not line.startswith(("trdnet: info:", "trdnet: warning:"))]
    assert lines == ["trdnet: interrupted; finished runs are kept, re-run to resume"], err
    assert not list(out.glob("logs/*_done.json")) or finished_runs(out)[1] == []


# --- trdnet export publishes like a run --------------------------------------------------------------------------


def test_export_goes_through_the_runs_lock_staging_and_record(derivatives, processed_01, tmp_path, capsys):
    run = find_runs(derivatives, participant_labels=["01"])[0]
    out = copy_of(processed_01, tmp_path / "out")
    record_path = out / "logs" / f"{run.prefix}_done.json"
    navigation = lambda: sorted(p.name for p in out.glob("sub-01/func/*desc-navtargets*"))  # noqa: E731
    assert any("brainsight" in name for name in navigation())
    export_settings = tmp_path / "export.json"
    export_settings.write_text(json.dumps({"export": {"formats": ["localite"]}}))
    argv = ["export", str(derivatives), str(out), "--participant-label", "01", "--settings", str(export_settings)]

    with run_lock(out, run.prefix):  # a run of this participant in progress elsewhere
        before = tree_digest(out)
        assert main(argv) == 1
        assert "another trdnet process" in capsys.readouterr().err
        assert tree_digest(out) == before

    assert main(argv) == 0
    names = navigation()
    assert names and all("localite" in name or name.endswith(("_coords.tsv", "_coords.json")) for name in names)
    recorded = json.loads(record_path.read_text())["Files"]
    assert sorted(Path(f).name for f in recorded if "desc-navtargets" in f) == names
    assert not staging_dir(out, run.prefix).exists()
    assert_records_match_outputs(out)


# --- nothing describes outputs that are gone: reports, navigator files, settings, the group folder -------------


def test_interrupted_overwrite_takes_the_participant_report_and_report_removes_stale_ones(derivatives, processed_01,
                                                                                         tmp_path, monkeypatch, capsys):
    run = find_runs(derivatives, participant_labels=["01"])[0]
    out = copy_of(processed_01, tmp_path / "out")
    old_report = out / "sub-01.html"
    old_report.write_text("<html>old target of sub-01</html>")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "write_targets", interrupt)
    with pytest.raises(KeyboardInterrupt):
        pipeline.process_run(run, out, settings(), overwrite=True)
    monkeypatch.undo()
    assert not old_report.exists()  # went with the record it described
    # a report left beside a run without a record (an older trdnet, a hand copy) goes at the next 'trdnet report'
    old_report.write_text("<html>old target of sub-01</html>")
    assert pipeline.process_run(find_runs(derivatives, participant_labels=["03"])[0], out, settings()).status == "done"
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert not old_report.exists()
    assert (out / "sub-03.html").is_file() and "sub-01.html" not in printed


def test_report_names_each_report_it_removes(processed_01, tmp_path, capsys):
    """A report beside no finished run describes outputs that are gone: 'trdnet report' removes it and says so."""
    out = copy_of(processed_01, tmp_path / "out")
    stale = [out / "sub-07.html", out / "sub-08.html"]
    for path in stale:
        path.write_text("<html>a report of outputs that are gone</html>")
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "removed" in line]
    assert lines == [f"trdnet: info: {p.name} removed: {p.stem} has no finished run in {out} (its report described "
                     "outputs that are gone)" for p in stale]
    assert not any(p.exists() for p in stale) and (out / "sub-01.html").is_file()


def test_export_refuses_outputs_without_a_completion_record(derivatives, processed_01, tmp_path, capsys):
    run = find_runs(derivatives, participant_labels=["01"])[0]
    out = copy_of(processed_01, tmp_path / "out")
    # what kill -9 during --overwrite leaves: the old outputs, their record already removed
    (out / "logs" / f"{run.prefix}_done.json").unlink()
    for path in out.glob("sub-01/**/*navtargets*"):
        path.unlink()
    before = tree_digest(out)
    capsys.readouterr()
    code = main(["export", str(derivatives), str(out), "--participant-label", "01"])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert "\n" not in err and run.prefix in err and "did not finish" in err, err
    assert not list(out.glob("sub-01/**/*navtargets*"))
    assert tree_digest(out) == before


def test_settings_command_refuses_a_setting_naming_a_missing_file(tmp_path, capsys):
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({"targeting": {"seed_mask": "sub/mask.nii.gz"}}))
    err = _refused(capsys, ["settings", "--settings", str(settings_file)], "targeting.seed_mask", "no such file")
    assert str(tmp_path / "sub" / "mask.nii.gz") in err
    assert capsys.readouterr().out == ""


def test_read_only_group_folder_is_refused_before_any_work(derivatives, shared_dir):
    root = sub_01_of(derivatives, shared_dir / "fmriprep")
    out = shared_dir / "out"
    settings_file = shared_dir / "settings.json"
    settings_file.write_text(json.dumps(SETTINGS))
    assert main(["run", str(root), str(out), "participant", "--no-report", "--settings", str(settings_file)]) == 0
    _open_to_everyone(out)
    (out / "group").mkdir(mode=0o555)
    (out / "group").chmod(0o555)
    before = tree_digest(out)
    child = run_unprivileged("run", str(out), "group", "--no-report", cwd=shared_dir)
    err = child.stderr.strip()
    assert child.returncode == 2, child.stdout + child.stderr
    assert err.startswith("trdnet: error:") and "\n" not in err and "Traceback" not in err, err
    assert f"{out / 'group'}: cannot be written" in err and ".tmp" not in err, err
    assert tree_digest(out) == before
