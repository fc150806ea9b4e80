"""Command line: argument parsing only; the work is done by library functions.

``trdnet run FMRIPREP_DIR OUTPUT_DIR participant`` (BIDS-Apps form),
``trdnet demo [OUTPUT_DIR]``. User errors print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._version import __version__
from .errors import TrdnetError

METHODS = ("cluster", "peak", "seedmap", "hierarchical")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``trdnet`` command."""
    parser = argparse.ArgumentParser(
        prog="trdnet",
        description="Brain-network connectivity (DMN, SN, ECN) and personalised sgACC-anticorrelated "
        "left-DLPFC TMS targets from resting-state fMRI. Not a medical device.",
    )
    parser.add_argument("--version", action="version", version=f"trdnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="process fMRIPrep derivatives (BIDS-Apps form)",
                         description="Process an fMRIPrep derivatives folder: networks, targets, reliability.")
    run.add_argument("fmriprep_dir", type=Path, help="fMRIPrep output folder (holds dataset_description.json)")
    run.add_argument("output_dir", type=Path, help="where trdnet writes its derivatives")
    run.add_argument("analysis_level", choices=["participant"], help="'participant' (group step: see issues)")
    run.add_argument("--participant-label", nargs="+", metavar="L", help="participants to process (without sub-)")
    run.add_argument("--session-label", nargs="+", metavar="L", help="sessions to process (without ses-)")
    run.add_argument("--task", help="task to process (default: every task)")
    _add_common(run)

    demo = sub.add_parser("demo", help="simulate a small cohort and run trdnet on it, offline",
                          description="Simulate a small cohort (SIMULATED DATA) in fMRIPrep's layout, "
                          "process it, and print each participant's target and its distance to the planted one.")
    demo.add_argument("output_dir", type=Path, nargs="?", default=Path("trdnet_demo"),
                      help="folder for the simulated data and the outputs (default: ./trdnet_demo)")
    demo.add_argument("--n-subjects", type=int, default=4, help="participants to simulate (default: 4)")
    demo.add_argument("--n-volumes", type=int, default=300, help="volumes per run (default: 300, 10 min at TR 2 s)")
    demo.add_argument("--resolution", type=int, choices=(2, 3, 4), default=3, help="grid in mm (default: 3)")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the simulation (default: 0)")
    _add_common(demo)
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="MNI152NLin2009cAsym", help="space of the BOLD images to use")
    parser.add_argument("--no-gsr", action="store_true", help="do not regress the global signal")
    parser.add_argument("--target-method", nargs="+", choices=METHODS, metavar="METHOD",
                        help=f"targeting method(s), first is primary; one or more of {', '.join(METHODS)}")
    parser.add_argument("--n-bootstrap", type=int, help="block-bootstrap resamples for target reliability")
    parser.add_argument("--settings", type=Path, help="JSON file of settings (see trdnet.config)")
    parser.add_argument("--n-jobs", type=int, default=1, help="parallel worker processes (default: 1)")
    parser.add_argument("--dask", metavar="ADDRESS", help="run on Dask: 'local:N' or a scheduler address")
    parser.add_argument("--overwrite", action="store_true", help="recompute runs that are already finished")
    parser.add_argument("--random-state", type=int, help="seed of every random choice (default: 0)")


def settings_from_args(args):
    """Build :class:`trdnet.config.Settings` from parsed arguments."""
    import dataclasses

    from .config import Settings, with_gsr

    settings = Settings.from_json(args.settings) if args.settings else Settings()
    settings = dataclasses.replace(settings, space=args.space)
    if args.no_gsr:
        settings = with_gsr(settings, False)
    targeting = settings.targeting
    if args.target_method:
        targeting = dataclasses.replace(targeting, methods=tuple(dict.fromkeys(args.target_method)))
    if args.n_bootstrap is not None:
        targeting = dataclasses.replace(targeting, n_bootstrap=args.n_bootstrap)
    settings = dataclasses.replace(settings, targeting=targeting)
    if args.random_state is not None:
        settings = dataclasses.replace(settings, random_state=args.random_state)
    return settings


def cmd_run(args) -> int:
    """``trdnet run``."""
    from .cohort import run_cohort
    from .inputs.bids import find_runs

    settings = settings_from_args(args)
    runs = find_runs(args.fmriprep_dir, args.participant_label, args.space, args.task, args.session_label)
    results = run_cohort(runs, args.output_dir, settings, n_jobs=args.n_jobs, dask=args.dask,
                         overwrite=args.overwrite)
    return report_results(results, args.output_dir)


def cmd_demo(args) -> int:
    """``trdnet demo``."""
    from .demo import run_demo

    settings = settings_from_args(args)
    return run_demo(args.output_dir, settings, n_subjects=args.n_subjects, n_volumes=args.n_volumes,
                    resolution_mm=args.resolution, seed=args.seed, n_jobs=args.n_jobs, dask=args.dask,
                    overwrite=args.overwrite)


def report_results(results, output_dir: Path) -> int:
    """Print one line per run and return the exit code (1 if any run failed)."""
    failed = [r for r in results if r.status == "failed"]
    for r in results:
        if r.status == "failed":
            print(f"{r.prefix}: FAILED: {r.error}")
        else:
            s = r.summary
            print(f"{r.prefix}: {r.status}; target ({s.get('target_x', float('nan')):.1f}, "
                  f"{s.get('target_y', float('nan')):.1f}, {s.get('target_z', float('nan')):.1f}) mm "
                  f"{s.get('target_space', '')}, r_sgacc {s.get('r_sgacc', float('nan')):.2f}, "
                  f"reliability {s.get('reliability', '?')}")
    print(f"outputs: {output_dir}")
    if failed:
        print(f"{len(failed)} of {len(results)} runs failed; see {Path(output_dir) / 'failures.tsv'}", file=sys.stderr)
        return 1
    return 0


COMMANDS = {"run": cmd_run, "demo": cmd_demo}


def main(argv=None) -> int:
    """Entry point of the ``trdnet`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except TrdnetError as exc:
        print(f"trdnet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("trdnet: interrupted; finished runs are kept, re-run to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
