"""The participant step: one target per person from all of their runs, after the per-run step.

A participant with two or more processed runs of one task and space gets a
target from all of their retained volumes (each run cleaned on its own, then
joined; see :func:`trdnet.targeting.participant_targets`), written beside the
per-run outputs in ``sub-<l>/func/`` under the participant's prefix
``sub-<l>_task-<l>_space-<l>`` (no session or run):

- ``<prefix>_desc-participant_targets.tsv``: the targets, with ``n_runs``,
  ``retest_kind``, ``retest_mm``, ``minutes_for_5mm`` and ``sufficiency_note``;
- ``..._desc-participantretest_targets.tsv``: the held-out targets behind ``retest_mm``;
- ``..._desc-participantsufficiency_targets.tsv``: target stability against data length;
- ``..._desc-participantcandidates_targets.tsv`` and ``..._desc-participantsites_targets.tsv``:
  competing clusters and bootstrap sites;
- ``..._space-<T1w or template>_desc-participantnavtargets_*``: the navigator files of the
  participant target (:mod:`trdnet.export.participant`).

The files are published as one set through the step's record
(``logs/participant/<prefix>_done.json``): they are written into a staging
folder (``.trdnet/staging/<prefix>_participant/``, :mod:`trdnet.staging`) and
renamed into place once all are written, then the record is written; a
step that fails or is interrupted leaves none of them. A re-run sets the
record aside, and files of the earlier result it does not write again are
removed when the new record is in place (all of them when the step fails).

The runs are cleaned a second time here (the per-run step does not keep
them), which costs about as much as reading them once more. Which
participants get a target, and every line about it, is decided here, in the
command's process; each participant's target is made and written by one task
(:func:`make_participant_target`) on the cohort's workers
(:mod:`trdnet.backends`), and writes only that participant's files.
"""

from __future__ import annotations

import shutil
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd

from .backends import run_guarded, serial_map
from .config import Settings
from .entities import (PARTICIPANT_ENTITIES, output_prefix, parse_entities, participant_output_path,
                       sidecar_path)
from .errors import Terminated, TrdnetError
from .inputs.runs import Run
from .outputs import write_json, write_tsv
from .progress import Progress
from .records import (completion_records, finished_runs, participant_record_path, read_participant_record,
                      recorded_settings, write_participant_record)
from .sidecars import SIMULATED_NOTE, sidecar
from .staging import RunStaging
from .staging import failure_reason

#: Status of a participant whose participant-level outputs were left as they were.
KEPT = "kept"

#: Suffix of a participant record set aside while its outputs are replaced (see :func:`set_aside`).
REPLACING_SUFFIX = "_replacing.json"

#: Suffix of the staging folder (:mod:`trdnet.staging`) a participant's files are written into before they are
#: renamed into place together.
STAGING_SUFFIX = "_participant"

#: Suffix of the record of a participant target withdrawn because its runs changed (see :func:`withdrawals`).
WITHDRAWN_SUFFIX = "_withdrawn.json"


def participant_prefix(run: Run) -> str:
    """``sub-<l>_task-<l>[_acq-<l>]_space-<l>`` of the participant a run belongs to."""
    return output_prefix(run.entities, keep=PARTICIPANT_ENTITIES)


def participant_entities(run: Run) -> dict:
    """The participant's entities of a run (``sub``, ``task``, ``acq``, ``space``: no session or run)."""
    return {k: run.entities[k] for k in PARTICIPANT_ENTITIES if k in run.entities}


def group_runs(runs: list[Run], results, minimum: int = 2) -> dict[str, list[Run]]:
    """Runs with a finished per-run target, grouped by participant prefix (``minimum`` runs or more)."""
    groups: dict[str, list[Run]] = defaultdict(list)
    for run, result in zip(runs, results):
        if isinstance(run, Run) and result.status in ("done", "skipped") and "target_x" in result.summary:
            groups[participant_prefix(run)].append(run)
    return {prefix: members for prefix, members in groups.items() if len(members) >= minimum}


