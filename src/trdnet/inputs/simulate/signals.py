"""Latent signals, band-limited noise and the simulated data of one run."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ...errors import SettingsError
from .anatomy import _Anatomy
from .confounds import _motion
from .parameters import SignalParameters


def _band_limited(rng, n_times: int, n_signals: int, tr: float, band) -> np.ndarray:
    """Unit-variance signals with power only inside ``band`` (Hz), shape (T, n)."""
    spectrum = np.fft.rfft(rng.standard_normal((n_times, n_signals)), axis=0)
    freqs = np.fft.rfftfreq(n_times, d=tr)
    spectrum[(freqs < band[0]) | (freqs > band[1])] = 0
    signals = np.fft.irfft(spectrum, n=n_times, axis=0)
    signals -= signals.mean(axis=0)
    return signals / signals.std(axis=0)


def _target_correlation(params: SignalParameters, names: list[str]) -> np.ndarray:
    corr = np.eye(len(names))
    for pair, value in params.network_correlations.items():
        a, _, b = pair.partition("|")
        if a not in names or b not in names:
            raise SettingsError(
                f"network_correlations key {pair!r}: names must be 'A|B' among {names}"
            )
        corr[names.index(a), names.index(b)] = corr[names.index(b), names.index(a)] = value
    if np.linalg.eigvalsh(corr).min() <= 1e-6:
        raise SettingsError(
            "network_correlations do not form a positive-definite correlation matrix; "
            "use smaller absolute values"
        )
    return corr


def _latents(rng, n_times, tr, params, names) -> np.ndarray:
    """Band-limited latent signals whose sample correlation equals the target."""
    corr = _target_correlation(params, names)
    x = _band_limited(rng, n_times, len(names), tr, params.band_hz)
    sample = np.corrcoef(x, rowvar=False)
    # Whiten then colour, unless the run is too short for a full-rank sample.
    if np.linalg.eigvalsh(sample).min() > 1e-3:
        x = x @ np.linalg.inv(np.linalg.cholesky(sample)).T
    return x @ np.linalg.cholesky(corr).T


def _motion_patterns(anat: _Anatomy, baseline: np.ndarray) -> np.ndarray:
    """(6, V) intensity change per unit of each motion parameter (first order)."""
    volume = np.zeros(anat.mask.shape, dtype=np.float32)
    volume[anat.mask] = baseline
    volume = ndimage.gaussian_filter(volume, 1.0)
    voxel = np.sqrt((anat.affine[:3, :3] ** 2).sum(axis=0))
    grad = np.stack([g[anat.mask] for g in np.gradient(volume, *voxel)], axis=1)
    # displacement d = t + w x r, so -grad . d = -t . grad - w . (r x grad)
    return -np.concatenate([grad, np.cross(anat.xyz, grad)], axis=1).T.astype(np.float32)


def _simulate_run(anat, params, person, n_volumes, tr, rng) -> dict:
    names = [*anat.network_names, "sgACC", "global"]
    latent_names = names[:-1]
    latents = _latents(rng, n_volumes, tr, params, latent_names)
    global_sig = _band_limited(rng, n_volumes, 1, tr, params.band_hz)
    loadings = np.concatenate(
        [params.network_weight * anat.network_loadings, person["sgacc_row"][None]], axis=0
    )
    signal = latents.astype(np.float32) @ loadings
    # Mostly grey matter, so regressing white matter and CSF means leaves most of it.
    global_map = params.global_weight * (0.2 + 0.8 * anat.gm)
    signal += global_sig.astype(np.float32) @ global_map[None].astype(np.float32)
    regional = _band_limited(rng, n_volumes, anat.n_rois, tr, params.band_hz).astype(np.float32)
    signal += params.regional_weight * regional[:, anat.roi_index] * anat.roi_loading
    time = np.linspace(-1, 1, n_volumes, dtype=np.float32)
    trends = np.stack([time / 2, time**2 - (time**2).mean()])
    n_vox = anat.xyz.shape[0]
    amps = np.stack([
        rng.normal(0, params.drift_linear, n_vox), rng.normal(0, params.drift_quadratic, n_vox)
    ]).astype(np.float32)
    signal += trends.T @ amps
    signal += rng.normal(0, params.noise, (n_volumes, n_vox)).astype(np.float32)
    baseline = person["baseline"]
    data = baseline * (1 + signal / 100)
    motion, spikes, fd = _motion(rng, n_volumes, params)
    data += params.motion_coupling * (motion.astype(np.float32) @ _motion_patterns(anat, baseline))
    drop = np.zeros(n_volumes, dtype=np.float32)
    drop[spikes] = params.spike_global_change * fd[spikes] / 100
    data *= (1 - drop)[:, None]
    return {"data": data, "motion": motion, "spikes": spikes, "fd": fd}
