"""Command line: argument parsing only; the work is done by library functions.

``trdnet run FMRIPREP_DIR OUTPUT_DIR participant`` (BIDS-Apps form),
``trdnet demo [OUTPUT_DIR]``. User errors print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
from pathlib import Path

from ._version import __version__
from .config import TARGET_METHODS as METHODS
from .console import (EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED, EXIT_RUN_FAILED, EXIT_TERMINATED, report_results,
                      write_html_reports)
from .logging_setup import configure_logging
from .errors import InputError, SettingsError, Terminated, TrdnetError, handle_sigterm, restore_sigterm
from .inputs.datasets import DATASETS

log = logging.getLogger("trdnet.cli")


_REFUSED = ("the request was refused before any work (bad option, settings file, input or output folder: one line "
            "says why)")
_STOPPED = ("interrupted (Ctrl-C), {terminated} terminated (SIGTERM): finished runs are kept, a run in progress gets a "
            "failure record; re-run to resume").format(terminated=EXIT_TERMINATED)
_STOPPED_EARLY = "interrupted (Ctrl-C), {terminated} terminated (SIGTERM): nothing half-written is left".format(
    terminated=EXIT_TERMINATED)

#: What each command's exit codes mean: only the codes the command can return (SIGTERM's 143 shares 130's entry).
COMMAND_EXIT_CODES = {
    "run": {EXIT_OK: "every run finished (or was already finished); group: the cohort tables were written",
            EXIT_RUN_FAILED: "at least one run failed (listed in failures.tsv, the others went on) or was left to "
                             "another trdnet process",
            EXIT_REFUSED: _REFUSED, EXIT_INTERRUPTED: _STOPPED},
    "demo": {EXIT_OK: "every simulated run finished", EXIT_RUN_FAILED: "at least one run failed (listed in "
             "failures.tsv, the others went on)", EXIT_REFUSED: _REFUSED, EXIT_INTERRUPTED: _STOPPED},
    "export": {EXIT_OK: "every finished run asked for was exported",
               EXIT_RUN_FAILED: "a run could not be exported (one line says why; the others were) or there was "
                                "nothing to export",
               EXIT_REFUSED: _REFUSED, EXIT_INTERRUPTED: _STOPPED_EARLY},
    "report": {EXIT_OK: "the reports were written", EXIT_REFUSED: _REFUSED, EXIT_INTERRUPTED: _STOPPED_EARLY},
    "fetch": {EXIT_OK: "the dataset is in the cache", EXIT_REFUSED: "the dataset could not be fetched or the request "
              "was refused (one line says why)", EXIT_INTERRUPTED: _STOPPED_EARLY},
    "settings": {EXIT_OK: "the settings were printed", EXIT_REFUSED: _REFUSED},
}


def exit_codes_help(codes: dict) -> str:
    """The ``exit codes: ...`` paragraph of a command's ``--help`` from its entry of :data:`COMMAND_EXIT_CODES`."""
    return "exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in codes.items())


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``trdnet`` command."""
    parser = argparse.ArgumentParser(
        prog="trdnet",
        description="Brain-network connectivity (DMN, SN, ECN) and personalised sgACC-anticorrelated "
        "left-DLPFC TMS targets from resting-state fMRI. Not a medical device.",
        epilog="exit codes: each command's --help lists the codes it returns; 0 success, 1 a run failed (run, "
        "demo) or could not be exported (export), 2 a request refused before any work (or a bad option), "
        "130 interrupted (Ctrl-C), 143 terminated (SIGTERM)",
    )
    parser.add_argument("--version", action="version", version=f"trdnet {__version__}")
    _add_verbosity(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = _command(
        sub, "run", help="process fMRIPrep derivatives or a public dataset (BIDS-Apps form)",
        description="Process an fMRIPrep derivatives folder (trdnet run FMRIPREP_DIR OUTPUT_DIR participant), "
        "a public dataset (trdnet run --dataset NAME OUTPUT_DIR participant), or ROI time series "
        "(trdnet run --roi-timeseries FOLDER --labels TABLE OUTPUT_DIR participant). "
        "'group' collects the participants' outputs into cohort tables and statistics.")
    run.add_argument("dirs", nargs="+", type=Path, metavar="DIR",
                     help="FMRIPREP_DIR OUTPUT_DIR (or only OUTPUT_DIR with --dataset / --roi-timeseries)")
    run.add_argument("analysis_level", choices=["participant", "group"], help="participant or group")
    run.add_argument("--participant-label", "--participant_label", dest="participant_label", nargs="+",
                     action="extend", metavar="L", help="participants to process (without sub-)")
    run.add_argument("--session-label", "--session_label", dest="session_label", nargs="+",
                     action="extend", metavar="L",
                     help="sessions to process (without ses-)")
    run.add_argument("--task", help="task to process (default: every task)")
    run.add_argument("--bids-filter-file", "--bids_filter_file", dest="bids_filter_file", type=Path,
                     metavar="FILE", help="JSON file selecting runs, in fMRIPrep's form: "
                     '{"bold": {"session": "01", "task": "rest", "run": [1, 2]}} (null: entity absent)')
    run.add_argument("--dataset", choices=DATASETS, help="a public dataset: nilearn's fetchers, brainfc_rest01 "
                     "(one real scan's parcel signals and confounds, from the brainfc wheel on PyPI) or lemon_fsaverage5 "
                     "(one real run on the fsaverage5 cortex, from the brainspace wheel)")
    run.add_argument("--data-dir", type=Path, help="nilearn data folder for --dataset (default: nilearn's)")
    run.add_argument("--n-subjects", type=int, help="participants to take from --dataset")
    run.add_argument("--roi-timeseries", type=Path, metavar="FOLDER",
                     help="folder of *_timeseries.tsv ROI signals (networks only, no targeting)")
    run.add_argument("--labels", type=Path, help="TSV naming each ROI's network, for --roi-timeseries")
    run.add_argument("--already-cleaned", action="store_true",
                     help="--roi-timeseries: the signals are already denoised; analyse them as given, without "
                     "confounds (recorded in every output and the report). Without it, each file needs fMRIPrep's "
                     "*_desc-confounds_timeseries.tsv of the same run beside it, and is cleaned like a voxel run")
    run.add_argument("--participants-tsv", type=Path, help="group: participants.tsv with a group column")
    run.add_argument("--group-column", default="group", help="group: column of participants.tsv (default: group)")
    run.add_argument("--exclude-fd", type=float, help="group: exclude runs with mean FD above this (mm); no exclusion unless given")
    run.add_argument("--exclude-minutes", type=float, help="group: exclude runs with fewer minutes retained; no exclusion unless given")
    run.add_argument("--settings-digest", metavar="DIGEST",
                     help="group: keep only the runs processed with these settings (the SettingsDigest of their "
                     "completion records; runs of other settings are listed in exclusions.tsv). Without it, runs "
                     "processed with different settings are refused, naming the digests and what differs")
    _add_lock_timeout(run)
    run.add_argument("--group-map", help="group sgACC map for --target-method seedmap: a NIfTI file, or 'loo' "
                     "for the leave-one-out mean of the other participants already in OUTPUT_DIR")
    _add_common(run)

    export = _command(
        sub, "export", help="(re)write neuronavigation files for targets already computed",
        description="Map each run's targets to the participant's T1w (fMRIPrep transforms) and write Brainsight, "
        "Localite, TSV and NIfTI marker files beside the run's outputs. Runs after 'run' automatically.")
    export.add_argument("fmriprep_dir", type=Path, help="fMRIPrep output folder (anat/ T1w and transforms)")
    export.add_argument("output_dir", type=Path, help="trdnet output folder holding *_targets.tsv")
    export.add_argument("--participant-label", "--participant_label", dest="participant_label", nargs="+",
                        action="extend", metavar="L", help="participants (without sub-)")
    export.add_argument("--space", help="space of the processed BOLD runs (default: the settings' space, "
                        "MNI152NLin2009cAsym)")
    export.add_argument("--coil-orientation", choices=("identity", "scalp_normal"),
                        help="coil pose written for each target: scalp_normal (coil tangential to the scalp, "
                        "handle at the settings' angle to the midline) or identity (image axes, not a coil "
                        "placement) (default: the settings' export.coil_orientation, scalp_normal)")
    export.add_argument("--settings", type=Path,
                        help="the JSON settings file given to 'trdnet run' (its export section is used)")
    export.add_argument("--settings-digest", metavar="DIGEST",
                        help="export only the runs processed with these settings (the SettingsDigest of their "
                        "completion records). Without it, runs processed with different settings are refused, "
                        "naming the digests and what differs")
    _add_lock_timeout(export)

    report = _command(
        sub, "report", help="(re)write the HTML reports from an output folder",
        description="Write <OUTPUT_DIR>/sub-<l>.html per participant and <OUTPUT_DIR>/group.html "
        "from the tables and maps already written (nothing is recomputed).")
    report.add_argument("output_dir", type=Path, help="trdnet output folder")
    report.add_argument("--participant-label", "--participant_label", dest="participant_label", nargs="+",
                        action="extend", metavar="L", help="participants (default: all)")
    report.add_argument("--n-jobs", type=int, metavar="N",
                        help="parallel worker processes (default, or 0 or less: every available core)")

    fetch = _command(
        sub, "fetch", help="download (or find in the cache) a public dataset",
        description="Fetch a public dataset with nilearn's fetchers (brainfc_rest01: from the package registry into "
        "trdnet's cache), or use the filled cache.")
    fetch.add_argument("dataset", choices=DATASETS)
    fetch.add_argument("--data-dir", type=Path, help="nilearn data folder (default: nilearn's; brainfc_rest01: "
                       "parent of the laid-out sample, default trdnet's cache)")
    fetch.add_argument("--n-subjects", type=int, help="participants to fetch")

    demo = _command(
        sub, "demo", help="simulate a small cohort and run trdnet on it, offline",
        description="Simulate a small cohort (SIMULATED DATA) in fMRIPrep's layout, "
        "process it, and print each participant's target and its distance to the planted one.")
    demo.add_argument("output_dir", type=Path, nargs="?", default=Path("trdnet_demo"),
                      help="folder for the simulated data and the outputs (default: ./trdnet_demo)")
    demo.add_argument("--n-subjects", type=int, default=4, help="participants to simulate (default: 4)")
    demo.add_argument("--n-volumes", type=int, default=300, help="volumes per run (default: 300, 10 min at TR 2 s)")
    demo.add_argument("--resolution", type=int, choices=(2, 3, 4), default=3, help="grid in mm (default: 3)")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the simulation (default: 0)")
    _add_common(demo)

    settings = _command(
        sub, "settings", help="print a complete settings file (defaults, a denoising strategy, or a checked file)",
        description="Print the full settings as JSON, ready to edit and pass to 'trdnet run --settings'. "
        "Every value is checked; a bad one is named in one line.")
    shown = settings.add_mutually_exclusive_group()
    shown.add_argument("--defaults", action="store_true",
                       help="the default settings (also what is printed when nothing is given)")
    shown.add_argument("--strategy", metavar="NAME", help="the defaults with a named denoising strategy")
    shown.add_argument("--strategies", action="store_true", help="list the denoising strategies and what each does")
    settings.add_argument("--settings", type=Path,
                          help="start from this settings file (checked) instead of the defaults")
    return parser


def _command(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    """A sub-command parser listing its exit codes and accepting -v/-q."""
    command = sub.add_parser(name, epilog=exit_codes_help(COMMAND_EXIT_CODES[name]), **kwargs)
    _add_verbosity(command)
    return command


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: -v/-q are accepted before or after the command without one position resetting the other
    parser.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="more messages (-v: debugging detail)")
    parser.add_argument("-q", "--quiet", action="count", default=argparse.SUPPRESS,
                        help="fewer messages (-q: warnings and errors only, -qq: errors only)")


def seconds(value: str) -> float:
    """An argparse type: a finite number of seconds >= 0 (a negative wait would never end)."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds; accepted: a number >= 0")
    return number


