"""QC and network figures drawn with matplotlib and nilearn's matrix plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
from nilearn import plotting

from .plotting import NETWORK_COLORS, new_figure

NETWORK_ORDER = ("DMN", "SN", "ECN")


def fd_trace(censoring: pd.DataFrame, fd_threshold: float, tr: float | None = None):
    """Framewise displacement over time, the threshold and censored volumes.

    Parameters
    ----------
    censoring : pandas.DataFrame
        ``desc-censoring_timeseries.tsv``: ``volume``, ``framewise_displacement``, ``retained``.
    fd_threshold : float
        Censoring threshold in mm; NaN when volumes were not censored (no line drawn).
    tr : float, optional
        Repetition time; the x axis is in seconds when given.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = new_figure(9, 2.4)
    ax = fig.add_axes([0.07, 0.22, 0.9, 0.68])
    t = censoring["volume"].to_numpy(float) * (tr or 1.0)
    fd = censoring["framewise_displacement"].to_numpy(float)
    censored = censoring["retained"].to_numpy(int) == 0
    ax.plot(t, fd, color="#26374a", lw=0.9, label="FD")
    if np.isfinite(fd_threshold):  # NaN: no censoring, so no threshold to draw
        ax.axhline(fd_threshold, color="#b3261e", ls="--", lw=1, label=f"threshold {fd_threshold:g} mm")
    if censored.any():
        top = np.nanmax(fd) if np.isfinite(fd).any() else 1.0
        ax.vlines(t[censored], 0, top, color="#b3261e", alpha=0.18, lw=2)
        ax.plot(t[censored], np.full(censored.sum(), top), "v", color="#b3261e", ms=3,
                label=f"censored ({censored.sum()} volumes)")
    ax.set_xlabel("time (s)" if tr else "volume")
    ax.set_ylabel("FD (mm)")
    ax.set_xlim(t.min(), t.max())
    ax.legend(loc="upper right", fontsize=8, ncol=3, frameon=False)
    return fig


