"""Map :func:`trdnet.pipeline.process_run` over many runs: serially, with
joblib worker processes, or on a Dask cluster (:mod:`trdnet.backends`), then
the participant step's participants on the same workers. One failing run
never stops the cohort: it gets a failure record (:mod:`trdnet.records`) and
``failures.tsv`` is rebuilt from every record of the folder. Progress goes to the ``trdnet``
logger, one line per run as it ends, whatever the backend."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from .backends import (DASK_CONNECT_SECONDS, DaskMap, JoblibMap, connect_scheduler, dask_client, run_guarded,
                       serial_map, worker_pool)  # noqa: F401 - worker_pool: the cohort's pool, also from here
from .config import Settings, added_rules
from .errors import SettingsError, Terminated, TrdnetError
from .inputs.bids import derivatives_root
from .inputs.runs import Run
from .outputs import write_dataset_description
from .parallel import available_cores
from .pipeline import FinishedWithOtherSettings, RunResult, is_finished, process_roi_run, process_run
from .participants import KEPT, process_participants
from .prefetch import RunPrefetcher
from .progress import Progress
from .records import (completion_record_path, read_completion_record, remove_failure_record, write_failure_record,
                      write_failures_table)
from .staging import RunBusyError, failure_reason

logger = logging.getLogger("trdnet")


def _safe_process(run: Run, out_dir: str, settings: Settings, overwrite: bool, group_map, lock_timeout: float,
                  blas_threads: int | None, reader=None):
    """Worker entry point of a run (:mod:`trdnet.backends`): never raises for a run-level failure (the failure
    record is written by the run); Ctrl-C in this process (``blas_threads`` None) stops the cohort."""

    def work():
        if isinstance(run, Run):
            return process_run(run, Path(out_dir), settings, overwrite, group_map, reader=reader,
                               lock_timeout=lock_timeout)
        return process_roi_run(run, Path(out_dir), settings, overwrite, lock_timeout=lock_timeout)

    def failed(exc):
        if isinstance(exc, RunBusyError):
            return RunResult(run.prefix, run.subject, "busy", error=str(exc))
        if isinstance(exc, FinishedWithOtherSettings):  # finished by another process meanwhile: not a failure
            return RunResult(run.prefix, run.subject, "other settings", error=str(exc))
        # a worker's run interrupted, or a bug: recorded by the run; the command says so in one line
        return RunResult(run.prefix, run.subject, "failed", error=failure_reason(exc),
                         interrupted=isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Terminated))

    return run_guarded(work, blas_threads, failed)


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
    lock_timeout: float = 0,
    dask_timeout: float | None = None,
) -> list[RunResult]:
    """Process every run and record the failures.

    Parameters
    ----------
    runs : list of Run
    out_dir : Path
        Root of the trdnet derivatives folder.
    settings : Settings
    n_jobs : int
        Worker processes on this machine (joblib), at most the available
        cores (more are capped, with a warning). BLAS is pinned to
        ``cores // n_jobs`` threads per worker so workers do not oversubscribe.
        The participant step's participants run on the same pool, one task each
        (a worker then holds one participant's cleaned runs at a time).
    dask : str, optional
        ``local:N`` for a local Dask cluster of N single-threaded workers (at
        most the available cores, as ``n_jobs``), or the address of a running
        scheduler (``tcp://host:8786``), reached before anything is written.
        The runs, then the participant step's participants, are tasks on that
        one cluster (started once).
    overwrite : bool
        Recompute finished runs.
    group_map : optional
        Group sgACC map for the ``seedmap`` method.
    progress : bool, optional
        False: no progress lines. Otherwise one INFO line per finished run,
        then per participant of the participant step, on the ``trdnet``
        logger (where it goes is the caller's logging setup).
    prefetch : bool
        Serial runs only: read the next run in a background thread while the
        current one computes (one extra masked matrix in memory).
    lock_timeout : float
        Seconds to wait for a run another process is working on (0: leave
        it to that process at once, status ``busy``).
    dask_timeout : float, optional
        Seconds to wait for a scheduler address to answer before refusing
        (distributed's ``Client(timeout=)``; default :data:`DASK_CONNECT_SECONDS`).

    Returns
    -------
    list of RunResult
        In the order of ``runs``, then one per participant with two or more
        runs (the participant step, :mod:`trdnet.participants`).

    Raises
    ------
    SettingsError
        Before any work: a malformed ``dask`` address, or finished runs in
        ``out_dir`` processed with other settings (without ``overwrite``).
    TrdnetError
        Before anything is written: a Dask scheduler that cannot be reached.
    """
    out_dir = Path(out_dir)
    dask_workers = capped_workers(parse_dask(dask), f"--dask {dask}") if dask else None
    if not dask and n_jobs and n_jobs > 1 and len(runs) > 1:
        n_jobs = capped_workers(n_jobs, f"--n-jobs {n_jobs}")
    check_same_settings(runs, out_dir, settings, overwrite)
    args = (str(out_dir), settings, overwrite, group_map, lock_timeout)
    progress = Progress(len(runs), enabled=progress is not False)

    def prepare():
        out_dir.mkdir(parents=True, exist_ok=True)
        # the description names the version that writes results: a re-run that only resumes leaves it as it is
        if any(_needs_processing(run, out_dir, settings, overwrite) for run in runs):
            sources = {folder for folder in map(source_dataset, runs) if folder is not None}
            write_dataset_description(out_dir, simulated=any(r.simulated for r in runs), sources=sources)

    with _cohort_map(dask, dask_workers, n_jobs, len(runs),
                     DASK_CONNECT_SECONDS if dask_timeout is None else dask_timeout) as mapper:
        prepare()  # once the workers are there: an unreachable scheduler writes nothing
        if mapper is None:
            results = _run_serial(runs, args, prefetch, progress)
        elif isinstance(mapper, JoblibMap):
            results = _run_joblib(runs, args, mapper, progress)
        else:
            results = _run_mapped(runs, args, mapper, progress)
        _stop_if_interrupted(results, out_dir)
        # One target per person from all of their runs (participants with two or more runs), on the same workers.
        participant_results = process_participants(runs, results, out_dir, settings, overwrite, group_map,
                                                   progress=progress.enabled, mapper=mapper or serial_map)
    record_participant_step(out_dir, participant_results, settings)
    _stop_if_interrupted(participant_results, out_dir)
    write_failures_table(out_dir)
    return results + participant_results


def _stop_if_interrupted(results, out_dir: Path) -> None:
    """Raise KeyboardInterrupt when a worker's task was interrupted, after rebuilding ``failures.tsv``.

    Ctrl-C reaches the workers too; whichever process saw it first, the command was interrupted (the parent's own
    KeyboardInterrupt can arrive after the pool has already returned every task).
    """
    if any(result.interrupted for result in results):
        write_failures_table(out_dir)
        raise KeyboardInterrupt


@contextlib.contextmanager
def _cohort_map(dask: str | None, dask_workers: int | None, n_jobs: int, n_runs: int, timeout: float):
    """The map (:mod:`trdnet.backends`) both steps of a cohort run on: None for serial runs (read-ahead)."""
    if dask:
        with dask_client(dask, dask_workers, timeout) as client:
            yield DaskMap(client)
    elif n_jobs and n_jobs != 1 and n_runs > 1:
        yield JoblibMap(n_jobs)
    else:
        yield None


def source_dataset(run) -> Path | None:
    """The input folder a run was read from, as ``dataset_description.json`` names it (``SourceDatasets``).

    fMRIPrep and simulated runs: their derivatives folder. ROI time series the user gave: the BIDS folder above
    ``sub-<l>/[ses-<l>/]func/``, else the folder holding the file. None for a public dataset trdnet fetched
    (its sidecars name it).
    """
    if isinstance(run, Run):
        return derivatives_root(run.bold) if run.source in ("fmriprep", "simulated") else None
    if run.source != "timeseries":
        return None
    path = Path(run.path)
    in_bids = path.parent.name == "func" and path.parent.parent.name.startswith(("sub-", "ses-"))
    return derivatives_root(path) if in_bids else path.parent


def record_participant_step(out_dir: Path, results, settings: Settings) -> None:
    """Give a failed participant step a failure record like a failed run (and forget it once it succeeds)."""
    for result in results:
        if result.status == "failed":
            write_failure_record(out_dir, result.prefix, f"sub-{result.subject}", result.error, settings.digest(),
                                 interrupted=result.interrupted)
        elif result.status != KEPT:  # a participant step left as it was has not succeeded either
            remove_failure_record(out_dir, result.prefix)


def check_same_settings(runs, out_dir: Path, settings: Settings, overwrite: bool) -> None:
    """Refuse, before any work, runs already finished in ``out_dir`` with other settings.

    Raises
    ------
    SettingsError
        Naming the first such run's completion record and how many there are.

    Notes
    -----
    Runs recorded before rules that change results at their default (:meth:`Settings.earlier_digest`) are
    processed again, with one warning line saying how many.
    """
    if overwrite:
        return
    clashes = []
    for run in runs:
        try:
            is_finished(run, out_dir, settings)
        except SettingsError as exc:
            clashes.append(str(exc))
    if clashes:
        more = f" (and {len(clashes) - 1} more run(s))" if len(clashes) > 1 else ""
        raise SettingsError(clashes[0] + more)
    earlier = settings.earlier_digest()
    recorded = [run for run in runs if _recorded_digest(run, out_dir) == earlier] if earlier else []
    if recorded:
        logger.warning("%s: %d run(s) (%s%s) were recorded by an earlier trdnet version, before %s: processing "
                       "them again", out_dir, len(recorded), recorded[0].prefix, ", ..." if len(recorded) > 1 else "",
                       " and ".join(added_rules()))


def _recorded_digest(run, out_dir: Path) -> str | None:
    """The settings digest of a run's completion record (None: no readable record)."""
    try:
        return read_completion_record(completion_record_path(out_dir, run.prefix)).settings_digest
    except TrdnetError:
        return None


def capped_workers(requested: int | None, option: str) -> int | None:
    """At most one worker process per available core; more are capped with one warning line.

    Workers beyond the cores only compete for them, each with a run's data in memory.
    """
    cores = available_cores()
    if requested is not None and requested > cores:
        logger.warning("%s: %d worker processes asked for, %d core(s) available: using %d", option, requested,
                       cores, cores)
        return cores
    return requested


def parse_dask(address: str) -> int | None:
    """Workers of a ``local:N`` Dask address (every core for ``local``), None for a scheduler address.

    Raises
    ------
    SettingsError
        If a ``local`` address has no positive whole number of workers, or the
        address is neither ``local[:N]`` nor ``scheme://host:port``.
    """
    if address == "local":
        return available_cores()
    if address.startswith("local:"):
        count = address.split(":", 1)[1]
        if not count.isdigit() or int(count) < 1:
            raise SettingsError(f"--dask {address}: the number of local workers must be a whole number >= 1 "
                                "(e.g. local:2); accepted: local, local:N or a scheduler address tcp://host:port")
        return int(count)
    if "://" not in address:
        raise SettingsError(f"--dask {address}: accepted: local, local:N or a scheduler address like "
                            "tcp://host:8786")
    return None


def check_request(out_dir: Path, inputs=(), bids_dir: Path | None = None, participant_labels=None,
                  dask: str | None = None, dask_timeout: float | None = None) -> None:
    """Everything about a ``trdnet run`` request that can be refused before any work.

    Parameters
    ----------
    out_dir : Path
        Output folder: must not be, be inside, or overwrite part of an input;
        must be a writable folder (created here).
    inputs : iterable of Path
        Input folders and files (None entries ignored).
    bids_dir : Path, optional
        fMRIPrep derivatives folder: requested participants must be present
        and their folders and sidecars readable.
    participant_labels : list of str, optional
        Labels without ``sub-`` (labels that are absent are refused with the
        other filters once the runs are found).
    dask : str, optional
        ``--dask`` address: checked for form, and a scheduler address must answer (:func:`check_scheduler`).
    dask_timeout : float, optional
        Seconds that scheduler has to answer.

    Raises
    ------
    TrdnetError
        One line naming the file or value and the problem.
    """
    from .inputs.requested import check_participants
    from .output_folder import check_output_folder

    if dask:
        parse_dask(dask)
    if bids_dir is not None:
        check_participants(bids_dir, participant_labels)
    check_output_folder(out_dir, inputs)
    if dask:  # last: an address that does not answer takes dask_timeout to refuse
        check_scheduler(dask, dask_timeout)


def check_scheduler(address: str, timeout: float | None = None) -> None:
    """Refuse, before any work, a Dask scheduler address that does not answer (``local`` clusters are started later).

    Parameters
    ----------
    address : str
        ``--dask`` value.
    timeout : float, optional
        Seconds the scheduler has to answer (default :data:`DASK_CONNECT_SECONDS`).

    Raises
    ------
    SettingsError
        A malformed address.
    TrdnetError
        dask.distributed is not installed, or the scheduler does not answer.
    """
    if parse_dask(address) is None:
        connect_scheduler(address, timeout).close()


def _run_serial(runs, args, prefetch: bool, progress) -> list[RunResult]:
    """One run after the other; with ``prefetch``, the next unfinished run is read meanwhile."""
    out_dir, settings, overwrite, _, _ = args
    todo = [run for run in runs if prefetch and _needs_processing(run, Path(out_dir), settings, overwrite)]
    following = dict(zip(map(id, todo), todo[1:]))
    results = []
    with RunPrefetcher() as prefetcher:
        if todo:
            prefetcher.prefetch(todo[0])
        for run in runs:
            if id(run) in following:
                prefetcher.prefetch(following[id(run)])
            results.append(_safe_process(run, *args, None, reader=prefetcher.reader(run)))
            progress(results[-1])
    return results


def _needs_processing(run, out_dir: Path, settings: Settings, overwrite: bool) -> bool:
    """Whether processing a run would compute it (not skip it as finished)."""
    try:
        return not is_finished(run, out_dir, settings, overwrite)
    except TrdnetError:
        return False  # the run reports its own problem when processed: nothing to read ahead, no result


def _run_mapped(runs, args, mapper, progress, results: list | None = None) -> list[RunResult]:
    """Every run through ``mapper``, in the order of ``runs``; a progress line as each ends.

    ``results`` (one slot per run) is filled as runs end, so a caller interrupted meanwhile knows which did.
    """
    results = [None] * len(runs) if results is None else results
    for index, result in mapper(_safe_process, [(run, *args) for run in runs]):
        results[index] = result
        progress(result)
    return results


def _run_joblib(runs, args, mapper, progress) -> list[RunResult]:
    """:func:`_run_mapped` on joblib workers; after Ctrl-C, the runs stopped in a worker get their records."""
    results = [None] * len(runs)
    try:
        return _run_mapped(runs, args, mapper, progress, results)
    except KeyboardInterrupt:
        out_dir, settings = Path(args[0]), args[1]
        record_stopped_runs([run for run, result in zip(runs, results) if result is None], out_dir, settings)
        raise


def record_stopped_runs(runs, out_dir: Path, settings: Settings) -> list[str]:
    """Give a failure record to each run a worker was stopped in before it could record itself.

    After Ctrl-C the pool stops its workers; one stopped in the middle of a
    run leaves its staging folder (:mod:`trdnet.staging`) and no failure
    record. A run with a staging folder, no failure record and a free lock
    (its worker is gone) gets one, as if it had recorded its own interruption;
    a run never started has no staging folder and is left as it was.

    Returns
    -------
    list of str
        The prefixes recorded.
    """
    from .records import failure_record_path
    from .staging import run_lock, staging_dir

    recorded = []
    for run in runs:
        if not staging_dir(out_dir, run.prefix).is_dir() or failure_record_path(out_dir, run.prefix).is_file():
            continue
        try:
            with run_lock(out_dir, run.prefix):
                write_failure_record(out_dir, run.prefix, f"sub-{run.subject}", failure_reason(KeyboardInterrupt()),
                                     settings.digest(), interrupted=True)
        except (RunBusyError, OSError):  # a worker still finishing records itself; a record that cannot be
            continue                     # written leaves the run to the group step, which calls it interrupted
        recorded.append(run.prefix)
    if recorded:
        write_failures_table(out_dir)
    return recorded
