"""Completion and failure records: what a trdnet output folder says about each run.

One definition of a finished run, used by resume, the reports, the group step
and ROI time-series runs alike: its completion record
``<out>/logs/<prefix>_done.json`` exists, is readable, every file it lists is
in place, and every one is named as this version names it
(:func:`trdnet.entities.output_name`: entities in the schema's order). A run an
earlier version wrote under other names (``desc-sgacc_stat-r_boldmap``) is not
finished: a re-run rewrites it (removing the old names), the group step and the
reports leave it out with the reason. The record is written last, after the
run's outputs were published (see :mod:`trdnet.staging`), and removed first
when a run is recomputed, so it never describes outputs that are not there.

The participant step (one target from all of a person's runs,
:mod:`trdnet.participants`) keeps its records apart, in
``<out>/logs/participant/<prefix>_done.json`` under the participant prefix
(``sub-<l>_task-<l>_space-<l>``), with the same fields and the runs it joined;
a participant output is finished by the same rule.

A run that fails gets a failure record ``<out>/logs/<prefix>_failed.json``
(one per run, like completion records), so a later job of a cohort never
erases an earlier failure; ``<out>/failures.tsv`` is rebuilt from these
records. A run that later succeeds removes its own failure record.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from filelock import FileLock

from .entities import NAVIGATION_DESC, order_entities, parse_bids_name, parse_entities
from .errors import InputError
from .outputs import write_json, write_tsv

LOGS = "logs"
#: Folder of the participant step's records, inside ``logs/``.
PARTICIPANT_LOGS = "participant"
DONE_SUFFIX = "_done.json"
FAILED_SUFFIX = "_failed.json"
FAILURES_TABLE = "failures.tsv"
FAILURE_COLUMNS = ["participant_id", "run", "reason"]
#: Hidden folder of locks and staging inside the output folder (:mod:`trdnet.staging`), and the lock that
#: serialises rebuilds of ``failures.tsv`` there, out of the user-facing ``logs/``.
WORK_DIR = ".trdnet"
FAILURES_LOCK = f"{WORK_DIR}/locks/{FAILURES_TABLE}.lock"


def participant_report_path(out_dir: Path, participant_id: str) -> Path:
    """``<out>/sub-<label>.html``: the participant's HTML report (``participant_id`` with or without ``sub-``)."""
    return Path(out_dir) / f"sub-{participant_id.removeprefix('sub-')}.html"


def completion_record_path(out_dir: Path, prefix: str) -> Path:
    """``<out>/logs/<prefix>_done.json``."""
    return Path(out_dir) / LOGS / f"{prefix}{DONE_SUFFIX}"


def participant_record_path(out_dir: Path, prefix: str) -> Path:
    """``<out>/logs/participant/<prefix>_done.json``: the record the participant step writes last."""
    return Path(out_dir) / LOGS / PARTICIPANT_LOGS / f"{prefix}{DONE_SUFFIX}"


def failure_record_path(out_dir: Path, prefix: str) -> Path:
    """``<out>/logs/<prefix>_failed.json``."""
    return Path(out_dir) / LOGS / f"{prefix}{FAILED_SUFFIX}"


@dataclass
class CompletionRecord:
    """The completion record of one run.

    Attributes
    ----------
    path : Path
        The record file.
    prefix : str
        The run's BIDS prefix (``sub-<l>[_ses-<l>]_task-<l>..._space-<l>``).
    participant_id : str
        ``sub-<label>``.
    settings_digest : str or None
    files : list of str
        The run's outputs, relative to the output folder.
    summary : dict
    simulated : bool
    """

    path: Path
    prefix: str
    participant_id: str
    settings_digest: str | None
    files: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    simulated: bool = False

    @property
    def subject(self) -> str:
        """Participant label without ``sub-``."""
        return self.participant_id.removeprefix("sub-")

    def missing_files(self, out_dir: Path) -> list[str]:
        """Listed outputs that are not in ``out_dir``."""
        return [f for f in self.files if not (Path(out_dir) / f).is_file()]

    def outdated_files(self) -> list[str]:
        """Listed outputs not named as this version names them (written by an earlier version)."""
        return [f for f in self.files if not _named_as_now(Path(f).name)]

    def unfinished_reason(self, out_dir: Path) -> str | None:
        """Why the outputs this record lists are not a finished run (``None`` when they are).

        A listed file is missing, or is named as an earlier version of trdnet
        named it (the run is rewritten when processed again).
        """
        for problem, names, remedy in (
                ("missing output(s)", self.missing_files(out_dir), ""),
                ("output(s) named by an earlier trdnet version", self.outdated_files(),
                 "; process it again to rewrite them under the current names")):
            if names:
                return (f"{problem} listed in {self.path.name}: {', '.join(names[:3])}"
                        + (f" and {len(names) - 3} more" if len(names) > 3 else "") + remedy)
        return None