def carpet(samples: dict, tr: float | None = None):
    """Carpet plot of sampled voxels before and after cleaning.

    Each voxel is z-scored over time. Before cleaning every volume is shown
    with censored ones marked; after cleaning only retained volumes exist,
    drawn at their original times.

    Parameters
    ----------
    samples : dict
        ``raw`` (T x K), ``clean`` (retained x K), ``retained`` (indices);
        ``unit`` ``"ROI"`` when the columns are ROIs, not sampled voxels.
    tr : float, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    raw = np.asarray(samples["raw"], dtype=np.float32)
    clean = np.asarray(samples["clean"], dtype=np.float32)
    retained = np.asarray(samples["retained"], dtype=int)
    n = raw.shape[0]
    step = tr or 1.0
    fig = new_figure(9, 4.2)
    # Scaled by the retained volumes: saturated non-steady-state volumes would otherwise set the grey scale.
    panels = (("before cleaning (all volumes)", _zscore(raw, retained), np.arange(n)),
              ("after cleaning (retained volumes)", _zscore(clean), retained))
    for i, (title, data, times) in enumerate(panels):
        ax = fig.add_axes([0.07, 0.56 - i * 0.47, 0.9, 0.36])
        full = np.full((n, data.shape[1]), np.nan, dtype=np.float32)
        full[times] = data
        ax.imshow(full.T, aspect="auto", cmap="gray", vmin=-2, vmax=2, interpolation="nearest",
                  extent=(0, n * step, data.shape[1], 0))
        censored = np.setdiff1d(np.arange(n), retained)
        if censored.size:
            ax.plot((censored + 0.5) * step, np.full(censored.size, -0.02 * data.shape[1]), "|",
                    color="#b3261e", ms=5, clip_on=False)
        ax.set_title(title + (" - red ticks: censored" if censored.size else ""), fontsize=9, loc="left")
        ax.set_ylabel("ROIs" if str(samples.get("unit", "voxel")) == "ROI" else "voxels")
        ax.set_yticks([])
    ax.set_xlabel("time (s)" if tr else "volume")
    return fig


def _zscore(data: np.ndarray, rows=None) -> np.ndarray:
    basis = data if rows is None or not len(rows) else data[rows]
    sd = basis.std(axis=0)
    sd[sd == 0] = 1
    return (data - basis.mean(axis=0)) / sd


def network_matrix(table: pd.DataFrame, value: str = "mean_z"):
    """The 3 x 3 within/between-network matrix with its values written in.

    Parameters
    ----------
    table : pandas.DataFrame
        ``networks.tsv`` (``network_a``, ``network_b``, ``mean_z``, ...).
    value : str
        Column shown.

    Returns
    -------
    matplotlib.figure.Figure
    """
    matrix, names = network_square(table, value)
    fig = new_figure(4.2, 3.6)
    ax = fig.add_axes([0.16, 0.12, 0.62, 0.76])
    limit = max(0.5, float(np.nanmax(np.abs(matrix)))) if np.isfinite(matrix).any() else 1.0
    plotting.plot_matrix(matrix, labels=names, axes=ax, vmin=-limit, vmax=limit, cmap="RdBu_r",
                         colorbar=True, title=None)
    for i in range(len(names)):
        for j in range(len(names)):
            text = "n/a" if not np.isfinite(matrix[i, j]) else f"{matrix[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=11,
                    color="white" if abs(np.nan_to_num(matrix[i, j])) > 0.6 * limit else "black")
    ax.set_title(f"{value} (Fisher z)" if value == "mean_z" else value, fontsize=10)
    return fig


def network_square(table: pd.DataFrame, value: str = "mean_z") -> tuple[np.ndarray, list[str]]:
    """Symmetric network x network matrix from the long ``networks.tsv`` table."""
    present = [n for n in NETWORK_ORDER if n in set(table["network_a"]) | set(table["network_b"])]
    extra = sorted((set(table["network_a"]) | set(table["network_b"])) - set(present))
    names = present + extra
    index = {n: i for i, n in enumerate(names)}
    matrix = np.full((len(names), len(names)), np.nan)
    for row in table.itertuples(index=False):
        a, b = index[row.network_a], index[row.network_b]
        matrix[a, b] = matrix[b, a] = float(getattr(row, value))
    return matrix, names


def roi_matrix(matrix: np.ndarray, networks: list[str]):
    """ROI-by-ROI correlation matrix ordered by network, with block boundaries.

    Parameters
    ----------
    matrix : numpy.ndarray, shape (R, R)
    networks : list of str, length R
        Network of each ROI (the matrix is reordered DMN, SN, ECN).

    Returns
    -------
    matplotlib.figure.Figure
    """
    labels = np.asarray(networks, dtype=str)
    rank = {n: i for i, n in enumerate(NETWORK_ORDER)}
    # Core networks first, then every other network as one block (a parcellation may interleave hemispheres).
    others = {n: i for i, n in enumerate(sorted(set(labels) - set(rank)), start=len(rank))}
    order = np.argsort([rank.get(n, others.get(n)) for n in labels], kind="stable")
    ordered = np.asarray(matrix, dtype=np.float32)[np.ix_(order, order)].copy()
    np.fill_diagonal(ordered, np.nan)
    labels = labels[order]
    fig = new_figure(5.2, 4.6)
    many = len(set(labels)) > 3  # room for longer, rotated network names
    ax = fig.add_axes([0.17, 0.15, 0.67, 0.78] if many else [0.12, 0.08, 0.72, 0.84])
    plotting.plot_matrix(ordered, axes=ax, vmin=-1, vmax=1, cmap="RdBu_r", colorbar=True, title=None)
    edges = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    for e in edges:
        ax.axhline(e - 0.5, color="black", lw=0.8)
        ax.axvline(e - 0.5, color="black", lw=0.8)
    bounds = np.r_[0, edges, labels.size]
    centres = (bounds[:-1] + bounds[1:]) / 2 - 0.5
    names = [labels[b] for b in bounds[:-1]]
    ax.set_xticks(centres, names, rotation=90 if many else 0)
    ax.set_yticks(centres, names)
    for tick, name in zip(ax.get_xticklabels() + ax.get_yticklabels(), names + names):
        tick.set_color(NETWORK_COLORS.get(name, "black"))
    ax.set_title(f"ROI x ROI Pearson r ({labels.size} ROIs)", fontsize=10)
    return fig