def positive_seconds(value: str) -> float:
    """An argparse type: a finite number of seconds > 0."""
    number = seconds(value)
    if number == 0:
        raise argparse.ArgumentTypeError(f"{value!r}: accepted: a number of seconds > 0")
    return number


def _add_lock_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lock-timeout", type=seconds, default=0, metavar="SECONDS",
                        help="seconds to wait for a run that another trdnet process is working on (default: 0, "
                        "refuse at once: the run is left to that process, said so in one line, and the exit code is 1)")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", help="space of the BOLD images to use (default: the settings' space, "
                        "MNI152NLin2009cAsym)")
    parser.add_argument("--denoise-strategy", metavar="NAME",
                        help="named denoising strategy (nilearn's load_confounds_strategy names, e.g. simple+gsr, "
                        "scrubbing.5+gsr, compcor; 'trdnet settings --strategies' lists them; default: default)")
    parser.add_argument("--gsr", choices=("on", "off", "both"),
                        help="global signal regression; 'both' also computes the personalised targets with it "
                        "switched the other way and reports their distance (default: as the settings say: on)")
    parser.add_argument("--no-gsr", action="store_true", help="same as --gsr off")
    parser.add_argument("--target-method", nargs="+", choices=METHODS, metavar="METHOD",
                        help=f"targeting method(s), first is primary; one or more of {', '.join(METHODS)}")
    parser.add_argument("--n-bootstrap", type=int, help="block-bootstrap resamples for target reliability")
    parser.add_argument("--settings", type=Path, help="JSON file of settings (see trdnet.config)")
    parser.add_argument("--n-jobs", type=int, default=1, metavar="N",
                        help="parallel worker processes for the runs, then the participant step (default: 1; 0 or "
                        "less, as joblib's -1: every available core; more than the cores: capped, with a warning)")
    parser.add_argument("--dask", metavar="ADDRESS",
                        help="run the runs, then the participant step, on Dask: 'local:N' or a scheduler address")
    parser.add_argument("--dask-timeout", type=positive_seconds, metavar="SECONDS",
                        help="seconds a --dask scheduler address has to answer before the request is refused "
                        "(default: 10)")
    parser.add_argument("--overwrite", action="store_true", help="recompute runs that are already finished")
    parser.add_argument("--random-state", type=int, help="seed of every random choice (default: 0)")
    parser.add_argument("--no-report", action="store_true", help="do not write the HTML reports")


