"""Participant step on the cohort's workers: SIMULATED participants with two sessions through ``run_cohort``.

Each configuration (serial, two joblib workers, and when ``dask.distributed``
works a local Dask cluster of two single-threaded workers) processes the whole
cohort from scratch with trdnet's default settings. The participant step's wall
time is read from the progress lines: from the last run's line to the last
participant's line (the step runs after every run has ended). Reports it, the
runs' time, and the step's speed-up against the serial configuration. Writes
``results/participant_step.tsv`` and ``results/participant_step.md``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cohort import backend_configurations  # noqa: E402
from tables import machine_note, write_tables  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


class _Stamps(logging.Handler):
    """The time of each progress line of the ``trdnet`` logger: ``(seconds, is_participant_line)``."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.stamps = []

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("["):
            self.stamps.append((time.perf_counter(), message.startswith("[participant ")))


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Command line: ``python bench_participant_step.py [--subjects 4] [--volumes 300] [--no-dask]``."""
    from trdnet.cohort import run_cohort
    from trdnet.config import Settings
    from trdnet.inputs.bids import find_runs
    from trdnet.inputs.simulate import simulate_cohort

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--volumes", type=int, default=300)
    parser.add_argument("--resolution", type=int, default=3, choices=(2, 3, 4))
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    settings = Settings()
    logger = logging.getLogger("trdnet")
    level = logger.level
    rows = []
    with tempfile.TemporaryDirectory(prefix="trdnet-bench-participants-") as tmp:
        cohort = simulate_cohort(Path(tmp) / "sim", n_subjects=args.subjects, n_volumes=args.volumes,
                                 resolution_mm=args.resolution, sessions=["1", "2"], random_state=0, anatomy=False)
        runs = find_runs(cohort.fmriprep_dir, space=settings.space)
        serial_step = None
        for name, kwargs, workers in backend_configurations(not args.no_dask, read_ahead_off=False):
            stamps = _Stamps()
            logger.addHandler(stamps)
            logger.setLevel(logging.INFO)
            start = time.perf_counter()
            try:
                results = run_cohort(runs, Path(tmp) / f"out-{len(rows)}", settings, **kwargs)
            except Exception as exc:  # e.g. dask.distributed missing or unable to start
                print(f"{name}: not measured ({type(exc).__name__}: {exc})", file=sys.stderr)
                continue
            finally:
                logger.removeHandler(stamps)
                logger.setLevel(level)
            end = time.perf_counter()
            runs_end = max(t for t, participant in stamps.stamps if not participant)
            ends = [t for t, participant in stamps.stamps if participant]
            if not ends:
                raise SystemExit(f"{name}: no participant target was made (statuses: "
                                 f"{sorted({r.status for r in results})}); give more --volumes")
            step_s = max(ends) - runs_end
            serial_step = step_s if serial_step is None else serial_step  # the first: serial
            steps = results[len(runs):]
            rows.append({
                "configuration": name,
                "workers": workers,
                "participants": len(steps),
                "failed": sum(r.status == "failed" for r in results),
                "runs_s": runs_end - start,
                "participant_step_s": step_s,
                "total_s": end - start,
                "step_speedup_vs_serial": serial_step / step_s,
            })
            print(f"{name}: participant step {step_s:.1f} s", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    notes = [
        f"{args.subjects} SIMULATED participants x 2 sessions (trdnet.inputs.simulate.simulate_cohort), "
        f"{args.volumes} volumes, {args.resolution} mm MNI152 grid, default trdnet Settings.",
        "participant_step_s: from the last run's progress line to the last participant's; each participant's "
        "target is one task on the workers the runs used (joblib pool, the same Dask cluster).",
        machine_note(),
    ]
    write_tables(table, args.results / "participant_step.tsv", args.results / "participant_step.md",
                 "Participant step on the cohort's workers (SIMULATED data)", notes)
    return table


if __name__ == "__main__":
    main()
