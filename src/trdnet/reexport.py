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

A participant-level target's navigator files (``desc-participantnavtargets``,
:mod:`trdnet.export.participant`) are rewritten the same way
(:func:`reexport_participant`), through the participant step's record: its
file set is published as a whole, and files no longer written (a format no
longer asked for) are withdrawn, as the participant step does.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from .entities import NAVIGATION_DESC, output_path, parse_entities
from .errors import InputError
from .outputs import read_tsv
from .records import (completion_record_path, failure_record_path, participant_record_path, read_completion_record,
                      read_failure_record, read_participant_record, write_participant_record)
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


def runs_to_export(runs, out_dir: Path, source: Path, requested: bool = False) -> tuple[list, list[str]]:
    """The runs with a trace in ``out_dir`` (:func:`processed_here`), and lines about the others.

    Parameters
    ----------
    runs : list of trdnet.inputs.runs.Run
        The runs found in the fMRIPrep folder.
    out_dir : Path
    source : Path
        The fMRIPrep folder, named in the lines.
    requested : bool
        The runs were asked for (``--participant-label``): each one not
        processed is named. Otherwise a folder's runs that were never
        processed (say, participants left out of ``trdnet run`` with
        ``--participant-label``) are counted in one line, not listed.

    Returns
    -------
    kept : list of Run
    lines : list of str
    """
    kept = [run for run in runs if processed_here(run, out_dir)]
    others = [run for run in runs if run not in kept]
    if not others:
        return kept, []
    if requested:
        return kept, [f"{run.prefix}: not processed in {out_dir}; run 'trdnet run' first" for run in others]
    subjects = len({run.subject for run in others})
    if not kept:
        return kept, [f"none of the {len(others)} run(s) of {source} ({subjects} participant(s)) was processed in "
                      f"{out_dir}; run 'trdnet run' first"]
    return kept, [f"{len(others)} other run(s) of {source} ({subjects} participant(s)) were not processed in "
                  f"{out_dir} and are not exported (--participant-label names them one by one)"]


def unfinished_reason(out_dir: Path, prefix: str) -> str | None:
    """Why a run is not finished in ``out_dir``, and how to resume it (None: it is).

    Finished as :mod:`trdnet.records` defines it for every step (the reports
    and the group step too): a readable completion record whose files are
    all in place and named as this version names them; only the navigator
    files it lists may be missing, since the export writes them again.

    Parameters
    ----------
    out_dir : Path
        The trdnet output folder.
    prefix : str
        The run's BIDS prefix.

    Returns
    -------
    str or None
        One line: its completion record lists outputs that are missing or
        named by an earlier version; or the run failed (the reason from its failure record,
        ``logs/<prefix>_failed.json``), was interrupted (Ctrl-C, SIGTERM, or a
        killed process that left its staging folder), or left outputs without
        a record; then how to resume.
    """
    out_dir = Path(out_dir)
    record = completion_record_path(out_dir, prefix)
    if record.is_file():
        finished = read_completion_record(record)  # an unreadable record raises, naming it
        reason = replace(finished, files=[f for f in finished.files if not is_navigation_file(f)]
                         ).unfinished_reason(out_dir)
        return (f"{prefix}: the run is not finished in {out_dir}: {reason}" if reason else None)
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


def is_participant_navigation_file(name) -> bool:
    """Whether an output (path or name) is a participant-level navigator file (``desc-participantnavtargets``)."""
    from .export.participant import PARTICIPANT_NAVIGATION_DESC

    return parse_entities(Path(name).name).get("desc") == PARTICIPANT_NAVIGATION_DESC


def export_participants(runs, out_dir: Path) -> dict[str, list]:
    """The participants whose participant-level navigator files an export rewrites, with their runs.

    Parameters
    ----------
    runs : list of trdnet.inputs.runs.Run
        The runs selected for export.
    out_dir : Path

    Returns
    -------
    dict
        Participant prefix -> its selected runs, for participants with a
        participant record or with two or more finished runs (the
        participant step's condition; :func:`reexport_participant` says
        when such a participant has no record).
    """
    from .participants import participant_prefix

    groups: dict[str, list] = {}
    for run in runs:
        groups.setdefault(participant_prefix(run), []).append(run)
    out_dir = Path(out_dir)
    return {prefix: members for prefix, members in groups.items()
            if participant_record_path(out_dir, prefix).is_file()
            or sum(completion_record_path(out_dir, r.prefix).is_file() for r in members) >= 2}


