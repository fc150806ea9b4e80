"""ROI-to-ROI correlation and the within/between network summary."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from .rois import NETWORK_ORDER

#: |r| is clipped to this before the Fisher transform so that r = 1 stays finite.
R_CLIP = 0.999999


def connectivity_matrix(signals: np.ndarray) -> np.ndarray:
    """Pearson correlation between ROI signals.

    Parameters
    ----------
    signals : numpy.ndarray, shape (T, R)
        One column per ROI.

    Returns
    -------
    numpy.ndarray, float64, shape (R, R)
        Symmetric, diagonal exactly 1. A constant ROI signal has r = NaN with
        every other ROI.

    Raises
    ------
    InputError
        Fewer than 3 time points or fewer than 2 ROIs.
    """
    signals = np.asarray(signals, dtype=np.float64)
    if signals.ndim != 2 or signals.shape[0] < 3 or signals.shape[1] < 2:
        raise InputError(
            f"ROI signals of shape {signals.shape}: need a (T, R) array with T >= 3 and R >= 2"
        )
    centred = signals - signals.mean(axis=0)
    norm = np.sqrt(np.einsum("tr,tr->r", centred, centred))
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = centred / norm
        matrix = unit.T @ unit
    matrix = np.clip((matrix + matrix.T) / 2.0, -1.0, 1.0)
    np.fill_diagonal(matrix, 1.0)
    return matrix


def fisher_z(r: np.ndarray) -> np.ndarray:
    """Fisher transform ``arctanh(r)`` with ``r`` clipped to ``+-R_CLIP``."""
    return np.arctanh(np.clip(np.asarray(r, dtype=np.float64), -R_CLIP, R_CLIP))


def network_order(networks: Sequence[str]) -> list[str]:
    """Networks present, in trdnet's order (DMN, SN, ECN, then any others sorted)."""
    present = set(networks)
    return [*[n for n in NETWORK_ORDER if n in present], *sorted(present - set(NETWORK_ORDER))]


def network_table(matrix: np.ndarray, networks: Sequence[str]) -> pd.DataFrame:
    """Mean within- and between-network connectivity.

    Parameters
    ----------
    matrix : numpy.ndarray, shape (R, R)
        ROI correlation matrix (Pearson r).
    networks : sequence of str, length R
        Network of each ROI.

    Returns
    -------
    pandas.DataFrame
        One row per unordered network pair including each network with
        itself, ordered DMN, SN, ECN: ``network_a``, ``network_b``,
        ``mean_z`` (mean Fisher z over ROI pairs), ``mean_r`` (mean r),
        ``n_pairs``. Within a network only pairs i < j count; a network with
        one ROI has ``n_pairs`` 0 and NaN means. Pairs with a NaN r are not
        counted.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    labels = np.asarray(networks, dtype=str)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] != labels.size:
        raise InputError(
            f"connectivity matrix of shape {matrix.shape} does not match {labels.size} network labels"
        )
    order = network_order(labels)
    z = fisher_z(matrix)
    rows = []
    for a_pos, a in enumerate(order):
        in_a = labels == a
        for b in order[a_pos:]:
            in_b = labels == b
            block = np.outer(in_a, in_b)
            if a == b:
                block = np.triu(block, k=1)
            block &= ~np.isnan(matrix)
            n_pairs = int(block.sum())
            rows.append(
                {
                    "network_a": a,
                    "network_b": b,
                    "mean_z": float(z[block].mean()) if n_pairs else np.nan,
                    "mean_r": float(matrix[block].mean()) if n_pairs else np.nan,
                    "n_pairs": n_pairs,
                }
            )
    return pd.DataFrame(rows, columns=["network_a", "network_b", "mean_z", "mean_r", "n_pairs"])
