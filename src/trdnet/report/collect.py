"""Read the per-run outputs the pipeline wrote (tables, sidecars, masks);
never the BOLD data. Everything the report shows comes from these files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ..entities import (NAVIGATION_DESC, output_name, parse_bids_name, parse_entities, participant_output_path,
                        subject_folder)
from ..errors import InputError
from ..outputs import read_tsv
from ..records import failure_records, finished_participants, finished_runs, participant_records



@dataclass
class RunOutputs:
    """The files of one processed run.

    Attributes
    ----------
    folder : Path
        The run's output folder (``sub-<l>[/ses-<l>]/func``).
    prefix : str
        BIDS prefix shared by the run's files, e.g. ``sub-01_task-rest_space-MNI152NLin2009cAsym``.
    """

    folder: Path
    prefix: str
    _cache: dict = field(default_factory=dict, repr=False)

    def path(self, name: str) -> Path:
        """Path of one of the run's outputs, named as the run names it (:func:`trdnet.entities.output_name`).

        Parameters
        ----------
        name : str
            The output's own part: its entities, suffix and extension (``targets.tsv``,
            ``stat-r_desc-sgacc_boldmap.nii.gz``); the order of the entities does not matter.
        """
        own = parse_bids_name(name)
        return self.folder / output_name(self.prefix, own.suffix, own.extension, **own.entities)

    def find(self, name: str) -> Path | None:
        """The run's output whose own part is ``name`` (see :meth:`path`), or None if there is none.

        A ``*`` part stands for any other entities (``*_relmat.tsv``: the relationship matrix whatever
        its ``seg`` and ``meas``); without it, the output has exactly the entities named. The first in
        sorted order when several match.
        """
        wanted = parse_bids_name(name)
        any_other = "*" in name.split("_")
        run = self.entities
        for path in sorted(self.folder.glob(f"*_{wanted.suffix}{wanted.extension}")):
            found = parse_bids_name(path.name)
            own = {k: v for k, v in found.entities.items() if k not in run}
            if ((found.suffix, found.extension) == (wanted.suffix, wanted.extension)
                    and all(found.entities.get(k) == v for k, v in run.items())
                    and all(own.get(k) == v for k, v in wanted.entities.items())
                    and (any_other or own.keys() == wanted.entities.keys())):
                return path
        return None

    def table(self, suffix: str) -> pd.DataFrame | None:
        """A TSV output read once, or None if it was not written."""
        if suffix not in self._cache:
            path = self.find(suffix)
            self._cache[suffix] = read_tsv(path) if path is not None else None
        return self._cache[suffix]

    def sidecar(self, suffix: str) -> dict:
        """The JSON sidecar of an output (``{}`` if missing)."""
        key = f"json:{suffix}"
        if key not in self._cache:
            path = self.find(suffix)
            self._cache[key] = json.loads(path.read_text()) if path is not None else {}
        return self._cache[key]

    @property
    def subject(self) -> str:
        """Participant label without ``sub-``."""
        return parse_entities(self.prefix).get("sub", "")

    @property
    def entities(self) -> dict[str, str]:
        """BIDS entities of the prefix."""
        return parse_entities(self.prefix)

    @cached_property
    def qc(self) -> dict:
        """First row of ``qc.tsv`` as a dict (empty if missing)."""
        table = self.table("qc.tsv")
        return {} if table is None or not len(table) else table.iloc[0].to_dict()

    @cached_property
    def provenance(self) -> dict:
        """Provenance block (settings, software, simulated) from the first sidecar found."""
        for suffix in ("targets.json", "networks.json", "qc.json"):
            block = self.sidecar(suffix)
            if block:
                return block
        return {}

    @property
    def simulated(self) -> bool:
        """Whether the run was simulated (from its sidecars)."""
        return bool(self.provenance.get("Simulated", False))

    @cached_property
    def targets(self) -> pd.DataFrame | None:
        """``targets.tsv`` (None if targeting did not run)."""
        return self.table("targets.tsv")

    @property
    def primary(self) -> dict | None:
        """The primary (personalised) target row, or None."""
        table = self.targets
        if table is None or not len(table):
            return None
        if "primary" in table:
            flags = table["primary"].astype(str).str.lower().isin(["true", "1"])
            if flags.any():
                return table[flags].iloc[0].to_dict()
        return table.iloc[0].to_dict()

    @property
    def roi_input(self) -> bool:
        """Whether the run's input was ROI time series (no voxels: no targets, maps or navigator files)."""
        return self.sidecar("qc.json").get("Denoising", {}).get("input") == "roi_timeseries"

    def carpet(self) -> dict | None:
        """Carpet samples (``raw``, ``clean``, ``retained``) or None."""
        path = self.find("desc-carpet_samples.npz")
        if path is None:
            return None
        with np.load(path) as data:
            return {k: data[k] for k in data.files}

    def export_files(self) -> list[Path]:
        """The navigator files written for this run (may be empty).

        Those named with the run's entities, in whatever navigation space, and
        ``desc-navtargets`` (:mod:`trdnet.export`); not the participant step's
        (``desc-participantnavtargets``) nor another run's.
        """
        run = {k: v for k, v in self.entities.items() if k != "space"}
        found = []
        for path in sorted(self.folder.glob(f"*_desc-{NAVIGATION_DESC}_*")):
            named = {k: v for k, v in parse_entities(path.name).items() if k not in ("space", "desc")}
            if path.is_file() and not path.name.endswith(".json") and named == run:
                found.append(path)
        return found


