"""The cleaned run: the single in-memory product every analysis stage reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import InputError
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
    usable : numpy.ndarray of bool, shape (V,), or None
        False for in-mask voxels that are flat (zero variance, e.g. all zero)
        over the retained volumes; None means all usable.
    source : str
        The input file (named in errors about its regions).
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
    usable: "np.ndarray | None" = None
    source: str = ""

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


    def usable_region(self, columns, region: str) -> tuple[np.ndarray, dict]:
        """The usable (not flat) columns of a region, refusing a region that is mostly flat.

        Parameters
        ----------
        columns : numpy.ndarray of int
            The region's in-mask columns.
        region : str
            Its name, for the message (``"sgACC seed"``).

        Returns
        -------
        columns : numpy.ndarray of int
            Only the usable columns.
        counts : dict
            ``region``, ``n_voxels`` (in mask), ``n_usable``, ``n_flat``.

        Raises
        ------
        InputError
            If fewer than :data:`MIN_USABLE_FRACTION` of the region's in-mask
            voxels (or none) carry signal; the message names the region, the
            counts and the file.
        """
        columns = np.asarray(columns, dtype=np.int64)
        keep = columns if self.usable is None else columns[self.usable[columns]]
        counts = {"region": region, "n_voxels": int(columns.size), "n_usable": int(keep.size),
                  "n_flat": int(columns.size - keep.size)}
        if columns.size and keep.size < max(1, int(np.ceil(MIN_USABLE_FRACTION * columns.size))):
            raise InputError(
                f"{self.source or 'run'}: {region}: only {keep.size} of its {columns.size} in-mask voxels carry "
                f"signal ({columns.size - keep.size} are flat, e.g. all zero, over the retained volumes); at least "
                f"{MIN_USABLE_FRACTION:.0%} are needed: the data have no signal there (dropout or masking)"
            )
        return keep, counts


#: Least fraction of a region's in-mask voxels that must carry signal; a
#: region with more flat voxels stops the run (a choice, not a literature value).
MIN_USABLE_FRACTION = 0.5


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
