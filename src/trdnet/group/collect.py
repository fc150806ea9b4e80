"""Find the finished runs of a trdnet output folder and gather their tables.

A run counts as finished when its completion record
``<out>/logs/<prefix>_done.json`` exists and every file it lists is in place
(:func:`trdnet.records.finished_runs`, the one definition used everywhere).
Failed runs (their failure records), interrupted runs (a staging folder left
behind), runs with outputs but no completion record and requested
participants without any result are not collected; they are reported as
exclusions instead, each with its reason.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from ..entities import SEED_MAP_ENTITIES, build_name, output_name, parse_bids_name, parse_entities
from ..errors import InputError, SettingsError
from ..inputs.requested import check_labels_present
from ..outputs import read_tsv, source_datasets
from ..records import finished_runs, read_failure_records
from ..staging import RunBusyError, run_lock, staged_runs

#: Per-run outputs read by the group step, by kind: suffix, extension and own entities
#: (the name is :func:`trdnet.entities.output_name` of the run's prefix and these).
RUN_FILES = {
    "networks": ("networks", ".tsv", {}),
    "targets": ("targets", ".tsv", {}),
    "qc": ("qc", ".tsv", {}),
    "boldmap": ("boldmap", ".nii.gz", SEED_MAP_ENTITIES),
}


def run_file_name(prefix: str, kind: str) -> str:
    """File name of one of a run's outputs the group step reads (``kind`` a key of :data:`RUN_FILES`)."""
    suffix, extension, entities = RUN_FILES[kind]
    return output_name(prefix, suffix, extension, **entities)

#: Tables every run must have to be collected. Targets, QC and the seed map are
#: optional: ROI time-series runs have networks only (their record says so).
REQUIRED = ("networks",)

#: Columns identifying a run, first in every cohort table.
ID_COLUMNS = ["participant_id", "session", "run"]