def settings_from_args(args):
    """Build :class:`trdnet.config.Settings` from parsed arguments.

    Order: the ``--settings`` file (or the defaults), then
    ``--denoise-strategy``, then the single-value options. Contradictory
    requests are refused with :class:`~trdnet.errors.SettingsError`.
    """
    import dataclasses

    from .config import Settings, read_settings_file, with_gsr

    settings = Settings.from_json(args.settings) if args.settings else Settings()
    strategy = getattr(args, "denoise_strategy", None)
    if strategy:
        settings = _with_strategy(settings, strategy, args.settings and read_settings_file(args.settings))
    if args.space:
        settings = dataclasses.replace(settings, space=args.space)
    log.debug("settings file %s, denoising strategy %s", args.settings or "(defaults)", strategy or "(as set)")
    if args.no_gsr and args.gsr in ("on", "both"):
        raise SettingsError(f"--no-gsr contradicts --gsr {args.gsr}; give one of them")
    gsr = "off" if args.no_gsr else args.gsr
    if gsr in ("on", "off") and settings.denoise.gsr != (gsr == "on"):
        if strategy:
            raise SettingsError(
                f"--gsr {gsr} contradicts --denoise-strategy {strategy}, which has global signal regression "
                f"{'on' if settings.denoise.gsr else 'off'}; choose the strategy with or without '+gsr' instead")
        settings = with_gsr(settings, gsr == "on")
    targeting = settings.targeting
    if gsr == "both":
        targeting = dataclasses.replace(targeting, compare_gsr=True)
    if args.target_method:
        targeting = dataclasses.replace(targeting, methods=tuple(dict.fromkeys(args.target_method)))
    if args.n_bootstrap is not None:
        targeting = dataclasses.replace(targeting, n_bootstrap=args.n_bootstrap)
    group_map = getattr(args, "group_map", None)
    if group_map:
        from .config import LEAVE_ONE_OUT

        # In the settings, so it is recorded in every sidecar and part of the digest a re-run checks.
        group_map = group_map if group_map == LEAVE_ONE_OUT else str(Path(group_map).resolve())
        targeting = dataclasses.replace(targeting, group_map=group_map)
    settings = dataclasses.replace(settings, targeting=targeting)
    if args.random_state is not None:
        settings = dataclasses.replace(settings, random_state=args.random_state)
    return settings


