"""Stage timings a benchmark child saves with its results (seconds, from ``time.perf_counter``)."""

from __future__ import annotations


def stage_times(start: float, imported: float, cleaned: float, targeted: float, end: float) -> dict[str, float]:
    """Import, total work and per-stage seconds of one child run.

    Parameters
    ----------
    start, imported, cleaned, targeted, end : float
        ``time.perf_counter()`` at process start, after the imports, after
        cleaning, after targeting and at the end of the network stage.

    Returns
    -------
    dict
        ``import_s``, ``work_s`` (everything after the imports), ``clean_s``,
        ``target_s`` and ``networks_s``, as the benchmark tables read them.
    """
    return {"import_s": imported - start, "work_s": end - imported, "clean_s": cleaned - imported,
            "target_s": targeted - cleaned, "networks_s": end - targeted}
