"""Competing sites: every candidate cluster of a map, and the bootstrap cloud grouped into sites.

A single coordinate hides a common situation in sgACC maps: two separate
regions of the DLPFC are about equally anticorrelated, and which one wins
depends on the data at hand. Both are reported: the candidate clusters of the
full data (centre, size, mean and peak value) and, from the bootstrap, the
share of resamples whose target fell in each site.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.cluster import hierarchy

from ..geometry import Geometry

#: Columns of a candidate-cluster table (one row per cluster, best first).
CANDIDATE_COLUMNS = ("rank", "x", "y", "z", "n_voxels", "volume_mm3", "mean_r", "peak_r", "score", "chosen")

#: Columns of a bootstrap-site table (one row per site, largest share first).
SITE_COLUMNS = ("site", "x", "y", "z", "n_resamples", "share", "holds_target")

#: How clusters can be ranked (``TargetSettings.cluster_rank``).
CLUSTER_RANKS = ("size", "sum", "mean")

#: How the centre of a cluster is weighted (``TargetSettings.centre_weights``).
CENTRE_WEIGHTS = ("abs", "uniform")


def cluster_scores(values: np.ndarray, labels: np.ndarray, rank: str) -> np.ndarray:
    """Score of every cluster (labels 1..K), larger is better.

    Parameters
    ----------
    values : numpy.ndarray, shape (S,)
        Map clustered (negative = anticorrelated).
    labels : numpy.ndarray of int, shape (S,)
        Cluster label per voxel, 0 outside every cluster.
    rank : {"size", "sum", "mean"}
        ``size``: voxel count (Fox 2013; Cash 2021); ``sum``: summed
        anticorrelation (sum of -value over the cluster, size and strength
        together); ``mean``: mean anticorrelation (strength alone).

    Returns
    -------
    numpy.ndarray, shape (K,)
    """
    k = int(labels.max())
    sizes = np.bincount(labels, minlength=k + 1)[1:].astype(float)
    sums = -np.bincount(labels, weights=values.astype(float), minlength=k + 1)[1:]
    if rank == "size":
        # Ties in size go to the stronger cluster.
        return sizes + 1e-6 * sums / np.maximum(sizes, 1)
    if rank == "sum":
        return sums
    if rank == "mean":
        return sums / np.maximum(sizes, 1)
    raise ValueError(f"unknown cluster rank {rank!r}; accepted: {list(CLUSTER_RANKS)}")


def cluster_centre(geometry: Geometry, members: np.ndarray, values: np.ndarray, weights: str) -> np.ndarray:
    """Centre (world RAS mm of the geometry's space) of one cluster.

    ``weights="abs"``: each voxel weighted by |value| of the map (the centre
    leans towards the strongest anticorrelation inside the cluster, so a
    graded cluster's centre is not its geometric centroid); ``"uniform"``:
    the plain centroid of the cluster's voxels.

    Parameters
    ----------
    geometry : trdnet.geometry.Geometry
    members : numpy.ndarray of int, shape (M,)
        The cluster's columns.
    values : numpy.ndarray, shape (M,)
        The map's value at each member.
    weights : {"abs", "uniform"}
    """
    if weights == "uniform":
        w = np.ones(len(members))
    elif weights == "abs":
        w = np.abs(values).astype(np.float64)
    else:
        raise ValueError(f"unknown centre weights {weights!r}; accepted: {list(CENTRE_WEIGHTS)}")
    return geometry.centre(members, w)


def candidate_table(geometry: Geometry, columns: np.ndarray, labels: np.ndarray, values: np.ndarray,
                    scores: np.ndarray, weights: str, chosen: int) -> pd.DataFrame:
    """One row per candidate cluster, best score first.

    Parameters
    ----------
    geometry : trdnet.geometry.Geometry
    columns : numpy.ndarray of int, shape (S,)
        The region's columns (``labels`` and ``values`` follow them).
    labels : numpy.ndarray of int, shape (S,)
        Cluster labels 1..K (0 = not kept).
    values : numpy.ndarray, shape (S,)
        The (smoothed) map that was clustered.
    scores : numpy.ndarray, shape (K,)
        From :func:`cluster_scores`.
    weights : str
        Centre weighting (see :func:`cluster_centre`).
    chosen : int
        Label of the cluster the target came from.

    Returns
    -------
    pandas.DataFrame
        :data:`CANDIDATE_COLUMNS`; x, y, z are the (unplaced) centre in world
        RAS mm; ``mean_r`` and ``peak_r`` (most negative) are values of the
        clustered map; ``n_voxels`` counts voxels or vertices and
        ``volume_mm3`` is NaN for vertices (they have no volume).
    """
    unit_mm3 = geometry.column_volume_mm3
    rows = []
    for label in range(1, int(labels.max()) + 1):
        members = np.flatnonzero(labels == label)
        if members.size == 0:
            continue
        centre = cluster_centre(geometry, columns[members], values[members], weights)
        rows.append({
            "x": centre[0], "y": centre[1], "z": centre[2], "n_voxels": int(members.size),
            "volume_mm3": members.size * unit_mm3 if unit_mm3 else np.nan, "mean_r": float(values[members].mean()),
            "peak_r": float(values[members].min()), "score": float(scores[label - 1]),
            "chosen": label == chosen,
        })
    table = pd.DataFrame(rows, columns=[c for c in CANDIDATE_COLUMNS if c != "rank"])
    table = table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def bootstrap_sites(cloud: np.ndarray, target_xyz, separation_mm: float) -> pd.DataFrame:
    """Group bootstrap targets into sites and give each site's share of resamples.

    Points are joined by single linkage: two resampled targets belong to the
    same site when a chain of targets, each within ``separation_mm`` of the
    next, links them. The full-data target is clustered with the cloud, so the
    site holding it is known (``holds_target``).

    Parameters
    ----------
    cloud : numpy.ndarray, shape (n, 3)
        Bootstrap targets (world RAS mm; NaN rows where a resample found none).
    target_xyz : array-like, shape (3,)
        Target from all the data.
    separation_mm : float

    Returns
    -------
    pandas.DataFrame
        :data:`SITE_COLUMNS`, largest share first; ``share`` is over the
        resamples that found a target; x, y, z the site's mean.
    """
    ok, cloud_labels, target_label = _site_labels(cloud, target_xyz, separation_mm)
    if ok.shape[0] == 0:
        return pd.DataFrame(columns=list(SITE_COLUMNS))
    rows = []
    for label in np.unique(np.append(cloud_labels, target_label)):
        inside = ok[cloud_labels == label]
        centre = inside.mean(axis=0) if inside.shape[0] else np.asarray(target_xyz, dtype=float)
        rows.append({"x": centre[0], "y": centre[1], "z": centre[2], "n_resamples": int(inside.shape[0]),
                     "share": inside.shape[0] / ok.shape[0], "holds_target": bool(label == target_label)})
    table = pd.DataFrame(rows).sort_values(["share", "holds_target"], ascending=False, kind="stable")
    table = table.reset_index(drop=True)
    table.insert(0, "site", np.arange(1, len(table) + 1))
    return table[list(SITE_COLUMNS)]


def _site_labels(cloud, target_xyz, separation_mm: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Resamples that found a target, their single-linkage site labels and the full-data target's label."""
    cloud = np.asarray(cloud, dtype=float).reshape(-1, 3)
    ok = cloud[np.all(np.isfinite(cloud), axis=1)]
    points = np.vstack([ok, np.asarray(target_xyz, dtype=float)[None]])
    if points.shape[0] == 1:
        labels = np.ones(1, dtype=int)
    else:
        labels = hierarchy.fcluster(hierarchy.linkage(points, method="single"), t=separation_mm,
                                    criterion="distance")
    return ok, labels[:-1], int(labels[-1])


def own_site_r95(cloud: np.ndarray, target_xyz, separation_mm: float) -> float:
    """95th percentile of the distances to the target of the resamples in the target's own site (mm).

    A radius of the site the target sits on, leaving out resamples that
    jumped to another site (their share is
    :func:`competing_share`'s business). Not scaled by ``r95_scale`` and
    not used by the reliability word.

    Parameters
    ----------
    cloud : numpy.ndarray, shape (n, 3)
        Bootstrap targets (world RAS mm; NaN rows where a resample found none).
    target_xyz : array-like, shape (3,)
    separation_mm : float
        Single-linkage step that joins resamples into one site.

    Returns
    -------
    float
        NaN when no resample sits on the target's site.
    """
    ok, labels, target_label = _site_labels(cloud, target_xyz, separation_mm)
    mine = ok[labels == target_label]
    if mine.shape[0] == 0:
        return float("nan")
    return float(np.percentile(np.linalg.norm(mine - np.asarray(target_xyz, dtype=float), axis=1), 95))


def stronger_runner_up(candidates: pd.DataFrame | None) -> str:
    """Why the runner-up cluster undermines the chosen one, or ``""``.

    The runner-up is the best-scored candidate cluster not chosen. When it is
    more anticorrelated than the chosen cluster, by its mean or by its peak
    value, the choice rests on the ranking rule (e.g. size) against the
    strength of the map, and a second scan may well pick the other site.

    Parameters
    ----------
    candidates : pandas.DataFrame or None
        :data:`CANDIDATE_COLUMNS` of one method (best first), or None for a
        method without clusters.

    Returns
    -------
    str
        A plain reason (empty when the chosen cluster is at least as strong).
    """
    if candidates is None or len(candidates) < 2:
        return ""
    chosen = candidates[candidates["chosen"].astype(bool)]
    others = candidates[~candidates["chosen"].astype(bool)]
    if chosen.empty or others.empty:
        return ""
    mine, runner = chosen.iloc[0], others.iloc[0]
    stronger = [f"{what} r {runner[col]:.2f} < {mine[col]:.2f}" for col, what in (("mean_r", "mean"), ("peak_r", "peak"))
                if runner[col] < mine[col]]
    if not stronger:
        return ""
    return (f"the runner-up cluster at ({runner['x']:.0f}, {runner['y']:.0f}, {runner['z']:.0f}) is more "
            f"anticorrelated ({', '.join(stronger)})")


def competing_share(sites: pd.DataFrame) -> float:
    """Largest share of resamples held by a site other than the target's (0 when none)."""
    if sites is None or len(sites) == 0:
        return float("nan")
    others = sites.loc[~sites["holds_target"].astype(bool), "share"]
    return float(others.max()) if len(others) else 0.0
