"""Graph measures of the thresholded ROI network (networkx).

Output layout: :func:`graph_measures` returns two wide tables, one row per
ROI and one row per run; :func:`graph_long_table` stacks them into the tidy
``<prefix>_graph.tsv`` with columns ``level`` (``roi`` or ``run``), ``roi``
and ``network`` (``n/a`` at run level), ``measure`` and ``value``.
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx
import numpy as np
import pandas as pd
from networkx.algorithms.community import modularity

from ..errors import InputError, SettingsError
from .connectivity import network_order

ROI_MEASURES = ("degree", "strength", "participation_coefficient")
RUN_MEASURES = (
    "global_efficiency",
    "modularity",
    "density",
    "density_requested",
    "threshold_r",
    "n_edges",
)


def threshold_graph(matrix: np.ndarray, density: float, names: Sequence[str]) -> tuple[nx.Graph, float]:
    """Keep the strongest positive edges (proportional threshold).

    The number of edges kept is ``round(density * R * (R - 1) / 2)``, the
    density of the whole graph as in the field's proportional thresholding,
    but only positive r are eligible, so fewer are kept when there are not
    enough positive correlations. Ties at the threshold are broken by ROI
    order, so the result is deterministic.

    Parameters
    ----------
    matrix : numpy.ndarray, shape (R, R)
        Symmetric correlation matrix.
    density : float
        Fraction of possible edges to keep, in (0, 1].
    names : sequence of str, length R
        Node names.

    Returns
    -------
    graph : networkx.Graph
        Every ROI is a node; kept edges carry ``weight`` = r.
    threshold_r : float
        Smallest r kept (NaN when no edge is kept).
    """
    if not 0.0 < density <= 1.0:
        raise SettingsError(f"networks.graph_density={density!r} must be in (0, 1]")
    matrix = np.asarray(matrix, dtype=np.float64)
    n = matrix.shape[0]
    rows, cols = np.triu_indices(n, k=1)
    weights = matrix[rows, cols]
    positive = np.flatnonzero(weights > 0)  # NaN compares False: never kept
    n_keep = min(int(round(density * rows.size)), positive.size)
    # stable sort on -r keeps the earliest ROI pair first among ties
    kept = positive[np.argsort(-weights[positive], kind="stable")[:n_keep]]
    graph = nx.Graph()
    graph.add_nodes_from(names)
    graph.add_weighted_edges_from(
        (names[i], names[j], float(w)) for i, j, w in zip(rows[kept], cols[kept], weights[kept])
    )
    threshold = float(weights[kept].min()) if kept.size else float("nan")
    return graph, threshold


def participation_coefficient(graph: nx.Graph, networks: dict[str, str]) -> dict[str, float]:
    """Guimera & Amaral (2005) participation coefficient on edge weights.

    ``P_i = 1 - sum_s (k_is / k_i)^2`` with ``k_i`` the strength of node i
    and ``k_is`` its strength towards network s. NaN for a node without
    edges (undefined).
    """
    labels = sorted(set(networks.values()))
    result = {}
    for node in graph.nodes:
        to_network = dict.fromkeys(labels, 0.0)
        for neighbour, data in graph[node].items():
            to_network[networks[neighbour]] += data["weight"]
        total = sum(to_network.values())
        if total <= 0:
            result[node] = float("nan")
        else:
            shares = np.array(list(to_network.values())) / total
            result[node] = float(1.0 - np.sum(shares**2))
    return result


def graph_measures(
    matrix: np.ndarray,
    networks: Sequence[str],
    density: float,
    rois: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Node and whole-graph measures of the proportionally thresholded graph.

    Parameters
    ----------
    matrix : numpy.ndarray, shape (R, R)
        ROI correlation matrix (Pearson r).
    networks : sequence of str, length R
        Network of each ROI (the partition used for participation and
        modularity).
    density : float
        Fraction of possible edges kept (see :func:`threshold_graph`).
    rois : sequence of str, optional
        ROI names; default ``ROI_000``, ``ROI_001``, ...

    Returns
    -------
    roi_table : pandas.DataFrame
        One row per ROI: ``roi``, ``network``, ``degree``, ``strength``
        (sum of kept r), ``participation_coefficient``.
    run_table : pandas.DataFrame
        One row: ``global_efficiency`` (unweighted), ``modularity`` of the
        network partition (weighted; NaN without edges), ``density``
        (achieved), ``density_requested``, ``threshold_r``, ``n_edges``.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    labels = [str(n) for n in networks]
    n = len(labels)
    if matrix.ndim != 2 or matrix.shape != (n, n):
        raise InputError(f"connectivity matrix of shape {matrix.shape} does not match {n} network labels")
    names = [f"ROI_{i:03d}" for i in range(n)] if rois is None else [str(r) for r in rois]
    if len(names) != n or len(set(names)) != n:
        raise InputError(f"need {n} distinct ROI names, got {len(names)} ({len(set(names))} distinct)")
    graph, threshold = threshold_graph(matrix, density, names)
    node_network = dict(zip(names, labels))
    participation = participation_coefficient(graph, node_network)
    roi_table = pd.DataFrame(
        {
            "roi": names,
            "network": labels,
            "degree": [graph.degree(v) for v in names],
            "strength": [float(graph.degree(v, weight="weight")) for v in names],
            "participation_coefficient": [participation[v] for v in names],
        }
    )
    communities = [
        {v for v in names if node_network[v] == net} for net in network_order(labels)
    ]
    has_edges = graph.number_of_edges() > 0
    run_table = pd.DataFrame(
        [
            {
                "global_efficiency": nx.global_efficiency(graph),
                "modularity": modularity(graph, communities, weight="weight") if has_edges else np.nan,
                "density": nx.density(graph),
                "density_requested": float(density),
                "threshold_r": threshold,
                "n_edges": graph.number_of_edges(),
            }
        ],
        columns=list(RUN_MEASURES),
    )
    return roi_table, run_table


def graph_long_table(roi_table: pd.DataFrame, run_table: pd.DataFrame) -> pd.DataFrame:
    """Stack the ROI and run measures into one tidy table.

    Parameters
    ----------
    roi_table, run_table : pandas.DataFrame
        As returned by :func:`graph_measures`.

    Returns
    -------
    pandas.DataFrame
        Columns ``level``, ``roi``, ``network``, ``measure``, ``value``; ROI
        rows first (ROI order, then measure), then run rows.
    """
    roi_long = roi_table.melt(
        id_vars=["roi", "network"], value_vars=list(ROI_MEASURES), var_name="measure"
    )
    roi_long["_pos"] = roi_long.groupby("measure").cumcount()
    roi_long["_m"] = roi_long["measure"].map({m: i for i, m in enumerate(ROI_MEASURES)})
    roi_long = roi_long.sort_values(["_pos", "_m"], kind="stable").drop(columns=["_pos", "_m"])
    roi_long.insert(0, "level", "roi")
    run_long = run_table.melt(value_vars=list(RUN_MEASURES), var_name="measure")
    run_long.insert(0, "level", "run")
    run_long.insert(1, "roi", "n/a")
    run_long.insert(2, "network", "n/a")
    table = pd.concat([roi_long, run_long], ignore_index=True)
    table["value"] = table["value"].astype(float)
    return table[["level", "roi", "network", "measure", "value"]]
