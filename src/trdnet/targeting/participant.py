"""One target per person from all of their runs, with a retest distance and a data-sufficiency estimate.

Each run is cleaned on its own (its own confounds, filter and censoring);
the cleaned runs of a participant are then joined in time (each column
z-scored within its run, so every retained volume weighs the same) and
targeted as one. Two checks come from the runs themselves:

- **retest**: with two or more sessions, the distance between the targets of
  separate sessions; with one session and two or more runs, the distance
  between the target of each left-out run and the target of the other runs.
  Both compare targets from disjoint data, as a second scan would.
- **data sufficiency**: how far apart the targets of two disjoint stretches
  of the data are, for stretches of increasing length; a power law fitted to
  those distances gives the minutes at which two independent scans of that
  length would be expected to agree within ``sufficiency_goal_mm``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..cleaned import CleanedRun, zscore_columns
from ..config import TargetSettings
from ..errors import InputError, TargetingError
from .api import TargetingOutput, compute_targets
from .reliability import _Subset, data_rule_note, poor_note, reliability_word
from .sites import stronger_runner_up
from .seedmap import group_map_values, reference_signal

#: Columns of :attr:`ParticipantTargets.retest`.
RETEST_COLUMNS = ("method", "kind", "held_out", "x", "y", "z", "other_x", "other_y", "other_z", "distance_mm")

#: Columns of :attr:`ParticipantTargets.sufficiency`.
SUFFICIENCY_COLUMNS = ("method", "minutes", "n_pairs", "median_distance_mm")

#: Shortest stretch (volumes) on the data-sufficiency curve.
MIN_STRETCH_VOLUMES = 25

#: Distance (mm) the data-sufficiency estimate is asked to reach.
SUFFICIENCY_GOAL_MM = 5.0

#: Longest answer of the data-sufficiency estimate, as a multiple of the minutes available.
MAX_EXTRAPOLATION = 10.0


@dataclass
class ParticipantTargets:
    """A participant-level target from several cleaned runs.

    Attributes
    ----------
    output : TargetingOutput
        Targets, bootstrap, candidates and sites of the joined runs; its
        table has the extra columns ``n_runs``, ``retest_kind``,
        ``retest_mm``, ``minutes_for_5mm`` and ``sufficiency_note``, and its
        ``reliability`` accounts for the retest.
    retest : pandas.DataFrame
        :data:`RETEST_COLUMNS`, one row per held-out run or session pair.
    sufficiency : pandas.DataFrame
        :data:`SUFFICIENCY_COLUMNS`: median distance between targets of two
        disjoint stretches of the given length.
    run_labels : list of str
        The label of each joined run, in order.
    """

    output: TargetingOutput
    retest: pd.DataFrame
    sufficiency: pd.DataFrame
    run_labels: list[str] = field(default_factory=list)


def combine_runs(runs: Sequence[CleanedRun]) -> CleanedRun:
    """Join cleaned runs of one participant in time.

    Parameters
    ----------
    runs : sequence of CleanedRun
        On the same grid (same voxels, same space) and with the same TR.

    Returns
    -------
    CleanedRun
        Data (sum of T_i, V), each run's columns z-scored within the run and
        the result z-scored again (a no-op up to rounding, kept so the
        class's promise holds); ``retained`` are indices into the runs laid
        end to end; ``qc`` holds ``n_runs``, ``run_volumes`` (retained per
        run) and ``minutes_retained``.

    Raises
    ------
    InputError
        When the runs are on different grids, spaces or TRs, or none is given.
    """
    runs = list(runs)
    if not runs:
        raise InputError("no cleaned run to combine")
    first = runs[0]
    for i, run in enumerate(runs[1:], start=1):
        if not run.space.same_columns(first.space):
            raise InputError(
                f"run {i} is on another grid or space ({run.space.describe()}) than run 0 "
                f"({first.space.describe()}): a participant target needs every run "
                "on one grid (use the same --space for all runs)"
            )
        if not np.isclose(run.tr, first.tr):
            raise InputError(f"run {i} has TR {run.tr} s and run 0 {first.tr} s: runs to combine need one TR")
    data = zscore_columns(np.concatenate([zscore_columns(r.data.copy()) for r in runs], axis=0))
    offsets = np.cumsum([0] + [r.n_volumes for r in runs[:-1]])
    retained = np.concatenate([r.retained + o for r, o in zip(runs, offsets)])
    volumes = [r.n_timepoints for r in runs]
    qc = {"n_runs": len(runs), "run_volumes": volumes,
          "minutes_retained": float(sum(volumes) * first.tr / 60.0)}
    return CleanedRun(data=data, space=first.space, tr=first.tr, retained=retained,
                      n_volumes=int(sum(r.n_volumes for r in runs)), qc=qc,
                      simulated=any(r.simulated for r in runs))


def participant_targets(
    runs: Sequence[CleanedRun],
    settings: TargetSettings,
    random_state: int | None = 0,
    *,
    run_labels: Sequence[str] | None = None,
    sessions: Sequence[str | None] | None = None,
    group_map=None,
    high_pass_hz: float | None = None,
    sufficiency: bool = True,
) -> ParticipantTargets:
    """Target from all of a participant's runs, with retest and data sufficiency.

    Parameters
    ----------
    runs : sequence of CleanedRun
        The participant's cleaned runs (each cleaned on its own).
    settings : TargetSettings
    random_state : int or None
        Seed of the bootstrap and of the stretches drawn for sufficiency.
    run_labels : sequence of str, optional
        A name per run (default ``run0``, ``run1``, ...).
    sessions : sequence of str or None, optional
        Session label per run; with two or more distinct sessions the retest
        is session-to-session, otherwise leave-one-run-out.
    group_map : optional
        Group sgACC map for ``seedmap``.
    high_pass_hz : float, optional
        High-pass cut-off used in cleaning (bootstrap block length).
    sufficiency : bool
        Compute the data-sufficiency curve (costs about 20 target searches per method).

    Returns
    -------
    ParticipantTargets
    """
    runs = list(runs)
    labels = list(run_labels) if run_labels is not None else [f"run{i}" for i in range(len(runs))]
    sessions = list(sessions) if sessions is not None else [None] * len(runs)
    if len(labels) != len(runs) or len(sessions) != len(runs):
        raise InputError(f"{len(runs)} runs but {len(labels)} labels and {len(sessions)} session labels")
    combined = combine_runs(runs)
    output = compute_targets(combined, settings, random_state, group_map, high_pass_hz=high_pass_hz)
    seeds, search = output.seed_columns, output.search_columns
    reference = None
    if "seedmap" in settings.methods:
        weights = group_map_values(combined.space, group_map if group_map is not None else settings.group_map)
        reference = reference_signal(combined, weights, search, settings.grey_matter_threshold)
    subset = _Subset(combined, seeds, search, reference)
    bounds = np.cumsum([0] + [r.n_timepoints for r in runs])
    pieces = [np.arange(bounds[i], bounds[i + 1]) for i in range(len(runs))]

    retest_rows, sufficiency_rows = [], []
    table = output.table.copy()
    for col, value in (("n_runs", len(runs)), ("retest_kind", ""), ("retest_mm", np.nan),
                       ("minutes_for_5mm", np.nan), ("sufficiency_note", "")):
        table[col] = value
    rng = np.random.default_rng(random_state)
    for index, row in table.iterrows():
        method = row["method"]
        if not str(row["target"]).startswith("personalised"):
            continue
        rows = _retest(subset, method, settings, pieces, labels, sessions)
        retest_rows += rows
        distances = [r["distance_mm"] for r in rows if np.isfinite(r["distance_mm"])]
        if rows:
            table.loc[index, "retest_kind"] = rows[0]["kind"]
            table.loc[index, "retest_mm"] = float(np.median(distances)) if distances else np.nan
        if sufficiency:
            curve = _stability_curve(subset, method, settings, combined.tr, rng)
            sufficiency_rows += curve
            minutes, note = minutes_to_reach(pd.DataFrame(curve), SUFFICIENCY_GOAL_MM, combined.minutes,
                                             retest_mm=table.loc[index, "retest_mm"])
            table.loc[index, "minutes_for_5mm"] = minutes
            table.loc[index, "sufficiency_note"] = note
        candidates = output.candidates
        if candidates is not None and len(candidates) and "method" in candidates:
            candidates = candidates[candidates["method"] == method]
        bootstrap = output.details["methods"].get(method, {}).get("reliability", {})
        table.loc[index, "sufficiency_note"] = sufficiency_statement(table.loc[index, "sufficiency_note"],
                                                                     bootstrap.get("too_little_data", ""))
        word, reason = reliability_word(
            row["bootstrap_r95_mm"], row["split_half_mm"], settings,
            competing_share=row["competing_share"], retest_mm=table.loc[index, "retest_mm"],
            runner_up=stronger_runner_up(candidates), too_little=bootstrap.get("too_little_data", ""),
        ) if settings.reliability else (row["reliability"], "")
        word, reason = cap_for_retest(word, reason, table.loc[index, "retest_mm"], settings)
        table.loc[index, "reliability"] = word
        warning = poor_note(word, reason, bootstrap.get("too_little_data", ""))
        if warning:  # the word's own reason, said where the team reads the note
            table.loc[index, "sufficiency_note"] = " ".join(
                n for n in (warning, table.loc[index, "sufficiency_note"]) if isinstance(n, str) and n)
        output.details["methods"].get(method, {}).setdefault("reliability", {})["participant_reason"] = reason
    output.table = table
    output.details["participant"] = {
        "runs": labels, "sessions": sessions, "run_volumes": combined.qc["run_volumes"],
        "combination": "each run cleaned and z-scored on its own, then joined in time",
        "retest": "session-to-session" if len({s for s in sessions if s}) >= 2 else "leave-one-run-out",
        "sufficiency_goal_mm": SUFFICIENCY_GOAL_MM,
    }
    return ParticipantTargets(
        output=output,
        retest=pd.DataFrame(retest_rows, columns=list(RETEST_COLUMNS)),
        sufficiency=pd.DataFrame(sufficiency_rows, columns=list(SUFFICIENCY_COLUMNS)),
        run_labels=labels,
    )


def sufficiency_statement(note: str, too_little: str) -> str:
    """The data-sufficiency note of a target, never contradicting the data rule behind its word.

    When the data are too short for a word better than ``poor``
    (:func:`~trdnet.targeting.reliability.too_little_data`), the note says
    first that the target is not to be used yet; what the stability curve
    found (stretches that already agree, say) follows as a detail, since
    agreement between stretches of too little data does not make the
    target usable. Both are whole sentences.

    Parameters
    ----------
    note : str
        Note of :func:`minutes_to_reach` (empty when not computed).
    too_little : str
        Reason of the data rule (empty: the data suffice).

    Returns
    -------
    str
        Sentences (each begins with a capital and ends with a full stop).
    """
    if not too_little:
        return note
    return " ".join(n for n in (data_rule_note(too_little), note) if n)


def cap_for_retest(word: str, reason: str, retest_mm: float, settings: TargetSettings) -> tuple[str, str]:
    """At best ``poor`` when disjoint parts of the data put the target further apart than ``fair_r95_mm``.

    The bootstrap radius describes resampling of the joined data; a retest
    distance is the direct measure of what a second scan would do, so a
    retest beyond the radius allowed for ``fair`` overrides a narrower radius
    (the ``good`` limit, ``good_retest_mm``, is applied by
    :func:`~trdnet.targeting.reliability.reliability_word`).

    Parameters
    ----------
    word, reason : str
        From :func:`~trdnet.targeting.reliability.reliability_word`.
    retest_mm : float
        Retest distance (mm); NaN leaves the word as it is.
    settings : TargetSettings

    Returns
    -------
    (str, str)
    """
    if word in ("good", "fair") and np.isfinite(retest_mm) and retest_mm > settings.fair_r95_mm:
        return "poor", f"retest {retest_mm:.1f} > {settings.fair_r95_mm:g} mm (the fair limit); {reason}"
    return word, reason


def _target_or_nan(subset: _Subset, rows: np.ndarray, method: str, settings: TargetSettings) -> np.ndarray:
    try:
        return np.asarray(subset.target(rows, method, settings).xyz, dtype=float)
    except TargetingError:
        return np.full(3, np.nan)


def _retest(subset, method, settings, pieces, labels, sessions) -> list[dict]:
    """Targets from disjoint parts of the data: sessions against each other, else each run against the rest."""
    distinct = list(dict.fromkeys(s for s in sessions if s))
    out = []
    if len(distinct) >= 2:
        rows_of = {s: np.concatenate([p for p, ses in zip(pieces, sessions) if ses == s]) for s in distinct}
        targets = {s: _target_or_nan(subset, rows_of[s], method, settings) for s in distinct}
        for a, b in itertools.combinations(distinct, 2):
            out.append(_retest_row(method, "session", f"ses-{a} vs ses-{b}", targets[a], targets[b]))
    elif len(pieces) >= 2:
        for i, piece in enumerate(pieces):
            rest = np.concatenate([p for j, p in enumerate(pieces) if j != i])
            out.append(_retest_row(method, "leave-one-run-out", labels[i],
                                   _target_or_nan(subset, piece, method, settings),
                                   _target_or_nan(subset, rest, method, settings)))
    return out


def _retest_row(method, kind, held_out, xyz, other) -> dict:
    return {"method": method, "kind": kind, "held_out": held_out,
            "x": xyz[0], "y": xyz[1], "z": xyz[2], "other_x": other[0], "other_y": other[1], "other_z": other[2],
            "distance_mm": float(np.linalg.norm(xyz - other))}


def _stability_curve(subset, method, settings, tr, rng, fractions=(0.125, 0.25, 0.5), n_pairs: int = 4):
    """Median distance between targets of two disjoint stretches, per stretch length.

    A stretch is a contiguous (circular) window of the joined retained
    volumes; the second window starts right after the first, so the two never
    share a volume.
    """
    n_rows = int(subset.data.shape[0])
    curve = []
    for fraction in fractions:
        length = int(n_rows * fraction)
        if length < MIN_STRETCH_VOLUMES or 2 * length > n_rows:
            continue
        distances = []
        for start in rng.integers(0, n_rows, size=n_pairs):
            a = (start + np.arange(length)) % n_rows
            b = (start + length + np.arange(length)) % n_rows
            d = np.linalg.norm(_target_or_nan(subset, a, method, settings)
                               - _target_or_nan(subset, b, method, settings))
            if np.isfinite(d):
                distances.append(d)
        curve.append({"method": method, "minutes": length * tr / 60.0, "n_pairs": len(distances),
                      "median_distance_mm": float(np.median(distances)) if distances else np.nan})
    return curve


def minutes_to_reach(curve: pd.DataFrame, goal_mm: float, minutes_available: float, retest_mm: float = float("nan"),
                     max_extrapolation: float = MAX_EXTRAPOLATION) -> tuple[float, str]:
    """Minutes at which two independent scans would agree within ``goal_mm``.

    Fits ``log(distance) = a + b log(minutes)`` to the stability curve
    (least squares; sampling noise makes distances shrink roughly as
    ``minutes ** -0.5``, but the slope is fitted, not assumed) and solves for
    ``goal_mm``. No number is given when the curve does not fall at every
    step (noise, not convergence: the fit's slope means nothing), or when the
    answer lies beyond ``max_extrapolation`` times the minutes available. A
    retest distance above ``goal_mm`` is direct evidence that the data do not
    suffice, whatever the curve says.

    Parameters
    ----------
    curve : pandas.DataFrame
        ``minutes`` and ``median_distance_mm`` (from the participant step).
    goal_mm : float
    minutes_available : float
        Minutes of data the participant has (to say whether more is needed).
    retest_mm : float, optional
        Distance between targets of disjoint runs or sessions (NaN: none).
    max_extrapolation : float
        Largest answer, as a multiple of ``minutes_available``.

    Returns
    -------
    (float, str)
        Minutes (NaN when the data give no estimate, inf when the targets do
        not converge) and a plain note.
    """
    retest_fails = bool(np.isfinite(retest_mm) and retest_mm > goal_mm)
    not_enough = (f"The retest distance {retest_mm:.1f} mm exceeds {goal_mm:g} mm, so the {minutes_available:.1f} "
                  "min available do not suffice: treat this target as unreliable and scan again.")
    usable = curve[np.isfinite(curve["median_distance_mm"])] if len(curve) else curve
    if len(usable) < 2:
        return float("nan"), not_enough if retest_fails else "Too little data to estimate how much is needed."
    usable = usable.sort_values("minutes")
    if (usable["median_distance_mm"] <= goal_mm).all():
        if retest_fails:
            return float("nan"), not_enough
        minutes = float(usable["minutes"].min())
        return minutes, (f"Stretches of {minutes:.1f} min already agree within {goal_mm:g} mm "
                         f"({minutes_available:.1f} min available).")
    # A distance of 0 (same voxel) is floored at 0.1 mm so that the logarithm exists.
    distances = np.maximum(usable["median_distance_mm"].to_numpy(float), 0.1)
    slope, intercept = np.polyfit(np.log(usable["minutes"].to_numpy(float)), np.log(distances), 1)
    if slope >= 0:
        return float("inf"), (
            "Targets do not converge with more data: do not use this target; acquire more data."
        )
    cannot = f"The minutes needed for {goal_mm:g} mm cannot be estimated from these data"
    if (np.diff(distances) > 0).any():
        curve_text = ", ".join(f"{d:.1f}" for d in distances)
        return float("nan"), (f"{cannot} (stability {curve_text} mm does not fall with length). "
                              + (not_enough if retest_fails else "Treat this target with caution."))
    minutes = float(np.exp((np.log(goal_mm) - intercept) / slope))
    if minutes > max_extrapolation * minutes_available:
        return float("nan"), (f"{cannot} (beyond {max_extrapolation:g}x the {minutes_available:.1f} min available): "
                              "treat this target as unreliable and scan again.")
    if retest_fails:
        return float("nan"), not_enough
    if minutes <= minutes_available:
        return minutes, f"About {minutes:.0f} min needed for {goal_mm:g} mm; {minutes_available:.1f} min available."
    return minutes, (f"About {minutes:.0f} min needed for {goal_mm:g} mm but only {minutes_available:.1f} min "
                     "available: treat this target as unreliable and scan again.")