def reexport_participant(prefix: str, runs, out_dir: Path, settings, lock_timeout: float = 0):
    """Write a participant-level target's navigator files again, from its ``desc-participant_targets.tsv``.

    The files are exported into a staging folder first (a refused export
    changes nothing), then published as one set through the participant
    step's record: the record is set aside
    (:func:`trdnet.participants.set_aside`), the files are renamed into
    place, the record is written again listing the new navigator files with
    the step's other files, and earlier navigator files not written again
    are withdrawn (:func:`trdnet.participants.withdraw_replaced`).

    Parameters
    ----------
    prefix : str
        Participant prefix (``sub-<l>_task-<l>[_acq-<l>]_space-<l>``).
    runs : list of trdnet.inputs.runs.Run
        The participant's runs selected for export (their anatomy).
    out_dir, settings, lock_timeout
        As :func:`reexport_run`; the lock waited for is the participant's.

    Returns
    -------
    summary, files
        As :func:`reexport_run`; the summary is merged into the participant record's.

    Raises
    ------
    InputError
        No participant record (the participant step did not finish), runs of
        the participant target not among ``runs``, a run it joins processed
        again since (:meth:`trdnet.records.ParticipantRecord.stale_reason`),
        or files its record lists missing.
    ExportError
        What :func:`trdnet.export.participant.export_participant_target` refuses (nothing is changed).
    """
    from .entities import participant_output_path
    from .export.participant import export_participant_target
    from .participants import participant_entities, set_aside, withdraw_replaced

    out_dir = Path(out_dir)
    record_path = participant_record_path(out_dir, prefix)
    with run_lock(out_dir, prefix, lock_timeout):
        if not record_path.is_file():
            raise InputError(f"{prefix}: no participant record {record_path.relative_to(out_dir)}: the participant "
                             "step did not finish, so its navigator files were not rewritten; run 'trdnet run ... "
                             "participant' on all of the participant's runs, then export")
        record = read_participant_record(record_path)
        chosen = {run.prefix: run for run in runs}
        absent = [name for name in record.runs if name not in chosen]
        if absent:
            raise InputError(f"{prefix}: the participant target was made from runs not selected for export "
                             f"({', '.join(absent)}); its navigator files were not rewritten: select all of them")
        stale = record.stale_reason(out_dir)
        if stale:  # rewriting its record would pass an out-of-date target off as current
            raise InputError(f"{record_path}: the participant target is out of date: {stale}; its navigator files "
                             "were not rewritten: run 'trdnet run ... participant' again, then export")
        missing = [f for f in record.missing_files(out_dir) if not is_participant_navigation_file(f)]
        if missing:
            raise InputError(f"{record_path}: lists output(s) that are missing ({', '.join(missing[:3])}); "
                             "re-run the participant step with 'trdnet run ... --overwrite' before exporting")
        members = [chosen[name] for name in record.runs]
        targets = participant_output_path(out_dir, prefix, "targets", ".tsv", desc="participant")
        stage = RunStaging(out_dir, prefix)
        stage.clear()
        try:
            summary, written = export_participant_target(members, read_tsv(targets),
                                                         participant_entities(members[0]), stage.root, settings)
            set_aside(out_dir, prefix)  # as the participant step: a record never describes files being replaced
            new = stage.update(written, is_participant_navigation_file, summary)  # no run record: publishes only
            files = sorted({f for f in record.files if not is_participant_navigation_file(f)} | set(new))
            kept = {k: v for k, v in record.summary.items() if not k.startswith("navigation_")}
            write_participant_record(out_dir, prefix, record.runs, record.settings_digest, files,
                                     kept | summary, record.simulated)
            withdraw_replaced(out_dir, prefix, keep=files)
            return summary, new
        finally:  # refused or interrupted before publication: the participant's files stay as they were
            shutil.rmtree(stage.root, ignore_errors=True)
