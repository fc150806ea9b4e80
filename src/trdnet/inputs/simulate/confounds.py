"""Simulated head motion and the fMRIPrep-style confounds table computed from a run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .anatomy import _Anatomy
from .parameters import FD_RADIUS_MM, SignalParameters


def _motion(rng, n_times: int, params: SignalParameters):
    """Six motion parameters (mm, radians), spike volumes and FD."""
    step = np.empty((n_times, 6))
    step[:, :3] = rng.normal(0, params.motion_step_mm, (n_times, 3))
    step[:, 3:] = rng.normal(0, params.motion_step_mm / FD_RADIUS_MM, (n_times, 3))
    step[0] = 0
    walk = np.cumsum(step, axis=0)
    # Spikes at volumes >= 1, at least 3 apart, so each is a distinct event.
    slots = np.arange(1, n_times - 1, 3)
    n_spikes = min(max(2, int(round(params.spike_fraction * n_times))), slots.size)
    spikes = np.sort(rng.choice(slots, size=n_spikes, replace=False))
    spike_part = np.zeros((n_times, 6))
    for t in spikes:
        direction = rng.standard_normal(6)
        direction[3:] /= FD_RADIUS_MM
        fd_unit = np.abs(direction[:3]).sum() + FD_RADIUS_MM * np.abs(direction[3:]).sum()
        spike_part[t] = direction * rng.uniform(*params.spike_fd_mm) / fd_unit
    motion = walk + spike_part
    return motion, spikes, framewise_displacement(motion)


def framewise_displacement(motion: np.ndarray, radius_mm: float = FD_RADIUS_MM) -> np.ndarray:
    """Power et al. (2012) framewise displacement.

    Parameters
    ----------
    motion : numpy.ndarray, shape (T, 6)
        ``trans_x, trans_y, trans_z`` (mm) and ``rot_x, rot_y, rot_z`` (radians).
    radius_mm : float
        Radius of the sphere on which rotations become displacements.

    Returns
    -------
    numpy.ndarray, shape (T,)
        FD in mm; the first value is NaN (written as ``n/a``).
    """
    diff = np.abs(np.diff(motion, axis=0))
    fd = diff[:, :3].sum(axis=1) + radius_mm * diff[:, 3:].sum(axis=1)
    return np.concatenate([[np.nan], fd])


def _expansions(name: str, values: np.ndarray) -> dict[str, np.ndarray]:
    """A column with fMRIPrep's ``_derivative1``, ``_power2`` and ``_derivative1_power2``."""
    deriv = np.concatenate([[np.nan], np.diff(values)])
    return {
        name: values,
        f"{name}_derivative1": deriv,
        f"{name}_derivative1_power2": deriv**2,
        f"{name}_power2": values**2,
    }


def cosine_basis(n_volumes: int, tr: float, period_s: float = 128.0) -> np.ndarray:
    """DCT-II high-pass basis as in fMRIPrep (and nilearn), constant term dropped.

    Parameters
    ----------
    n_volumes : int
    tr : float
        Repetition time, seconds.
    period_s : float
        Cut-off period in seconds (fMRIPrep: 128 s).

    Returns
    -------
    numpy.ndarray, shape (T, K)
        ``K = floor(2 * T * tr / period_s)`` columns.
    """
    order = int(np.floor(2 * n_volumes * tr / period_s))
    t = np.arange(n_volumes)[:, None] + 0.5
    k = np.arange(1, order + 1)[None]
    return np.sqrt(2.0 / n_volumes) * np.cos(np.pi / n_volumes * t * k)


def _dvars(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DVARS and standardised DVARS (Nichols 2013 null, as nipype computes it)."""
    diff = np.diff(data, axis=0)
    dvars = np.sqrt(np.mean(diff.astype(np.float64) ** 2, axis=1))
    q75, q25 = np.percentile(data, [75, 25], axis=0)
    robust_sd = (q75 - q25) / 1.349
    centred = data - data.mean(axis=0)
    denom = (centred**2).sum(axis=0)
    ar1 = np.where(denom > 0, (centred[1:] * centred[:-1]).sum(axis=0) / np.where(denom > 0, denom, 1), 0)
    expected = np.mean(robust_sd * np.sqrt(2 * (1 - ar1)))
    pad = np.array([np.nan])
    return np.concatenate([pad, dvars]), np.concatenate([pad, dvars / expected])


def _confounds(anat: _Anatomy, data: np.ndarray, motion: np.ndarray, fd: np.ndarray, tr: float):
    table: dict[str, np.ndarray] = {}
    table.update(_expansions("global_signal", data.mean(axis=1, dtype=np.float64)))
    table.update(_expansions("csf", data[:, anat.csf_cols].mean(axis=1, dtype=np.float64)))
    table.update(_expansions("white_matter", data[:, anat.wm_cols].mean(axis=1, dtype=np.float64)))
    table["dvars"], table["std_dvars"] = _dvars(data)
    table["framewise_displacement"] = fd
    for i, name in enumerate(("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")):
        table.update(_expansions(name, motion[:, i]))
    cosines = cosine_basis(data.shape[0], tr)
    for k in range(cosines.shape[1]):
        table[f"cosine{k:02d}"] = cosines[:, k]
    frame = pd.DataFrame(table)
    described = {
        "global_signal": "Mean of the brain mask (SIMULATED)",
        "csf": "Mean of brain voxels with grey and white matter probability < 0.2 (SIMULATED)",
        "white_matter": "Mean of voxels with white matter probability > 0.5 (SIMULATED)",
        "framewise_displacement": f"Power 2012 FD, rotations on a {FD_RADIUS_MM:g} mm sphere",
        "dvars": "RMS of the temporal derivative over the brain mask",
        "std_dvars": "DVARS standardised by its expected value (Nichols 2013)",
    }
    sidecar = {
        name: {"Description": described.get(name, "SIMULATED confound"), "Simulated": True}
        for name in frame.columns
    }
    for name in frame.columns:
        if name.startswith("cosine"):
            sidecar[name]["Description"] = "DCT basis for a 128 s high-pass filter"
    return frame, sidecar