def process_participants(runs: list[Run], results, out_dir: Path, settings: Settings, overwrite: bool = False,
                         group_map=None, progress: bool = True, mapper=serial_map) -> list:
    """Run the participant step for every participant with two or more processed runs.

    A selection that leaves out some of a person's runs makes the target
    from all of them when every left-out run is finished with the same
    settings (say, sessions processed in two commands), with one line
    saying so. Otherwise an earlier participant target that is still valid
    is left as it was; one that no longer is (a run it joins was processed
    again, the runs now have different settings digests) is withdrawn, with
    one line naming the runs and their digests. ``overwrite`` with two or
    more selected runs makes the target from the selected runs only.

    Parameters
    ----------
    runs : list of Run
        The runs of this command, and ``results`` their per-run results (same order).
    results : list of RunResult
    out_dir : Path
    settings : Settings
    overwrite : bool
        Make every participant target again.
    group_map : optional
        As for :func:`trdnet.cohort.run_cohort`.
    progress : bool
        True (default): one INFO line per participant whose target is made,
        as its task ends (``[participant k/N] <prefix>: <status>``, see
        :class:`trdnet.progress.Progress`).
    mapper : callable
        Where the participants' targets are made, one task each
        (:func:`make_participant_target`): a map of :mod:`trdnet.backends`.
        :func:`trdnet.backends.serial_map` (default) makes them one after
        the other in this process; ``trdnet.backends.JoblibMap(n_jobs)`` in
        joblib worker processes, ``trdnet.backends.DaskMap(client)`` on a
        Dask cluster. :func:`trdnet.cohort.run_cohort` passes the map its
        runs ran on.

    Returns
    -------
    list of RunResult
        One per participant (``prefix`` is the participant prefix), in the
        order participants are first met in ``runs`` whatever order their
        tasks end in; a participant that fails (a user's input, or a bug, with
        its reason) is recorded as failed, the others go on.

    Raises
    ------
    KeyboardInterrupt
        Ctrl-C in this process. A task interrupted in a worker is a result
        with ``interrupted`` set instead (the caller stops the command).
    """
    from .pipeline import RunResult

    out_dir = Path(out_dir)
    out, folders, todo = [], {}, []
    for prefix, members in group_runs(runs, results, minimum=1).items():
        left_out = runs_left_out(out_dir, prefix, members, settings, folders)
        note = ""
        if left_out and overwrite and len(members) >= 2:
            note = (f"participant target made from the {len(members)} selected runs only (--overwrite); "
                    f"left out: {', '.join(left_out)}")
        elif left_out:
            earlier = finished_elsewhere(out_dir, prefix, members, left_out, settings, folders)
            if earlier is None:
                out.append(RunResult(prefix, members[0].subject, KEPT,
                                     error=_left_as_it_was(out_dir, prefix, members, left_out, settings)))
                continue
            note = (f"participant target made from {len(members) + len(earlier)} runs: {len(members)} of this "
                    f"selection and {len(earlier)} finished earlier with the same settings "
                    f"({', '.join(sorted(r.prefix for r in earlier))})")
            members = members + earlier
        elif len(members) < 2:
            continue
        todo.append((len(out), prefix, members, note))
        out.append(None)
    # the runs' progress lines end before this step, which cleans every run again: count it too
    advance = Progress(len(todo), enabled=progress, step="participant")
    tasks = [(members, prefix, out_dir, settings, overwrite, group_map, note)
             for _, prefix, members, note in todo]
    for task_index, result in mapper(make_participant_target, tasks):
        out[todo[task_index][0]] = result
        advance(result)
    return out


def make_participant_target(members: list[Run], prefix: str, out_dir: Path, settings: Settings, overwrite: bool,
                            group_map, note: str = "", blas_threads: int | None = None):
    """One participant's task of the participant step: :func:`process_participant` as a result that never raises.

    The entry point a map of :mod:`trdnet.backends` calls, in a worker process or in this one.

    Parameters
    ----------
    members : list of Run
        The participant's runs to join.
    prefix : str
        The participant prefix.
    out_dir, settings, overwrite, group_map
        As for :func:`process_participant`.
    note : str
        The line decided for the participant (which runs the target is made from), kept as the result's ``error``.
    blas_threads : int or None
        None in this process; in a worker, its BLAS threads (:func:`trdnet.backends.worker_limits`).

    Returns
    -------
    RunResult
        ``done`` or ``skipped``; ``failed`` with ``participant step: <reason>``
        for a user's input (the error's one line) or a bug (its exception),
        and in a worker for Ctrl-C (``interrupted`` set) or SIGTERM.

    Raises
    ------
    KeyboardInterrupt
        Ctrl-C in this process (``blas_threads`` None).
    """
    from .pipeline import RunResult

    subject = members[0].subject
    start = time.perf_counter()

    def work():
        files, summary, status = process_participant(members, prefix, Path(out_dir), settings, overwrite,
                                                     group_map)
        return RunResult(prefix, subject, status, files, summary, error=note, seconds=time.perf_counter() - start)

    def failed(exc):
        return RunResult(prefix, subject, "failed", error=f"participant step: {failure_reason(exc)}",
                         interrupted=isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Terminated))

    return run_guarded(work, blas_threads, failed)