def find_runs(out_dir: Path, subject: str | None = None) -> list[RunOutputs]:
    """Every finished run of a trdnet output folder (see :func:`trdnet.records.finished_runs`).

    Parameters
    ----------
    out_dir : Path
        Root of the trdnet derivatives.
    subject : str, optional
        Only this participant (label with or without ``sub-``).

    Returns
    -------
    list of RunOutputs
        Sorted by prefix.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InputError(f"{out_dir}: trdnet output folder not found; give the folder 'trdnet run' wrote")
    label = subject.removeprefix("sub-") if subject else None
    finished, _ = finished_runs(out_dir, label)
    return [RunOutputs(out_dir / subject_folder(parse_entities(r.prefix)), r.prefix) for r in finished]


def participant_target_tables(out_dir: Path, subject: str) -> list[Path]:
    """The participant-level target tables of a participant the participant step finished
    (see :func:`trdnet.records.finished_participants`), one per task and space, sorted.

    Parameters
    ----------
    out_dir : Path
    subject : str
        Participant label with or without ``sub-``.
    """
    out_dir = Path(out_dir)
    tables = []
    for record in finished_participants(out_dir, subject.removeprefix("sub-")):
        wanted = participant_output_path(out_dir, record.prefix, "targets", ".tsv", desc="participant")
        tables += [out_dir / f for f in record.files if out_dir / f == wanted]
    return sorted(tables)


def withdrawn_participant_targets(out_dir: Path, subject: str) -> dict[str, str]:
    """``participant prefix -> why`` of the participant's targets that are not shown, as their records say.

    A target the participant step withdrew (its withdrawal record,
    :func:`trdnet.participants.withdrawals`), or one whose record no longer
    holds (:meth:`trdnet.records.ParticipantRecord.unfinished_reason`: a run it
    joins was processed again since). Nothing is recomputed.

    Parameters
    ----------
    out_dir : Path
    subject : str
        Participant label with or without ``sub-``.
    """
    from ..participants import withdrawals

    label = subject.removeprefix("sub-")
    found = withdrawals(out_dir, label)
    for record in participant_records(out_dir, label):
        reason = record.unfinished_reason(out_dir)
        if reason:
            found[record.prefix] = (f"its runs no longer stand behind it ({reason}); not shown until the "
                                    "participant step makes it again ('trdnet run ... participant' on all of "
                                    "the participant's runs)")
    return dict(sorted(found.items()))


def failures(out_dir: Path) -> pd.DataFrame:
    """Failed runs of the cohort, from their failure records (empty table if none failed)."""
    return failure_records(out_dir)
