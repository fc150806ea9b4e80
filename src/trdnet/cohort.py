"""Map :func:`trdnet.pipeline.process_run` over many runs: serially, with
joblib worker processes, or on a Dask cluster. One failing run never stops the
cohort; it is written to ``failures.tsv`` with its one-line reason."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import pandas as pd

from .config import Settings
from .errors import TrdnetError
from .inputs.bids import derivatives_root
from .inputs.runs import Run
from .outputs import write_dataset_description, write_tsv
from .parallel import available_cores, worker_count
from .pipeline import RunResult, is_finished, process_roi_run, process_run
from .participants import process_participants
from .prefetch import RunPrefetcher


def _safe_process(run: Run, out_dir: str, settings: Settings, overwrite: bool, group_map, blas_threads: int | None,
                  reader=None):
    """Worker entry point: never raises for a run-level failure."""
    from threadpoolctl import threadpool_limits

    def work():
        if isinstance(run, Run):
            return process_run(run, Path(out_dir), settings, overwrite, group_map, reader=reader)
        return process_roi_run(run, Path(out_dir), settings, overwrite)

    try:
        if blas_threads is None:
            return work()
        with threadpool_limits(limits=blas_threads):
            return work()
    except TrdnetError as exc:
        return RunResult(run.prefix, run.subject, "failed", error=str(exc))
    except Exception as exc:  # a bug: keep the cohort going but keep the evidence
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return RunResult(run.prefix, run.subject, "failed", error=f"internal error: {last}")


def run_cohort(
    runs: list[Run],
    out_dir: Path,
    settings: Settings,
    n_jobs: int = 1,
    dask: str | None = None,
    overwrite: bool = False,
    group_map=None,
    progress: bool | None = None,
    prefetch: bool = True,
) -> list[RunResult]:
    """Process every run and record the failures.

    Parameters
    ----------
    runs : list of Run
    out_dir : Path
        Root of the trdnet derivatives folder.
    settings : Settings
    n_jobs : int
        Worker processes on this machine (joblib). BLAS is pinned to
        ``cores // n_jobs`` threads per worker so workers do not oversubscribe.
    dask : str, optional
        ``local:N`` for a local Dask cluster of N single-threaded workers, or the
        address of a running scheduler (``tcp://host:8786``).
    overwrite : bool
        Recompute finished runs.
    group_map : optional
        Group sgACC map for the ``seedmap`` method.
    progress : bool, optional
        Progress bar; default: only when stderr is a terminal.
    prefetch : bool
        Serial runs only: read the next run in a background thread while the
        current one computes (one extra masked matrix in memory).

    Returns
    -------
    list of RunResult
        In the order of ``runs``, then one per participant with two or more
        runs (the participant step, :mod:`trdnet.participants`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = {derivatives_root(r.bold) for r in runs if r.source in ("fmriprep", "simulated")}
    write_dataset_description(out_dir, simulated=any(r.simulated for r in runs), sources=sources)
    args = (str(out_dir), settings, overwrite, group_map)
    if dask:
        results = _run_dask(runs, args, dask)
    elif n_jobs and n_jobs != 1 and len(runs) > 1:
        results = _run_joblib(runs, args, n_jobs)
    else:
        results = _run_serial(runs, args, progress, prefetch)
    # One target per person from all of their runs (participants with two or more runs).
    results += process_participants(runs, results, out_dir, settings, overwrite, group_map)
    write_failures(out_dir, results)
    return results


def _run_serial(runs, args, progress, prefetch: bool) -> list[RunResult]:
    """One run after the other; with ``prefetch``, the next unfinished run is read meanwhile."""
    out_dir, settings, overwrite, _ = args
    todo = [run for run in runs if prefetch and _needs_processing(run, Path(out_dir), settings, overwrite)]
    following = dict(zip(map(id, todo), todo[1:]))
    results = []
    with RunPrefetcher() as prefetcher:
        if todo:
            prefetcher.prefetch(todo[0])
        for index, run in enumerate(runs, 1):
            if id(run) in following:
                prefetcher.prefetch(following[id(run)])
            results.append(_safe_process(run, *args, None, reader=prefetcher.reader(run)))
            _log_progress(index, len(runs), results[-1], progress)
    return results


def _needs_processing(run, out_dir: Path, settings: Settings, overwrite: bool) -> bool:
    try:
        return not is_finished(run, out_dir, settings, overwrite)
    except TrdnetError:
        return False  # the run reports its own problem when processed; nothing to read ahead


def _run_joblib(runs, args, n_jobs):
    from joblib import Parallel, delayed

    workers = worker_count(n_jobs, len(runs))
    blas = max(1, available_cores() // workers)
    return Parallel(n_jobs=workers, backend="loky", verbose=0)(
        delayed(_safe_process)(run, *args, blas) for run in runs
    )


def _run_dask(runs, args, address: str):
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise TrdnetError("--dask needs dask.distributed: pip install 'trdnet[dask]'") from None
    if address.startswith("local"):
        n_workers = int(address.split(":", 1)[1]) if ":" in address else available_cores()
        # Dask's statistical profiler samples each worker's stack under the GIL:
        # measured at 15% of a run's time here, for a dashboard nobody watches.
        with dask.config.set({"distributed.worker.profile.enabled": False}), \
                LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                             dashboard_address=":0") as cluster, Client(cluster) as client:
            return _submit(client, runs, args)
    try:
        client = Client(address)
    except (OSError, ValueError, TypeError) as exc:
        raise TrdnetError(f"--dask {address}: cannot reach a Dask scheduler there ({exc})") from None
    with client:
        return _submit(client, runs, args)


def _submit(client, runs, args):
    futures = client.map(_safe_process, runs, *[[a] * len(runs) for a in args], [1] * len(runs), pure=False)
    return client.gather(futures)


def _log_progress(index: int, total: int, result: RunResult, progress: bool | None) -> None:
    terminal = sys.stderr.isatty() if progress is None else progress
    status = result.status if not result.error else f"failed: {result.error}"
    line = f"[{index}/{total}] {result.prefix}: {status}"
    if terminal:
        bar = "#" * int(20 * index / total)
        failed = result.status == "failed"  # a failure stays on screen, whole and ended by a newline
        shown = line if failed else f"{line[:100]:<100}"
        print(f"\r{bar:<20} {shown}", end="\n" if index == total or failed else "", file=sys.stderr, flush=True)
    else:
        print(line, file=sys.stderr, flush=True)


def write_failures(out_dir: Path, results: list[RunResult]) -> Path | None:
    """Write ``failures.tsv`` (participant, run, reason); remove a stale one when all succeeded."""
    path = Path(out_dir) / "failures.tsv"
    failed = [r for r in results if r.status == "failed"]
    if not failed:
        path.unlink(missing_ok=True)
        return None
    table = pd.DataFrame(
        {"participant_id": [f"sub-{r.subject}" for r in failed], "run": [r.prefix for r in failed],
         "reason": [r.error for r in failed]}
    )
    return write_tsv(path, table)
