"""Latent signals, band-limited noise and the simulated data of one run."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.signal import lfilter

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


#: Gaussian kernels of the noise are cut at this many standard deviations (speed; the FWHM is kept).
_TRUNCATE = 2.5


def _smooth_noise_scale(sigma_vox: float) -> float:
    """Standard deviation of unit white noise after the noise's Gaussian filter of ``sigma_vox``."""
    half = int(np.ceil(_TRUNCATE * sigma_vox)) + 1
    delta = np.zeros((2 * half + 1,) * 3)
    delta[half, half, half] = 1.0
    return float(np.sqrt((ndimage.gaussian_filter(delta, sigma_vox, truncate=_TRUNCATE) ** 2).sum()))


def _noise(rng, anat: _Anatomy, params: SignalParameters, n_volumes: int) -> np.ndarray:
    """(T, V) noise of standard deviation ``params.noise``.

    White (independent per voxel and volume) when ``noise_fwhm_mm`` and
    ``noise_ar1`` are 0; otherwise white noise on the whole grid smoothed with
    a Gaussian of that FWHM, then filtered in time by an AR(1) process
    ``e_t = a e_{t-1} + sqrt(1 - a^2) w_t`` (stationary variance kept).
    """
    n_vox = anat.xyz.shape[0]
    if not params.noise_fwhm_mm:
        noise = rng.normal(0, params.noise, (n_volumes, n_vox)).astype(np.float32)
    else:
        sigma = params.noise_fwhm_mm / 2.3548 / anat.resolution_mm
        scale = np.float32(params.noise / _smooth_noise_scale(sigma))
        # Only the brain's bounding box, padded by the kernel's reach, is drawn and smoothed.
        pad = int(np.ceil(_TRUNCATE * sigma)) + 1
        ijk = np.argwhere(anat.mask)
        lo, hi = ijk.min(axis=0), ijk.max(axis=0) + 1
        inside = tuple((ijk - lo + pad).T)
        box = tuple(int(v) for v in hi - lo + 2 * pad)
        noise = np.empty((n_volumes, n_vox), dtype=np.float32)
        block = 32
        for start in range(0, n_volumes, block):
            stop = min(start + block, n_volumes)
            white = rng.standard_normal((stop - start, *box), dtype=np.float32)
            ndimage.gaussian_filter(white, (0, sigma, sigma, sigma), output=white, mode="wrap",
                                    truncate=_TRUNCATE)
            noise[start:stop] = white[(slice(None), *inside)] * scale
    if params.noise_ar1:
        a = params.noise_ar1
        # Scaling the first input starts the process in its stationary state (variance 1 at t = 0).
        noise[0] /= np.float32(np.sqrt(1 - a * a))
        noise = lfilter([np.sqrt(1 - a * a)], [1.0, -a], noise, axis=0).astype(np.float32)
    return noise


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
    signal += _noise(rng, anat, params, n_volumes)
    baseline = person["baseline"]
    data = baseline * (1 + signal / 100)
    motion, spikes, fd = _motion(rng, n_volumes, params)
    data += params.motion_coupling * (motion.astype(np.float32) @ _motion_patterns(anat, baseline))
    drop = np.zeros(n_volumes, dtype=np.float32)
    drop[spikes] = params.spike_global_change * fd[spikes] / 100
    data *= (1 - drop)[:, None]
    return {"data": data, "motion": motion, "spikes": spikes, "fd": fd}
