"""One call for the pipeline: regions, seed map, targets, reliability, table."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..cleaned import CleanedRun
from ..config import MNI_SPACE, TargetSettings
from ..errors import TargetingError
from .regions import is_mni, usable_regions
from .reliability import data_rule_note, poor_note, target_reliability
from .seedmap import group_map_values, reference_signal, seed_map
from .select import check_methods, reference_rows, run_method
from .sites import CANDIDATE_COLUMNS, SITE_COLUMNS

#: Column order of :attr:`TargetingOutput.table`.
TABLE_COLUMNS = (
    "target", "method", "primary", "space", "x", "y", "z", "r_sgacc", "n_voxels",
    "split_half_mm", "bootstrap_median_mm", "bootstrap_r95_mm", "minutes_retained",
    "n_candidates", "runner_up_mean_r", "runner_up_n_voxels", "n_sites", "competing_share",
    "reliability", "note",
)

#: Columns of :attr:`TargetingOutput.split_half_targets`.
SPLIT_HALF_COLUMNS = ("method", "half", "first_volume", "n_volumes", "x", "y", "z")


@dataclass
class TargetingOutput:
    """Everything targeting produces for one run.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per target (personalised methods, then reference sites), in
        :data:`TABLE_COLUMNS` order; x, y, z are world RAS mm of ``space``.
    seed_map : numpy.ndarray, float32, shape (V,)
        sgACC seed map (Pearson r per column).
    search_columns, seed_columns : numpy.ndarray of int
    bootstrap_cloud : pandas.DataFrame
        Columns ``method, resample, x, y, z`` (NaN where a resample found no target).
    split_half_targets : pandas.DataFrame
        Columns ``method, half, first_volume, n_volumes, x, y, z``: the target
        of each half of the retained volumes (NaN where a half found none).
    candidates : pandas.DataFrame
        ``method`` plus :data:`~trdnet.targeting.sites.CANDIDATE_COLUMNS`:
        every candidate cluster of each cluster-based method.
    sites : pandas.DataFrame
        ``method`` plus :data:`~trdnet.targeting.sites.SITE_COLUMNS`: each
        method's bootstrap cloud grouped into sites with their shares.
    details : dict
        Every parameter used, per-method details and reliability reasons.
    """

    table: pd.DataFrame
    seed_map: np.ndarray
    search_columns: np.ndarray
    seed_columns: np.ndarray
    bootstrap_cloud: pd.DataFrame
    split_half_targets: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SPLIT_HALF_COLUMNS))
    details: dict = field(default_factory=dict)
    candidates: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["method", *CANDIDATE_COLUMNS]))
    sites: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["method", *SITE_COLUMNS]))


def compute_targets(
    cleaned: CleanedRun,
    settings: TargetSettings,
    random_state: int | None = 0,
    group_map=None,
    *,
    high_pass_hz: float | None = None,
) -> TargetingOutput:
    """Personalised DLPFC targets, their reliability and the reference sites.

    Parameters
    ----------
    cleaned : CleanedRun
    settings : TargetSettings
        ``methods[0]`` is the primary target (row ``personalised``); other
        methods give rows ``personalised_<method>``.
    random_state : int or None
        Seed of the bootstrap.
    group_map : optional
        Group sgACC map (array per column or image) for ``seedmap``.
    high_pass_hz : float, optional
        High-pass cut-off used in cleaning; sets the bootstrap block length.

    Returns
    -------
    TargetingOutput
    """
    check_methods(settings)
    space = cleaned.space
    seeds, search, flat_counts = usable_regions(cleaned, settings)
    seed_r = seed_map(cleaned, seeds)
    reference = None
    if "seedmap" in settings.methods:
        source = group_map if group_map is not None else settings.group_map
        if source is None:
            raise TargetingError(
                "method 'seedmap' needs a group sgACC map: pass group_map or set targeting.group_map"
            )
        group_map = source
        weights = group_map_values(space, source)
        reference = reference_signal(cleaned, weights, search, settings.grey_matter_threshold)

    rows, clouds, halves, candidates, sites, method_details = [], [], [], [], [], {}
    for i, method in enumerate(settings.methods):
        result = run_method(
            method, cleaned, seeds, search, settings, seed_r,
            reference=reference if method == "seedmap" else None,
        )
        rel = {
            "split_half_mm": np.nan, "bootstrap_median_mm": np.nan,
            "bootstrap_r95_mm": np.nan, "reliability": "not computed",
            "n_sites": np.nan, "competing_share": np.nan,
        }
        if settings.reliability:
            rel = target_reliability(
                cleaned, method, settings, random_state, full_target=result,
                group_map=group_map, high_pass_hz=high_pass_hz,
                seed_cols=seeds, search_cols=search,
            )
            cloud = rel.pop("bootstrap_cloud")
            sites.append(rel.pop("sites").assign(method=method))
            halves.append(_split_half_rows(method, rel.pop("split_half_targets"), rel["split_half_volumes"]))
            clouds.append(pd.DataFrame({
                "method": method, "resample": np.arange(cloud.shape[0]),
                "x": cloud[:, 0], "y": cloud[:, 1], "z": cloud[:, 2],
            }))
        runner_up = {"n_candidates": np.nan, "runner_up_mean_r": np.nan, "runner_up_n_voxels": np.nan}
        if result.candidates is not None:
            candidates.append(result.candidates.assign(method=method))
            others = result.candidates[~result.candidates["chosen"].astype(bool)]
            runner_up["n_candidates"] = len(result.candidates)
            if len(others):
                runner_up["runner_up_mean_r"] = float(others.iloc[0]["mean_r"])
                runner_up["runner_up_n_voxels"] = int(others.iloc[0]["n_voxels"])
        rows.append({
            **{name: values[0] for name, values in space.target_columns([result.column]).items()},
            **runner_up,
            "n_sites": rel["n_sites"], "competing_share": rel["competing_share"],
            "target": "personalised" if i == 0 else f"personalised_{method}",
            "method": method,
            "primary": i == 0,
            "x": float(result.xyz[0]), "y": float(result.xyz[1]), "z": float(result.xyz[2]),
            "r_sgacc": result.r_sgacc,
            "n_voxels": result.n_voxels,
            "split_half_mm": rel["split_half_mm"],
            "bootstrap_median_mm": rel["bootstrap_median_mm"],
            "bootstrap_r95_mm": rel["bootstrap_r95_mm"],
            "reliability": rel["reliability"],
            # a TMS team reads the table: say there why the word is poor whatever the radius
            "note": "; ".join(n for n in (result.note, data_rule_note(rel.get("too_little_data", "")),
                                          poor_note(rel["reliability"], rel.get("reliability_reason", ""),
                                                    rel.get("too_little_data", ""))) if n),
        })
        method_details[method] = {
            **result.details,
            "column": result.column,
            "moved_to_grey_matter": result.moved_to_grey_matter,
            "reliability": {k: v for k, v in rel.items() if not isinstance(v, np.ndarray)},
        }

    refs = reference_rows(cleaned, seed_r, settings)
    refs["primary"] = False
    personalised = pd.DataFrame(rows)
    personalised["space"] = space.coordinate_space
    # Reference sites are literature MNI coordinates: in a run in another space they keep their own space.
    refs["space"] = space.space if is_mni(space) else MNI_SPACE
    table = pd.concat([personalised, refs], ignore_index=True)
    table["minutes_retained"] = cleaned.minutes
    for col in ("split_half_mm", "bootstrap_median_mm", "bootstrap_r95_mm", "competing_share",
                "runner_up_mean_r"):
        table[col] = table[col].astype(float)
    for col in ("n_candidates", "runner_up_n_voxels", "n_sites", "vertex"):
        if col in table:
            table[col] = table[col].astype("Int64")
    table["reliability"] = table["reliability"].fillna("")
    table["note"] = table["note"].fillna("")
    table = flag_not_anticorrelated(table[table_columns(space)])
    cloud = (
        pd.concat(clouds, ignore_index=True) if clouds
        else pd.DataFrame(columns=["method", "resample", "x", "y", "z"])
    )
    details = {
        "settings": dataclasses.asdict(settings),
        "space": space.space,
        "coordinates": "world RAS mm" if space.kind == "voxel" else (
            f"world RAS mm of the {space.surface} vertices ({space.coordinate_space}); mni152_x/y/z: "
            f"{space.template_mapping}"),
        "regions_located_by": (
            "the grid's own MNI coordinates" if is_mni(space)
            else f"each vertex's MNI152 position ({space.template_mapping})" if space.kind == "mesh"
            else "each voxel's MNI position through the participant's fMRIPrep transform (QC template_transform)"
            if space.template_xyz is not None
            else "masks given in the data space"
        ),
        "n_seed_voxels": int(seeds.size),
        "n_search_voxels": int(search.size),
        "flat_voxels_left_out": flat_counts,
        "voxel_volume_mm3": space.column_volume_mm3,
        "random_state": random_state,
        "group_map": _describe_group_map(group_map),
        "high_pass_hz": high_pass_hz,
        "simulated": bool(cleaned.simulated),
        "methods": method_details,
    }
    split = (
        pd.concat(halves, ignore_index=True) if halves
        else pd.DataFrame(columns=list(SPLIT_HALF_COLUMNS))
    )
    candidate_table = _with_method_first(candidates, CANDIDATE_COLUMNS)
    site_table = _with_method_first(sites, SITE_COLUMNS)
    return TargetingOutput(table, seed_r, search, seeds, cloud, split, details, candidate_table, site_table)


def table_columns(space) -> list[str]:
    """Columns of a run's target table: :data:`TABLE_COLUMNS`, with where each target lies on the mesh
    (:meth:`trdnet.geometry.Geometry.target_columns`) after x, y, z for surface runs."""
    extra = list(space.target_columns(np.empty(0, dtype=np.int64)))
    at = TABLE_COLUMNS.index("z") + 1
    return [*TABLE_COLUMNS[:at], *extra, *TABLE_COLUMNS[at:]]


def _with_method_first(frames: list[pd.DataFrame], columns) -> pd.DataFrame:
    """Concatenated per-method tables with ``method`` as the first column."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["method", *columns])
    return pd.concat(frames, ignore_index=True)[["method", *columns]]


