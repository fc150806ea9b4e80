"""All network outputs of one cleaned run in one call."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..cleaned import CleanedRun
from ..config import NetworkSettings
from ..errors import SettingsError
from .connectivity import R_CLIP, connectivity_matrix, network_table
from .graph import graph_long_table, graph_measures
from .rois import network_rois
from .signals import roi_signals

CONNECTIVITY_KINDS = ("PearsonCorrelation",)


@dataclass
class NetworkResult:
    """Network outputs of one run.

    Attributes
    ----------
    rois : pandas.DataFrame
        ROIs used (columns of ``signals``), with ``n_voxels``.
    dropped : pandas.DataFrame
        ROIs without any in-mask voxel, with the reason.
    signals : numpy.ndarray, float64, shape (T, R)
        Mean cleaned signal of each ROI.
    matrix : numpy.ndarray, float64, shape (R, R)
        Pearson r between ROIs.
    table : pandas.DataFrame
        Within/between network summary (:func:`network_table`).
    graph_rois, graph_run : pandas.DataFrame
        ROI-level and run-level graph measures (:func:`graph_measures`).
    metadata : dict
        Plain-JSON facts for the sidecar (atlas, space, thresholds, dropped ROIs).
    """

    rois: pd.DataFrame
    dropped: pd.DataFrame
    signals: np.ndarray
    matrix: np.ndarray
    table: pd.DataFrame
    graph_rois: pd.DataFrame
    graph_run: pd.DataFrame
    metadata: dict

    def timeseries_frame(self) -> pd.DataFrame:
        """ROI time series, one column per ROI name (for ``*_timeseries.tsv``)."""
        return pd.DataFrame(self.signals, columns=self.rois["roi"].tolist())

    def relmat_frame(self) -> pd.DataFrame:
        """Correlation matrix with ROI names as index and columns (for ``*_relmat.tsv``)."""
        names = self.rois["roi"].tolist()
        return pd.DataFrame(self.matrix, index=pd.Index(names, name="roi"), columns=names)

    def graph_frame(self) -> pd.DataFrame:
        """Tidy graph table (for ``*_graph.tsv``), see :func:`graph_long_table`."""
        return graph_long_table(self.graph_rois, self.graph_run)


def analyse_networks(cleaned: CleanedRun, settings: NetworkSettings) -> NetworkResult:
    """ROI signals, connectivity, network summary and graph measures of one run.

    Parameters
    ----------
    cleaned : CleanedRun
        The cleaned run.
    settings : NetworkSettings
        Atlas, network mapping, graph density and connectivity kind.

    Returns
    -------
    NetworkResult

    Raises
    ------
    SettingsError
        Unsupported ``connectivity`` or invalid atlas settings.
    """
    if settings.connectivity not in CONNECTIVITY_KINDS:
        raise SettingsError(
            f"networks.connectivity={settings.connectivity!r} is not supported; "
            f"accepted: {list(CONNECTIVITY_KINDS)}"
        )
    signals, rois, dropped = roi_signals(cleaned, network_rois(settings))
    matrix = connectivity_matrix(signals)
    table = network_table(matrix, rois["network"])
    graph_rois, graph_run = graph_measures(
        matrix, rois["network"], settings.graph_density, rois=rois["roi"]
    )
    metadata = {
        "atlas": settings.atlas,
        "settings": dataclasses.asdict(settings),
        "space": cleaned.space.space,
        "coordinates": "RAS world mm",
        "simulated": bool(cleaned.simulated),
        "n_rois": int(len(rois)),
        "rois_per_network": {k: int(v) for k, v in rois["network"].value_counts().items()},
        "dropped_rois": dropped[["roi", "network", "atlas_label", "reason"]].to_dict("records"),
        "fisher_z_clip": R_CLIP,
        "graph_threshold": "proportional: strongest positive edges, density of all possible edges",
        "graph_threshold_r": _plain(graph_run["threshold_r"].iloc[0]),
        "sources": sorted(set(rois["source"])),
    }
    return NetworkResult(rois, dropped, signals, matrix, table, graph_rois, graph_run, metadata)


def _plain(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value
