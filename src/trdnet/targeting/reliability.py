"""How stable a personalised target is: split-half and circular block bootstrap.

Only the columns a method needs (sgACC seed + DLPFC search region) are
resampled; the ``seedmap`` reference signal is a fixed linear combination of
whole-brain columns, so it is computed once and its rows are resampled with
the others (re-z-scoring each of its thousands of source columns inside a
resample is neglected).
"""

from __future__ import annotations

import math

import numpy as np

from ..cleaned import CleanedRun, correlate_with, zscore_columns
from ..config import TargetSettings
from ..errors import TargetingError
from .regions import search_columns, seed_columns
from .result import TargetResult
from .seedmap import group_map_values, reference_signal, seed_map
from .select import run_method
from .sites import bootstrap_sites, competing_share, own_site_r95, stronger_runner_up

#: High-pass cut-off assumed when neither the caller nor the run's QC gives one.
DEFAULT_HIGH_PASS_HZ = 0.01


class _Subset:
    """The seed and search columns of a run, ready to be resampled by rows."""

    def __init__(self, cleaned: CleanedRun, seed_cols, search_cols, reference):
        self.columns = np.union1d(seed_cols, search_cols)
        self.seed = np.searchsorted(self.columns, seed_cols)
        self.search = np.searchsorted(self.columns, search_cols)
        self.space = cleaned.space.subset(self.columns)
        self.data = np.ascontiguousarray(cleaned.data[:, self.columns])
        self.reference = reference
        self.cleaned = cleaned

    def target(self, rows: np.ndarray, method: str, settings: TargetSettings) -> TargetResult:
        data = zscore_columns(self.data[rows])
        run = CleanedRun(
            data=data,
            space=self.space,
            tr=self.cleaned.tr,
            retained=self.cleaned.retained[rows],
            n_volumes=self.cleaned.n_volumes,
            simulated=self.cleaned.simulated,
        )
        seed_r = correlate_with(data, data[:, self.seed].mean(axis=1, dtype=np.float64))
        reference = None if self.reference is None else self.reference[rows]
        return run_method(
            method, run, self.seed, self.search, settings, seed_r, reference=reference
        )


def intended_block_length(tr: float, settings: TargetSettings, high_pass_hz: float | None) -> int:
    """Block length (volumes) the circular block bootstrap aims for, before any cap.

    One period of the high-pass cut-off (1 / 0.01 Hz = 100 s by default), or
    ``settings.bootstrap_block_s``. After band-pass filtering the signal is
    autocorrelated over about the period of its slowest retained frequency;
    blocks at least that long keep that structure, so the bootstrap does not
    treat neighbouring volumes as independent and understate the spread.
    """
    seconds = settings.bootstrap_block_s
    if seconds is None:
        seconds = 1.0 / (high_pass_hz or DEFAULT_HIGH_PASS_HZ)
    return int(max(1, math.ceil(seconds / tr)))