def finished_elsewhere(out_dir: Path, prefix: str, members: list[Run], left_out: list[str],
                       settings: Settings, folders: dict | None = None) -> list[Run] | None:
    """The left-out runs as :class:`Run` records when each is finished with these settings, else None.

    They are found again in the fMRIPrep folder the members come from (the
    only place a run's inputs are known); a left-out run that is not
    finished in ``out_dir``, was finished with other settings, or is not in
    that folder any more means the participant target cannot join them.
    """
    finished = _finished_targets(out_dir, members[0].subject)
    if any(name not in finished or finished[name].settings_digest != settings.digest() for name in left_out):
        return None
    found = {run.prefix: run for run in source_runs(members[0], settings, folders)}
    if not set(left_out) <= set(found):
        return None
    return [found[name] for name in left_out]


def source_runs(first: Run, settings: Settings, folders: dict | None = None) -> list[Run]:
    """The runs of ``first``'s participant in the fMRIPrep folder it comes from (none for other sources).

    ``folders`` caches each folder's runs over one participant step, so a
    cohort's folder is listed once, not once per participant.
    """
    from .inputs.bids import derivatives_root, find_runs

    if first.source not in ("fmriprep", "simulated") or not Path(first.bold).is_file():
        return []
    key = (derivatives_root(first.bold), settings.space, first.entities.get("task"))
    if folders is None or key not in folders:
        try:
            runs = find_runs(key[0], space=key[1], task=key[2])
        except TrdnetError:  # the folder was readable when the runs were found; records still apply
            runs = []
        if folders is None:
            return [run for run in runs if run.subject == first.subject]
        folders[key] = runs
    return [run for run in folders[key] if run.subject == first.subject]


def _finished_targets(out_dir: Path, subject: str) -> dict:
    """``run prefix -> completion record`` of the participant's finished runs with a target."""
    return {record.prefix: record for record in finished_runs(out_dir, subject)[0] if "target_x" in record.summary}


def _left_as_it_was(out_dir: Path, prefix: str, members: list[Run], left_out: list[str],
                    settings: Settings) -> str:
    """One line for a selection that leaves out runs; withdraws a participant target that is no longer valid.

    The line names the settings that differ (:func:`trdnet.group.digests.settings_differences`, as the
    export and the group step do) when runs of the participant were processed with other settings.
    """
    from .sidecars import settings_block

    record = participant_record_path(out_dir, prefix)
    previous = read_participant_record(record) if record.is_file() else None
    stale = previous is not None and previous.unfinished_reason(out_dir)
    finished = _finished_targets(out_dir, members[0].subject)
    if stale:
        # the participant result's own settings, from its sidecars, before its files are withdrawn
        made_with = recorded_settings(out_dir, previous)
        differing = _differing_settings(out_dir, finished, previous.settings_digest, made_with)
        set_aside(out_dir, prefix)
        withdraw_replaced(out_dir, prefix, keep=())
        runs = sorted({r.prefix for r in members} | set(left_out))
        named = ", ".join(f"{run} ({finished[run].settings_digest if run in finished else 'not finished'})"
                          for run in runs)
        reason = (f"{stale}; the participant's runs and settings digests: {named}{differing}; process all of them "
                  "with one set of settings to make it again")
        write_withdrawal_record(out_dir, prefix, reason, runs)
        return f"participant target withdrawn: {reason}"
    state = "left as it was" if previous is not None else "not written"
    other = [name for name in left_out if name in finished and finished[name].settings_digest != settings.digest()]
    if other:
        named = ", ".join(f"{name} (digest {finished[name].settings_digest})" for name in other)
        differing = _differing_settings(out_dir, finished, settings.digest(), settings_block(members[0], settings))
        return (f"participant target {state}: {len(other)} of the participant's runs left out of this selection "
                f"{'was' if len(other) == 1 else 'were'} processed with other settings ({named}; this command "
                f"{settings.digest()}){differing}; process all of them with one set of settings")
    return (f"participant target {state}: this selection "
            f"leaves out {len(left_out)} of the participant's runs ({', '.join(left_out)}); select all of them"
            + (" (or add --overwrite to make it from the selected runs only)" if len(members) >= 2 else ""))


