"""Cohort figures drawn with matplotlib: distributions of connectivity and QC."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .figures_qc import NETWORK_ORDER
from .plotting import new_figure


def connectivity_distributions(networks: pd.DataFrame, value: str = "mean_z"):
    """Within- and between-network connectivity across runs (box + points).

    Parameters
    ----------
    networks : pandas.DataFrame
        Long table with ``run``, ``network_a``, ``network_b`` and ``value``.
    value : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    rank = {n: i for i, n in enumerate(NETWORK_ORDER)}
    pairs = sorted({(a, b) for a, b in zip(networks["network_a"], networks["network_b"])},
                   key=lambda p: (p[0] != p[1], rank.get(p[0], 9), rank.get(p[1], 9)))
    data = [networks.loc[(networks["network_a"] == a) & (networks["network_b"] == b), value]
            .to_numpy(float) for a, b in pairs]
    data = [d[np.isfinite(d)] for d in data]
    labels = [a if a == b else f"{a}-{b}" for a, b in pairs]
    fig = new_figure(9, 3.2)
    ax = fig.add_axes([0.08, 0.15, 0.9, 0.75])
    ax.boxplot(data, widths=0.5, showfliers=False)
    ax.set_xticks(range(1, len(labels) + 1), labels)
    rng = np.random.default_rng(0)  # jitter only, for legibility
    for i, d in enumerate(data, 1):
        ax.plot(i + rng.uniform(-0.12, 0.12, d.size), d, "o", ms=4, alpha=0.7,
                color="#26374a" if pairs[i - 1][0] == pairs[i - 1][1] else "#b36b00")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_ylabel(f"{value} (Fisher z)" if value == "mean_z" else value)
    ax.set_title("Within-network (blue points) and between-network (orange points) connectivity, one point per "
                 "run", fontsize=9, loc="left")
    return fig


def qc_distributions(qc: pd.DataFrame, min_minutes: float | None = None, fd_threshold: float | None = None):
    """Histograms of minutes retained and mean FD across runs.

    Parameters
    ----------
    qc : pandas.DataFrame
        One row per run with ``minutes_retained`` and ``mean_fd``.
    min_minutes, fd_threshold : float, optional
        Drawn as reference lines.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = new_figure(9, 2.8)
    for i, (column, line, label) in enumerate((("minutes_retained", min_minutes, "minimum analysed"),
                                               ("mean_fd", fd_threshold, "censoring threshold"))):
        ax = fig.add_axes([0.07 + i * 0.5, 0.18, 0.4, 0.7])
        values = qc[column].to_numpy(float) if column in qc else np.empty(0)
        values = values[np.isfinite(values)]
        ax.hist(values, bins=min(20, max(5, values.size)), color="#5b7fa6", edgecolor="white")
        if line is not None and np.isfinite(line):
            ax.axvline(line, color="#b3261e", ls="--", lw=1, label=f"{label} {line:g}")
            ax.legend(fontsize=7, frameon=False)
        ax.set_xlabel("minutes retained" if column == "minutes_retained" else "mean FD (mm)")
        ax.set_ylabel("runs")
    return fig
