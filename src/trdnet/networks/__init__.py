"""DMN / SN / ECN definitions, ROI signals, within/between connectivity and
graph measures.

Typical use on one cleaned run: ``analyse_networks(cleaned, settings.networks)``
(what the pipeline writes), or in two steps::

    signals, kept, dropped = roi_signals(cleaned, network_rois(settings.networks))
    result = network_result(signals, kept, dropped, settings.networks)
"""

from __future__ import annotations

from .analysis import NetworkResult, analyse_networks, network_result
from .connectivity import connectivity_matrix, fisher_z, network_table
from .graph import graph_long_table, graph_measures, participation_coefficient, threshold_graph
from .rois import NETWORK_ORDER, ROI_COLUMNS, network_rois
from .signals import RoiSignals, roi_signals
from .surface_atlas import is_surface_atlas, read_surface_labels

__all__ = [
    "NETWORK_ORDER",
    "ROI_COLUMNS",
    "NetworkResult",
    "RoiSignals",
    "analyse_networks",
    "connectivity_matrix",
    "fisher_z",
    "graph_long_table",
    "graph_measures",
    "is_surface_atlas",
    "network_result",
    "network_rois",
    "network_table",
    "participation_coefficient",
    "read_surface_labels",
    "roi_signals",
    "threshold_graph",
]