def _differing_settings(out_dir: Path, finished: dict, digest: str | None, settings: dict) -> str:
    """``; they differ in ...`` between ``settings`` (of ``digest``) and one finished run of every other digest.

    Empty when every run in ``finished`` has ``digest``. The wording is the
    export's and the group step's (:func:`trdnet.group.digests.settings_differences`).
    """
    from .group.digests import settings_differences

    others: dict = {}
    for record in finished.values():
        if record.settings_digest != digest:
            others.setdefault(str(record.settings_digest), record)
    if not others:
        return ""
    return "; " + settings_differences([settings, *(recorded_settings(out_dir, others[d]) for d in sorted(others))])


def runs_left_out(out_dir: Path, prefix: str, members: list[Run], settings: Settings | None = None,
                  folders: dict | None = None) -> list[str]:
    """Runs of this participant that exist but are not among ``members``.

    A run exists when it has a per-run completion record with a target in
    ``out_dir``, when the participant step's own record lists it, or (given
    ``settings``) when the fMRIPrep folder the members come from holds it in
    ``settings.space``. A participant target from fewer runs would silently
    replace, or stand in for, one from all of them. ``folders``: as for :func:`source_runs`.
    """
    known = {record.prefix for record in completion_records(out_dir, members[0].subject)
             if "target_x" in record.summary
             and output_prefix(parse_entities(record.prefix), keep=PARTICIPANT_ENTITIES) == prefix}
    if settings is not None:
        known.update(run.prefix for run in source_runs(members[0], settings, folders)
                     if participant_prefix(run) == prefix)
    previous = participant_record_path(out_dir, prefix)
    if previous.is_file():
        known.update(read_participant_record(previous).runs)
    known.update(_replaced(replacing_record_path(out_dir, prefix), "Runs"))  # a replacement cut short
    return sorted(known - {r.prefix for r in members})


def _participant_group_map(group_map, settings: Settings, out_dir: Path, subject: str):
    """The group map of a participant step: ``loo`` is the mean map of every other participant, as for runs."""
    from .pipeline import LEAVE_ONE_OUT, leave_one_out_group_map

    if group_map is None:
        group_map = settings.targeting.group_map
    if group_map == LEAVE_ONE_OUT:
        return leave_one_out_group_map(out_dir, subject) if "seedmap" in settings.targeting.methods else None
    return group_map


def participant_summary(table, navigation: dict) -> dict:
    """The summary of a participant-level target (console line and record), as a run's summary reads.

    Parameters
    ----------
    table : pandas.DataFrame
        The participant-level targets (primary row first), with ``n_runs``,
        ``retest_mm``, ``minutes_for_5mm`` and ``sufficiency_note``; on a
        cortical mesh also ``hemi`` and ``vertex``.
    navigation : dict
        ``navigation_*`` values of the participant's navigator files.

    Returns
    -------
    dict
        ``target_hemi`` and ``target_vertex`` are present only for a target on a mesh.
    """
    primary = table.iloc[0]
    summary = {"n_runs": int(primary["n_runs"]), "target_x": float(primary["x"]), "target_y": float(primary["y"]),
               "target_z": float(primary["z"]), "target_space": str(primary["space"]),
               "r_sgacc": float(primary["r_sgacc"]), "retest_mm": float(primary["retest_mm"]),
               "reliability": str(primary["reliability"]), "minutes_for_5mm": float(primary["minutes_for_5mm"]),
               "sufficiency_note": str(primary["sufficiency_note"])}
    if "vertex" in primary and not pd.isna(primary["vertex"]):
        summary |= {"target_hemi": str(primary["hemi"]), "target_vertex": int(primary["vertex"])}
    return summary | navigation


