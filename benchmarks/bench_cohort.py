"""Cohort throughput: SIMULATED 300-volume 2 mm runs through ``trdnet.cohort.run_cohort``.

Compares serial processing without and with reading the next run ahead
(``n_jobs=1``, ``prefetch=False/True``), two joblib worker processes
(``n_jobs=2``) and, when ``dask.distributed`` works, a local Dask cluster of two
single-threaded workers (``dask="local:2"``). Each configuration processes the
whole cohort from scratch (``overwrite=True``) with trdnet's default settings
(full pipeline: cleaning, networks, targets with reliability bootstrap, outputs).
Reports runs per minute and parallel efficiency (speed-up / workers). Writes
``results/cohort.tsv`` and ``results/cohort.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tables import machine_note, write_tables  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def backend_configurations(with_dask: bool, read_ahead_off: bool = True) -> list[tuple[str, dict, int]]:
    """``(name, run_cohort keyword arguments, workers)`` of each backend a cohort benchmark compares."""
    serial = [("serial n_jobs=1, no read-ahead", {"n_jobs": 1, "prefetch": False}, 1)] if read_ahead_off else []
    configs = [*serial, ("serial n_jobs=1, read-ahead (default)", {"n_jobs": 1}, 1),
               ("joblib n_jobs=2", {"n_jobs": 2}, 2)]
    if with_dask:
        configs.append(("dask local:2", {"dask": "local:2"}, 2))
    return configs


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Command line: ``python bench_cohort.py [--subjects 16] [--volumes 300] [--no-dask]``."""
    from trdnet.cohort import run_cohort
    from trdnet.config import Settings
    from trdnet.inputs.bids import find_runs
    from trdnet.inputs.simulate import simulate_cohort

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=16)
    parser.add_argument("--volumes", type=int, default=300)
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    settings = Settings()
    rows = []
    with tempfile.TemporaryDirectory(prefix="trdnet-bench-cohort-") as tmp:
        cohort = simulate_cohort(Path(tmp) / "sim", n_subjects=args.subjects, n_volumes=args.volumes,
                                 resolution_mm=2, random_state=0)
        runs = find_runs(cohort.fmriprep_dir, space=settings.space)
        serial_s = None
        for name, kwargs, workers in backend_configurations(not args.no_dask):
            out = Path(tmp) / f"out-{workers}-{len(rows)}"
            start = time.perf_counter()
            try:
                results = run_cohort(runs, out, settings, overwrite=True, progress=False, **kwargs)
            except Exception as exc:  # e.g. dask.distributed missing or unable to start
                print(f"{name}: not measured ({type(exc).__name__}: {exc})", file=sys.stderr)
                continue
            seconds = time.perf_counter() - start
            failed = [r for r in results if r.status == "failed"]
            serial_s = seconds if serial_s is None else serial_s  # the first: serial, no read-ahead
            speedup = serial_s / seconds if serial_s else float("nan")
            rows.append({
                "configuration": name,
                "workers": workers,
                "runs": len(runs),
                "failed": len(failed),
                "wall_s": seconds,
                "runs_per_minute": 60.0 * len(runs) / seconds,
                "speedup_vs_serial": speedup,
                "parallel_efficiency": speedup / workers,
                "median_run_s": float(np.median([r.seconds for r in results if r.status == "done"])),
            })
            print(f"{name}: {seconds:.1f} s, {len(failed)} failed", file=sys.stderr, flush=True)
            for r in failed:
                print(f"  {r.prefix}: {r.error}", file=sys.stderr)
    table = pd.DataFrame(rows)
    notes = [
        f"{args.subjects} SIMULATED runs (trdnet.inputs.simulate.simulate_cohort), {args.volumes} volumes, "
        "2 mm MNI152 grid, default trdnet Settings (full per-run pipeline incl. reliability bootstrap).",
        "speed-up and parallel efficiency are against the serial run without read-ahead: "
        "efficiency = (serial wall / wall) / workers. Serial runs in the benchmark's process (trdnet already "
        "imported); worker processes import it once each, inside the measured time. median_run_s: one run's "
        "processing time inside its worker (without start-up): equal values in the serial and parallel rows mean "
        "the workers do not slow each other down, and the gap to 2x is the workers' one-off start-up.",
        machine_note(),
    ]
    write_tables(table, args.results / "cohort.tsv", args.results / "cohort.md",
                 "Cohort throughput (SIMULATED data)", notes)
    return table


if __name__ == "__main__":
    main()
