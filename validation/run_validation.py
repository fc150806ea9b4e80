"""Targeting validation on the realistic SIMULATED cohort: accuracy, retest and calibration.

Every participant is simulated with the realistic preset of
:func:`trdnet.inputs.simulate.simulate_cohort` (a broad anticorrelated region
shared by everyone, spatially smooth and autocorrelated noise, an off-grid
planted patch, network signal leaking into the sgACC) with two sessions of
four runs (8 + 8 + 7 + 7 minutes, TR 2 s) and the same planted target in
both. Each run is cleaned on its own; a cell of ``m`` minutes joins the first
runs of a session up to ``m`` minutes (8 = run 1, 16 = runs 1-2, 30 = runs
1-4), so the cells are nested within each participant.

For every session and cell:

- the **default method** (``Settings().targeting``) runs through
  :func:`trdnet.targeting.participant_targets` with its bootstrap, competing
  sites, leave-one-run-out retest and data-sufficiency estimate;
- every **variant** of :data:`VARIANTS` (cluster ranking, centre weighting,
  smoothing, ``peak``, ``hierarchical``) gives a target without bootstrap.

Outcomes per participant: error to the planted target, whether the target sits
on the shared group region (closer to its centre than ``SHARED_RADIUS_MM`` and
farther from the planted target), and the session-to-session distance (the two
sessions' targets, independent data: a direct retest). Coverage: how often a
session's ``bootstrap_r95_mm`` is at least the distance to the other
session's target.

Two participant sets with separate seeds: ``--set choose`` (to pick the
default method and the reliability thresholds) and ``--set report`` (the
numbers the README states). Nothing chosen is tuned on the report set.

Outputs in ``--out``: ``validation_targets.tsv`` (one row per participant,
session, cell and variant), ``validation.tsv`` / ``validation.md`` (summary per
cell and variant), ``validation_default.tsv`` (the default method's retest
and calibration per cell), ``validation.json`` (settings, seeds, run time).
All data are SIMULATED.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from trdnet.config import MNI_SPACE, Settings
from trdnet.denoise import clean_run
from trdnet.errors import TargetingError
from trdnet.inputs.bids import find_runs
from trdnet.inputs.simulate import preset_parameters, simulate_cohort
from trdnet.targeting import participant_targets, run_method, search_columns, seed_columns, seed_map
from trdnet.targeting.participant import cap_for_retest, combine_runs
from trdnet.targeting.reliability import block_length, intended_block_length, reliability_word, too_little_data
from trdnet.targeting.sites import stronger_runner_up

TR = 2.0
#: Target variants compared (name -> changes of TargetSettings); "default" is Settings().targeting.
VARIANTS: dict[str, dict] = {
    "default": {},
    "cluster_size_4mm": {"methods": ("cluster",), "cluster_rank": "size", "smoothing_fwhm_mm": 4.0},
    "cluster_sum_4mm": {"methods": ("cluster",), "cluster_rank": "sum", "smoothing_fwhm_mm": 4.0},
    "cluster_mean_4mm": {"methods": ("cluster",), "cluster_rank": "mean", "smoothing_fwhm_mm": 4.0},
    "cluster_size_4mm_centroid": {"methods": ("cluster",), "cluster_rank": "size", "centre_weights": "uniform",
                                  "smoothing_fwhm_mm": 4.0},
    "cluster_size_8mm": {"methods": ("cluster",), "cluster_rank": "size", "smoothing_fwhm_mm": 8.0},
    "cluster_sum_8mm": {"methods": ("cluster",), "cluster_rank": "sum", "smoothing_fwhm_mm": 8.0},
    "cluster_mean_8mm": {"methods": ("cluster",), "cluster_rank": "mean", "smoothing_fwhm_mm": 8.0},
    "cluster_sum_12mm": {"methods": ("cluster",), "cluster_rank": "sum", "smoothing_fwhm_mm": 12.0},
    "peak": {"methods": ("peak",)},
    "hierarchical": {"methods": ("hierarchical",)},
}
#: A target closer than this to the shared region's centre (and farther from the planted one) "sits on" it.
SHARED_RADIUS_MM = 10.0


@dataclasses.dataclass(frozen=True)
class StudyGrid:
    """Participants, sessions, runs and cells of the study."""

    run_volumes: tuple[int, ...] = (240, 240, 210, 210)
    cells_runs: tuple[int, ...] = (1, 2, 4)  # runs joined per cell: 8, 16, 30 minutes
    sessions: tuple[str, ...] = ("1", "2")
    n_participants: int = 12
    n_bootstrap: int = 30
    resolution_mm: int = 3
    seed: int = 2026

    def minutes(self, n_runs: int) -> float:
        return sum(self.run_volumes[:n_runs]) * TR / 60.0


SETS = {"choose": 1000, "report": 2000, "calibrate": 3000}
QUICK_GRID = StudyGrid(run_volumes=(80, 80), cells_runs=(1, 2), n_participants=2, n_bootstrap=5,
                       resolution_mm=4)


def _variant_settings(base, name: str):
    return dataclasses.replace(base, reliability=False, **VARIANTS[name])


def simulate_and_clean(index: int, grid: StudyGrid, seed: int, workdir: Path) -> tuple[np.ndarray, dict]:
    """Simulate one participant (two sessions) and clean each run with the default denoising.

    Returns
    -------
    (numpy.ndarray, dict)
        The planted target (MNI world RAS mm, shape (3,)) and the cleaned runs
        keyed by (session, run) labels.
    """
    cohort = simulate_cohort(
        workdir / f"p{index:02d}", n_subjects=1, n_volumes=list(grid.run_volumes), runs=len(grid.run_volumes),
        tr=TR, resolution_mm=grid.resolution_mm, sessions=list(grid.sessions), random_state=seed + index,
        anatomy=False,
    )
    planted = cohort.truth_table[["x", "y", "z"]].to_numpy(float)[0]
    denoise = Settings().denoise
    cleaned = {(r.entities.get("ses"), r.entities.get("run")): clean_run(r, denoise)
               for r in find_runs(cohort.fmriprep_dir)}
    return planted, cleaned


def run_participant(index: int, grid: StudyGrid, seed: int, workdir: Path, variants) -> list[dict]:
    """Simulate one participant (two sessions), clean each run, target every cell and variant."""
    planted, cleaned = simulate_and_clean(index, grid, seed, workdir)
    shared = np.asarray(preset_parameters("realistic").shared_center_mm, dtype=float)
    settings = Settings()
    base = dataclasses.replace(settings.targeting, n_bootstrap=grid.n_bootstrap)
    rows = []
    for n_runs in grid.cells_runs:
        for ses in grid.sessions:
            pieces = [cleaned[(ses, str(k))] for k in range(1, n_runs + 1)]
            common = {"participant_id": f"p{index:02d}", "session": ses, "minutes": grid.minutes(n_runs),
                      "n_runs": n_runs, "true_x": planted[0], "true_y": planted[1], "true_z": planted[2]}
            started = time.perf_counter()
            try:
                result = participant_targets(pieces, base, random_state=seed + 100 * index + int(ses),
                                             run_labels=[f"run-{k}" for k in range(1, n_runs + 1)],
                                             high_pass_hz=settings.denoise.high_pass)
                row = result.output.table.iloc[0]
                found = row[["x", "y", "z"]].to_numpy(float)
                candidates = result.output.candidates
                if candidates is not None and len(candidates) and "method" in candidates:
                    candidates = candidates[candidates["method"] == row["method"]]
                rows.append({**common, "variant": "default", **_outcome(found, planted, shared),
                             **{k: row[k] for k in ("bootstrap_r95_mm", "split_half_mm", "competing_share",
                                                    "n_sites", "retest_mm", "minutes_for_5mm", "reliability",
                                                    "n_voxels", "minutes_retained")},
                             "bootstrap_r95_raw_mm": row["bootstrap_r95_mm"] / base.r95_scale,
                             "site_r95_raw_mm": result.output.details["methods"][row["method"]]["reliability"].get(
                                 "site_r95_mm", np.nan),
                             "runner_up": stronger_runner_up(candidates),
                             "seconds": time.perf_counter() - started})
            except TargetingError as error:
                rows.append({**common, "variant": "default", "failed": str(error)})
            joined = combine_runs(pieces)
            seeds = seed_columns(joined.space, base)
            search = search_columns(joined.space, base)
            seed_r = seed_map(joined, seeds)
            for name in variants:
                if name == "default":
                    continue
                chosen = _variant_settings(base, name)
                started = time.perf_counter()
                try:
                    found = run_method(chosen.methods[0], joined, seeds, search, chosen, seed_r).xyz
                    rows.append({**common, "variant": name, **_outcome(np.asarray(found, float), planted, shared),
                                 "seconds": time.perf_counter() - started})
                except TargetingError as error:
                    rows.append({**common, "variant": name, "failed": str(error)})
    return rows


def _participant_once(index, grid, seed, workdir, variants, done_dir: Path) -> None:
    """Run one participant unless its rows were already written (an interrupted study resumes)."""
    path = done_dir / f"p{index:02d}.tsv"
    if path.is_file():
        return
    rows = pd.DataFrame(run_participant(index, grid, seed, workdir, variants))
    partial = path.with_suffix(".tmp")
    rows.to_csv(partial, sep="\t", index=False, na_rep="n/a")
    partial.replace(path)


def _outcome(found: np.ndarray, planted: np.ndarray, shared: np.ndarray) -> dict:
    error = float(np.linalg.norm(found - planted))
    to_shared = float(np.linalg.norm(found - shared))
    return {"x": found[0], "y": found[1], "z": found[2], "error_mm": error,
            "on_shared_region": bool(to_shared < SHARED_RADIUS_MM and to_shared < error)}


def reword(targets: pd.DataFrame, settings, high_pass_hz: float | None = None) -> pd.DataFrame:
    """The default rows' radius and word under ``settings`` (the current defaults when summarising).

    Neither the targets, the bootstrap cloud, the split-half, the competing
    sites, the retest nor the retained minutes depend on ``r95_scale``, the
    words' thresholds or ``min_minutes_for_word``, so
    ``bootstrap_r95_mm = r95_scale * bootstrap_r95_raw_mm`` and the word from
    :func:`~trdnet.targeting.reliability.reliability_word` (with
    :func:`~trdnet.targeting.reliability.too_little_data` on
    ``minutes_retained`` and the block the bootstrap used, which follows
    from the retained volumes, the TR and ``high_pass_hz``) and
    :func:`~trdnet.targeting.participant.cap_for_retest` on the stored
    inputs are what a run with ``settings`` would have written. Rows written
    before the raw radius was stored are returned unchanged.

    Raises
    ------
    ValueError
        When default rows with a raw radius have no ``minutes_retained``
        (:func:`recover_minutes_retained` adds it to older rows).
    """
    if "bootstrap_r95_raw_mm" not in targets:
        return targets
    out = targets.copy()
    rows = (out["variant"] == "default") & out["bootstrap_r95_raw_mm"].notna()
    if rows.any() and ("minutes_retained" not in out or out.loc[rows, "minutes_retained"].isna().any()):
        raise ValueError("default rows without minutes_retained: the word's data rule needs the retained minutes "
                         "(recover_minutes_retained adds them to rows written before they were stored)")
    high_pass_hz = Settings().denoise.high_pass if high_pass_hz is None else high_pass_hz
    out.loc[rows, "bootstrap_r95_mm"] = settings.r95_scale * out.loc[rows, "bootstrap_r95_raw_mm"]
    part = out[rows]
    runner = part["runner_up"].fillna("").astype(str) if "runner_up" in part else [""] * len(part)
    intended = intended_block_length(TR, settings, high_pass_hz)
    short = [too_little_data(m, settings, block_volumes=block_length(int(round(m * 60 / TR)), TR, settings,
                                                                     high_pass_hz),
                             intended_block_volumes=intended, tr=TR)
             for m in part["minutes_retained"]] if len(part) else []
    out.loc[rows, "reliability"] = [
        cap_for_retest(*reliability_word(r95, split, settings, competing_share=share, retest_mm=retest, runner_up=up,
                                         too_little=little),
                       retest, settings)[0]
        for r95, split, share, retest, up, little in zip(part["bootstrap_r95_mm"], part["split_half_mm"],
                                                         part["competing_share"], part["retest_mm"], runner, short)]
    out.loc[rows, "too_little_data"] = short
    return out


def recover_minutes_retained(targets: pd.DataFrame, grid: StudyGrid, seed: int, cache_dir: Path,
                             n_jobs: int = 1) -> pd.DataFrame:
    """``minutes_retained`` for rows written before it was stored, from the same simulation and cleaning.

    Each participant missing it is simulated and cleaned again (no target is
    computed; a few tens of seconds per participant); the planted target must
    equal the stored one, or the grid or seed differ from the run that wrote
    the rows. The minutes are cached in ``cache_dir/pNN.tsv``.

    Raises
    ------
    ValueError
        When the re-simulated planted target is not the stored one.
    """
    from joblib import Parallel, delayed

    out = targets.copy()
    if "minutes_retained" not in out:
        out["minutes_retained"] = np.nan
    missing = out["bootstrap_r95_raw_mm"].notna() & out["minutes_retained"].isna() if (
        "bootstrap_r95_raw_mm" in out) else pd.Series(False, index=out.index)
    people = sorted(out.loc[missing, "participant_id"].unique())
    if not people:
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    todo = [p for p in people if not (cache_dir / f"{p}.tsv").is_file()]
    print(f"{len(people)} participants' rows lack minutes_retained: re-simulating and cleaning {len(todo)} "
          f"(cached in {cache_dir})", file=sys.stderr)
    Parallel(n_jobs=n_jobs)(delayed(_retained_once)(int(p[1:]), grid, seed, cache_dir) for p in todo)
    for person in people:
        found = pd.read_csv(cache_dir / f"{person}.tsv", sep="\t", dtype={"session": str})
        stored = out.loc[out["participant_id"] == person, ["true_x", "true_y", "true_z"]].iloc[0].to_numpy(float)
        if not np.allclose(found[["true_x", "true_y", "true_z"]].iloc[0].to_numpy(float), stored, atol=0.01):
            raise ValueError(f"{person}: the re-simulated planted target is not the stored one: give the grid "
                             "(--participants, --resolution) and --set of the run that wrote the rows")
        for _, cell in found.iterrows():
            where = missing & (out["participant_id"] == person) & (out["session"] == cell["session"]) & (
                out["n_runs"] == cell["n_runs"])
            out.loc[where, "minutes_retained"] = cell["minutes_retained"]
    return out


def _retained_once(index: int, grid: StudyGrid, seed: int, cache_dir: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="trdnet-validation-") as tmp:
        planted, cleaned = simulate_and_clean(index, grid, seed, Path(tmp))
    rows = [{"participant_id": f"p{index:02d}", "session": ses, "n_runs": n_runs,
             "true_x": planted[0], "true_y": planted[1], "true_z": planted[2],
             "minutes_retained": sum(cleaned[(ses, str(k))].minutes for k in range(1, n_runs + 1))}
            for n_runs in grid.cells_runs for ses in grid.sessions]
    path = cache_dir / f"p{index:02d}.tsv"
    partial = path.with_suffix(".tmp")
    pd.DataFrame(rows).to_csv(partial, sep="\t", index=False)
    partial.replace(path)


def add_session_distance(targets: pd.DataFrame) -> pd.DataFrame:
    """Distance between the two sessions' targets of the same participant, cell and variant.

    Also ``r95_covers_retest``: this session's ``bootstrap_r95_mm`` is at
    least that distance (NaN without a radius).
    """
    keys = ["participant_id", "minutes", "variant"]
    out = []
    for _, group in targets.groupby(keys, sort=False):
        group = group.copy()
        if len(group) == 2 and group[["x", "y", "z"]].notna().all().all():
            d = float(np.linalg.norm(np.diff(group[["x", "y", "z"]].to_numpy(float), axis=0)))
        else:
            d = np.nan
        group["session_distance_mm"] = d
        out.append(group)
    result = pd.concat(out, ignore_index=True)
    if "bootstrap_r95_mm" in result:
        covers = result["bootstrap_r95_mm"] >= result["session_distance_mm"]
        result["r95_covers_retest"] = covers.where(
            result["bootstrap_r95_mm"].notna() & result["session_distance_mm"].notna())
    return result


def summarise(targets: pd.DataFrame) -> pd.DataFrame:
    """Per cell (minutes) and variant: error, shared-region share, session distance, no-target count."""
    grouped = targets.groupby(["minutes", "variant"], sort=True)
    table = grouped.agg(
        n=("participant_id", "size"),
        n_no_target=("error_mm", lambda e: int(e.isna().sum())),
        median_error_mm=("error_mm", "median"),
        p90_error_mm=("error_mm", lambda e: float(np.nanpercentile(e, 90)) if e.notna().any() else np.nan),
        share_within_5mm=("error_mm", lambda e: float((e <= 5.0).mean())),
        share_on_shared_region=("on_shared_region", lambda s: float(s.fillna(False).astype(bool).mean())),
        median_session_distance_mm=("session_distance_mm", "median"),
    ).reset_index()
    return table


def default_calibration(targets: pd.DataFrame) -> pd.DataFrame:
    """For the default method, per cell: retest, radius coverage and how trustworthy ``good`` is."""
    rows = []
    for minutes, part in targets[targets["variant"] == "default"].groupby("minutes"):
        good = part[part["reliability"] == "good"]
        rows.append({
            "minutes": minutes, "n": len(part),
            "median_error_mm": part["error_mm"].median(),
            "median_session_distance_mm": part["session_distance_mm"].median(),
            "median_r95_mm": part["bootstrap_r95_mm"].median(),
            "r95_coverage_of_retest": part["r95_covers_retest"].astype(float).mean(),
            "median_retest_loro_mm": part["retest_mm"].median(),
            "n_good": len(good), "n_fair": int((part["reliability"] == "fair").sum()),
            "n_poor": int((part["reliability"] == "poor").sum()),
            "good_within_5mm": float((good["error_mm"] <= 5.0).mean()) if len(good) else np.nan,
            "share_on_shared_region": float(part["on_shared_region"].astype(bool).mean()),
            **minutes_for_5mm_summary(part["minutes_for_5mm"]),
            "median_minutes_retained": part["minutes_retained"].median() if "minutes_retained" in part else np.nan,
            "n_too_little_data": int(part["too_little_data"].fillna("").astype(bool).sum())
            if "too_little_data" in part else 0,
        })
    return pd.DataFrame(rows)


def minutes_for_5mm_summary(minutes: pd.Series) -> dict:
    """Median ``minutes_for_5mm`` over the sessions that have an answer, ``inf`` counted as beyond any length.

    ``inf`` (targets that do not converge with more data) sorts above every
    finite answer, so the median is ``inf`` ("beyond") when half or more of
    the answered sessions do not converge; sessions without an estimate (NaN)
    are counted, not ranked.

    Returns
    -------
    dict
        ``median_minutes_for_5mm`` (may be inf), ``n_minutes_for_5mm_finite``,
        ``n_minutes_for_5mm_beyond`` (inf) and ``n_minutes_for_5mm_none`` (NaN).
    """
    values = pd.to_numeric(minutes, errors="coerce").to_numpy(float)
    answered = values[~np.isnan(values)]
    return {"median_minutes_for_5mm": float(np.median(answered)) if answered.size else np.nan,
            "n_minutes_for_5mm_finite": int(np.isfinite(answered).sum()),
            "n_minutes_for_5mm_beyond": int(np.isinf(answered).sum()),
            "n_minutes_for_5mm_none": int(np.isnan(values).sum())}


def site_radius_summary(targets: pd.DataFrame, coverage: float = 0.9) -> pd.DataFrame:
    """Per cell, the radius of the target's own bootstrap site against the session-to-session distance.

    A measurement beside the word, not an input of it: ``site_r95_raw_mm``
    (:func:`~trdnet.targeting.sites.own_site_r95`) leaves out resamples that
    jumped to another site, so it is narrower than the bootstrap's raw
    radius; a session whose retest lands on another site is what it cannot
    cover, and ``competing_share`` is what should warn of that.

    Returns
    -------
    pandas.DataFrame
        ``minutes``, ``n``, medians of both raw radii and of the session
        distance, the share of sessions the unscaled site radius covers,
        the factor it needs to cover ``coverage`` of them (inverted CDF), and,
        among the sessions whose retest landed beyond the site radius, the
        share flagged by ``competing_share`` > 0.1.
    """
    rows = []
    part = targets[(targets["variant"] == "default") & targets.get("site_r95_raw_mm", pd.Series(dtype=float)).notna()]
    for minutes, cell in part.groupby("minutes"):
        ratio = (cell["session_distance_mm"] / cell["site_r95_raw_mm"]).replace(np.inf, np.nan).dropna()
        missed = cell[cell["session_distance_mm"] > cell["site_r95_raw_mm"]]
        rows.append({
            "minutes": minutes, "n": len(cell),
            "median_site_r95_raw_mm": cell["site_r95_raw_mm"].median(),
            "median_bootstrap_r95_raw_mm": cell["bootstrap_r95_raw_mm"].median(),
            "median_session_distance_mm": cell["session_distance_mm"].median(),
            "site_r95_coverage": float((cell["site_r95_raw_mm"] >= cell["session_distance_mm"]).mean()),
            "site_r95_scale_for_coverage": float(np.quantile(ratio, coverage, method="inverted_cdf"))
            if len(ratio) else np.nan,
            "n_missed": len(missed),
            "missed_flagged_by_competing_share": float((missed["competing_share"] > 0.1).mean())
            if len(missed) else np.nan,
        })
    return pd.DataFrame(rows)


def r95_scale_for_coverage(targets: pd.DataFrame, scale_used: float, coverage: float = 0.9) -> float:
    """Factor of the bootstrap's raw 95th percentile that covers the session-to-session distance as often as asked.

    The smallest ``k`` such that ``k * raw r95 >= session distance`` in a
    ``coverage`` share of the default method's sessions (all cells pooled);
    ``raw r95`` is ``bootstrap_r95_mm / scale_used``. Computed on the choose
    set and written into ``TargetSettings.r95_scale``; the report set then
    shows how often the calibrated radius covers its own retests.
    """
    part = targets[targets["variant"] == "default"]
    ratio = part["session_distance_mm"] / (part["bootstrap_r95_mm"] / scale_used)
    ratio = ratio[np.isfinite(ratio)]
    return float(np.quantile(ratio, coverage)) if len(ratio) else float("nan")


#: Thresholds of ``good`` (bootstrap radius, mm) tried by :func:`calibrate_words`; ``fair`` is twice ``good``.
GOOD_R95_CANDIDATES_MM = tuple(float(t) for t in range(4, 41))


def calibrate_words(targets: pd.DataFrame, settings, coverage: float = 0.9, good_share: float = 0.9) -> dict:
    """``r95_scale`` and ``good_r95_mm`` set on a participant set (the calibrate set).

    1. ``r95_scale``: in every cell (data length), the ``coverage`` quantile
       (inverted CDF) of session distance / raw radius; one factor, the largest of the
       cells', so that the stated radius covers the retest in at least that
       share of every cell's sessions (the per-cell factors are recorded).
    2. ``good_r95_mm``: the largest candidate of
       :data:`GOOD_R95_CANDIDATES_MM` at which, with that factor and
       ``fair_r95_mm`` = 2 x ``good_r95_mm``, at least ``good_share`` of the
       sessions labelled ``good`` (all cells pooled) are within 5 mm of the
       planted target; when none qualifies, the smallest candidate.

    Parameters
    ----------
    targets : pandas.DataFrame
        Rows of :func:`run_participant` with ``bootstrap_r95_raw_mm`` and
        ``session_distance_mm``.
    settings : TargetSettings
        The other reliability settings (kept).

    Returns
    -------
    dict
        ``r95_scale``, ``r95_scale_per_minutes``, ``good_r95_mm``,
        ``fair_r95_mm`` and the table of candidates tried (``n_good``,
        ``good_within_5mm``).
    """
    part = targets[(targets["variant"] == "default") & targets["bootstrap_r95_raw_mm"].notna()]
    ratio = part["session_distance_mm"] / part["bootstrap_r95_raw_mm"]
    # inverted_cdf: the smallest ratio that at least `coverage` of the sessions do not exceed (interpolating
    # between sessions would cover fewer than asked).
    per_cell = {float(m): float(np.quantile(r[np.isfinite(r)], coverage, method="inverted_cdf"))
                for m, r in ratio.groupby(part["minutes"])}
    scale = float(np.ceil(max(per_cell.values()) * 100) / 100)  # rounded up: the coverage is kept
    tried = []
    for good in GOOD_R95_CANDIDATES_MM:
        chosen = dataclasses.replace(settings, r95_scale=scale, good_r95_mm=good, fair_r95_mm=2 * good)
        words = reword(part, chosen)
        labelled = words[words["reliability"] == "good"]
        tried.append({"good_r95_mm": good, "n_good": len(labelled),
                      "good_within_5mm": float((labelled["error_mm"] <= 5.0).mean()) if len(labelled) else np.nan})
    ok = [t["good_r95_mm"] for t in tried if t["n_good"] and t["good_within_5mm"] >= good_share]
    good = max(ok) if ok else GOOD_R95_CANDIDATES_MM[0]
    return {"coverage_goal": coverage, "good_within_5mm_goal": good_share, "r95_scale": scale,
            "r95_scale_per_minutes": per_cell, "good_r95_mm": good, "fair_r95_mm": 2 * good,
            "good_r95_candidates": tried}


def calibration_table(calibration: dict) -> pd.DataFrame:
    """:func:`calibrate_words` as a table: the factor each cell needs, then the chosen values (``minutes`` = all)."""
    rows = [{"minutes": f"{float(m):.3f}", "r95_scale": k} for m, k in calibration["r95_scale_per_minutes"].items()]
    rows.append({"minutes": "all", "r95_scale": calibration["r95_scale"],
                 "good_r95_mm": calibration["good_r95_mm"], "fair_r95_mm": calibration["fair_r95_mm"]})
    return pd.DataFrame(rows, columns=["minutes", "r95_scale", "good_r95_mm", "fair_r95_mm"])


def markdown(table: pd.DataFrame, digits: int = 1) -> str:
    """A table as GitHub markdown (floats rounded)."""
    header = "| " + " | ".join(table.columns) + " |"
    lines = [header, "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, (float, np.floating)):
                cells.append("beyond" if value == np.inf else "n/a" if not np.isfinite(value)
                             else f"{value:.{digits if abs(value) >= 1 else 2}f}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def study_seconds(previous: Path, seconds: float, summarise_only: bool) -> dict:
    """``wall_seconds`` of the study (the participants' run) and, for a summary alone, ``summarise_wall_seconds``.

    A summary of participants run earlier keeps the run's ``wall_seconds``
    from the ``validation.json`` it replaces (``None`` when there is none or
    it cannot be read) and records its own time beside it.
    """
    if not summarise_only:
        return {"wall_seconds": seconds}
    try:
        run_seconds = json.loads(previous.read_text()).get("wall_seconds")
    except (OSError, ValueError, AttributeError):
        run_seconds = None
    return {"wall_seconds": run_seconds, "summarise_wall_seconds": seconds}


def run_study(out_dir, grid: StudyGrid, which: str = "report", variants=tuple(VARIANTS), n_jobs: int = 1,
              workdir=None, summarise_only: bool = False) -> dict[str, pd.DataFrame]:
    """Run every participant, write the tables; return them.

    Parameters
    ----------
    out_dir : str or Path
    grid : StudyGrid
    which : {"choose", "report"}
        Participant set (separate seeds).
    variants : sequence of str
        Names of :data:`VARIANTS` (``default`` is always run).
    n_jobs : int
        Participants processed in parallel (joblib processes).
    workdir : str or Path, optional
        Keep the simulated files there (default: a temporary folder).
    summarise_only : bool
        Only summarise the participants already written in ``out_dir/participants`` (an
        interrupted study; ``validation.json`` records how many, keeps the run's ``wall_seconds``
        and adds the summary's own as ``summarise_wall_seconds``).

    Returns
    -------
    dict
        ``targets``, ``summary`` and ``default`` tables.
    """
    from joblib import Parallel, delayed

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = grid.seed + SETS[which]
    variants = tuple(dict.fromkeys(["default", *variants]))
    started = time.perf_counter()
    done_dir = out_dir / "participants"
    done_dir.mkdir(exist_ok=True)
    if not summarise_only:
        with tempfile.TemporaryDirectory(prefix="trdnet-validation-") as tmp:
            base = Path(workdir) if workdir is not None else Path(tmp)
            Parallel(n_jobs=n_jobs)(
                delayed(_participant_once)(i, grid, seed, base, variants, done_dir)
                for i in range(grid.n_participants)
            )
    done = [done_dir / f"p{i:02d}.tsv" for i in range(grid.n_participants) if (done_dir / f"p{i:02d}.tsv").is_file()]
    if not done:
        raise SystemExit(f"{done_dir}: no participant has been run yet")
    targets = pd.concat([pd.read_csv(path, sep="\t", keep_default_na=False, na_values=["", "n/a", "nan"],
                                     dtype={"session": str}) for path in done], ignore_index=True)
    targets = targets[targets["variant"].isin(variants)]
    for col in ("failed", "reliability", "runner_up"):
        if col not in targets:
            targets[col] = ""
        targets[col] = targets[col].fillna("").astype(str)
    targets["on_shared_region"] = targets["on_shared_region"].map(
        lambda v: str(v) == "True" if not pd.isna(v) else np.nan)
    targets = recover_minutes_retained(targets, grid, seed, out_dir / "retained", n_jobs=n_jobs)
    targets = add_session_distance(reword(targets, Settings().targeting))
    summary = summarise(targets)
    default = default_calibration(targets)
    targets.drop(columns="seconds", errors="ignore").to_csv(
        out_dir / "validation_targets.tsv", sep="\t", index=False, float_format="%.2f")
    summary.to_csv(out_dir / "validation.tsv", sep="\t", index=False, float_format="%.3f")
    default.to_csv(out_dir / "validation_default.tsv", sep="\t", index=False, float_format="%.3f")
    (out_dir / "validation.md").write_text(
        "# SIMULATED validation (realistic preset), participant set: " + which + "\n\n"
        "## Default method: retest and calibration\n\n" + markdown(default) +
        "\n## Every variant\n\n" + markdown(summary))
    record = {
        "data": "SIMULATED (trdnet.inputs.simulate, realistic preset); not acquired from any person",
        "participant_set": which, "seed": seed,
        "space": MNI_SPACE, "coordinates": "world RAS mm",
        "grid": dataclasses.asdict(grid), "variants": {v: VARIANTS[v] for v in variants}, "tr_s": TR,
        "default_targeting": {k: v for k, v in dataclasses.asdict(Settings().targeting).items()
                              if k in ("methods", "cluster_rank", "centre_weights", "smoothing_fwhm_mm",
                                       "top_fraction", "r95_scale", "good_r95_mm", "good_split_half_mm", "good_retest_mm",
                                       "fair_r95_mm", "min_minutes_for_word",
                                       "max_competing_share", "site_separation_mm")},
        "signal_parameters": preset_parameters("realistic").to_dict(),
        "shared_region_radius_mm": SHARED_RADIUS_MM,
        "r95_scale_used": Settings().targeting.r95_scale,
        "r95_scale_for_90pct_coverage": r95_scale_for_coverage(targets, Settings().targeting.r95_scale),
        "calibration": calibrate_words(targets, Settings().targeting) if "bootstrap_r95_raw_mm" in targets else None,
        "participants_summarised": len(done),
        **study_seconds(out_dir / "validation.json", round(time.perf_counter() - started, 1), summarise_only),
        "n_jobs": n_jobs,
    }
    (out_dir / "validation.json").write_text(json.dumps(record, indent=2) + "\n")
    sites = site_radius_summary(targets)
    if len(sites):
        sites.to_csv(out_dir / "site_radius.tsv", sep="\t", index=False, float_format="%.3f", na_rep="n/a")
    if record["calibration"]:
        calibration_table(record["calibration"]).to_csv(out_dir / "calibration.tsv", sep="\t", index=False,
                                                        float_format="%.3f", na_rep="n/a")
    return {"targets": targets, "summary": summary, "default": default}


def main(argv=None) -> int:
    """Command line entry point; see ``--help``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="results folder (default: validation/results/<set>)")
    parser.add_argument("--set", dest="which", choices=sorted(SETS), default="report",
                        help="participant set: choose (the method), calibrate (radius and words), report")
    parser.add_argument("--quick", action="store_true", help="two tiny participants (for tests)")
    parser.add_argument("--participants", type=int, default=None, help="participants")
    parser.add_argument("--resolution", type=int, choices=(2, 3, 4), default=None, help="grid (mm)")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=None)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--workdir", default=None, help="keep the simulated cohorts here")
    parser.add_argument("--summarise-only", action="store_true",
                        help="only summarise the participants already written in OUT/participants")
    args = parser.parse_args(argv)
    grid = QUICK_GRID if args.quick else StudyGrid()
    if args.participants is not None:
        grid = dataclasses.replace(grid, n_participants=args.participants)
    if args.resolution is not None:
        grid = dataclasses.replace(grid, resolution_mm=args.resolution)
    out = args.out or str(Path(__file__).parent / "results" / args.which)
    tables = run_study(out, grid, args.which, tuple(args.variants or VARIANTS), n_jobs=args.n_jobs,
                       workdir=args.workdir, summarise_only=args.summarise_only)
    print(markdown(tables["default"]))
    print(markdown(tables["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
