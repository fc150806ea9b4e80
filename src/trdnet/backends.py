"""Where a cohort's tasks run: in this process, in joblib (loky) worker processes, or on a Dask cluster.

A *map* takes a worker entry point and a list of tasks, runs
``function(*task, blas_threads)`` for each, and yields ``(index, value)``
pairs as the tasks end (in the order they end, not the order of ``tasks``).
``blas_threads`` is None in this process and the BLAS threads a worker may use
otherwise; an entry point runs its work under :func:`run_guarded`, so it never
raises in a worker. A cohort hands one map to both of its steps (the runs,
then the participant step), so a Dask cluster is started once and the runs'
joblib pool serves the participants too.

- :func:`serial_map`: one task after the other, in this process;
- :class:`JoblibMap`: ``n_jobs`` loky worker processes (:func:`worker_pool`),
  BLAS pinned to ``cores // workers`` threads in each;
- :class:`DaskMap`: the workers of a ``distributed.Client`` (one BLAS thread each).
"""

from __future__ import annotations

import contextlib
import sys

from .logging_setup import configure_worker_logging, logging_level
from .errors import TrdnetError, handle_sigterm, restore_sigterm, worker_sigint
from .parallel import available_cores, worker_count

#: Warning filter handed to loky's resource tracker process (see :class:`JoblibMap`).
QUIET_TRACKER = "ignore:resource_tracker:UserWarning"

#: Seconds an idle joblib (loky) worker waits for work before it exits. loky's default, 300 s, kept
#: the workers of a parent killed with ``kill -9`` alive for about 6 minutes (they cannot be told).
IDLE_WORKER_SECONDS = 10

#: Seconds a scheduler address has to answer. distributed's own default (``distributed.comm.timeouts.connect``,
#: 30 s) kept a mistyped address waiting half a minute before it was refused; a scheduler that is up answers in
#: well under a second, on a busy cluster in a few.
DASK_CONNECT_SECONDS = 10.0


@contextlib.contextmanager
def worker_limits(blas_threads: int | None):
    """The conditions one task runs under in a worker process.

    Parameters
    ----------
    blas_threads : int or None
        None: this process, nothing changes (Ctrl-C and SIGTERM stop the
        command). Otherwise BLAS is pinned to that many threads
        (threadpoolctl), SIGTERM (a cluster ending the job) raises
        :class:`trdnet.errors.Terminated`, and Ctrl-C raises
        KeyboardInterrupt while the task runs; both are put back as an idle
        worker takes them when it ends (:func:`trdnet.errors.worker_sigint`).
    """
    if blas_threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    previous = handle_sigterm()
    worker_sigint(running=True)
    try:
        with threadpool_limits(limits=blas_threads):
            yield
    finally:  # an idle worker is the pool's to stop
        restore_sigterm(previous)
        worker_sigint(running=False)


def run_guarded(work, blas_threads: int | None, on_error):
    """``work()`` under :func:`worker_limits`; a failure becomes a value, so one task never stops the others.

    Parameters
    ----------
    work : callable
        The task, without arguments.
    blas_threads : int or None
        As for :func:`worker_limits`.
    on_error : callable
        ``on_error(exc)`` gives the value of a task that raised ``exc``: any
        Exception (a user's input or a bug), and in a worker also
        KeyboardInterrupt (Ctrl-C, or SIGTERM as :class:`trdnet.errors.Terminated`).

    Raises
    ------
    KeyboardInterrupt
        In this process (``blas_threads`` None): Ctrl-C stops the command.
    """
    try:
        with worker_limits(blas_threads):
            return work()
    except KeyboardInterrupt as exc:
        if blas_threads is None:
            raise
        return on_error(exc)
    except Exception as exc:  # noqa: BLE001 - a bug too: keep the cohort going but keep the evidence
        return on_error(exc)


def _indexed(index: int, function, task: tuple, blas_threads: int | None, log_level: int | None):
    configure_worker_logging(log_level)  # a worker process does not inherit the parent's logging setup
    return index, function(*task, blas_threads)


def serial_map(function, tasks):
    """Run every task in this process, in order.

    Parameters
    ----------
    function : callable
        ``function(*task, blas_threads)``, called with ``blas_threads`` None.
    tasks : sequence of tuple

    Yields
    ------
    (int, object)
        The task's index in ``tasks`` and ``function``'s value.
    """
    for index, task in enumerate(tasks):
        yield index, function(*task, None)