def process_participant(runs: list[Run], prefix: str, out_dir: Path, settings: Settings, overwrite: bool = False,
                        group_map=None) -> tuple[list[str], dict, str]:
    """Participant-level target of one person's runs; writes the tables and their sidecars.

    Returns
    -------
    (list of str, dict, str)
        Files written (relative to ``out_dir``), a summary, and ``done`` or ``skipped``.

    Notes
    -----
    The participant's files are published as one set: files of the
    previous result that this one does not write again (fewer sessions'
    T1w images, a format no longer asked for) are removed once the new
    record is written, and all of them when the step fails
    (:func:`set_aside`, :func:`withdraw_replaced`). Run-level outputs are
    never touched.
    """
    record = participant_record_path(out_dir, prefix)
    names = sorted(r.prefix for r in runs)
    if record.is_file() and not overwrite:
        previous = read_participant_record(record)
        if (previous.settings_digest == settings.digest() and previous.runs == names
                and previous.unfinished_reason(out_dir) is None):
            withdraw_replaced(out_dir, prefix, keep=previous.files)  # a publication interrupted at its end
            return previous.files, previous.summary, "skipped"
    runs = sorted(runs, key=lambda r: r.prefix)
    set_aside(out_dir, prefix)  # as for runs: a record never describes outputs being replaced
    stage = RunStaging(out_dir, f"{prefix}{STAGING_SUFFIX}")
    stage.clear()
    try:
        relative, summary = _write_participant(runs, prefix, names, out_dir, settings, group_map, stage)
    except BaseException:  # an error, a bug, Ctrl-C: nothing written stays, nothing earlier passes for the result
        shutil.rmtree(stage.root, ignore_errors=True)
        withdraw_replaced(out_dir, prefix, keep=())
        raise
    withdraw_replaced(out_dir, prefix, keep=relative)
    withdrawal_record_path(out_dir, prefix).unlink(missing_ok=True)  # made again: no longer withdrawn
    return relative, summary, "done"


def _write_participant(runs: list[Run], prefix: str, names: list[str], out_dir: Path, settings: Settings,
                       group_map, stage: RunStaging) -> tuple[list[str], dict]:
    """Compute one participant's outputs, write them into ``stage`` and rename them into place, then write its
    record; the files written and the summary."""
    from . import targeting
    from .export.participant import export_participant_target
    from .pipeline import clean

    group_map = _participant_group_map(group_map, settings, out_dir, runs[0].subject)
    cleaned = [clean(run, settings.denoise) for run in runs]
    result = targeting.participant_targets(
        cleaned, settings.targeting, settings.random_state, run_labels=names,
        sessions=[r.entities.get("ses") for r in runs], group_map=group_map,
        high_pass_hz=settings.denoise.high_pass,
    )
    extra = {"Targeting": result.output.details, "Runs": names,
             "Combination": "each run cleaned on its own (own confounds, filter, censoring), "
                            "columns z-scored within the run, runs joined in time"}
    if any(r.simulated for r in runs):
        extra["Note"] = SIMULATED_NOTE
    table = targeting.flag_not_anticorrelated(result.output.table)  # the participant rows got their word anew
    table.insert(0, "participant_id", f"sub-{runs[0].subject}")
    tables = (
        ("participant", "participanttargets", table,
         "Participant-level DLPFC targets from all of the participant's runs, with a retest distance and "
         "the minutes of data needed for a 5 mm agreement"),
        ("participantretest", "participantretest", result.retest,
         "Targets of held-out runs (or of each session) and of the rest of the data; their distance is retest_mm"),
        ("participantsufficiency", "participantsufficiency", result.sufficiency,
         "Median distance between targets of two disjoint stretches of the joined data, by stretch length"),
        ("participantcandidates", "candidates", result.output.candidates,
         "Every candidate cluster of the participant-level map"),
        ("participantsites", "sites", result.output.sites,
         "The participant-level bootstrap targets grouped into sites"),
    )
    navigation, files = export_participant_target(runs, table, participant_entities(runs[0]), stage.root, settings)
    for desc, kind, values, description in tables:
        path = participant_output_path(stage.root, prefix, "targets", ".tsv", desc=desc)
        files.append(write_tsv(path, values))
        files.append(write_json(sidecar_path(path),
                                sidecar(kind, description, runs[0], settings, extra=extra)))
    summary = participant_summary(table, navigation)
    relative = stage.relative(files)
    stage.move_staged()
    write_participant_record(out_dir, prefix, names, settings.digest(), relative, summary,
                             any(r.simulated for r in runs))
    return relative, summary


def replacing_record_path(out_dir: Path, prefix: str) -> Path:
    """``logs/participant/<prefix>_replacing.json``: the file list of a participant result being replaced."""
    record = participant_record_path(out_dir, prefix)
    return record.with_name(f"{prefix}{REPLACING_SUFFIX}")