def _split_half_rows(method: str, xyz: np.ndarray, volumes: tuple[int, int]) -> pd.DataFrame:
    """The two split-half targets of one method as table rows."""
    return pd.DataFrame({
        "method": method,
        "half": ["first", "second"],
        "first_volume": [0, volumes[0]],
        "n_volumes": list(volumes),
        "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2],
    })


def _describe_group_map(group_map) -> str | None:
    if group_map is None:
        return None
    if isinstance(group_map, (str, Path)):
        return str(group_map)
    if hasattr(group_map, "affine"):
        return "image given in memory"
    return "array with one value per column"


#: Reliability word of a personalised target whose own point is not anticorrelated with the sgACC.
NOT_ANTICORRELATED_WORD = "poor"


def flag_not_anticorrelated(table: pd.DataFrame) -> pd.DataFrame:
    """Call ``poor`` every personalised target whose own ``r_sgacc`` is >= 0, saying why in its note.

    A cluster's weighted centre can land on a voxel or vertex outside the
    anticorrelated part of a non-convex cluster (seen on random-noise data:
    target r +0.38 while its cluster's mean r was -0.29). The target is not
    moved: the TMS team is told, and chooses.

    Parameters
    ----------
    table : pandas.DataFrame
        Targets with ``target`` (``personalised...`` rows are checked),
        ``r_sgacc``, ``reliability`` and ``note``; reference rows are left as they are.

    Returns
    -------
    pandas.DataFrame
        A copy, the flagged rows' ``reliability`` set to ``poor`` and their note extended.
    """
    table = table.copy()
    flagged = table["target"].astype(str).str.startswith("personalised") & (table["r_sgacc"] >= 0)
    for index in table.index[flagged]:
        reason = (f"the target point is not anticorrelated with the sgACC (r_sgacc "
                  f"{table.at[index, 'r_sgacc']:+.2f} >= 0)")
        note = str(table.at[index, "note"] or "")
        table.at[index, "note"] = f"{reason}; {note}" if note else reason
        table.at[index, "reliability"] = NOT_ANTICORRELATED_WORD
    return table