def _with_strategy(settings, strategy: str, file_values):
    """Settings with a named denoising strategy, refusing a settings file that also sets its keys."""
    from .strategies import STRATEGY_KEYS, apply_strategy

    denoise = (file_values or {}).get("denoise", {})
    both = sorted(k for k in denoise if k in (*STRATEGY_KEYS, "strategy"))
    if both:
        raise SettingsError(
            f"denoise.{', denoise.'.join(both)} set both by the settings file and by --denoise-strategy {strategy}; "
            f'drop the option, or write "strategy": "{strategy}" in the file\'s denoise section')
    return apply_strategy(settings, strategy)


def cmd_run(args) -> int:
    """``trdnet run``."""
    from .cohort import run_cohort

    expected = 1 if (args.dataset or args.roi_timeseries) else 2
    if args.analysis_level == "group" and len(args.dirs) in (1, 2):
        return cmd_group(args, args.dirs[-1])
    if len(args.dirs) != expected:
        form = "OUTPUT_DIR" if expected == 1 else "FMRIPREP_DIR OUTPUT_DIR"
        raise SettingsError(f"expected {form} before the analysis level, got {len(args.dirs)} folder(s)")
    output_dir = args.dirs[-1]
    settings = settings_from_args(args)
    from .cohort import check_request

    bids_dir = None if (args.dataset or args.roi_timeseries) else args.dirs[0]
    check_request(output_dir, [bids_dir, args.roi_timeseries, args.labels, args.data_dir], bids_dir,
                  args.participant_label, args.dask, args.dask_timeout)
    runs, settings = collect_runs(args, settings)
    log.debug("%d run(s) to process; settings digest %s", len(runs), settings.digest())
    results = run_cohort(runs, output_dir, settings, n_jobs=args.n_jobs, dask=args.dask,
                         overwrite=args.overwrite, lock_timeout=args.lock_timeout, dask_timeout=args.dask_timeout)
    code = report_results(results, output_dir)
    if not args.no_report:
        write_html_reports(output_dir, sorted({r.subject for r in results if r.status != "failed"}))
    return code