def block_length(n_rows: int, tr: float, settings: TargetSettings, high_pass_hz: float | None) -> int:
    """Block length (volumes) of the circular block bootstrap.

    :func:`intended_block_length`, capped at half the rows so that a resample
    mixes at least two blocks (a capped block makes the word at best ``poor``,
    see :func:`too_little_data`).
    """
    return int(max(1, min(intended_block_length(tr, settings, high_pass_hz), n_rows // 2)))


#: How the reason of :func:`too_little_data` begins.
TOO_LITTLE_DATA = "too little data"


def too_little_data(minutes_retained: float, settings: TargetSettings, *, block_volumes: int | None = None,
                    intended_block_volumes: int | None = None, tr: float | None = None) -> str:
    """Why the data are too short for a reliability word better than ``poor`` (empty: they are not).

    Two rules: fewer retained minutes than ``settings.min_minutes_for_word``
    (see its comment in :class:`~trdnet.config.TargetSettings` for the
    literature behind the default), or a bootstrap whose block had to be cut
    below its intended length (:func:`block_length`): with few blocks the
    resamples barely differ from the data and their spread says little.

    Parameters
    ----------
    minutes_retained : float
        Minutes of retained (uncensored) volumes the target was computed from.
    settings : TargetSettings
    block_volumes, intended_block_volumes : int, optional
        Block length the bootstrap used and the one it aimed for (volumes);
        the block rule is checked only when both are given.
    tr : float, optional
        Repetition time (s), to state the blocks in seconds.

    Returns
    -------
    str
        The reason, worded for the target's sidecar and note, or ``""``.
    """
    reasons = []
    if minutes_retained < settings.min_minutes_for_word:
        reasons.append(f"{minutes_retained:.1f} min retained, {settings.min_minutes_for_word:g} min needed "
                       "for a word better than poor")
    if block_volumes is not None and intended_block_volumes is not None and block_volumes < intended_block_volumes:
        unit, scale = (" s", tr) if tr else (" volumes", 1.0)
        reasons.append(f"the bootstrap block was cut to {block_volumes * scale:g}{unit} (half the data) from "
                       f"{intended_block_volumes * scale:g}{unit}")
    return f"{TOO_LITTLE_DATA}: " + "; ".join(reasons) if reasons else ""


def poor_note(word: str, reason: str, too_little: str = "") -> str:
    """What a target's note says when its word is ``poor`` for a reason other than the data rule.

    Parameters
    ----------
    word, reason : str
        From :func:`reliability_word` (or :func:`~trdnet.targeting.participant.cap_for_retest`).
    too_little : str, optional
        Reason of the data rule; when set, :func:`data_rule_note` already says it.

    Returns
    -------
    str
        ``Reliability poor (<reason>): do not use this target as it stands.``, or empty.
    """
    if word != "poor" or too_little or not reason:
        return ""
    return f"Reliability poor ({reason}): do not use this target as it stands."


def data_rule_note(too_little: str) -> str:
    """What a target's note says when the data rule (:func:`too_little_data`) makes its word ``poor``.

    The rule wins over every other measure of agreement (bootstrap radius,
    split-half, stability of stretches): the note says plainly that the
    target is not to be used yet.

    Parameters
    ----------
    too_little : str
        Reason from :func:`too_little_data` (empty: the data suffice).

    Returns
    -------
    str
        One sentence (``Too little data (<reasons>): do not use this target
        yet; acquire more data.``), or ``""`` when ``too_little`` is empty.
    """
    if not too_little:
        return ""
    reasons = too_little.removeprefix(f"{TOO_LITTLE_DATA}: ")
    return f"{TOO_LITTLE_DATA.capitalize()} ({reasons}): do not use this target yet; acquire more data."


def circular_block_rows(n_rows: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of one circular block-bootstrap resample of ``n_rows`` rows."""
    n_blocks = math.ceil(n_rows / block)
    starts = rng.integers(0, n_rows, size=n_blocks)
    return ((starts[:, None] + np.arange(block)) % n_rows).ravel()[:n_rows]


def reliability_word(r95_mm: float, split_half_mm: float, settings: TargetSettings,
                     competing_share: float = float("nan"), retest_mm: float = float("nan"),
                     runner_up: str = "", too_little: str = "") -> tuple[str, str]:
    """Word and reason from the documented thresholds.

    ``good``: bootstrap r95 <= ``good_r95_mm``, split-half <=
    ``good_split_half_mm``, no other bootstrap site holding more than
    ``max_competing_share`` of the resamples, no runner-up cluster more
    anticorrelated than the chosen one, and (when runs can be compared) a
    retest distance <= ``good_retest_mm``; ``fair``: r95 <= ``fair_r95_mm``
    (also the best word when the split-half could not be computed, another
    site competes, a stronger cluster was passed over or the runs disagree);
    ``poor`` otherwise, and always when the data are too short
    (``too_little``); ``unknown`` without a bootstrap.

    Parameters
    ----------
    r95_mm, split_half_mm : float
    settings : TargetSettings
    competing_share : float, optional
        Largest share of resamples in a site other than the target's
        (:func:`~trdnet.targeting.sites.competing_share`); NaN = not known.
    retest_mm : float, optional
        Distance between targets of separate runs or sessions; NaN = one run.
    runner_up : str, optional
        Reason from :func:`~trdnet.targeting.sites.stronger_runner_up`
        (empty: the chosen cluster is the strongest, or no clusters).
    too_little : str, optional
        Reason from :func:`too_little_data` (empty: enough data).

    Returns
    -------
    (str, str)
    """
    if not np.isfinite(r95_mm):
        return "unknown", "no bootstrap estimate"
    if too_little:
        return "poor", f"{too_little} (r95 {r95_mm:.1f} mm)"
    limits = []
    if not (np.isfinite(split_half_mm) and split_half_mm <= settings.good_split_half_mm):
        limits.append("split-half unavailable" if not np.isfinite(split_half_mm)
                      else f"split-half {split_half_mm:.1f} > {settings.good_split_half_mm:g} mm")
    if np.isfinite(competing_share) and competing_share > settings.max_competing_share:
        limits.append(f"another site holds {competing_share:.0%} of the resamples "
                      f"(> {settings.max_competing_share:.0%})")
    if np.isfinite(retest_mm) and retest_mm > settings.good_retest_mm:
        limits.append(f"runs disagree by {retest_mm:.1f} > {settings.good_retest_mm:g} mm")
    if runner_up:
        limits.append(runner_up)
    if r95_mm <= settings.good_r95_mm and not limits:
        extra = "" if not np.isfinite(retest_mm) else f", retest {retest_mm:.1f} mm"
        return "good", (
            f"r95 {r95_mm:.1f} <= {settings.good_r95_mm:g} mm and split-half "
            f"{split_half_mm:.1f} <= {settings.good_split_half_mm:g} mm{extra}"
        )
    if r95_mm <= settings.fair_r95_mm:
        extra = f"; at most fair: {'; '.join(limits)}" if limits else ""
        return "fair", f"r95 {r95_mm:.1f} <= {settings.fair_r95_mm:g} mm{extra}"
    return "poor", f"r95 {r95_mm:.1f} > {settings.fair_r95_mm:g} mm"


def target_reliability(
    cleaned: CleanedRun,
    method: str,
    settings: TargetSettings,
    random_state: int | None = 0,
    *,
    full_target: TargetResult | None = None,
    group_map=None,
    high_pass_hz: float | None = None,
    seed_cols: np.ndarray | None = None,
    search_cols: np.ndarray | None = None,
) -> dict:
    """Split-half distance and bootstrap cloud of one method's target.

    Parameters
    ----------
    cleaned : CleanedRun
    method : str
        ``peak``, ``cluster``, ``seedmap`` or ``hierarchical``.
    settings : TargetSettings
        Uses ``n_bootstrap``, ``min_half_volumes``, ``bootstrap_block_s``,
        ``min_minutes_for_word`` and the reliability thresholds.
    random_state : int or None
        Seed of :func:`numpy.random.default_rng`; same seed, same cloud.
    full_target : TargetResult, optional
        Target on all the data (computed when absent).
    group_map : optional
        Group sgACC map for ``seedmap`` (default ``settings.group_map``).
    high_pass_hz : float, optional
        High-pass cut-off used in cleaning (default ``cleaned.qc['high_pass']``
        or 0.01 Hz), sets the block length (see :func:`block_length`).
    seed_cols, search_cols : numpy.ndarray of int, optional
        Regions (computed from ``settings`` when absent).

    Returns
    -------
    dict
        ``split_half_mm`` (NaN if too short) and ``split_half_reason``;
        ``split_half_targets`` (2 x 3 world RAS mm: first half, second half;
        NaN when unavailable) and ``split_half_volumes`` (volumes per half);
        ``bootstrap_cloud`` (n x 3 world RAS mm, NaN rows where a resample
        found no target), ``bootstrap_median_mm``, ``bootstrap_r95_mm`` (the
        95th percentile of the resampled targets' distances to the target,
        times ``settings.r95_scale``),
        ``n_bootstrap``, ``n_failed``, ``block_length_volumes``,
        ``block_length_s``, ``block_intended_volumes`` (before the cap at
        half the data), ``too_little_data`` (reason from
        :func:`too_little_data`, empty when the data suffice), ``sites`` (the cloud grouped into sites, see
        :func:`~trdnet.targeting.sites.bootstrap_sites`), ``competing_share``
        (largest share of another site), ``site_r95_mm`` (the 95th
        percentile within the target's own site, unscaled, see
        :func:`~trdnet.targeting.sites.own_site_r95`; reported, not used by
        the word), ``n_sites`` (the target's site plus
        every other site above ``max_competing_share``), ``reliability``,
        ``reliability_reason``, ``random_state``.
    """
    seed_cols = seed_columns(cleaned.space, settings) if seed_cols is None else seed_cols
    search_cols = search_columns(cleaned.space, settings) if search_cols is None else search_cols
    reference = None
    if method == "seedmap":
        source = group_map if group_map is not None else settings.group_map
        if source is None:
            raise TargetingError(
                "method 'seedmap' needs a group sgACC map: pass group_map or set targeting.group_map"
            )
        weights = group_map_values(cleaned.space, source)
        reference = reference_signal(cleaned, weights, search_cols, settings.grey_matter_threshold)
    if full_target is None:
        full_target = run_method(
            method, cleaned, seed_cols, search_cols, settings,
            seed_map(cleaned, seed_cols), reference=reference,
        )
    subset = _Subset(cleaned, seed_cols, search_cols, reference)
    n_rows = cleaned.n_timepoints
    out: dict = {"method": method, "random_state": random_state}

    half = n_rows // 2
    out["split_half_targets"] = np.full((2, 3), np.nan)
    out["split_half_volumes"] = (half, n_rows - half)
    if half < settings.min_half_volumes:
        out["split_half_mm"] = float("nan")
        out["split_half_reason"] = (
            f"{n_rows} retained volumes: each half needs >= {settings.min_half_volumes}"
        )
    else:
        try:
            first = subset.target(np.arange(half), method, settings)
            second = subset.target(np.arange(half, n_rows), method, settings)
            out["split_half_mm"] = float(np.linalg.norm(first.xyz - second.xyz))
            out["split_half_targets"] = np.vstack([first.xyz, second.xyz]).astype(float)
            out["split_half_reason"] = ""
        except TargetingError as exc:
            out["split_half_mm"] = float("nan")
            out["split_half_reason"] = f"a half found no target ({exc})"

    if high_pass_hz is None:
        high_pass_hz = cleaned.qc.get("high_pass")
    block = block_length(n_rows, cleaned.tr, settings, high_pass_hz)
    intended = intended_block_length(cleaned.tr, settings, high_pass_hz)
    rng = np.random.default_rng(random_state)
    cloud = np.full((settings.n_bootstrap, 3), np.nan)
    for b in range(settings.n_bootstrap):
        rows = circular_block_rows(n_rows, block, rng)
        try:
            cloud[b] = subset.target(rows, method, settings).xyz
        except TargetingError:
            continue
    dist = np.linalg.norm(cloud - np.asarray(full_target.xyz, dtype=float), axis=1)
    ok = np.isfinite(dist)
    median = float(np.median(dist[ok])) if ok.any() else float("nan")
    r95 = settings.r95_scale * float(np.percentile(dist[ok], 95)) if ok.any() else float("nan")
    sites = bootstrap_sites(cloud, full_target.xyz, settings.site_separation_mm)
    competing = competing_share(sites)
    short = too_little_data(cleaned.minutes, settings, block_volumes=block, intended_block_volumes=intended,
                            tr=cleaned.tr)
    word, reason = reliability_word(r95, out["split_half_mm"], settings, competing_share=competing,
                                    runner_up=stronger_runner_up(full_target.candidates), too_little=short)
    out.update(
        sites=sites,
        competing_share=competing,
        n_sites=int((sites["share"] >= settings.max_competing_share).sum() + (
            0 if sites.loc[sites["holds_target"].astype(bool), "share"].ge(settings.max_competing_share).any()
            else 1)) if len(sites) else 0,
        bootstrap_cloud=cloud,
        bootstrap_median_mm=median,
        bootstrap_r95_mm=r95,
        site_r95_mm=own_site_r95(cloud, full_target.xyz, settings.site_separation_mm),
        n_bootstrap=int(settings.n_bootstrap),
        n_failed=int((~ok).sum()),
        block_length_volumes=block,
        block_length_s=float(block * cleaned.tr),
        block_intended_volumes=intended,
        too_little_data=short,
        reliability=word,
        reliability_reason=reason,
    )
    return out
