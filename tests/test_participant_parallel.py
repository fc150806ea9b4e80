"""The participant step runs on the cohort's workers (joblib, Dask): same files as a serial run, order kept, one
failing participant recorded while the others are made, a progress line per participant as its task ends."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from trdnet import participants
from trdnet.backends import JoblibMap, serial_map
from trdnet.cohort import run_cohort
from trdnet.config import Settings
from trdnet.inputs.bids import find_runs
from trdnet.inputs.runs import Run
from trdnet.inputs.simulate import simulate_cohort
from trdnet.parallel import available_cores
from trdnet.participants import make_participant_target, process_participants
from trdnet.pipeline import RunResult
from trdnet.records import finished_participants

SPACE = "MNI152NLin2009cAsym"


def _settings() -> Settings:
    settings = Settings()
    return dataclasses.replace(settings, targeting=dataclasses.replace(settings.targeting, reliability=False))


@pytest.fixture(scope="module")
def two_session_cohort(tmp_path_factory):
    """Three simulated participants with two sessions each (SIMULATED; small grid, short runs)."""
    root = tmp_path_factory.mktemp("participant-parallel")
    sim = simulate_cohort(root / "sim", n_subjects=3, n_volumes=80, resolution_mm=4, sessions=["pre", "post"],
                          random_state=1, anatomy=False, preset="easy")
    return find_runs(sim.fmriprep_dir, space=_settings().space), root


def _participant_files(out: Path) -> dict:
    """Every file of the finished participant targets (from their records), with its bytes (a gzipped image's
    uncompressed bytes: the gzip header holds the time it was written)."""
    def content(path: Path) -> bytes:
        return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()

    return {name: content(out / name) for record in finished_participants(out) for name in record.files}


@pytest.fixture(scope="module")
def serial_reference(two_session_cohort):
    """``serial_reference(threads)``: the cohort run serially with BLAS pinned to ``threads`` (one run per
    thread count): BLAS sums in an order that depends on its thread count, so the workers' bytes are compared
    with a serial run of their own count (joblib's 2 workers: cores // 2 each; Dask's: 1)."""
    runs, root = two_session_cohort
    done = {}

    def reference(threads: int):
        if threads not in done:
            with threadpool_limits(limits=threads):
                results = run_cohort(runs, root / f"serial-{threads}", _settings(), progress=False)
            done[threads] = results, root / f"serial-{threads}"
        return done[threads]

    return reference


def _steps(results, runs):
    return [(r.prefix, r.status) for r in results[len(runs):]]


@pytest.mark.slow  # a joblib pool on a simulated cohort
def test_joblib_makes_the_participant_targets_in_its_workers_with_the_serial_bytes(
        two_session_cohort, serial_reference, monkeypatch, caplog):
    runs, root = two_session_cohort
    serial_results, serial_out = serial_reference(max(1, available_cores() // 2))
    assert _steps(serial_results, runs) == [(f"sub-0{i}_task-rest_space-{SPACE}", "done") for i in (1, 2, 3)]

    # Counts calls made in this process only: loky sends make_participant_target to the workers by reference,
    # where process_participant is the module's own.
    calls = []
    original = participants.process_participant
    monkeypatch.setattr(participants, "process_participant", lambda *a, **k: calls.append(a[1]) or original(*a, **k))
    caplog.set_level("INFO", logger="trdnet")
    results = run_cohort(runs, root / "joblib", _settings(), n_jobs=2)
    assert calls == [], "the participant step ran in the command's process"
    assert _steps(results, runs) == _steps(serial_results, runs)
    assert [r.error for r in results[len(runs):]] == [r.error for r in serial_results[len(runs):]]

    reference = _participant_files(serial_out)
    assert len(reference) >= 3 * 10  # five tables with sidecars per participant, and their navigator files
    assert _participant_files(root / "joblib") == reference

    # one progress line per participant as its task ends, counting up, each participant named once
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[participant ")]
    assert [line.split("]")[0] for line in lines] == ["[participant 1/3", "[participant 2/3", "[participant 3/3"]
    assert sorted(line.split(" ")[2].rstrip(":") for line in lines) == [prefix for prefix, _ in _steps(results, runs)]
    assert all(line.endswith(": done") for line in lines)

    # the spy sees calls in this process: a serial participant step goes through it
    process_participants(runs, results[:len(runs)], root / "joblib", _settings(), overwrite=True, progress=False)
    assert sorted(calls) == [prefix for prefix, _ in _steps(results, runs)]


@pytest.mark.slow  # a joblib pool on a simulated cohort
def test_a_participant_failing_in_a_worker_is_recorded_and_the_others_are_made(two_session_cohort, tmp_path):
    import shutil

    from trdnet.cohort import record_participant_step
    from trdnet.inputs.bids import derivatives_root
    from trdnet.outputs import read_tsv
    from trdnet.records import failure_record_path, write_failures_table

    runs, root = two_session_cohort
    sim = Path(shutil.copytree(derivatives_root(runs[0].bold), tmp_path / "fmriprep"))
    own = find_runs(sim, space=_settings().space)
    out = tmp_path / "out"
    first = run_cohort(own, out, _settings(), n_jobs=2, progress=False)
    assert [r.status for r in first] == ["done"] * 9, [r.error for r in first]

    # after the run step: sub-02's second session's confounds become unreadable (a real input defect)
    broken = next(run for run in own if run.subject == "02" and run.entities["ses"] == "post")
    broken.confounds.write_text("not\ta confounds table\n\x00\x00\n")
    results = process_participants(own, first[:len(own)], out, _settings(), overwrite=True, progress=False,
                                   mapper=JoblibMap(2))
    assert [(r.prefix.split("_")[0], r.status) for r in results] == [("sub-01", "done"), ("sub-02", "failed"),
                                                                        ("sub-03", "done")]
    assert results[1].error.startswith("participant step: ") and broken.confounds.name in results[1].error
    assert "\n" not in results[1].error and not results[1].interrupted
    assert [r.prefix for r in finished_participants(out)] == [results[0].prefix, results[2].prefix]
    # recorded in the command's process after every task, as a failed run is
    record_participant_step(out, results, _settings())
    assert failure_record_path(out, results[1].prefix).is_file()
    table = read_tsv(write_failures_table(out))
    assert list(table["participant_id"]) == ["sub-02"] and "participant step: " in table["reason"][0]


def test_results_keep_the_order_of_the_participants_whatever_order_their_tasks_end_in(tmp_path, caplog):
    """A map may yield tasks in any order (joblib's unordered generator, Dask's ``as_completed``)."""
    runs = [Run(bold=Path(f"sub-{s}_task-rest_run-{r}_space-{SPACE}_desc-preproc_bold.nii.gz"),
                entities={"sub": s, "task": "rest", "run": r, "space": SPACE}) for s in ("01", "02", "03")
            for r in ("1", "2")]
    finished = [RunResult(run.prefix, run.subject, "done", summary={"target_x": 0.0}) for run in runs]
    ended = []

    def last_first(function, tasks):
        for index in reversed(range(len(tasks))):
            ended.append(tasks[index][1])
            yield index, function(*tasks[index], None)

    caplog.set_level("INFO", logger="trdnet")
    # the runs' files do not exist: every participant fails, in its own task
    results = process_participants(runs, finished, tmp_path, Settings(), mapper=last_first)
    prefixes = [f"sub-{s}_task-rest_space-{SPACE}" for s in ("01", "02", "03")]
    assert ended == prefixes[::-1]
    assert [r.prefix for r in results] == prefixes and [r.status for r in results] == ["failed"] * 3
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[participant ")]
    assert [line.split(": ")[0] for line in lines] == [f"[participant {k}/3] {p}"
                                                      for k, p in zip((1, 2, 3), prefixes[::-1])]


def _members(root: Path = Path()):
    return [Run(bold=root / f"sub-01/func/sub-01_task-rest_run-{r}_space-{SPACE}_desc-preproc_bold.nii.gz",
                entities={"sub": "01", "task": "rest", "run": r, "space": SPACE}) for r in ("1", "2")]


@pytest.mark.parametrize("blas_threads", [None, 1])
def test_a_bug_in_a_participant_task_is_a_failed_result_not_a_stopped_cohort(tmp_path, monkeypatch, blas_threads):
    def bug(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(participants, "process_participant", bug)
    result = make_participant_target(_members(), f"sub-01_task-rest_space-{SPACE}", tmp_path, Settings(), False,
                                     None, "", blas_threads)
    assert (result.status, result.error) == ("failed", "participant step: internal error: ZeroDivisionError: "
                                                       "division by zero")
    assert not result.interrupted


def test_ctrl_c_in_a_worker_is_an_interrupted_result_and_in_this_process_stops_the_command(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(participants, "process_participant", interrupted)
    task = (_members(), f"sub-01_task-rest_space-{SPACE}", tmp_path, Settings(), False, None, "")
    result = make_participant_target(*task, 1)
    assert result.status == "failed" and result.interrupted and "interrupted" in result.error
    with pytest.raises(KeyboardInterrupt):
        list(serial_map(make_participant_target, [task]))


def test_an_interrupted_participant_task_interrupts_the_command_after_recording_it(tmp_path, monkeypatch):
    """Ctrl-C seen only by the worker making a participant's target: exit as interrupted, never as done."""
    import trdnet.cohort as cohort
    from trdnet.records import failure_record_path

    members = _members(tmp_path / "fmriprep")
    prefix = f"sub-01_task-rest_space-{SPACE}"

    def runs_done(runs, args, prefetch, progress):
        return [RunResult(run.prefix, run.subject, "done", summary={"target_x": 0.0}) for run in runs]

    def step_interrupted(*args, **kwargs):
        return [RunResult(prefix, "01", "failed", error="participant step: interrupted", interrupted=True)]

    monkeypatch.setattr(cohort, "_run_serial", runs_done)
    monkeypatch.setattr(cohort, "process_participants", step_interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_cohort(members, tmp_path / "out", Settings(), progress=False)
    assert failure_record_path(tmp_path / "out", prefix).is_file()


@pytest.mark.slow  # a Dask LocalCluster
def test_dask_makes_the_same_participant_files_on_the_cluster_of_the_runs(two_session_cohort, serial_reference,
                                                                            monkeypatch, caplog):
    from distributed import LocalCluster

    runs, root = two_session_cohort
    serial_results, serial_out = serial_reference(1)
    started = []
    monkeypatch.setattr(LocalCluster, "__init__",
                        lambda self, *a, _init=LocalCluster.__init__, **k: started.append(1) or _init(self, *a, **k))
    caplog.set_level("INFO", logger="trdnet")
    results = run_cohort(runs, root / "dask", _settings(), dask="local:2")
    assert len(started) == 1  # one cluster for the runs and the participant step
    assert _steps(results, runs) == _steps(serial_results, runs)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[participant ")]
    assert [line.split("]")[0] for line in lines] == ["[participant 1/3", "[participant 2/3", "[participant 3/3"]
    reference = _participant_files(serial_out)
    assert len(reference) >= 3 * 10
    assert _participant_files(root / "dask") == reference
