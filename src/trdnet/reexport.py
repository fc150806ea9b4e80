"""``trdnet export``: rewrite a finished run's navigator files the way runs publish their outputs.

Under the run's lock (:func:`trdnet.staging.run_lock`), the navigator files
are written into the run's staging folder, then renamed into place while the
run's completion record is rewritten to list them (:meth:`RunStaging.update`):
the record never lists a navigator file that is not there, and an export that
is refused or interrupted leaves the finished run as it was. Only finished runs
(with a completion record) are exported; a run that failed or was interrupted
is refused with the reason its failure record gives and how to resume it, and
runs processed with different settings are refused together unless one
settings digest is chosen, as the group step does
(:func:`trdnet.group.digests.select_settings_digest`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .entities import NAVIGATION_DESC, output_path, parse_entities
from .errors import InputError
from .outputs import read_tsv
from .records import completion_record_path, failure_record_path, read_completion_record, read_failure_record
from .staging import RunStaging, run_lock, staged_runs


def is_navigation_file(name) -> bool:
    """Whether an output (path or name) is a navigator file (``desc-navtargets``)."""
    return parse_entities(Path(name).name).get("desc") == NAVIGATION_DESC


def processed_here(run, out_dir: Path) -> bool:
    """Whether ``out_dir`` holds any trace of the run: a completion or failure record, a staging folder, outputs."""
    from .pipeline import output_dir_for

    out_dir = Path(out_dir)
    return (completion_record_path(out_dir, run.prefix).is_file()
            or failure_record_path(out_dir, run.prefix).is_file()
            or run.prefix in staged_runs(out_dir)
            or any(output_dir_for(run, out_dir).glob(f"{run.prefix}_*")))


def unfinished_reason(out_dir: Path, prefix: str) -> str | None:
    """Why a run has no completion record in ``out_dir``, and how to resume it (None: it has one).

    Parameters
    ----------
    out_dir : Path
        The trdnet output folder.
    prefix : str
        The run's BIDS prefix.

    Returns
    -------
    str or None
        One line: the run failed (the reason from its failure record,
        ``logs/<prefix>_failed.json``), was interrupted (Ctrl-C, SIGTERM, or a
        killed process that left its staging folder), or left outputs without
        a record; then how to resume.
    """
    out_dir = Path(out_dir)
    record = completion_record_path(out_dir, prefix)
    if record.is_file():
        return None
    resume = (f"resume it by running the same 'trdnet run ... {out_dir} participant' command again (finished runs "
              "are skipped, this one is computed again), then export")
    failed = failure_record_path(out_dir, prefix)
    if failed.is_file():
        failure = read_failure_record(failed)
        reason = " ".join(failure.reason.split())
        what = "was interrupted" if failure.interrupted else "failed"
        return (f"{prefix}: the run did not finish in {out_dir}: it {what} ({failed.name}: {reason}); "
                f"{resume if failure.interrupted else 'fix that, then ' + resume}")
    if prefix in staged_runs(out_dir):
        return (f"{prefix}: the run did not finish in {out_dir}: it was interrupted (its staging folder is left and "
                f"there is no failure record: the process was killed); {resume}")
    return (f"{prefix}: the run did not finish in {out_dir} (outputs without a completion record {record.name}: "
            f"interrupted or failed, no failure record left); {resume}")


def select_export_runs(runs, out_dir: Path, settings_digest: str | None = None):
    """The runs to export: refuse finished runs of different settings unless one digest is chosen.

    Parameters
    ----------
    runs : list of trdnet.inputs.runs.Run
    out_dir : Path
    settings_digest : str, optional
        Export only the runs finished with these settings (``--settings-digest``).

    Returns
    -------
    kept : list of Run
        Runs with the chosen (or the only) digest, and runs without a
        completion record (each refused or reported on its own later).
    left_out : list of str
        One line per finished run of another digest.

    Raises
    ------
    SettingsError
        Finished runs with two or more digests and none chosen, or a chosen
        digest that no finished run has (:func:`trdnet.group.digests.select_settings_digest`).
    """
    from .group.collect import RunRecord, run_file_name
    from .group.digests import select_settings_digest

    out_dir = Path(out_dir)
    finished = []
    for run in runs:
        path = completion_record_path(out_dir, run.prefix)
        if path.is_file():
            done = read_completion_record(path)
            networks = [out_dir / f for f in done.files if Path(f).name == run_file_name(run.prefix, "networks")]
            finished.append(RunRecord(done.prefix, done.participant_id, None, done.simulated,
                                      {"networks": networks[0]} if networks else {}, done.settings_digest))
    if not finished:
        return list(runs), []
    kept, excluded = select_settings_digest(finished, out_dir, settings_digest, action="exported together",
                                            step="the export")
    left = {row["run"] for row in excluded}
    return ([run for run in runs if run.prefix not in left],
            [f"{row['run']}: not exported: {row['reason']}" for row in excluded])


def reexport_run(run, out_dir: Path, settings, lock_timeout: float = 0):
    """Write a run's navigator files again from its targets table.

    Parameters
    ----------
    run : trdnet.inputs.runs.Run
    out_dir : Path
        The trdnet output folder holding the run's ``<prefix>_targets.tsv``.
    settings : trdnet.config.Settings
        Its ``export`` section chooses the formats and the coil pose.
    lock_timeout : float
        Seconds to wait for another process working on the run (0: refuse at once).

    Returns
    -------
    summary : dict
        ``navigation_*`` values (also merged into the completion record's summary).
    files : list of str
        The navigator files written, relative to ``out_dir``.

    Raises
    ------
    InputError
        If the run has no completion record (it was interrupted or failed:
        :func:`unfinished_reason` says why and how to resume), no targets table,
        or its completion record lists other outputs that
        are missing (re-run it).
    trdnet.staging.RunBusyError
        If another process holds the run.
    ExportError
        If the participant's anatomy is refused (nothing is changed).
    """
    from .pipeline import write_navigation

    out_dir = Path(out_dir)
    targets = output_path(out_dir, run.prefix, "targets", ".tsv")
    with run_lock(out_dir, run.prefix, lock_timeout):
        record_path = completion_record_path(out_dir, run.prefix)
        unfinished = unfinished_reason(out_dir, run.prefix)
        if unfinished:
            raise InputError(unfinished)
        missing = [f for f in read_completion_record(record_path).missing_files(out_dir)
                   if not is_navigation_file(f)]
        if missing:
            raise InputError(f"{record_path}: lists output(s) that are missing ({', '.join(missing[:3])}); "
                             "re-run the run with 'trdnet run ... --overwrite' before exporting")
        if not targets.is_file():
            raise InputError(f"{run.prefix}: no {targets.name}; run 'trdnet run' first")
        stage = RunStaging(out_dir, run.prefix)
        stage.clear()
        try:
            summary, written = write_navigation(run, read_tsv(targets), stage.root, settings)
            return summary, stage.update(written, is_navigation_file, summary)
        finally:  # refused or interrupted: the finished run stays as it was
            shutil.rmtree(stage.root, ignore_errors=True)
