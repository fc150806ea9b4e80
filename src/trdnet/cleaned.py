"""The cleaned run: the single in-memory product every analysis stage reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .grid import VoxelSpace


@dataclass
class CleanedRun:
    """A run after one pass of loading, masking and cleaning.

    Attributes
    ----------
    data : numpy.ndarray, float32, shape (T, V)
        Cleaned signals of the retained volumes, each column z-scored
        (mean 0, population standard deviation 1; constant columns are 0), so
        that the Pearson correlation of two columns is ``a @ b / T``.
    space : VoxelSpace
        Which voxel each column is.
    tr : float
        Repetition time in seconds.
    retained : numpy.ndarray of int
        Indices of the retained (uncensored) volumes in the original run.
    n_volumes : int
        Number of volumes in the original run.
    qc : dict
        Quality measures (``mean_fd``, ``n_censored``, ``minutes_retained``, ...).
    simulated : bool
        Whether the data are simulated.
    volume_qc : pandas.DataFrame or None
        One row per original volume: ``framewise_displacement``,
        ``std_dvars`` (when known) and ``retained`` (1/0).
    carpet : dict or None
        A sample of voxels for carpet plots: ``columns`` (int), ``raw``
        (all volumes, before cleaning) and ``clean`` (retained volumes).
    """

    data: np.ndarray
    space: VoxelSpace
    tr: float
    retained: np.ndarray
    n_volumes: int
    qc: dict = field(default_factory=dict)
    simulated: bool = False
    volume_qc: "pd.DataFrame | None" = None
    carpet: dict | None = None

    @property
    def n_timepoints(self) -> int:
        """Number of retained volumes."""
        return int(self.data.shape[0])

    @property
    def minutes(self) -> float:
        """Retained scan time in minutes."""
        return self.n_timepoints * self.tr / 60.0

    def mean_signal(self, columns: np.ndarray) -> np.ndarray:
        """Mean time series of some columns, shape (T,), float64."""
        columns = np.asarray(columns)
        if columns.size == 0:
            raise ValueError("no voxels to average")
        return self.data[:, columns].mean(axis=1, dtype=np.float64)


def zscore_columns(data: np.ndarray) -> np.ndarray:
    """Z-score the columns of ``data`` in place (population std; constant -> 0).

    Parameters
    ----------
    data : numpy.ndarray, shape (T, V)

    Returns
    -------
    numpy.ndarray
        The same array, modified.
    """
    mean = data.mean(axis=0, dtype=np.float64)
    data -= mean.astype(data.dtype)
    std = np.sqrt(np.einsum("ij,ij->j", data, data, dtype=np.float64) / max(data.shape[0], 1))
    scale = np.divide(1.0, std, out=np.zeros_like(std), where=std > 1e-12)
    data *= scale.astype(data.dtype)
    return data


def correlate_with(data: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of z-scored ``data`` with ``signal``.

    Parameters
    ----------
    data : numpy.ndarray, shape (T, V)
        Column-z-scored matrix (as in :attr:`CleanedRun.data`).
    signal : numpy.ndarray, shape (T,)

    Returns
    -------
    numpy.ndarray, float32, shape (V,)
    """
    signal = np.asarray(signal, dtype=np.float64)
    signal = signal - signal.mean()
    norm = np.sqrt(signal @ signal)
    if norm < 1e-12:
        return np.zeros(data.shape[1], dtype=np.float32)
    unit = (signal / norm * np.sqrt(data.shape[0])).astype(data.dtype)
    return (unit @ data / data.shape[0]).astype(np.float32)
