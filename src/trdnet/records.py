"""Completion and failure records: what a trdnet output folder says about each run.

One definition of a finished run, used by resume, the reports, the group step
and ROI time-series runs alike: its completion record
``<out>/logs/<prefix>_done.json`` exists, is readable, and every file it lists
is in place. The record is written last, after the run's outputs were
published (see :mod:`trdnet.staging`), and removed first when a run is
recomputed, so it never describes outputs that are not there.

A run that fails gets a failure record ``<out>/logs/<prefix>_failed.json``
(one per run, like completion records), so a later job of a cohort never
erases an earlier failure; ``<out>/failures.tsv`` is rebuilt from these
records. A run that later succeeds removes its own failure record.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from filelock import FileLock

from .entities import parse_entities
from .errors import InputError
from .outputs import write_json, write_tsv

LOGS = "logs"
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
    path = Path(path)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable completion record ({exc}); delete it and re-run the run") from None
    if not isinstance(content, dict):
        raise InputError(f"{path}: not a trdnet completion record (expected a JSON object)")
    prefix = content.get("Run") or path.name[: -len(DONE_SUFFIX)]
    participant = content.get("Participant") or _participant_of(prefix)
    if not participant:
        raise InputError(f"{path}: run name {prefix!r} has no sub- entity; expected sub-<label>_...")
    return CompletionRecord(path, prefix, participant, content.get("SettingsDigest"), list(content.get("Files", [])),
                            dict(content.get("Summary", {})), bool(content.get("Simulated", False)))


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
    pattern = f"sub-{subject}_*{DONE_SUFFIX}" if subject else f"*{DONE_SUFFIX}"
    records = [read_completion_record(p) for p in sorted((Path(out_dir) / LOGS).glob(pattern))]
    if subject:
        records = [r for r in records if r.subject == subject]
    return sorted(records, key=lambda r: r.prefix)


def finished_runs(out_dir: Path, subject: str | None = None) -> tuple[list[CompletionRecord], list[dict]]:
    """The finished runs of an output folder, and records whose outputs are missing.

    Returns
    -------
    finished : list of CompletionRecord
        Records whose every listed file exists.
    broken : list of dict
        ``participant_id``, ``run``, ``reason`` for records listing missing files.
    """
    finished, broken = [], []
    for record in completion_records(out_dir, subject):
        missing = record.missing_files(out_dir)
        if missing:
            broken.append({"participant_id": record.participant_id, "run": record.prefix,
                           "reason": f"missing output(s) listed in {record.path.name}: {', '.join(missing[:3])}"
                                     + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")})
        else:
            finished.append(record)
    return finished, broken


def write_failure_record(out_dir: Path, prefix: str, participant_id: str, reason: str,
                         settings_digest: str | None = None) -> Path:
    """Record why a run failed (``<out>/logs/<prefix>_failed.json``)."""
    return write_json(failure_record_path(out_dir, prefix), {
        "Run": prefix, "Participant": participant_id, "Reason": reason, "SettingsDigest": settings_digest,
        "Time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def remove_failure_record(out_dir: Path, prefix: str) -> None:
    """Forget an earlier failure of a run that has now succeeded."""
    failure_record_path(out_dir, prefix).unlink(missing_ok=True)


def failure_records(out_dir: Path) -> pd.DataFrame:
    """Every failure record of an output folder as a table (``participant_id``, ``run``, ``reason``)."""
    rows = []
    for path in sorted((Path(out_dir) / LOGS).glob(f"*{FAILED_SUFFIX}")):
        prefix = path.name[: -len(FAILED_SUFFIX)]
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
            reason = str(content["Reason"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            content, reason = {}, f"unreadable failure record {path.name} ({exc})"
        participant = content.get("Participant") or _participant_of(prefix) or "n/a"
        rows.append({"participant_id": participant, "run": content.get("Run", prefix), "reason": reason})
    return pd.DataFrame(rows, columns=FAILURE_COLUMNS)


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
