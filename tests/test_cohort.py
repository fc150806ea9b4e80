"""Many participants: joblib and a real Dask LocalCluster give the same tables as a serial run."""

import contextlib
import dataclasses
import gzip
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trdnet.cohort import run_cohort
from trdnet.config import Settings
from trdnet.inputs.bids import find_runs
from trdnet.inputs.simulate import simulate_cohort
from trdnet.outputs import read_tsv

# Parallel backends (joblib, a Dask LocalCluster) and read-ahead on a simulated cohort: the Dask family of
# `make test-fast`'s exclusions.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    cohort = simulate_cohort(root / "sim", n_subjects=3, n_volumes=100, resolution_mm=4, random_state=3,
                             anatomy=False)
    settings = Settings()
    settings = dataclasses.replace(settings, targeting=dataclasses.replace(settings.targeting, n_bootstrap=5),
                                   denoise=dataclasses.replace(settings.denoise, min_minutes=1.0, min_volumes=30))
    return find_runs(cohort.fmriprep_dir), settings, root


def _tables(out):
    return {p.relative_to(out): read_tsv(p) for p in sorted(out.rglob("sub-*/func/*.tsv"))}


def _assert_same_tables(tables, reference):
    """Same files, same text columns, numbers equal to float32 precision.

    BLAS sums in an order that depends on its thread count (serial runs use
    every core, each parallel worker one), so the last printed digit may differ.
    """
    assert tables.keys() == reference.keys()
    for name, table in tables.items():
        expected = reference[name]
        assert list(table.columns) == list(expected.columns), name
        numbers = table.select_dtypes("number").columns
        pd.testing.assert_frame_equal(table.drop(columns=numbers), expected.drop(columns=numbers), obj=str(name))
        np.testing.assert_allclose(table[numbers].to_numpy(float), expected[numbers].to_numpy(float),
                                   rtol=0, atol=5e-4, err_msg=str(name))