def cmd_report(args) -> int:
    """``trdnet report``."""
    from .records import requested_participants
    from .report import write_reports

    labels = requested_participants(args.output_dir, args.participant_label)
    for path in write_reports(args.output_dir, labels, n_jobs=args.n_jobs):
        print(path)
    return 0


def collect_runs(args, settings):
    """The runs named on the command line, and settings adapted to them.

    Everything that can be refused is refused here, before any work: a bad
    BIDS filter file, a denoising strategy the inputs cannot honour, a
    band-pass the runs' sampling rate cannot carry.
    """
    from .inputs.timeseries import record_roi_input
    from .networks.atlas_check import check_atlas_fits
    from .preflight import check_denoise_fits, check_group_map_given, check_setting_files
    from .roi_denoise import check_roi_runs
    from .strategies import strategy_name
    from .targeting.select import check_targeting_fits

    check_setting_files(settings)
    strategy = getattr(args, "denoise_strategy", None)
    if args.bids_filter_file and (args.dataset or args.roi_timeseries):
        raise SettingsError("--bids-filter-file selects runs of an fMRIPrep folder; it cannot be used with "
                            "--dataset or --roi-timeseries")
    if settings.denoise.already_cleaned:  # only --already-cleaned declares it; a settings file's value was ignored
        raise SettingsError(f"{args.settings}: denoise.already_cleaned = true is not a setting: it applies only to "
                            "ROI time series declared cleaned on the command line (--roi-timeseries ... "
                            "--already-cleaned), and runs are otherwise always cleaned; remove it from the file")
    if args.roi_timeseries:
        from .inputs.timeseries import find_roi_timeseries_runs

        if not args.labels:
            raise SettingsError("--roi-timeseries needs --labels TABLE (each ROI's network)")
        if strategy and args.already_cleaned:
            raise SettingsError("--denoise-strategy does not apply to --roi-timeseries declared --already-cleaned: "
                                "they are analysed as given")
        if args.gsr == "both" and args.already_cleaned:
            raise SettingsError("--gsr both does not apply to --roi-timeseries declared --already-cleaned: no global "
                                "signal regression is applied to them either way")
        runs = find_roi_timeseries_runs(args.roi_timeseries, args.labels, already_cleaned=args.already_cleaned)
        runs = _requested(runs, args, args.roi_timeseries)
        check_roi_runs(settings.denoise, runs)
        return runs, record_roi_input(settings, runs, args.labels)
    if args.dataset:
        from .inputs.dataset_runs import adapt_settings, dataset_runs
        from .inputs.public import fetch_dataset

        dataset = fetch_dataset(args.dataset, data_dir=args.data_dir, n_subjects=args.n_subjects)
        settings, changes = adapt_settings(settings, dataset)
        if strategy and strategy_name(settings.denoise) != strategy:
            raise SettingsError(f"{args.dataset}: --denoise-strategy {strategy} cannot be honoured on these files "
                                f"({'; '.join(changes)}); choose another strategy")
        for change in changes:
            print(f"{args.dataset}: {change}")
        runs = _requested(dataset_runs(dataset, changes), args, args.dataset)
    else:
        from .inputs.bids import find_runs

        runs = find_runs(args.dirs[0], args.participant_label, settings.space, args.task, args.session_label,
                         bids_filter=args.bids_filter_file)
        runs = _requested(runs, args, args.dirs[0])
    check_denoise_fits(settings.denoise, runs)
    check_atlas_fits(settings.networks, runs)
    check_targeting_fits(settings.targeting, runs)
    check_group_map_given(settings)
    check_roi_runs(settings.denoise, runs)
    return runs, record_roi_input(settings, runs)


