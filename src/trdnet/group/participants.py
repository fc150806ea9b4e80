"""``participants.tsv``: where to find it and the group label of each participant."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..outputs import source_datasets
from .collect import RunRecord


def _input_roots(records: list[RunRecord]) -> list[Path]:
    """Input folders the runs came from, read from the sidecars' ``Sources`` (QC, else networks: ROI runs)."""
    roots = []
    for record in records:
        table = record.files.get("qc", record.files["networks"])
        sidecar = table.with_name(table.name.replace(".tsv", ".json"))
        try:
            sources = json.loads(sidecar.read_text()).get("Sources", [])
        except (OSError, ValueError):
            continue
        for source in sources[:1]:
            parts = Path(source).parts
            subject = [i for i, part in enumerate(parts) if part == record.participant_id]
            if subject:
                root = Path(*parts[: subject[0]])
                if root not in roots:
                    roots.append(root)
    return roots


def find_participants_tsv(out_dir: Path, records: list[RunRecord]) -> Path | None:
    """Look for ``participants.tsv`` beside the outputs or in the raw BIDS root of the input.

    Searched in order: ``<out>/participants.tsv``; then for each fMRIPrep
    folder the runs came from: the raw datasets its
    ``dataset_description.json`` names (local paths), the folder itself, its
    parent and grandparent (the ``<bids>/derivatives/fmriprep`` layout).

    Returns
    -------
    Path or None
    """
    candidates = [Path(out_dir)]
    for root in _input_roots(records):
        candidates += source_datasets(root) + [root, root.parent, root.parent.parent]
    for folder in candidates:
        path = folder / "participants.tsv"
        if path.is_file():
            return path
    return None


def read_groups(path: Path, group_column: str = "group") -> pd.Series:
    """Group label of each participant from a BIDS ``participants.tsv``.

    Parameters
    ----------
    path : Path
    group_column : str
        Column holding the group (e.g. patient / control).

    Returns
    -------
    pandas.Series
        Index ``participant_id`` (always with ``sub-``), values the labels as
        strings; participants without a label (``n/a``, empty) are dropped.

    Raises
    ------
    InputError
        If the file cannot be read or lacks ``participant_id`` or the group column.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: participants file not found; give a BIDS participants.tsv")
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, na_values=["n/a", ""], keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: unreadable participants file ({exc})") from None
    for column in ("participant_id", group_column):
        if column not in table.columns:
            raise InputError(f"{path}: no column {column!r}; columns are {list(table.columns)} "
                             "(choose the group column with group_column)")
    ids = table["participant_id"].str.strip()
    ids = ids.where(ids.str.startswith("sub-"), "sub-" + ids)
    if ids.duplicated().any():
        raise InputError(f"{path}: participant_id repeated: {sorted(set(ids[ids.duplicated()]))}")
    groups = pd.Series(table[group_column].str.strip().to_numpy(), index=ids.to_numpy(), name=group_column)
    groups.index.name = "participant_id"
    return groups.dropna()
