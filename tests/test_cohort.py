"""Many participants: joblib and a real Dask LocalCluster give the same bytes as a serial run."""

import dataclasses

import pytest

from trdnet.cohort import run_cohort
from trdnet.config import Settings
from trdnet.inputs.bids import find_runs
from trdnet.inputs.simulate import simulate_cohort


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
    return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("sub-*/func/*.tsv"))}


def test_parallel_backends_give_identical_tables(small_cohort):
    runs, settings, root = small_cohort
    serial = run_cohort(runs, root / "serial", settings)
    assert all(r.status == "done" for r in serial), [r.error for r in serial]
    joblib_results = run_cohort(runs, root / "joblib", settings, n_jobs=2)
    dask_results = run_cohort(runs, root / "dask", settings, dask="local:2")
    assert [r.status for r in joblib_results] == [r.status for r in dask_results] == ["done"] * 3
    reference = _tables(root / "serial")
    assert len(reference) >= 3 * 8
    assert _tables(root / "joblib") == reference
    assert _tables(root / "dask") == reference


def test_interrupted_cohort_resumes_only_unfinished_runs(small_cohort):
    runs, settings, root = small_cohort
    out = root / "resume"
    run_cohort(runs, out, settings)
    # an interrupted run has outputs but no completion record (it is written last)
    next(out.glob("logs/sub-02_*_done.json")).unlink()
    results = run_cohort(runs, out, settings)
    assert [r.status for r in results] == ["skipped", "done", "skipped"]