def _requested(runs, args, source):
    """The runs of the requested participants and sessions, refusing labels that have none.

    BIDS Apps stop on a participant asked for but absent; so does a session
    label that no run has (a session missing for some participants is normal).
    """
    from .inputs.requested import shown_labels

    wanted = {"sub": (args.participant_label, "--participant-label"),
              "ses": (getattr(args, "session_label", None), "--session-label")}
    for key, (labels, option) in wanted.items():
        if not labels:
            continue
        present = {run.entities.get(key) for run in runs} - {None}
        runs = [run for run in runs if run.entities.get(key) in labels]
        missing = [label for label in labels if label not in present]
        if missing:
            raise InputError(f"{source}: {option} {' '.join(missing)}: no run (with the other filters); "
                             f"present: {shown_labels(present)}")
    return runs


def _bids_labels(args) -> None:
    """Strip ``sub-``/``ses-`` from label options, refusing anything that is not a BIDS label."""
    for name, prefix, option in (("participant_label", "sub", "--participant-label"),
                                 ("session_label", "ses", "--session-label")):
        values = getattr(args, name, None)
        if not values:
            continue
        labels = [value.removeprefix(f"{prefix}-") for value in values]
        for value, label in zip(values, labels):
            if not re.fullmatch(r"[A-Za-z0-9]+", label):
                raise SettingsError(f"{option} {value!r} is not a BIDS label; accepted: letters and digits, "
                                    f"with or without '{prefix}-'")
        setattr(args, name, list(dict.fromkeys(labels)))


def cmd_group(args, output_dir: Path) -> int:
    """``trdnet run ... group``."""
    from .group import QcThresholds, run_group

    exclude = None
    if args.exclude_fd is not None or args.exclude_minutes is not None:
        exclude = QcThresholds(max_mean_fd=args.exclude_fd, min_minutes=args.exclude_minutes)
    from .inputs.requested import normalise_labels

    result = run_group(output_dir, participants_tsv=args.participants_tsv, group_column=args.group_column,
                       exclude=exclude, participant_labels=normalise_labels(args.participant_label),
                       settings_digest=args.settings_digest)
    for path in result.files.values():
        print(path)
    if not args.no_report:
        from .report import write_group_report

        print(write_group_report(output_dir))
    return 0


def cmd_export(args) -> int:
    """``trdnet export``."""
    import dataclasses

    from .config import Settings
    from .inputs.bids import find_runs
    from .reexport import export_participants, reexport_participant, reexport_run, runs_to_export, select_export_runs

    settings = Settings.from_json(args.settings) if args.settings else Settings()
    if args.space:
        settings = dataclasses.replace(settings, space=args.space)
    if args.coil_orientation:
        settings = dataclasses.replace(
            settings, export=dataclasses.replace(settings.export, coil_orientation=args.coil_orientation))
    exported = refused = 0
    runs, lines = runs_to_export(find_runs(args.fmriprep_dir, args.participant_label, settings.space),
                                 args.output_dir, args.fmriprep_dir, requested=bool(args.participant_label))
    for line in lines:
        print(line)
    runs, left_out = select_export_runs(runs, args.output_dir, args.settings_digest)
    for line in left_out:
        print(line)
    for run in runs:
        try:
            summary, files = reexport_run(run, args.output_dir, settings, args.lock_timeout)
        except TrdnetError as exc:  # this run is refused (anatomy, busy, broken record); the others are still exported
            print(f"trdnet: error: {exc}", file=sys.stderr)
            refused += 1
            continue
        exported += 1
        print(f"{run.prefix}: {summary.get('navigation_space')} target ({summary.get('navigation_x', 0):.1f}, "
              f"{summary.get('navigation_y', 0):.1f}, {summary.get('navigation_z', 0):.1f}) mm; "
              f"{len(files)} files")
    for prefix, members in export_participants(runs, args.output_dir).items():
        try:
            summary, files = reexport_participant(prefix, members, args.output_dir, settings, args.lock_timeout)
        except TrdnetError as exc:  # as for a run: this participant is refused, the others are exported
            print(f"trdnet: error: {exc}", file=sys.stderr)
            refused += 1
            continue
        print(f"{prefix} (participant): {summary.get('navigation_space')} target "
              f"({summary.get('navigation_x', 0):.1f}, {summary.get('navigation_y', 0):.1f}, "
              f"{summary.get('navigation_z', 0):.1f}) mm; {len(files)} files")
    if refused:  # like a failed run: the others went on
        return EXIT_RUN_FAILED
    return 0 if exported else 1