def worker_pool(workers: int):
    """The joblib (loky) pool of worker processes that runs a cohort.

    Parameters
    ----------
    workers : int
        Worker processes.

    Returns
    -------
    joblib.Parallel
        Results in the order runs end; idle workers exit after
        :data:`IDLE_WORKER_SECONDS`. Each worker, once started, takes Ctrl-C
        as an idle worker does (:func:`trdnet.errors.worker_sigint`, loky's
        ``initializer``): it leaves quietly until its first run starts,
        instead of raising KeyboardInterrupt in loky's loop while it waits
        for work.

    Notes
    -----
    Ctrl-C while a worker process is still starting (Python importing
    loky, joblib and numpy, before any code of trdnet's runs in it; about
    the first second) can still print that worker's traceback. Only a SIGINT
    ignored from the process's creation would cover it, which means the
    command ignoring Ctrl-C itself whenever loky starts a worker (also later,
    from its own thread, after an idle worker exits): not done.
    """
    from joblib import Parallel

    return Parallel(n_jobs=workers, backend="loky", verbose=0, return_as="generator_unordered",
                    idle_worker_timeout=IDLE_WORKER_SECONDS, initializer=worker_sigint, initargs=(False,))


class JoblibMap:
    """Run tasks in joblib (loky) worker processes on this machine.

    Parameters
    ----------
    n_jobs : int or None
        Worker processes (``None`` or below 1: every available core); never
        more than the tasks of one call. With one worker the tasks run in
        this process (:func:`serial_map`). Workers are reused from one call to
        the next while they are alive (loky's executor).

    Notes
    -----
    Each worker's BLAS is pinned to ``available cores // workers`` threads.
    Functions are sent to the workers by reference (module and name): a
    function replaced in this process (a test's monkeypatch) is not the one
    the workers run.
    """

    def __init__(self, n_jobs: int | None):
        self.n_jobs = n_jobs

    def __call__(self, function, tasks):
        """Yield ``(index, function(*task, blas_threads))`` for every task, in the order tasks end."""
        from joblib import delayed

        tasks = list(tasks)
        workers = worker_count(self.n_jobs, len(tasks))
        if workers == 1:
            yield from serial_map(function, tasks)
            return
        blas = max(1, available_cores() // workers)
        # loky's resource tracker shares the terminal's process group: after Ctrl-C it warned on stderr about the
        # semaphores of the workers joblib stopped. It takes its -W options from this interpreter's.
        if QUIET_TRACKER not in sys.warnoptions:
            sys.warnoptions.append(QUIET_TRACKER)
        level = logging_level()
        yield from worker_pool(workers)(delayed(_indexed)(i, function, task, blas, level)
                                        for i, task in enumerate(tasks))


class DaskMap:
    """Run tasks on the workers of a Dask cluster.

    Parameters
    ----------
    client : distributed.Client
        Connected to the cluster (:func:`dask_client`); each task runs with
        one BLAS thread (the workers are single-threaded).
    """

    def __init__(self, client):
        self.client = client

    def __call__(self, function, tasks):
        """Yield ``(index, function(*task, 1))`` for every task, in the order tasks end (``as_completed``)."""
        from dask.distributed import as_completed

        level = logging_level()
        futures = [self.client.submit(_indexed, i, function, task, 1, level, pure=False)
                   for i, task in enumerate(tasks)]
        for future in as_completed(futures):
            yield future.result()


def connect_scheduler(address: str, timeout: float | None = None):
    """A ``distributed.Client`` connected to a scheduler address.

    Raises
    ------
    TrdnetError
        dask.distributed is not installed, or the scheduler does not answer within ``timeout`` seconds
        (default :data:`DASK_CONNECT_SECONDS`).
    """
    timeout = DASK_CONNECT_SECONDS if timeout is None else timeout
    try:
        from dask.distributed import Client
    except ImportError:
        raise TrdnetError("--dask needs dask.distributed: pip install 'trdnet[dask]'") from None
    try:
        return Client(address, timeout=timeout)
    except (OSError, ValueError, TypeError) as exc:
        raise TrdnetError(f"--dask {address}: cannot reach a Dask scheduler there within {timeout:g} s ({exc}); "
                          "--dask-timeout SECONDS waits longer") from None


@contextlib.contextmanager
def dask_client(address: str, n_workers: int | None, timeout: float | None = None):
    """A ``distributed.Client`` for the whole of a cohort: a local cluster started once, or a scheduler's.

    Parameters
    ----------
    address : str
        The ``--dask`` value (for the messages).
    n_workers : int or None
        Workers of a local cluster (single-threaded processes); None: connect to ``address``.
    timeout : float, optional
        Seconds a scheduler address has to answer (:func:`connect_scheduler`).

    Raises
    ------
    TrdnetError
        dask.distributed is not installed, or the scheduler does not answer.
    """
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise TrdnetError("--dask needs dask.distributed: pip install 'trdnet[dask]'") from None
    if n_workers is None:
        with connect_scheduler(address, timeout) as client:
            yield client
        return
    # Dask's statistical profiler samples each worker's stack under the GIL:
    # measured at 15% of a run's time here, for a dashboard nobody watches.
    with dask.config.set({"distributed.worker.profile.enabled": False}), \
            LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                         dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client
