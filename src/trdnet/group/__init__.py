"""Group step: cohort tables, the group sgACC seed map, statistics and QC-FC
from the per-run outputs of a trdnet folder."""

from __future__ import annotations

from .collect import QcThresholds, collect_table, discover_runs
from .participants import find_participants_tsv, read_groups
from .run import GroupResult, run_group
from .seedmap import group_seed_map, mean_seed_map
from .stats import fdr_bh, hedges_g, participant_mean_fd, participant_means, qcfc_table, two_sample_table

__all__ = [
    "GroupResult",
    "QcThresholds",
    "collect_table",
    "discover_runs",
    "fdr_bh",
    "find_participants_tsv",
    "group_seed_map",
    "hedges_g",
    "mean_seed_map",
    "participant_mean_fd",
    "participant_means",
    "qcfc_table",
    "read_groups",
    "run_group",
    "two_sample_table",
]