@dataclass
class ParticipantRecord(CompletionRecord):
    """The record of one participant-level result (see :mod:`trdnet.participants`).

    Attributes
    ----------
    prefix : str
        The participant prefix (``sub-<l>_task-<l>[_acq-<l>]_space-<l>``).
    runs : list of str
        Prefixes of the runs the result joins.
    Others as :class:`CompletionRecord`.
    """

    runs: list[str] = field(default_factory=list)
    #: ``run prefix -> SHA-256`` of each joined run's completion record when the result was made (empty in
    #: records of earlier versions: only the settings digests are compared then).
    run_records: dict = field(default_factory=dict)

    def unfinished_reason(self, out_dir: Path) -> str | None:
        """Why this participant result is not finished and valid (``None`` when it is).

        Besides the files it lists (as for a run), every run it joins must
        still be finished, with the result's settings digest, and its
        completion record unchanged since the result was made: a run
        processed again (other settings, or ``--overwrite``) leaves the
        participant target describing data it no longer has.
        """
        return super().unfinished_reason(out_dir) or self.stale_reason(out_dir)

    def stale_reason(self, out_dir: Path) -> str | None:
        """Which joined run no longer stands behind this result, and why (``None``: all do)."""
        for prefix in self.runs:
            path = completion_record_path(out_dir, prefix)
            try:
                run = read_completion_record(path)
            except InputError:
                return f"run {prefix} it joins has no readable completion record"
            reason = run.unfinished_reason(out_dir)
            if reason:
                return f"run {prefix} it joins is not finished ({reason})"
            if run.settings_digest != self.settings_digest:
                return (f"run {prefix} it joins has settings digest {run.settings_digest}, "
                        f"the participant result {self.settings_digest}")
            if prefix in self.run_records and self.run_records[prefix] != record_checksum(path):
                return f"run {prefix} it joins was processed again after the participant result was made"
        return None