def cmd_fetch(args) -> int:
    """``trdnet fetch``."""
    from .inputs.public import fetch_dataset

    dataset = fetch_dataset(args.dataset, data_dir=args.data_dir, n_subjects=args.n_subjects)
    print(f"{dataset.name}: {len(dataset.runs)} image runs, {len(dataset.roi_runs)} ROI time-series runs "
          f"in {dataset.cache_dir}")
    for note in (*dataset.preprocessing.notes, *dataset.notes):
        print(f"  note: {note}")
    return 0


def cmd_demo(args) -> int:
    """``trdnet demo``."""
    from .demo import run_demo

    settings = settings_from_args(args)
    return run_demo(args.output_dir, settings, n_subjects=args.n_subjects, n_volumes=args.n_volumes,
                    resolution_mm=args.resolution, seed=args.seed, n_jobs=args.n_jobs, dask=args.dask,
                    dask_timeout=args.dask_timeout,
                    overwrite=args.overwrite, no_report=args.no_report)


def cmd_settings(args) -> int:
    """``trdnet settings``: print a complete settings file, or the strategies."""
    import json

    from .config import Settings, read_settings_file
    from .strategies import strategies

    if args.strategies:
        for name, preset in strategies().items():
            print(f"{name}: {preset['description']}\n    source: {preset['source']}")
        return EXIT_OK
    from .preflight import check_setting_files

    settings = Settings.from_json(args.settings) if args.settings else Settings()
    if args.strategy:
        settings = _with_strategy(settings, args.strategy, args.settings and read_settings_file(args.settings))
    check_setting_files(settings)  # refused here as 'trdnet run' would refuse it
    print(json.dumps(settings.to_dict(), indent=2))
    return EXIT_OK


COMMANDS = {"run": cmd_run, "demo": cmd_demo, "fetch": cmd_fetch, "export": cmd_export, "report": cmd_report,
            "settings": cmd_settings}


#: Exit code when whoever reads the output stopped reading (``trdnet settings --defaults | head -1``):
#: 128 + SIGPIPE, as a shell reports a command-line tool that SIGPIPE ended.
EXIT_BROKEN_PIPE = 141


def _discard_stdout() -> None:
    """Point stdout at the null device so the interpreter's last flush at exit cannot fail again.

    As the Python documentation advises for a closed pipe (``signal`` module, "Note on SIGPIPE").
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (a test's StringIO): nothing to flush
        pass


def main(argv=None) -> int:
    """Entry point of the ``trdnet`` command; returns the exit code (listed in ``trdnet --help``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(getattr(args, "verbose", 0), getattr(args, "quiet", 0))
    previous = handle_sigterm()  # like Ctrl-C: a run in progress is recorded as failed
    try:
        _bids_labels(args)
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a reader that stopped reading (| head) shows here, not as a traceback at exit
        return code
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except Terminated:
        print("trdnet: terminated (SIGTERM); finished runs are kept, re-run to resume", file=sys.stderr)
        return EXIT_TERMINATED
    except TrdnetError as exc:
        print(f"trdnet: error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except PermissionError as exc:  # a file or folder of the user's that this account cannot read or write
        print(f"trdnet: error: {exc.filename}: permission denied ({exc.strerror})", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print("trdnet: interrupted; finished runs are kept, re-run to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        restore_sigterm(previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
