"""Cohort statistics on network connectivity: two-sample tests with Hedges' g
and Benjamini-Hochberg FDR, and the QC-FC motion check.

Every function takes one value per participant: with several runs, the
participant's value is the mean over their included runs (see
:func:`participant_means`), so each person counts once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

PAIR = ["network_a", "network_b"]

TWO_SAMPLE_COLUMNS = ["network_a", "network_b", "group_a", "group_b", "n_a", "n_b", "mean_a", "mean_b", "sd_a",
                      "sd_b", "t", "p", "hedges_g", "p_fdr"]


def participant_means(networks: pd.DataFrame, value: str = "mean_z") -> pd.DataFrame:
    """One connectivity value per participant and network pair.

    Parameters
    ----------
    networks : pandas.DataFrame
        Long cohort table (``participant_id``, ``network_a``, ``network_b``,
        ``value``), one row per run x network pair.
    value : str
        Column to average over a participant's runs (Fisher z by default, so
        that averaging is done on the z scale).

    Returns
    -------
    pandas.DataFrame
        Index ``participant_id``, columns a (network_a, network_b) MultiIndex.
    """
    wide = networks.groupby(["participant_id", *PAIR])[value].mean().unstack(PAIR)
    order = pd.MultiIndex.from_frame(networks[PAIR].drop_duplicates())  # keep the per-run tables' pair order
    return wide.reindex(columns=order)


def participant_mean_fd(qc: pd.DataFrame) -> pd.Series:
    """Mean framewise displacement per participant (mean over their runs)."""
    return qc.groupby("participant_id")["mean_fd"].mean()


def hedges_g(a, b) -> float:
    """Hedges' g of ``a - b``: Cohen's d with the pooled SD, times the small-sample correction.

    ``J = 1 - 3 / (4 (n_a + n_b - 2) - 1)`` (Hedges 1981; the usual approximation).

    Returns
    -------
    float
        NaN when a group has fewer than 2 values or the pooled SD is 0.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n_a, n_b = a.size, b.size
    if n_a < 2 or n_b < 2:
        return float("nan")
    dof = n_a + n_b - 2
    pooled = np.sqrt(((n_a - 1) * a.var(ddof=1) + (n_b - 1) * b.var(ddof=1)) / dof)
    if pooled == 0:
        return float("nan")
    return float((a.mean() - b.mean()) / pooled * (1.0 - 3.0 / (4.0 * dof - 1.0)))


def fdr_bh(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (:func:`scipy.stats.false_discovery_control`); NaN stays NaN."""
    p = np.asarray(p, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        adjusted[finite] = stats.false_discovery_control(p[finite], method="bh")
    return adjusted


def two_sample_table(wide: pd.DataFrame, groups: pd.Series, contrast: tuple[str, str],
                     equal_var: bool = False) -> pd.DataFrame:
    """Compare two groups on every network pair.

    Parameters
    ----------
    wide : pandas.DataFrame
        From :func:`participant_means`.
    groups : pandas.Series
        Group label per ``participant_id``.
    contrast : (str, str)
        Labels of group a and group b; differences, t and g are a - b.
    equal_var : bool
        False: Welch's t-test; True: Student's t-test (pooled variance).

    Returns
    -------
    pandas.DataFrame
        One row per network pair: ``n_a``, ``n_b``, ``mean_a``, ``mean_b``,
        ``sd_a``, ``sd_b``, ``t``, ``p``, ``hedges_g``, ``p_fdr`` (BH over the
        network pairs of this table).
    """
    label_a, label_b = contrast
    rows = []
    for pair in wide.columns:
        values = wide[pair].dropna()
        labels = groups.reindex(values.index)
        a = values[labels == label_a].to_numpy(float)
        b = values[labels == label_b].to_numpy(float)
        if a.size >= 2 and b.size >= 2:
            t, p = stats.ttest_ind(a, b, equal_var=equal_var)
        else:
            t, p = float("nan"), float("nan")
        rows.append({
            "network_a": pair[0], "network_b": pair[1], "group_a": label_a, "group_b": label_b,
            "n_a": a.size, "n_b": b.size,
            "mean_a": a.mean() if a.size else np.nan, "mean_b": b.mean() if b.size else np.nan,
            "sd_a": a.std(ddof=1) if a.size > 1 else np.nan, "sd_b": b.std(ddof=1) if b.size > 1 else np.nan,
            "t": float(t), "p": float(p), "hedges_g": hedges_g(a, b),
        })
    table = pd.DataFrame(rows, columns=TWO_SAMPLE_COLUMNS[:-1])
    table["p_fdr"] = fdr_bh(table["p"])
    return table


def qcfc_table(wide: pd.DataFrame, mean_fd: pd.Series) -> pd.DataFrame:
    """QC-FC: Pearson r across participants between each connectivity value and mean FD.

    A connectivity value that tracks motion across people is suspect; a large
    share of pairs with clear QC-FC correlations means denoising left motion in.

    Parameters
    ----------
    wide : pandas.DataFrame
        From :func:`participant_means`.
    mean_fd : pandas.Series
        Mean FD per ``participant_id``.

    Returns
    -------
    pandas.DataFrame
        ``network_a``, ``network_b``, ``r``, ``p``, ``p_fdr`` (BH), ``n``;
        r and p are NaN with fewer than 3 participants or a constant input.
    """
    rows = []
    for pair in wide.columns:
        joined = pd.concat([wide[pair], mean_fd.rename("fd")], axis=1, join="inner").dropna()
        x, y = joined.iloc[:, 0].to_numpy(float), joined["fd"].to_numpy(float)
        if len(joined) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
            r, p = stats.pearsonr(x, y)
        else:
            r, p = float("nan"), float("nan")
        rows.append({"network_a": pair[0], "network_b": pair[1], "r": float(r), "p": float(p), "n": len(joined)})
    table = pd.DataFrame(rows, columns=["network_a", "network_b", "r", "p", "n"])
    table["p_fdr"] = fdr_bh(table["p"])
    return table[["network_a", "network_b", "r", "p", "p_fdr", "n"]]