class _Collect(logging.Handler):
    """The messages of the ``trdnet`` logger (the command line stops their propagation to the root logger)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        if record.getMessage().startswith("["):
            self.lines.append(record.getMessage())

    def take(self):
        lines, self.lines = self.lines, []
        return lines


@contextlib.contextmanager
def _collecting_progress():
    """A :class:`_Collect` on the ``trdnet`` logger, at INFO, while the block runs."""
    logger = logging.getLogger("trdnet")
    handler, level = _Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def progress_log():
    with _collecting_progress() as handler:
        yield handler


@pytest.fixture(scope="module")
def serial_run(small_cohort):
    """``small_cohort`` processed once by a serial run (read-ahead on, the default): its output folder and the
    progress lines it logged. Read only: the tests comparing with it, or resuming it, take a copy."""
    runs, settings, root = small_cohort
    with _collecting_progress() as handler:
        results = run_cohort(runs, root / "serial", settings)
    assert all(r.status == "done" for r in results), [r.error for r in results]
    return root / "serial", handler.take()


def test_parallel_backends_give_the_same_tables(small_cohort, serial_run, progress_log):
    runs, settings, root = small_cohort
    serial, serial_progress = serial_run
    progress = {"serial": serial_progress}
    joblib_results = run_cohort(runs, root / "joblib", settings, n_jobs=2)
    progress["joblib"] = progress_log.take()
    dask_results = run_cohort(runs, root / "dask", settings, dask="local:2")
    progress["dask"] = progress_log.take()
    assert [r.status for r in joblib_results] == [r.status for r in dask_results] == ["done"] * 3
    # results keep the order of the runs whatever order they finished in
    assert [r.prefix for r in joblib_results] == [r.prefix for r in dask_results] == [r.prefix for r in runs]
    for backend, lines in progress.items():
        # one line per run as it ends, counting up, every run named once
        assert [line.split("]")[0] for line in lines] == ["[1/3", "[2/3", "[3/3"], backend
        assert sorted(line.split(" ")[1].rstrip(":") for line in lines) == sorted(r.prefix for r in runs), backend
        assert all(line.endswith(": done") for line in lines), backend
    reference = _tables(serial)
    assert len(reference) >= 3 * 8
    _assert_same_tables(_tables(root / "joblib"), reference)
    _assert_same_tables(_tables(root / "dask"), reference)
    # joblib and Dask workers both run one BLAS thread each: the same bytes
    assert _bytes(root / "joblib") == _bytes(root / "dask")


def _bytes(out):
    return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("sub-*/func/*.tsv"))}


def test_interrupted_cohort_resumes_only_unfinished_runs(small_cohort, serial_run, progress_log):
    runs, settings, root = small_cohort
    out = Path(shutil.copytree(serial_run[0], root / "resume"))  # a finished cohort run of these settings
    # an interrupted run has outputs but no completion record (it is written last)
    next(out.glob("logs/sub-02_*_done.json")).unlink()
    progress_log.take()
    results = run_cohort(runs, out, settings)
    assert [r.status for r in results] == ["skipped", "done", "skipped"]
    assert [line.split(": ")[-1] for line in progress_log.take()] == ["skipped", "done", "skipped"]
    run_cohort(runs, out, settings, progress=False)
    assert progress_log.take() == []


def test_prefetching_gives_the_same_bytes_and_the_same_errors(small_cohort, serial_run, tmp_path):
    runs, settings, root = small_cohort
    plain = run_cohort(runs, tmp_path / "plain", settings, prefetch=False)
    assert [r.status for r in plain] == ["done"] * 3
    ahead = serial_run[0]  # read ahead, the default
    assert _bytes(ahead) == _bytes(tmp_path / "plain")

    # a truncated image in the middle: the same one-line reason, the others continue
    broken_root = tmp_path / "broken"
    shutil.copytree(root / "sim" / "fmriprep", broken_root)
    broken_runs = find_runs(broken_root)
    data = broken_runs[1].bold.read_bytes()
    broken_runs[1].bold.write_bytes(gzip.compress(gzip.decompress(data)[: len(gzip.decompress(data)) // 2]))
    reasons = {}
    for prefetch in (False, True):
        results = run_cohort(broken_runs, tmp_path / f"out-{prefetch}", settings, prefetch=prefetch)
        assert [r.status for r in results] == ["done", "failed", "done"]
        reasons[prefetch] = results[1].error
    assert reasons[True] == reasons[False]
    assert "truncated" in reasons[True] and str(broken_runs[1].bold) in reasons[True]


def test_prefetched_data_is_used_only_for_the_same_mask(small_cohort):
    from trdnet.denoise import load_brain_space
    from trdnet.prefetch import RunPrefetcher
    from trdnet.stream import read_header

    runs, _, _ = small_cohort
    mask = load_brain_space(runs[0], read_header(runs[0].bold)).mask
    with RunPrefetcher() as prefetcher:
        prefetcher.prefetch(runs[0])
        data = prefetcher.reader(runs[0])(runs[0].bold, mask)
        assert data.shape == (100, int(mask.sum())) and data.dtype == np.float32
        prefetcher.prefetch(runs[0])
        smaller = mask.copy()
        smaller[np.argwhere(mask)[0][0]] = False  # drop one slab of the mask: the prefetch no longer applies
        again = prefetcher.reader(runs[0])(runs[0].bold, smaller)
    assert again.shape == (100, int(smaller.sum()))
    np.testing.assert_array_equal(again, data[:, smaller[mask]])


def test_dask_scheduler_address_and_unreachable_scheduler(small_cohort):
    from dask.distributed import LocalCluster

    from trdnet.errors import TrdnetError

    runs, settings, root = small_cohort
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        results = run_cohort(runs[:1], root / "address", settings, dask=cluster.scheduler_address)
    assert [r.status for r in results] == ["done"], [r.error for r in results]
    assert (root / "address" / "logs" / f"{runs[0].prefix}_done.json").is_file()
    with pytest.raises(TrdnetError, match="tcp://127.0.0.1:9: cannot reach a Dask scheduler there within 1 s"):
        run_cohort(runs[:1], root / "unreachable", settings, dask="tcp://127.0.0.1:9", dask_timeout=1)


def test_ctrl_c_seen_only_by_a_worker_interrupts_the_command(small_cohort, tmp_path, monkeypatch):
    """Ctrl-C from a terminal reaches the workers and the command; if the pool returns before the command's own
    KeyboardInterrupt arrives, a run interrupted in its worker still makes the command interrupted (exit 130),
    never a plain failure (exit 1)."""
    import trdnet.cohort as cohort
    from trdnet.pipeline import RunResult

    runs, settings, _ = small_cohort

    def pool_returning_an_interrupted_run(runs, args, n_jobs, progress):
        first = RunResult(runs[0].prefix, runs[0].subject, "failed", error="interrupted", interrupted=True)
        return [first] + [RunResult(r.prefix, r.subject, "done") for r in runs[1:]]

    monkeypatch.setattr(cohort, "_run_joblib", pool_returning_an_interrupted_run)
    with pytest.raises(KeyboardInterrupt):
        run_cohort(runs, tmp_path / "out", settings, n_jobs=2)
