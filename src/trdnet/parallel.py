"""How many worker processes this machine (or this job's CPU allocation) offers."""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may run on (the scheduler's CPU set when there is one).

    Returns
    -------
    int
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_count(n_jobs: int | None, n_tasks: int) -> int:
    """Worker processes for ``n_tasks`` independent tasks.

    Parameters
    ----------
    n_jobs : int or None
        Requested workers; ``None`` or a value below 1 means every available core.
    n_tasks : int

    Returns
    -------
    int
        Between 1 and ``n_tasks`` (never more workers than tasks).
    """
    wanted = available_cores() if n_jobs is None or n_jobs < 1 else n_jobs
    return max(1, min(wanted, n_tasks))
