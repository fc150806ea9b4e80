"""Find the finished runs of a trdnet output folder and gather their tables.

A run counts as finished when its completion record
``<out>/logs/<prefix>_done.json`` exists (the pipeline writes it last).
Failed runs (``failures.tsv``) and runs with outputs but no completion
record are not collected; they are reported as exclusions instead.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from ..entities import parse_entities
from ..errors import InputError, SettingsError
from ..outputs import read_tsv

#: Per-run outputs read by the group step, by kind: file name after ``<prefix>_``.
RUN_FILES = {
    "networks": "networks.tsv",
    "targets": "targets.tsv",
    "qc": "qc.tsv",
    "boldmap": "desc-sgacc_stat-r_boldmap.nii.gz",
}

#: Tables every run must have to be collected (the seed map is optional).
REQUIRED = ("networks", "targets", "qc")

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


def parse_prefix(prefix: str) -> dict[str, str]:
    """BIDS entities of a run prefix (``sub-01_ses-a_task-rest`` -> ``{'sub': '01', ...}``)."""
    return parse_entities(prefix)


def _run_folder(out_dir: Path, entities: dict) -> Path:
    folder = Path(out_dir) / f"sub-{entities['sub']}"
    if entities.get("ses"):
        folder = folder / f"ses-{entities['ses']}"
    return folder / "func"


def discover_runs(out_dir: Path) -> tuple[list[RunRecord], list[dict]]:
    """Finished runs of an output folder, and the runs that cannot be used.

    Parameters
    ----------
    out_dir : Path
        Root of a trdnet derivatives folder.

    Returns
    -------
    records : list of RunRecord
        Runs with a completion record and every required table, sorted by prefix.
    problems : list of dict
        ``participant_id``, ``run``, ``reason`` for failed, incomplete or
        broken runs.

    Raises
    ------
    InputError
        If the folder does not exist or holds no finished run.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InputError(f"{out_dir}: no such trdnet output folder")
    records, problems, seen = [], [], set()
    for done in sorted((out_dir / "logs").glob("*_done.json")):
        try:
            content = json.loads(done.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{done}: unreadable completion record ({exc}); delete it and re-run the run") from None
        prefix = content.get("Run") or done.name[: -len("_done.json")]
        entities = parse_prefix(prefix)
        if "sub" not in entities:
            raise InputError(f"{done}: run name {prefix!r} has no sub- entity; expected sub-<label>_...")
        seen.add(prefix)
        listed = {Path(f).name: out_dir / f for f in content.get("Files", [])}
        files, missing = {}, []
        for kind, suffix in RUN_FILES.items():
            name = f"{prefix}_{suffix}"
            path = listed.get(name, _run_folder(out_dir, entities) / name)
            if path.is_file():
                files[kind] = path
            elif kind in REQUIRED:
                missing.append(name)
        pid = f"sub-{entities['sub']}"
        if missing:
            problems.append({"participant_id": pid, "run": prefix, "reason": f"missing output(s): {', '.join(missing)}"})
            continue
        records.append(RunRecord(prefix, pid, entities.get("ses"), bool(content.get("Simulated", False)), files))
    failed = out_dir / "failures.tsv"
    if failed.is_file():
        for row in read_tsv(failed).itertuples(index=False):
            seen.add(row.run)
            problems.append({"participant_id": row.participant_id, "run": row.run, "reason": f"run failed: {row.reason}"})
    for qc in sorted(out_dir.glob("sub-*/**/func/*_qc.tsv")):
        prefix = qc.name[: -len("_qc.tsv")]
        if prefix not in seen:
            entities = parse_prefix(prefix)
            problems.append({"participant_id": f"sub-{entities.get('sub', '?')}", "run": prefix,
                             "reason": "incomplete: no completion record in logs/ (re-run the participant step)"})
    if not records:
        raise InputError(f"{out_dir}: no finished run (logs/*_done.json); run the participant step first")
    return sorted(records, key=lambda r: r.prefix), problems


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
        run prefix), then the per-run table's columns.
    """
    frames = []
    for record in records:
        path = record.files[kind]
        try:
            table = read_tsv(path)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise InputError(f"{path}: unreadable {kind} table ({exc})") from None
        table = table.drop(columns=[c for c in ID_COLUMNS if c in table.columns])
        table.insert(0, "run", record.prefix)
        table.insert(0, "session", record.session)
        table.insert(0, "participant_id", record.participant_id)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def check_columns(table: pd.DataFrame, needed, what: str) -> None:
    """Raise :class:`InputError` when a collected table lacks a column."""
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise InputError(f"{what}: missing column(s) {missing}; the per-run tables must come from trdnet")
