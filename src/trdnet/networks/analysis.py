"""The network maths of one run, once: connectivity, within/between summary and graph measures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..cleaned import CleanedRun
from ..config import NetworkSettings
from .connectivity import connectivity_matrix, network_table
from .graph import graph_long_table, graph_measures
from .rois import network_rois
from .signals import roi_signals


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
    """

    rois: pd.DataFrame
    dropped: pd.DataFrame
    signals: np.ndarray
    matrix: np.ndarray
    table: pd.DataFrame
    graph_rois: pd.DataFrame
    graph_run: pd.DataFrame

    def timeseries_frame(self) -> pd.DataFrame:
        """ROI time series, one column per ROI name (``*_timeseries.tsv``)."""
        return pd.DataFrame(self.signals, columns=self.rois["roi"].tolist())

    def relmat_frame(self) -> pd.DataFrame:
        """Correlation matrix, one column per ROI name, rows in the same order (``*_relmat.tsv``, BEP017)."""
        return pd.DataFrame(self.matrix, columns=self.rois["roi"].tolist())

    def graph_frame(self) -> pd.DataFrame:
        """Tidy graph table (``*_graph.tsv``), see :func:`graph_long_table`."""
        return graph_long_table(self.graph_rois, self.graph_run)


def network_result(signals: np.ndarray, rois: pd.DataFrame, dropped: pd.DataFrame,
                   settings: NetworkSettings) -> NetworkResult:
    """Connectivity, network summary and graph measures from ROI signals.

    Used alike by runs whose ROI signals come from voxels or vertices
    (:func:`analyse_networks`) and by runs given as ROI time series.

    Parameters
    ----------
    signals : numpy.ndarray, shape (T, R)
        Cleaned signal of each ROI.
    rois : pandas.DataFrame
        The R ROIs, in the order of ``signals``' columns; needs ``roi`` and
        ``network``.
    dropped : pandas.DataFrame
        ROIs left out, with the reason (kept for the outputs' sidecars).
    settings : NetworkSettings
        ``graph_density`` (proportion of positive edges kept for the graph).

    Returns
    -------
    NetworkResult
    """
    matrix = connectivity_matrix(signals)
    graph_rois, graph_run = graph_measures(matrix, rois["network"], settings.graph_density, rois=rois["roi"])
    return NetworkResult(rois, dropped, signals, matrix, network_table(matrix, rois["network"]),
                         graph_rois, graph_run)


def analyse_networks(cleaned: CleanedRun, settings: NetworkSettings) -> NetworkResult:
    """ROI signals, connectivity, network summary and graph measures of one run.

    Parameters
    ----------
    cleaned : CleanedRun
        The cleaned run (voxels or vertices).
    settings : NetworkSettings
        Atlas, network mapping and graph density (the connectivity kind is
        checked when the settings are built).

    Returns
    -------
    NetworkResult

    Raises
    ------
    InputError, SettingsError
        From the atlas (:func:`network_rois`) or a network without any ROI
        with signal (:func:`roi_signals`).
    """
    signals, rois, dropped = roi_signals(cleaned, network_rois(settings))
    return network_result(signals, rois, dropped, settings)
