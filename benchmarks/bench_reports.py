"""Report writing time for a SIMULATED cohort, as a user runs it (``trdnet report``).

A cohort (default 20 participants, 300 volumes, 2 mm MNI grid) is simulated and
processed once without reports; then ``trdnet report OUTPUT --n-jobs N`` runs in
a fresh process for each worker count, alternating, several repeats. Reported:
median wall time of the whole command (interpreter start and imports included),
seconds per participant and parallel efficiency. Writes
``results/reports.tsv`` and ``results/reports.md``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tables import machine_note, write_tables  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _prepare(root: Path, n_subjects: int, n_volumes: int) -> Path:
    """Simulate and process the cohort (no reports); return the output folder."""
    from trdnet.cohort import run_cohort
    from trdnet.config import Settings
    from trdnet.inputs.bids import find_runs
    from trdnet.inputs.simulate import simulate_cohort

    settings = Settings()
    cohort = simulate_cohort(root / "sim", n_subjects=n_subjects, n_volumes=n_volumes, resolution_mm=2,
                             random_state=0, anatomy=False)
    out = root / "out"
    results = run_cohort(find_runs(cohort.fmriprep_dir, space=settings.space), out, settings,
                         n_jobs=2, progress=False)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise RuntimeError(f"{len(failed)} simulated runs failed: {failed[0].error}")
    return out


def _time_report(out: Path, n_jobs: int) -> float:
    """Wall seconds of ``trdnet report out --n-jobs n_jobs`` in a fresh process."""
    command = [sys.executable, "-m", "trdnet", "report", str(out), "--n-jobs", str(n_jobs)]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Command line: ``python bench_reports.py [--subjects 20] [--volumes 300] [--jobs 1 2] [--repeats 2]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--volumes", type=int, default=300)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    times: dict[int, list[float]] = {n: [] for n in args.jobs}
    with tempfile.TemporaryDirectory(prefix="trdnet-bench-reports-") as tmp:
        out = _prepare(Path(tmp), args.subjects, args.volumes)
        for repeat in range(args.repeats):
            for n_jobs in args.jobs:
                times[n_jobs].append(_time_report(out, n_jobs))
                print(f"report --n-jobs {n_jobs} #{repeat + 1}: {times[n_jobs][-1]:.1f} s", file=sys.stderr,
                      flush=True)
        n_reports = len(list(out.glob("sub-*.html")))
    single = float(np.median(times[min(args.jobs)]))
    rows = []
    for n_jobs, samples in times.items():
        wall = float(np.median(samples))
        rows.append({
            "participants": args.subjects,
            "reports_written": n_reports,
            "n_jobs": n_jobs,
            "repeats": len(samples),
            "median_wall_s": wall,
            "s_per_participant": wall / args.subjects,
            "parallel_efficiency": single / wall / n_jobs * min(args.jobs),
        })
    table = pd.DataFrame(rows)
    notes = [
        f"{args.subjects} SIMULATED participants, one {args.volumes}-volume run each on the 2 mm MNI152 grid, "
        "processed once with default settings; then `trdnet report OUT --n-jobs N` (participant reports and "
        "group.html) in a fresh process, wall time including interpreter start and imports.",
        machine_note(),
    ]
    write_tables(table, args.results / "reports.tsv", args.results / "reports.md",
                 "Report writing (SIMULATED data)", notes)
    return table


if __name__ == "__main__":
    main()
