"""Hierarchical-clustering target (Cole et al. 2020 SNT, as described for
contarg's ``hierarchical`` method), with a spatial adjacency constraint."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from ..cleaned import CleanedRun, zscore_columns
from ..config import TargetSettings
from ..errors import NotImplementedFeatureError, TargetingError
from ..geometry import Geometry
from .result import TargetResult


def _ranked(data: np.ndarray) -> np.ndarray:
    """Columns replaced by their z-scored ranks over time (Spearman = Pearson of ranks)."""
    ranks = rankdata(data, axis=0).astype(np.float32)
    return zscore_columns(ranks)


def spatial_clusters(ranked: np.ndarray, geometry: Geometry, columns: np.ndarray,
                     distance_threshold: float = 0.5, linkage: str = "average") -> np.ndarray:
    """Agglomerative clusters of voxels, merged only between touching clusters.

    Agglomerative clustering on 1 - Spearman rho (default: average linkage
    cut at distance 0.5, the published description's values), with a spatial
    constraint: two clusters can merge only when they touch (26-neighbour
    adjacency; scikit-learn's connectivity-constrained agglomeration), and
    each spatially separate part of the region is clustered on its own.
    Functional clusters alone ignore space: voxels far apart with similar
    signals join one cluster, clusters span the whole region and their
    representative voxel drifts towards the region's centre. Splitting such
    clusters into connected pieces afterwards breaks them into fragments too
    small for the minimum size on noisy data; merging only neighbours grows
    contiguous patches of cortex that a coil can aim at.

    Parameters
    ----------
    ranked : numpy.ndarray, shape (T, S)
        Z-scored ranks of the region's columns.
    geometry : trdnet.geometry.Geometry
    columns : numpy.ndarray of int, shape (S,)
        The region's columns.
    distance_threshold : float
        Height at which the dendrogram is cut (in 1 - rho units).
    linkage : str
        ``average``, ``complete`` or ``single`` (checked by
        :class:`~trdnet.config.TargetSettings`, ``hierarchical_linkage``).

    Returns
    -------
    numpy.ndarray of int, shape (S,)
        Cluster label per column (1..K), each cluster spatially connected.
    """
    from sklearn.cluster import AgglomerativeClustering

    n = ranked.shape[1]
    labels = np.zeros(n, dtype=np.int64)
    parts = geometry.clusters(np.ones(n, dtype=bool), columns)
    graph = geometry.adjacency(columns)
    next_label = 1
    for part in range(1, int(parts.max()) + 1):
        members = np.flatnonzero(parts == part)
        if members.size == 1:
            labels[members] = next_label
            next_label += 1
            continue
        sub = ranked[:, members]
        # Distances built in place in float32; a part holds at most a few thousand voxels.
        dist = sub.T @ sub
        dist *= -1.0 / ranked.shape[0]
        dist += 1.0
        np.fill_diagonal(dist, 0.0)
        np.clip(dist, 0.0, 2.0, out=dist)
        model = AgglomerativeClustering(
            n_clusters=None, distance_threshold=distance_threshold, metric="precomputed",
            linkage=linkage, connectivity=graph[members][:, members],
        )
        found = model.fit(dist.astype(np.float64)).labels_
        labels[members] = found + next_label
        next_label += int(found.max()) + 1
    return labels


def _cluster_means(ranked: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ranked signal and size of every cluster (labels 1..K)."""
    k = int(labels.max())
    sizes = np.bincount(labels, minlength=k + 1)[1:]
    onehot = np.zeros((labels.size, k), dtype=np.float32)
    onehot[np.arange(labels.size), labels - 1] = 1.0
    means = (ranked @ onehot) / sizes.astype(np.float32)
    return means, sizes


def hierarchical_target(
    cleaned: CleanedRun,
    search_cols: np.ndarray,
    settings: TargetSettings,
    seed_cols: np.ndarray,
    *,
    seed_r: np.ndarray | None = None,
) -> TargetResult:
    """Cole 2020 (SNT) hierarchical-clustering target with spatial adjacency.

    1. Spearman correlations (columns ranked over time).
    2. Agglomerative clusters (average linkage, 1 - rho, threshold 0.5) of the
       DLPFC search voxels and of the sgACC seed voxels, merging only
       touching clusters (:func:`spatial_clusters`).
    3. Net correlation of a DLPFC cluster = sum over sgACC clusters of
       (Spearman rho between the cluster mean signals) x sgACC cluster size.
    4. Keep DLPFC clusters of at least ``settings.min_cluster_mm3`` (400 mm^3 =
       50 voxels at 2 mm, converted with the grid's voxel volume) with net < 0.
    5. Rank by size x concentration x |net|, concentration being the mean
       pairwise Spearman rho between the cluster's voxels.
    6. Target = the voxel of the best cluster whose signal has the highest
       Spearman rho with the cluster's median signal.

    Parameters
    ----------
    cleaned : CleanedRun
    search_cols, seed_cols : numpy.ndarray of int
    settings : TargetSettings
    seed_r : numpy.ndarray, shape (V,), optional
        sgACC seed map for r_sgacc (computed from ``seed_cols`` when absent).

    Returns
    -------
    TargetResult
    """
    search_cols = np.unique(np.asarray(search_cols, dtype=np.int64))
    seed_cols = np.unique(np.asarray(seed_cols, dtype=np.int64))
    if search_cols.size == 0 or seed_cols.size == 0:
        raise TargetingError("hierarchical targeting needs a non-empty search region and seed")
    space = cleaned.space
    if space.column_volume_mm3 is None:
        raise NotImplementedFeatureError(
            f"target method 'hierarchical' is not implemented on {space.describe()}: its minimum cluster size "
            f"({settings.min_cluster_mm3:g} mm^3) is a volume with no published equivalent on a cortical mesh; "
            "use cluster or peak"
        )
    dl_ranked = _ranked(cleaned.data[:, search_cols].copy())
    sg_ranked = _ranked(cleaned.data[:, seed_cols].copy())
    cut = (settings.hierarchical_distance_threshold, settings.hierarchical_linkage)  # checked by TargetSettings
    dl_labels = spatial_clusters(dl_ranked, space, search_cols, *cut)
    sg_labels = spatial_clusters(sg_ranked, space, seed_cols, *cut)
    dl_means, dl_sizes = _cluster_means(dl_ranked, dl_labels)
    sg_means, sg_sizes = _cluster_means(sg_ranked, sg_labels)
    # Spearman rho between cluster mean signals: rank the means themselves.
    rho = (_ranked(dl_means).T @ _ranked(sg_means)) / cleaned.n_timepoints
    net = rho @ sg_sizes.astype(np.float64)
    min_voxels = settings.min_cluster_mm3 / space.column_volume_mm3
    eligible = np.flatnonzero((dl_sizes >= min_voxels - 1e-9) & (net < 0))
    if eligible.size == 0:
        raise TargetingError(
            f"hierarchical: no DLPFC cluster of >= {settings.min_cluster_mm3:g} mm^3 "
            f"({min_voxels:.1f} voxels) is anticorrelated with the sgACC"
        )
    # Mean pairwise rho within a cluster from the sum of its z-scored columns:
    # |sum|^2 / T = n + 2 * sum_{i<j} rho_ij.
    sums = dl_means[:, eligible] * dl_sizes[eligible]
    sq = np.einsum("ij,ij->j", sums, sums, dtype=np.float64) / cleaned.n_timepoints
    n = dl_sizes[eligible].astype(np.float64)
    concentration = (sq - n) / np.maximum(n * (n - 1), 1.0)
    score = n * concentration * np.abs(net[eligible])
    best = int(eligible[int(np.argmax(score))])
    members = np.flatnonzero(dl_labels == best + 1)
    median = np.median(cleaned.data[:, search_cols[members]], axis=1)
    match = _ranked(median[:, None].astype(np.float32))[:, 0] @ dl_ranked[:, members]
    chosen = int(members[int(np.argmax(match))])
    column = int(search_cols[chosen])
    if seed_r is None:
        from .seedmap import seed_map

        seed_value = float(seed_map(cleaned, seed_cols)[column])
    else:
        seed_value = float(seed_r[column])
    return TargetResult(
        method="hierarchical",
        xyz=space.xyz[column].copy(),
        column=column,
        r_sgacc=seed_value,
        n_voxels=int(members.size),
        details={
            "correlation": "spearman",
            "linkage": settings.hierarchical_linkage,
            "distance": "1 - rho",
            "distance_threshold": settings.hierarchical_distance_threshold,
            "spatial_constraint": "only 26-adjacent clusters merge (connectivity-constrained agglomeration)",
            "min_cluster_mm3": settings.min_cluster_mm3,
            "min_cluster_voxels": float(min_voxels),
            "n_dlpfc_clusters": int(dl_sizes.size),
            "n_sgacc_clusters": int(sg_sizes.size),
            "n_eligible": int(eligible.size),
            "net_correlation": float(net[best]),
            "concentration": float(concentration[int(np.argmax(score))]),
        },
    )