def withdrawal_record_path(out_dir: Path, prefix: str) -> Path:
    """``logs/participant/<prefix>_withdrawn.json``: why a participant target was withdrawn."""
    record = participant_record_path(out_dir, prefix)
    return record.with_name(f"{prefix}{WITHDRAWN_SUFFIX}")


def write_withdrawal_record(out_dir: Path, prefix: str, reason: str, runs: list[str]) -> Path:
    """Record that the participant target of ``prefix`` was withdrawn, and why (as the step's line said).

    Kept until the participant step makes the target again, so that the
    report can say where the target was that it is gone and why
    (:func:`withdrawals`).
    """
    return write_json(withdrawal_record_path(out_dir, prefix),
                      {"Prefix": prefix, "Reason": reason, "Runs": sorted(runs)})


def withdrawals(out_dir: Path, subject: str) -> dict[str, str]:
    """``participant prefix -> reason`` of the participant's withdrawn targets that were not made again.

    Parameters
    ----------
    out_dir : Path
    subject : str
        Participant label, with or without ``sub-``.

    Returns
    -------
    dict
        Read from the withdrawal records (:func:`write_withdrawal_record`); a
        record that cannot be read gives a reason saying so.
    """
    import json

    label = subject.removeprefix("sub-")
    folder = participant_record_path(out_dir, f"sub-{label}").parent
    found = {}
    for path in sorted(folder.glob(f"sub-{label}_*{WITHDRAWN_SUFFIX}")):
        prefix = path.name[: -len(WITHDRAWN_SUFFIX)]
        if parse_entities(prefix).get("sub") != label or participant_record_path(out_dir, prefix).is_file():
            continue
        try:
            reason = json.loads(path.read_text(encoding="utf-8"))["Reason"]
        except (OSError, ValueError, KeyError, TypeError):
            reason = f"the reason could not be read from {path.name}"
        found[prefix] = str(reason)
    return found


def set_aside(out_dir: Path, prefix: str) -> None:
    """Retire the participant's record before its outputs are replaced, keeping its file list.

    The record is removed (a record never describes outputs being
    replaced); the files it listed are kept in
    :func:`replacing_record_path`, together with those of an earlier
    replacement that did not finish, so that :func:`withdraw_replaced` can
    remove whatever the new result does not write again, even after a crash.
    """
    record = participant_record_path(out_dir, prefix)
    aside = replacing_record_path(out_dir, prefix)
    files, runs = set(_replaced(aside, "Files")), set(_replaced(aside, "Runs"))
    if record.is_file():
        previous = read_participant_record(record)
        files.update(previous.files)
        runs.update(previous.runs)
    if files:
        write_json(aside, {"Prefix": prefix, "Runs": sorted(runs), "Files": sorted(files)})
    record.unlink(missing_ok=True)


def withdraw_replaced(out_dir: Path, prefix: str, keep) -> list[str]:
    """Remove the participant-level files of a replaced result that the new one did not write again.

    Parameters
    ----------
    out_dir : Path
    prefix : str
        Participant prefix.
    keep : iterable of str
        Files of the new result (relative to ``out_dir``); empty when the
        new result failed, so that no earlier file passes for it.

    Returns
    -------
    list of str
        The files removed (relative to ``out_dir``). Only files named as
        participant-level outputs (``desc-participant...``, no ``run-``
        entity) inside ``out_dir`` are ever removed: a list edited by hand
        cannot reach a run's outputs.
    """
    aside = replacing_record_path(out_dir, prefix)
    if not aside.is_file():
        return []
    removed = []
    root = Path(out_dir).resolve()
    for name in sorted(set(_replaced(aside, "Files")) - set(keep)):
        path = (root / name).resolve()
        entities = parse_entities(path.name)
        if (root in path.parents and str(entities.get("desc", "")).startswith("participant")
                and "run" not in entities and path.is_file()):
            path.unlink()
            removed.append(name)
    aside.unlink(missing_ok=True)
    return removed


def _replaced(aside: Path, key: str) -> list[str]:
    """``Files`` or ``Runs`` of a set-aside record (none when absent or unreadable)."""
    import json

    try:
        values = json.loads(aside.read_text()).get(key, [])
    except (OSError, ValueError, AttributeError):
        return []
    return [v for v in values if isinstance(v, str)]