def recorded_settings(out_dir: Path, record: CompletionRecord) -> dict:
    """The settings a run was processed with, as the first JSON sidecar its record lists holds them ({} if none)."""
    for name in record.files:
        if not name.endswith(".json"):
            continue
        try:
            content = json.loads((Path(out_dir) / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(content, dict) and isinstance(content.get("Settings"), dict):
            return content["Settings"]
    return {}


def record_checksum(path: Path) -> str | None:
    """SHA-256 of what a run's completion record says about its analysis (None when it cannot be read).

    Its settings digest, files and summary, without the navigator files and
    ``navigation_*`` values, which ``trdnet export`` rewrites without
    changing the analysis: a run processed again changes the checksum, an
    export of it does not.
    """
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
        analysis = {"SettingsDigest": content.get("SettingsDigest"),
                    "Files": sorted(f for f in content.get("Files", [])
                                    if parse_entities(Path(f).name).get("desc") != NAVIGATION_DESC),
                    "Summary": {k: v for k, v in content.get("Summary", {}).items()
                                if not k.startswith("navigation_")}}
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    return hashlib.sha256(json.dumps(analysis, sort_keys=True).encode()).hexdigest()


def _named_as_now(name: str) -> bool:
    """Whether a file name's entities are in the order :func:`trdnet.entities.output_name` writes them."""
    entities = parse_bids_name(name).entities
    return list(entities) == [key for key, _ in order_entities(entities)]


def _participant_of(prefix: str) -> str | None:
    label = parse_entities(prefix).get("sub")
    return f"sub-{label}" if label else None


def read_completion_record(path: Path) -> CompletionRecord:
    """Read one completion record.

    Raises
    ------
    InputError
        If it cannot be read or is not a trdnet completion record.
    """
    path, content = _read_record(path)
    prefix = content.get("Run") or path.name[: -len(DONE_SUFFIX)]
    participant = content.get("Participant") or _participant_of(prefix)
    if not participant:
        raise InputError(f"{path}: run name {prefix!r} has no sub- entity; expected sub-<label>_...")
    return CompletionRecord(path, prefix, participant, content.get("SettingsDigest"), list(content.get("Files", [])),
                            dict(content.get("Summary", {})), bool(content.get("Simulated", False)))


def _read_record(path: Path) -> tuple[Path, dict]:
    path = Path(path)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable completion record ({exc}); delete it and re-run the run") from None
    if not isinstance(content, dict):
        raise InputError(f"{path}: not a trdnet completion record (expected a JSON object)")
    return path, content


def read_participant_record(path: Path) -> ParticipantRecord:
    """Read one record of the participant step.

    Records of earlier versions (``Participant`` holding the participant
    prefix) are read too.

    Raises
    ------
    InputError
        If it cannot be read, is not a trdnet record, or its name has no ``sub-`` entity.
    """
    path, content = _read_record(path)
    prefix = content.get("Prefix") or path.name[: -len(DONE_SUFFIX)]
    participant = _participant_of(prefix)
    if not participant:
        raise InputError(f"{path}: participant name {prefix!r} has no sub- entity; expected sub-<label>_...")
    runs = content.get("Runs", [])
    if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
        raise InputError(f"{path}: Runs must be a list of run prefixes; delete the record and re-run the "
                         "participant step")
    run_records = content.get("RunRecords", {})
    if not isinstance(run_records, dict):
        raise InputError(f"{path}: RunRecords must map run prefixes to checksums; delete the record and re-run "
                         "the participant step")
    return ParticipantRecord(path, prefix, participant, content.get("SettingsDigest"),
                             list(content.get("Files", [])), dict(content.get("Summary", {})),
                             bool(content.get("Simulated", False)), list(runs), dict(run_records))


def write_participant_record(out_dir: Path, prefix: str, runs: list[str], settings_digest: str,
                             files: list[str], summary: dict, simulated: bool) -> Path:
    """Write the participant step's record of one participant (last, when every listed file is in place).

    Parameters
    ----------
    out_dir : Path
    prefix : str
        Participant prefix (``sub-<l>_task-<l>_space-<l>``).
    runs : list of str
        Prefixes of the runs joined.
    settings_digest : str
    files : list of str
        Outputs relative to ``out_dir``.
    summary : dict
    simulated : bool

    Notes
    -----
    The record keeps a checksum of each joined run's completion record
    (``RunRecords``): the result stays valid only while those records are
    unchanged (:meth:`ParticipantRecord.unfinished_reason`).
    """
    checksums = {run: record_checksum(completion_record_path(out_dir, run)) for run in sorted(runs)}
    return write_json(participant_record_path(out_dir, prefix), {
        "Prefix": prefix, "Participant": _participant_of(prefix), "Runs": sorted(runs),
        "RunRecords": {run: value for run, value in checksums.items() if value},
        "SettingsDigest": settings_digest, "Files": sorted(files), "Summary": summary, "Simulated": bool(simulated)})


def participant_records(out_dir: Path, subject: str | None = None) -> list[ParticipantRecord]:
    """Every record of the participant step in an output folder, sorted by prefix (an unreadable one raises).

    Parameters
    ----------
    out_dir : Path
    subject : str, optional
        Only this participant (label, without ``sub-``).
    """
    return _records(Path(out_dir) / LOGS / PARTICIPANT_LOGS, subject, read_participant_record)


def _records(folder: Path, subject: str | None, read) -> list:
    """``read`` of every ``*_done.json`` in ``folder`` (of one participant), sorted by prefix."""
    pattern = f"sub-{subject}_*{DONE_SUFFIX}" if subject else f"*{DONE_SUFFIX}"
    records = [read(p) for p in sorted(folder.glob(pattern))]
    return sorted((r for r in records if subject is None or r.subject == subject), key=lambda r: r.prefix)


def finished_participants(out_dir: Path, subject: str | None = None) -> list[ParticipantRecord]:
    """Participant-level results that are finished and valid, the one reader the reports use.

    Valid: the record lists only files in place and named as now, and every
    run it joins is still finished with the same settings digest and
    unchanged since (:meth:`ParticipantRecord.unfinished_reason`).
    """
    return [r for r in participant_records(out_dir, subject) if r.unfinished_reason(out_dir) is None]


def write_completion_record(out_dir: Path, prefix: str, participant_id: str, settings_digest: str,
                            files: list[str], summary: dict, simulated: bool) -> Path:
    """Write a run's completion record (call it last, when every listed file is in place)."""
    return write_json(completion_record_path(out_dir, prefix), {
        "Run": prefix, "Participant": participant_id, "SettingsDigest": settings_digest, "Files": sorted(files),
        "Summary": summary, "Simulated": bool(simulated)})


def completion_records(out_dir: Path, subject: str | None = None) -> list[CompletionRecord]:
    """Every completion record of an output folder (readable or not raises), sorted by prefix.

    Parameters
    ----------
    out_dir : Path
    subject : str, optional
        Only this participant (label, without ``sub-``).
    """
    return _records(Path(out_dir) / LOGS, subject, read_completion_record)


def finished_runs(out_dir: Path, subject: str | None = None) -> tuple[list[CompletionRecord], list[dict]]:
    """The finished runs of an output folder, and records whose outputs are missing.

    Returns
    -------
    finished : list of CompletionRecord
        Records whose every listed file exists and is named as this version names it.
    broken : list of dict
        ``participant_id``, ``run``, ``reason`` for the other records.
    """
    finished, broken = [], []
    for record in completion_records(out_dir, subject):
        reason = record.unfinished_reason(out_dir)
        if reason:
            broken.append({"participant_id": record.participant_id, "run": record.prefix, "reason": reason})
        else:
            finished.append(record)
    return finished, broken


def write_failure_record(out_dir: Path, prefix: str, participant_id: str, reason: str,
                         settings_digest: str | None = None, interrupted: bool = False) -> Path:
    """Record why a run did not finish (``<out>/logs/<prefix>_failed.json``).

    Parameters
    ----------
    out_dir : Path
    prefix : str
        The run's BIDS prefix.
    participant_id : str
        ``sub-<label>``.
    reason : str
        One line: why it failed, or that it was stopped.
    settings_digest : str, optional
    interrupted : bool
        True when the run was stopped (Ctrl-C or SIGTERM) rather than failed:
        re-running the same command resumes it. Stored as ``Interrupted``.

    Returns
    -------
    Path
        The record.
    """
    return write_json(failure_record_path(out_dir, prefix), {
        "Run": prefix, "Participant": participant_id, "Reason": reason, "SettingsDigest": settings_digest,
        "Interrupted": bool(interrupted), "Time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def remove_failure_record(out_dir: Path, prefix: str) -> None:
    """Forget an earlier failure of a run that has now succeeded."""
    failure_record_path(out_dir, prefix).unlink(missing_ok=True)


@dataclass(frozen=True)
class FailureRecord:
    """The failure record of one run (see :func:`write_failure_record`).

    Attributes
    ----------
    participant_id : str
        ``sub-<label>`` (``n/a`` when neither the record nor its name gives one).
    run : str
        The run's BIDS prefix.
    reason : str
        Why it did not finish (for an unreadable record, why it cannot be read).
    interrupted : bool
        Stopped by Ctrl-C or SIGTERM rather than failed.
    """

    participant_id: str
    run: str
    reason: str
    interrupted: bool


def read_failure_record(path: Path) -> FailureRecord:
    """Read one failure record; an unreadable one is read as a failure saying so.

    Records written before the ``Interrupted`` field existed are told apart by
    their reason's first word, which :func:`trdnet.staging.failure_reason` wrote
    as ``interrupted`` or ``terminated`` for a stopped run.
    """
    path = Path(path)
    prefix = path.name[: -len(FAILED_SUFFIX)]
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        reason = str(content["Reason"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        content, reason = {}, f"unreadable failure record {path.name} ({exc})"
    interrupted = content.get("Interrupted")
    if not isinstance(interrupted, bool):
        interrupted = bool(content) and reason.lstrip().startswith(("interrupted", "terminated"))
    participant = content.get("Participant") or _participant_of(prefix) or "n/a"
    return FailureRecord(participant, content.get("Run", prefix), reason, interrupted)


def read_failure_records(out_dir: Path) -> list[FailureRecord]:
    """Every failure record of an output folder, sorted by run prefix."""
    return [read_failure_record(path) for path in sorted((Path(out_dir) / LOGS).glob(f"*{FAILED_SUFFIX}"))]


def failure_records(out_dir: Path) -> pd.DataFrame:
    """Every failure record of an output folder as a table (``participant_id``, ``run``, ``reason``)."""
    return pd.DataFrame([[r.participant_id, r.run, r.reason] for r in read_failure_records(out_dir)],
                        columns=FAILURE_COLUMNS)


def write_failures_table(out_dir: Path) -> Path | None:
    """Rebuild ``failures.tsv`` from the failure records; remove it when there are none.

    Jobs of one cohort running at the same time rebuild the table under a
    lock, each after writing its own records, so the last rebuild sees them all.
    """
    out_dir = Path(out_dir)
    path = out_dir / FAILURES_TABLE
    (out_dir / FAILURES_LOCK).parent.mkdir(parents=True, exist_ok=True)
    with FileLock(out_dir / FAILURES_LOCK):
        table = failure_records(out_dir)
        if table.empty:
            path.unlink(missing_ok=True)
            return None
        return write_tsv(path, table)


def requested_participants(out_dir: Path, labels=None) -> list[str] | None:
    """Participant labels asked of an output folder, each with a finished run.

    Parameters
    ----------
    out_dir : Path
    labels : list of str, optional
        With or without ``sub-``; None: every participant.

    Returns
    -------
    list of str or None
        Labels without ``sub-`` (None when none were given).

    Raises
    ------
    TrdnetError
        For a label that is not a BIDS label (``*``, ``01,02``) or has no finished run.
    """
    from .inputs.requested import check_labels_present, normalise_labels

    labels = normalise_labels(labels)
    if labels:
        finished, _ = finished_runs(out_dir)
        check_labels_present(labels, sorted({r.subject for r in finished}), out_dir)
    return labels
