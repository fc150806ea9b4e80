"""Personalised left-DLPFC TMS targets from the sgACC seed map, and their reliability."""

from __future__ import annotations

from .api import TABLE_COLUMNS, TargetingOutput, compute_targets, flag_not_anticorrelated
from .hierarchical import hierarchical_target
from .methods import cluster_target, peak_target, seedmap_target
from .participant import ParticipantTargets, combine_runs, participant_targets
from .regions import grey_matter_probability, reference_sites, search_columns, seed_columns
from .reliability import target_reliability
from .result import TargetResult
from .seedmap import fisher_z, group_map_values, group_mean_map, reference_signal, seed_map
from .select import METHODS, reference_rows, run_method, select_targets

__all__ = [
    "METHODS",
    "ParticipantTargets",
    "TABLE_COLUMNS",
    "TargetResult",
    "TargetingOutput",
    "cluster_target",
    "combine_runs",
    "compute_targets",
    "flag_not_anticorrelated",
    "fisher_z",
    "grey_matter_probability",
    "group_map_values",
    "group_mean_map",
    "hierarchical_target",
    "participant_targets",
    "peak_target",
    "reference_rows",
    "reference_signal",
    "reference_sites",
    "run_method",
    "search_columns",
    "seed_columns",
    "seed_map",
    "seedmap_target",
    "select_targets",
    "target_reliability",
]