@dataclass(frozen=True)
class QcThresholds:
    """Run-level exclusion thresholds of the group step.

    A run is excluded when it breaks any threshold; ``None`` switches a
    threshold off. The defaults are common conventions, not settled values
    (lenient mean-FD cut-offs in the literature range 0.2-0.55 mm; a minimum
    of about 4-5 minutes of retained data is often used): set them for your
    study and report them.

    Attributes
    ----------
    max_mean_fd : float or None
        Largest accepted mean framewise displacement (mm, all volumes).
    min_minutes : float or None
        Fewest accepted minutes of data left after censoring (QC column ``minutes_retained``).
    """

    max_mean_fd: float | None = 0.5
    min_minutes: float | None = 5.0

    def __post_init__(self):
        for name in ("max_mean_fd", "min_minutes"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise SettingsError(f"QcThresholds.{name}={value!r}; accepted: a number >= 0 or None")

    def to_dict(self) -> dict:
        """Thresholds as a JSON-ready dict (units in the keys' documentation)."""
        return asdict(self)

    def reasons(self, qc: pd.DataFrame) -> pd.Series:
        """Exclusion reason of every row of a QC table ('' when the row passes).

        Parameters
        ----------
        qc : pandas.DataFrame
            Needs ``mean_fd`` and ``minutes_retained`` for the active thresholds.

        Returns
        -------
        pandas.Series of str
        """
        fd = pd.to_numeric(qc["mean_fd"], errors="coerce") if "mean_fd" in qc else pd.Series(float("nan"), qc.index)
        minutes = (pd.to_numeric(qc["minutes_retained"], errors="coerce") if "minutes_retained" in qc
                   else pd.Series(float("nan"), qc.index))
        return pd.Series([self._reason(f, m) for f, m in zip(fd, minutes)], index=qc.index, dtype=object)

    def _reason(self, mean_fd: float, minutes: float) -> str:
        # Unknown values fail an active threshold: a run is not accepted on missing QC.
        reasons = []
        if self.max_mean_fd is not None and not mean_fd <= self.max_mean_fd:
            reasons.append(f"mean FD {mean_fd:.3f} mm > {self.max_mean_fd:g} mm" if math.isfinite(mean_fd)
                           else "mean FD unknown")
        if self.min_minutes is not None and not minutes >= self.min_minutes:
            reasons.append(f"{minutes:.2f} min retained < {self.min_minutes:g} min" if math.isfinite(minutes)
                           else "minutes retained unknown")
        return "; ".join(reasons)


@dataclass
class RunRecord:
    """One finished run of a trdnet output folder."""

    prefix: str
    participant_id: str
    session: str | None
    simulated: bool
    files: dict[str, Path] = field(default_factory=dict)
    settings_digest: str | None = None


def parse_prefix(prefix: str) -> dict[str, str]:
    """BIDS entities of a run prefix (``sub-01_ses-a_task-rest`` -> ``{'sub': '01', ...}``)."""
    return parse_entities(prefix)


def discover_runs(out_dir: Path, participant_labels=None) -> tuple[list[RunRecord], list[dict]]:
    """Finished runs of an output folder, and the runs that cannot be used.

    Parameters
    ----------
    out_dir : Path
        Root of a trdnet derivatives folder.
    participant_labels : list of str, optional
        Only these participants (labels without ``sub-``); each one without a
        finished run is listed in ``problems``, with the reason when known.

    Returns
    -------
    records : list of RunRecord
        Finished runs (see :func:`trdnet.records.finished_runs`) with every
        required table, sorted by prefix.
    problems : list of dict
        ``participant_id``, ``run``, ``reason`` for failed, interrupted,
        incomplete or broken runs and requested participants without a result.

    Raises
    ------
    InputError
        If the folder does not exist or holds no finished run.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InputError(f"{out_dir}: no such trdnet output folder")
    wanted = {label.removeprefix("sub-") for label in participant_labels} if participant_labels else None
    finished, problems = finished_runs(out_dir)
    records = []
    for done in finished:
        entities = parse_prefix(done.prefix)
        listed = {Path(f).name: out_dir / f for f in done.files}
        names = {kind: run_file_name(done.prefix, kind) for kind in RUN_FILES}
        files = {kind: listed[name] for kind, name in names.items() if name in listed}
        missing = [names[kind] for kind in REQUIRED if kind not in files]
        if missing:
            problems.append({"participant_id": done.participant_id, "run": done.prefix,
                             "reason": f"not listed in its completion record: {', '.join(missing)}"})
            continue
        records.append(RunRecord(done.prefix, done.participant_id, entities.get("ses"), done.simulated, files,
                                 done.settings_digest))
    seen = {r.prefix for r in records} | {p["run"] for p in problems}
    collected = {r.prefix for r in records}
    for row in read_failure_records(out_dir):
        seen.add(row.run)
        ended = "was interrupted" if row.interrupted else "failed"
        reason = (f"the latest attempt {ended}, the outputs of an earlier one are used: {row.reason}"
                  if row.run in collected else f"run {ended}: {row.reason}")
        problems.append({"participant_id": row.participant_id, "run": row.run, "reason": reason})
    for prefix in staged_runs(out_dir):
        if prefix not in seen:
            seen.add(prefix)
            problems.append({"participant_id": f"sub-{parse_prefix(prefix).get('sub', '?')}", "run": prefix,
                             "reason": _staged_reason(out_dir, prefix)})
    for table in sorted(out_dir.glob("sub-*/**/func/*_networks.tsv")):
        parsed = parse_bids_name(table.name)
        if "desc" in parsed.entities:  # a variant (desc-gsroff), not the run's own table
            continue
        prefix = build_name(parsed.entities)
        if prefix not in seen:
            problems.append({"participant_id": f"sub-{parse_prefix(prefix).get('sub', '?')}", "run": prefix,
                             "reason": "incomplete: no completion record in logs/ (re-run the participant step)"})
    answered = {r.participant_id.removeprefix("sub-") for r in records}
    answered |= {p["participant_id"].removeprefix("sub-") for p in problems}
    inputs, in_inputs = input_participants(out_dir)
    if wanted is not None:
        check_labels_present(sorted(wanted), answered | in_inputs,
                             f"{out_dir} (and its input {', '.join(map(str, inputs))})" if inputs else out_dir)
        records = [r for r in records if r.participant_id.removeprefix("sub-") in wanted]
        problems = [p for p in problems if p["participant_id"].removeprefix("sub-") in wanted]
    never = (wanted if wanted is not None else in_inputs) - answered
    source = f"in the input {', '.join(map(str, inputs))} " if inputs and not wanted else "requested "
    problems += [{"participant_id": f"sub-{label}", "run": "all",
                  "reason": f"{source}but never processed: no completion or failure record in logs/"}
                 for label in sorted(never)]
    if not records:
        raise InputError(f"{out_dir}: no finished run (logs/*_done.json); run the participant step first")
    return sorted(records, key=lambda r: r.prefix), problems


def input_participants(out_dir: Path) -> tuple[list[Path], set[str]]:
    """The input folders the participant step read, and the participant labels they hold.

    The participant step writes each fMRIPrep folder it read into the output's
    ``dataset_description.json`` (``SourceDatasets``, ``file://`` URLs); a
    folder that is gone or cannot be listed adds no label.

    Returns
    -------
    folders : list of Path
    labels : set of str
        Labels (without ``sub-``) of the ``sub-*`` folders in them.
    """
    folders, labels = [], set()
    for folder in source_datasets(Path(out_dir)):
        try:
            with os.scandir(folder) as entries:
                labels |= {e.name[4:] for e in entries if e.name.startswith("sub-") and e.is_dir()}
        except OSError:
            continue
        folders.append(folder)
    return folders, labels


def _staged_reason(out_dir: Path, prefix: str) -> str:
    try:
        with run_lock(out_dir, prefix):
            return "interrupted: its outputs were never published (re-run the participant step)"
    except RunBusyError:
        return "still being processed by another trdnet process"


def collect_table(records: list[RunRecord], kind: str) -> pd.DataFrame:
    """Stack one per-run table of every run, with the run's identifiers first.

    Parameters
    ----------
    records : list of RunRecord
    kind : {"networks", "targets", "qc"}

    Returns
    -------
    pandas.DataFrame
        ``participant_id``, ``session`` (NaN without sessions), ``run`` (the
        run prefix), then the per-run table's columns; runs without this
        table (ROI time-series runs have no targets or QC) add no row.
    """
    frames = []
    for record in records:
        if kind not in record.files:
            continue
        path = record.files[kind]
        try:
            table = read_tsv(path, integers=True)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise InputError(f"{path}: unreadable {kind} table ({exc})") from None
        table = table.drop(columns=[c for c in ID_COLUMNS if c in table.columns])
        table.insert(0, "run", record.prefix)
        table.insert(0, "session", record.session)
        table.insert(0, "participant_id", record.participant_id)
        frames.append(table)
    if not frames:
        return pd.DataFrame(columns=ID_COLUMNS)
    return _keep_integers(pd.concat(frames, ignore_index=True), frames)


def _keep_integers(table: pd.DataFrame, frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Columns read as integers in every run that has values in them, as nullable ``Int64``.

    Stacking a surface run's ``vertex`` with volume runs that have none (or
    a run whose column is all ``n/a``) would otherwise turn it into floats
    written as ``4122.000000``.
    """
    for column in table.columns:
        present = [f[column] for f in frames if column in f.columns and f[column].notna().any()]
        if present and all(pd.api.types.is_integer_dtype(values) for values in present):
            table[column] = table[column].astype("Int64")
    return table


def check_columns(table: pd.DataFrame, needed, what: str) -> None:
    """Raise :class:`InputError` when a collected table lacks a column."""
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise InputError(f"{what}: missing column(s) {missing}; the per-run tables must come from trdnet")
