"""The noise-free (infinite-data) sgACC seed map of a simulated participant.

The simulator's signal model is linear in independent unit-variance factors
(the latent network and sgACC signals after colouring, the global signal, one
regional signal per Seitzman ROI), plus noise. With infinitely many volumes,
the correlation between the seed's mean signal and a voxel is therefore fixed
by the loadings alone. :func:`expected_seed_map` computes it after what the
default denoising does to these terms:

- drifts and motion are removed (detrending, high-pass, motion regressors);
- the brain's global mean and the mean white-matter and CSF signals are
  regressed out (``global_signal`` and ``wm_csf`` "basic"): the factor
  loadings are projected off the span of those three means;
- the band-pass keeps all of the band-limited latent signals but only a part
  of the broadband noise (``band_noise_fraction``, from the AR(1) spectrum).

Noise is independent between the seed and the DLPFC (tens of millimetres
apart, against a noise FWHM of a few millimetres); inside the seed, its
Gaussian spatial correlation lowers the variance of the seed's mean less than
independent noise would.

This is the target a method can at best find: if the planted patch is not
the most anticorrelated site of this map, no amount of data recovers it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from ...config import TargetSettings
from .anatomy import _Anatomy
from .parameters import SignalParameters
from .signals import _target_correlation

#: The analysis's default seed (Fox 2012 sgACC sphere), against which the reference map is computed.
_DEFAULT_TARGETING = TargetSettings()


@dataclass
class ExpectedMap:
    """The noise-free seed map of one participant and where its strongest sites are.

    Attributes
    ----------
    r : numpy.ndarray, shape (V,)
        Expected Pearson correlation of every in-mask voxel with the seed's
        mean signal (NaN inside the seed).
    patch_min_r : float
        Most negative expected r within the planted patch's radius.
    patch_peak_mm : numpy.ndarray, shape (3,)
        Where that is (MNI152NLin2009cAsym, RAS mm; a grid voxel).
    elsewhere_min_r : float
        Most negative expected r in the simulator's search region outside the
        patch's radius (the strongest competing site).
    elsewhere_peak_mm : numpy.ndarray, shape (3,)
        Where that is.
    margin_r : float
        ``elsewhere_min_r - patch_min_r``: positive when the planted patch is
        the strongest anticorrelated site of the expected map.
    shared_r : float
        Expected r at the grid voxel nearest the shared group region's centre.
    spread_r : float
        Standard deviation of the expected r over the search region outside
        the patch (the background the patch has to stand out from).
    """

    r: np.ndarray
    patch_min_r: float
    patch_peak_mm: np.ndarray
    elsewhere_min_r: float
    elsewhere_peak_mm: np.ndarray
    margin_r: float
    shared_r: float
    spread_r: float

    def truth_columns(self) -> dict:
        """The columns this reference adds to the truth table (``expected_peak_*``: the map's strongest site)."""
        peak = self.patch_peak_mm if self.margin_r >= 0 else self.elsewhere_peak_mm
        return {
            "expected_peak_x": peak[0], "expected_peak_y": peak[1], "expected_peak_z": peak[2],
            "expected_patch_min_r": self.patch_min_r,
            "expected_elsewhere_min_r": self.elsewhere_min_r,
            "expected_margin_r": self.margin_r,
            "expected_shared_r": self.shared_r,
            "expected_background_sd_r": self.spread_r,
        }


def band_noise_fraction(ar1: float, tr: float, band_hz) -> float:
    """Share of an AR(1) noise's variance inside a frequency band.

    Parameters
    ----------
    ar1 : float
        Lag-one autocorrelation (0 = white).
    tr : float
        Sampling interval, seconds.
    band_hz : (float or None, float or None)
        High-pass and low-pass cut-offs (None: open), Hz.

    Returns
    -------
    float
        Between 0 and 1 (ideal filter; the default Butterworth filter is close).
    """
    nyquist = 0.5 / tr
    freqs = np.linspace(0.0, nyquist, 4097)
    _, response = sps.freqz([np.sqrt(1 - ar1 * ar1)], [1.0, -ar1], worN=freqs, fs=1.0 / tr)
    power = np.abs(response) ** 2
    low = band_hz[0] or 0.0
    high = band_hz[1] or nyquist
    inside = (freqs >= low) & (freqs <= high)
    return float(np.trapezoid(power * inside, freqs) / np.trapezoid(power, freqs))


def _factors(anat: _Anatomy, params: SignalParameters, sgacc_row: np.ndarray):
    """Loadings of every voxel on independent unit-variance factors.

    Returns ``dense`` (F, V): the coloured latent signals and the global
    signal; and ``regional`` (V,): each voxel's loading on its own ROI's
    regional signal (voxel ``v`` loads on ROI ``anat.roi_index[v]`` only).
    """
    names = [*anat.network_names, "sgACC"]
    chol = np.linalg.cholesky(_target_correlation(params, names))
    latent = np.concatenate([params.network_weight * anat.network_loadings, sgacc_row[None]], axis=0)
    global_row = params.global_weight * (0.2 + 0.8 * anat.gm)
    dense = np.vstack([chol.T @ latent.astype(float), global_row[None]])
    return dense, params.regional_weight * anat.roi_loading.astype(float)


def _mean_factor(dense, regional, roi_index, n_rois, cols) -> np.ndarray:
    """Factor vector of the mean signal over ``cols``: dense part, then one entry per ROI."""
    per_roi = np.bincount(roi_index[cols], weights=regional[cols], minlength=n_rois) / cols.size
    return np.concatenate([dense[:, cols].mean(axis=1), per_roi])


def expected_seed_map(
    anat: _Anatomy,
    params: SignalParameters,
    person: dict,
    *,
    tr: float = 2.0,
    band_hz=(0.01, 0.1),
    seed_center_mm=_DEFAULT_TARGETING.seed_center_mm,
    seed_radius_mm: float = _DEFAULT_TARGETING.seed_radius_mm,
) -> ExpectedMap:
    """The infinite-data sgACC seed map of one simulated participant.

    Parameters
    ----------
    anat : _Anatomy
        The simulator's shared anatomy (grid, loadings, search region).
    params : SignalParameters
    person : dict
        One participant from the simulator (``centre``, ``sgacc_row``).
    tr : float
        Repetition time, seconds (sets how much noise the band-pass keeps).
    band_hz : (float, float)
        Band-pass of the denoising (default denoising: 0.01-0.1 Hz).
    seed_center_mm, seed_radius_mm
        Seed sphere (MNI152 mm); default the analysis's Fox 2012 seed,
        (6, 16, -10), 10 mm, not the simulator's own sgACC.

    Returns
    -------
    ExpectedMap
    """
    dense, regional = _factors(anat, params, person["sgacc_row"])
    n_dense, roi = dense.shape[0], anat.roi_index
    everything = np.arange(anat.xyz.shape[0])
    # What global-signal and WM/CSF regression remove: the span of the three mean signals.
    means = np.stack([_mean_factor(dense, regional, roi, anat.n_rois, cols)
                      for cols in (everything, anat.wm_cols, anat.csf_cols)])
    q, _ = np.linalg.qr(means.T)  # (F, 3), orthonormal
    # Q^T B_v for every voxel, without building the (F, V) matrix of regional loadings.
    proj = q[:n_dense].T @ dense + q[n_dense:][roi].T * regional

    noise_var = params.noise**2 * band_noise_fraction(params.noise_ar1, tr, band_hz)
    d_seed = np.linalg.norm(anat.xyz - np.asarray(seed_center_mm, dtype=float), axis=1)
    seed = np.flatnonzero(d_seed <= seed_radius_mm)
    seed_vec = _mean_factor(dense, regional, roi, anat.n_rois, seed)
    seed_vec = seed_vec - q @ (q.T @ seed_vec)
    if params.noise_fwhm_mm:
        s2 = (params.noise_fwhm_mm / 2.3548) ** 2
        pair = np.linalg.norm(anat.xyz[seed, None] - anat.xyz[None, seed], axis=2)
        seed_noise = noise_var * float(np.exp(-(pair**2) / (4 * s2)).mean())
    else:
        seed_noise = noise_var / seed.size
    # seed_vec is orthogonal to Q, so its product with a projected voxel is its product with the voxel.
    cov = seed_vec[:n_dense] @ dense + seed_vec[n_dense:][roi] * regional
    var = (dense**2).sum(axis=0) + regional**2 - (proj**2).sum(axis=0) + noise_var
    r = cov / np.sqrt(var * (seed_vec @ seed_vec + seed_noise))
    r[seed] = np.nan

    search = anat.search_cols
    d_patch = np.linalg.norm(anat.xyz[search] - person["centre"], axis=1)
    inside, outside = search[d_patch <= params.patch_radius_mm], search[d_patch > params.patch_radius_mm]
    if inside.size == 0:
        # An off-grid centre at the edge of grey matter: the nearest search voxel stands for the patch.
        inside = search[[int(np.argmin(d_patch))]]
    i_in = inside[int(np.nanargmin(r[inside]))]
    i_out = outside[int(np.nanargmin(r[outside]))]
    shared_col = int(np.argmin(np.linalg.norm(anat.xyz - np.asarray(params.shared_center_mm), axis=1)))
    return ExpectedMap(
        r=r.astype(np.float32),
        patch_min_r=float(r[i_in]), patch_peak_mm=anat.xyz[i_in].astype(float),
        elsewhere_min_r=float(r[i_out]), elsewhere_peak_mm=anat.xyz[i_out].astype(float),
        margin_r=float(r[i_out] - r[i_in]),
        shared_r=float(r[shared_col]),
        spread_r=float(np.nanstd(r[outside])),
    )
