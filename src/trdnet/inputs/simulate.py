"""A SIMULATED resting-state cohort laid out as fMRIPrep derivatives.

The simulator writes BOLD runs on nilearn's bundled MNI152 2009 template grid,
with brain masks and fMRIPrep-style confounds tables, plus a ground truth
(the planted DLPFC target of every participant) kept outside the derivatives
folder. Every file says it is simulated.

Signal model (all amplitudes in percent of the voxel's baseline intensity)::

    Y = baseline * (1 + (S @ L + regional + drifts + noise) / 100)
        + first-order motion term + global intensity change at motion spikes

``S`` holds band-limited latent signals (one per network, the sgACC and a
global signal) drawn with an exact target correlation matrix; ``L`` maps them
to voxels. The sgACC row of ``L`` carries the planted, anticorrelated DLPFC
patch and a weaker smooth random coupling over the rest of the search region.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage, spatial

from .._version import __version__
from ..config import MNI_SPACE
from ..errors import InputError, SettingsError

TASK = "rest"
#: Power et al. 2012: rotations (radians) become arc lengths on a 50 mm sphere.
FD_RADIUS_MM = 50.0
GRID_NOTE = (
    "Voxel grid of nilearn's bundled MNI152 2009 templates "
    "(nilearn.datasets.load_mni152_brain_mask); treated as MNI152NLin2009cAsym."
)
SIMULATED_NOTE = "SIMULATED data from trdnet's simulator; not acquired from any person."

#: DLPFC search-region sites (MNI152, mm; via contarg's DLPFCspheres).
DLPFC_SITES = {
    "5cm": (-41.0, 16.0, 54.0),
    "f3_beam": (-37.0, 26.0, 49.0),
    "ba9": (-36.0, 39.0, 43.0),
    "ba46": (-44.0, 40.0, 29.0),
}


@dataclass
class SignalParameters:
    """Parameters of the simulated signal; every one has a default.

    Amplitudes are in percent of the voxel's baseline intensity (latent
    signals have unit variance before weighting).

    Attributes
    ----------
    networks : dict
        Seitzman 2018 network label -> simulated network name. Grey-matter
        voxels whose nearest Seitzman ROI has one of these labels load on
        that network's latent signal.
    network_correlations : dict
        ``"A|B"`` (simulated names) -> target correlation of the latent
        signals; pairs not listed are uncorrelated. ``sgACC`` may appear.
    band_hz : tuple of 2 floats
        Frequency band of the latent signals.
    network_weight : float
        Amplitude of the network signal at a Seitzman ROI.
    roi_radius_mm : float
        Full loading within this distance of the nearest ROI centre.
    loading_decay_mm : float
        Gaussian width of the loading fall-off beyond ``roi_radius_mm``.
    regional_weight : float
        Amplitude of an independent signal per Seitzman ROI (same spatial
        fall-off), so that ROIs of a network are not identical.
    grey_matter_threshold : float
        Grey-matter probability above which a voxel carries network signal.
    sgacc_center_mm, sgacc_radius_mm, sgacc_bilateral, sgacc_weight
        The sgACC signal is loaded by voxels within the radius of the centre
        (and its mirror when bilateral), with this amplitude.
    search_sites, search_radius_mm
        DLPFC search region: union of spheres, restricted to grey matter.
    patch_radius_mm : float
        Radius of the planted DLPFC patch.
    effect_size : float
        Negative sgACC loading at the patch centre (tapering to 0 at its rim).
    patch_plateau : float
        Fraction of the radius over which the loading is at full strength
        before tapering (a patch, not a single peak voxel).
    patch_min_depth_mm : float
        The patch centre lies at least this far inside the sphere union.
    background_coupling : float
        Standard deviation of the smooth random sgACC loading over the
        search region outside the patch.
    background_smoothness_mm : float
        FWHM of that random field.
    global_weight : float
        Amplitude of the positive global signal in grey matter (20 % of it
        in white matter and CSF), added to every brain voxel.
    noise : float
        Standard deviation of white noise.
    drift_linear, drift_quadratic : float
        Standard deviation across voxels of linear / quadratic drift
        amplitudes (change over the run).
    baseline : float
        Mean baseline intensity.
    baseline_variation : float
        Relative amplitude of the smooth spatial variation of the baseline.
    motion_step_mm : float
        Standard deviation of the per-volume step of the translation random
        walk (rotations: the same arc length on a 50 mm sphere, in radians).
    spike_fraction : float
        Fraction of volumes with a motion spike (at least 2 per run).
    spike_fd_mm : tuple of 2 floats
        Range of the framewise displacement of a spike.
    spike_global_change : float
        Global intensity drop at a spike, percent per mm of FD.
    motion_coupling : float
        Scale of the first-order motion term ``-grad(baseline) . displacement``.
    """

    networks: dict[str, str] = field(
        default_factory=lambda: {
            "DefaultMode": "DMN",
            "Salience": "SN",
            "FrontoParietal": "ECN",
            "CinguloOpercular": "CON",
            "Visual": "Visual",
            "SomatomotorDorsal": "SomatomotorDorsal",
        }
    )
    network_correlations: dict[str, float] = field(
        default_factory=lambda: {
            "DMN|ECN": -0.3,
            "SN|ECN": 0.2,
            "DMN|SN": -0.1,
            "SN|CON": 0.3,
            "Visual|SomatomotorDorsal": 0.2,
            "sgACC|DMN": 0.2,
        }
    )
    band_hz: tuple[float, float] = (0.01, 0.1)
    network_weight: float = 1.0
    roi_radius_mm: float = 5.0
    loading_decay_mm: float = 6.0
    regional_weight: float = 0.5
    grey_matter_threshold: float = 0.2
    sgacc_center_mm: tuple[float, float, float] = (6.0, 16.0, -10.0)
    sgacc_radius_mm: float = 10.0
    sgacc_bilateral: bool = True
    sgacc_weight: float = 1.0
    search_sites: tuple[tuple[float, float, float], ...] = tuple(DLPFC_SITES.values())
    search_radius_mm: float = 20.0
    patch_radius_mm: float = 10.0
    patch_plateau: float = 0.5
    effect_size: float = 0.8
    patch_min_depth_mm: float = 6.0
    background_coupling: float = 0.15
    background_smoothness_mm: float = 12.0
    global_weight: float = 2.0
    noise: float = 1.0
    drift_linear: float = 1.0
    drift_quadratic: float = 0.5
    baseline: float = 1000.0
    baseline_variation: float = 0.1
    motion_step_mm: float = 0.02
    spike_fraction: float = 0.03
    spike_fd_mm: tuple[float, float] = (0.8, 2.0)
    spike_global_change: float = 1.0
    motion_coupling: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


@dataclass
class SimulatedCohort:
    """What :func:`simulate_cohort` wrote.

    Attributes
    ----------
    fmriprep_dir : Path
        Root of the fMRIPrep-style derivatives.
    truth_dir : Path
        Ground truth folder (outside the derivatives).
    truth_table : pandas.DataFrame
        One row per run: planted target centre (MNI152NLin2009cAsym, RAS mm).
    subjects : list of str
        Participant labels (without ``sub-``).
    """

    fmriprep_dir: Path
    truth_dir: Path
    truth_table: pd.DataFrame
    subjects: list[str]


# ----------------------------------------------------------------------------
# Anatomy shared by every participant: grid, tissues, network loadings
# ----------------------------------------------------------------------------


@dataclass
class _Anatomy:
    mask: np.ndarray  # (X, Y, Z) bool
    affine: np.ndarray
    xyz: np.ndarray  # (V, 3) world mm of in-mask voxels
    gm: np.ndarray  # (V,) probabilities
    wm: np.ndarray
    wm_cols: np.ndarray
    csf_cols: np.ndarray
    network_names: list[str]
    network_loadings: np.ndarray  # (n_networks, V)
    roi_index: np.ndarray  # (V,) nearest ROI
    roi_loading: np.ndarray  # (V,) regional loading
    n_rois: int
    sgacc_loading: np.ndarray  # (V,)
    search_cols: np.ndarray  # columns in the grey-matter search region
    patch_candidates: np.ndarray  # columns allowed as patch centre
    resolution_mm: int


@functools.lru_cache(maxsize=3)
def _templates(resolution_mm: int):
    """nilearn's MNI152 2009 brain mask, grey and white matter on one grid.

    Cached: nilearn resamples its 1 mm templates on every call, which takes
    seconds.
    """
    from nilearn import datasets

    mask_img = datasets.load_mni152_brain_mask(resolution=resolution_mm)
    mask = np.asanyarray(mask_img.dataobj) > 0
    gm = datasets.load_mni152_gm_template(resolution=resolution_mm).get_fdata(dtype=np.float32)
    wm = datasets.load_mni152_wm_template(resolution=resolution_mm).get_fdata(dtype=np.float32)
    for array in (mask, gm, wm):
        array.flags.writeable = False
    return mask, mask_img.affine.copy(), gm, wm


def _load_anatomy(resolution_mm: int, params: SignalParameters) -> _Anatomy:
    from nilearn import datasets

    mask, affine, gm_full, wm_full = _templates(resolution_mm)
    affine = affine.copy()
    ijk = np.argwhere(mask)
    xyz = nib.affines.apply_affine(affine, ijk)
    gm, wm = gm_full[mask], wm_full[mask]
    wm_cols = np.flatnonzero(wm > 0.5)
    csf_cols = np.flatnonzero((gm < 0.2) & (wm < 0.2))

    rois = datasets.fetch_coords_seitzman_2018()
    roi_xyz = rois.rois[["x", "y", "z"]].to_numpy(dtype=float)
    labels = np.asarray(rois.networks)
    dist, nearest = spatial.cKDTree(roi_xyz).query(xyz)
    beyond = np.maximum(dist - params.roi_radius_mm, 0.0)
    falloff = np.exp(-0.5 * (beyond / params.loading_decay_mm) ** 2)
    falloff *= np.where(gm > params.grey_matter_threshold, gm, 0.0)
    names = list(dict.fromkeys(params.networks.values()))
    loadings = np.zeros((len(names), xyz.shape[0]), dtype=np.float32)
    for label, name in params.networks.items():
        on = labels[nearest] == label
        loadings[names.index(name), on] = falloff[on]

    sgacc = _sphere_taper(xyz, params.sgacc_center_mm, params.sgacc_radius_mm, plateau=0.5)
    if params.sgacc_bilateral:
        mirror = (-params.sgacc_center_mm[0], *params.sgacc_center_mm[1:])
        sgacc = np.maximum(sgacc, _sphere_taper(xyz, mirror, params.sgacc_radius_mm, plateau=0.5))
    # The sgACC is its own region: network signals fade out inside it, so the
    # seed's coupling to the DLPFC is the one specified, not DMN-ECN leakage.
    loadings *= (1.0 - sgacc)[None]

    sites = np.asarray(params.search_sites, dtype=float).reshape(-1, 3)
    site_dist = np.min(np.linalg.norm(xyz[:, None, :] - sites[None], axis=2), axis=1)
    in_union = site_dist <= params.search_radius_mm
    search_cols = np.flatnonzero(in_union & (gm > params.grey_matter_threshold))
    # Depth inside the nearest sphere: a lower bound of the depth in the union.
    depth = params.search_radius_mm - site_dist
    candidates = np.flatnonzero(in_union & (gm > 0.5) & (depth >= params.patch_min_depth_mm))
    if candidates.size == 0:
        raise SettingsError(
            f"no grey-matter voxel lies {params.patch_min_depth_mm} mm inside the DLPFC search "
            f"region at {resolution_mm} mm; lower patch_min_depth_mm or enlarge search_radius_mm"
        )
    return _Anatomy(
        mask=mask, affine=affine, xyz=xyz, gm=gm, wm=wm, wm_cols=wm_cols, csf_cols=csf_cols,
        network_names=names, network_loadings=loadings, roi_index=nearest,
        roi_loading=falloff.astype(np.float32), n_rois=len(roi_xyz),
        sgacc_loading=sgacc.astype(np.float32), search_cols=search_cols,
        patch_candidates=candidates, resolution_mm=resolution_mm,
    )


def _sphere_taper(xyz: np.ndarray, center, radius: float, plateau: float = 0.0) -> np.ndarray:
    """1 within ``plateau * radius`` of the centre, then a raised cosine to 0 at ``radius``."""
    d = np.linalg.norm(xyz - np.asarray(center, dtype=float), axis=1)
    inner = plateau * radius
    phase = np.clip((d - inner) / (radius - inner), 0.0, 1.0)
    return 0.5 * (1 + np.cos(np.pi * phase))


# ----------------------------------------------------------------------------
# Per participant and per run
# ----------------------------------------------------------------------------


def _participant(anat: _Anatomy, params: SignalParameters, rng: np.random.Generator) -> dict:
    """Planted patch and background coupling of one participant."""
    centre_col = int(rng.choice(anat.patch_candidates))
    centre = anat.xyz[centre_col]
    patch = _sphere_taper(anat.xyz, centre, params.patch_radius_mm, plateau=params.patch_plateau)
    field3d = rng.standard_normal(anat.mask.shape)
    sigma = params.background_smoothness_mm / 2.3548 / anat.resolution_mm
    field3d = ndimage.gaussian_filter(field3d, sigma)
    background = np.zeros(anat.xyz.shape[0])
    values = field3d[anat.mask][anat.search_cols]
    background[anat.search_cols] = (values - values.mean()) / values.std() * params.background_coupling
    coupling = -params.effect_size * patch + background * (1.0 - patch)
    sgacc_row = params.sgacc_weight * anat.sgacc_loading + coupling
    baseline_field = ndimage.gaussian_filter(rng.standard_normal(anat.mask.shape), 15 / anat.resolution_mm)
    baseline_field = baseline_field[anat.mask] / baseline_field[anat.mask].std()
    tissue = 1.0 * anat.gm + 0.85 * anat.wm + 1.2 * np.clip(1 - anat.gm - anat.wm, 0, 1)
    baseline = params.baseline * tissue * (1 + params.baseline_variation * baseline_field)
    return {
        "centre": centre,
        "sgacc_row": sgacc_row.astype(np.float32),
        "baseline": baseline.astype(np.float32),
    }


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


# ----------------------------------------------------------------------------
# Confounds
# ----------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_json(path: Path, content: dict) -> None:
    _write_text(path, json.dumps(content, indent=2, sort_keys=True) + "\n")


def _write_nifti(path: Path, img: nib.Nifti1Image) -> None:
    tmp = path.with_name(path.name.replace(".nii.gz", ".tmp.nii.gz"))
    nib.save(img, tmp)
    os.replace(tmp, path)


def _bold_image(anat: _Anatomy, data: np.ndarray, tr: float):
    """int16 image with ``scl_slope`` chosen so the largest value uses the full range.

    Returns the image and the (T, V) values as stored (after quantisation).
    """
    slope = float(np.abs(data).max()) / 32000.0 or 1.0
    quantised = np.rint(data / slope).astype(np.int16)
    # Fortran order is what NIfTI stores: nibabel then writes without a transposed copy.
    volume = np.zeros((*anat.mask.shape, data.shape[0]), dtype=np.int16, order="F")
    volume[anat.mask] = quantised.T
    img = nib.Nifti1Image(volume, anat.affine)
    _mni_header(img, anat.affine)
    img.header.set_slope_inter(slope, 0.0)
    img.header.set_zooms((*img.header.get_zooms()[:3], tr))
    img.header.set_xyzt_units("mm", "sec")
    return img, quantised.astype(np.float32) * np.float32(slope)


def _mni_header(img: nib.Nifti1Image, affine: np.ndarray) -> None:
    img.header.set_sform(affine, code=4)
    img.header.set_qform(affine, code=4)
    img.header.set_xyzt_units("mm")


def _run_prefixes(subject: str, sessions, runs) -> list[tuple[str | None, str | None, str]]:
    out = []
    for ses in sessions or [None]:
        for run in (list(range(1, runs + 1)) if runs else [None]):
            parts = [f"sub-{subject}"]
            if ses is not None:
                parts.append(f"ses-{ses}")
            parts.append(f"task-{TASK}")
            if run is not None:
                parts.append(f"run-{run}")
            out.append((ses, None if run is None else str(run), "_".join(parts)))
    return out


def _check_arguments(n_subjects, n_volumes, tr, resolution_mm, sessions, runs, confounds_suffix):
    if resolution_mm not in (2, 3, 4):
        raise SettingsError(f"resolution_mm={resolution_mm!r}; accepted: 2, 3 or 4")
    if confounds_suffix not in ("timeseries", "regressors"):
        raise SettingsError(
            f"confounds_suffix={confounds_suffix!r}; accepted: 'timeseries' or 'regressors'"
        )
    if int(n_subjects) < 1:
        raise SettingsError(f"n_subjects={n_subjects!r}; accepted: an integer >= 1")
    if int(n_volumes) < 20:
        raise SettingsError(f"n_volumes={n_volumes!r}; accepted: an integer >= 20")
    if not tr > 0:
        raise SettingsError(f"tr={tr!r}; accepted: a positive number of seconds")
    if runs is not None and int(runs) < 1:
        raise SettingsError(f"runs={runs!r}; accepted: None or an integer >= 1")
    if sessions is not None:
        bad = [s for s in sessions if not str(s).isalnum()]
        if bad or len(sessions) == 0:
            raise SettingsError(f"sessions={sessions!r}; accepted: a non-empty list of alphanumeric labels")


def simulate_cohort(
    out_dir,
    n_subjects: int = 4,
    n_volumes: int = 300,
    tr: float = 2.0,
    resolution_mm: int = 3,
    sessions: list[str] | None = None,
    runs: int | None = None,
    confounds_suffix: str = "timeseries",
    random_state: int = 0,
    overwrite: bool = False,
    anatomy: bool = True,
    **signal_parameters,
) -> SimulatedCohort:
    """Write a SIMULATED resting-state cohort as fMRIPrep derivatives plus its ground truth.

    Parameters
    ----------
    out_dir : str or Path
        Output folder; gets ``fmriprep/``, ``truth/`` and ``SIMULATED_DATA.txt``.
    n_subjects : int
        Number of participants (labels ``01``, ``02``, ...).
    n_volumes : int
        Volumes per run (at least 20).
    tr : float
        Repetition time in seconds.
    resolution_mm : {2, 3, 4}
        Grid of nilearn's bundled MNI152 2009 templates.
    sessions : list of str or None
        Session labels; ``None`` writes no ``ses-`` level.
    anatomy : bool
        Also write a simulated T1w, masks, tissue maps and fMRIPrep transforms
        per participant (``anat/``, see :mod:`trdnet.inputs.simulate_anat`).
    runs : int or None
        Runs per session; ``None`` writes no ``run-`` entity.
    confounds_suffix : {"timeseries", "regressors"}
        ``desc-confounds_timeseries.tsv`` (fMRIPrep >= 20.2) or the older
        ``desc-confounds_regressors.tsv``.
    random_state : int
        Seed of :func:`numpy.random.default_rng`; participants and runs get
        independent child streams, so the same seed gives identical files.
    overwrite : bool
        Rewrite an existing cohort made with other settings. A cohort made
        with the same settings is reused without rewriting.
    **signal_parameters
        Fields of :class:`SignalParameters` (e.g. ``effect_size=0.8``,
        ``noise=1.0``, ``global_weight=1.0``).

    Returns
    -------
    SimulatedCohort

    Notes
    -----
    BOLD images are int16 with ``scl_slope`` (values in arbitrary units,
    baseline ~1000), sform/qform code 4 (MNI). The planted target of a
    participant is the same in all sessions and runs; only noise, latent
    signals and motion differ.
    """
    _check_arguments(n_subjects, n_volumes, tr, resolution_mm, sessions, runs, confounds_suffix)
    known = {f.name for f in dataclasses.fields(SignalParameters)}
    unknown = sorted(set(signal_parameters) - known)
    if unknown:
        raise SettingsError(f"unknown signal parameter(s) {unknown}; accepted: {sorted(known)}")
    params = SignalParameters(**signal_parameters)
    _target_correlation(params, [*dict.fromkeys(params.networks.values()), "sgACC"])
    sessions = None if sessions is None else [str(s) for s in sessions]
    out_dir = Path(out_dir)
    fmriprep_dir, truth_dir = out_dir / "fmriprep", out_dir / "truth"
    subjects = [f"{i + 1:02d}" for i in range(int(n_subjects))]
    record = {
        "Simulated": True,
        "Description": SIMULATED_NOTE,
        "n_subjects": int(n_subjects), "n_volumes": int(n_volumes), "tr": float(tr),
        "resolution_mm": int(resolution_mm), "sessions": sessions, "runs": runs,
        "confounds_suffix": confounds_suffix, "random_state": int(random_state),
        "signal_parameters": params.to_dict(),
        "space": MNI_SPACE, "coordinate_convention": "RAS world millimetres",
        "grid": GRID_NOTE,
        "anatomy": bool(anatomy),
    }
    record_path = truth_dir / "simulation.json"
    truth_path = truth_dir / "targets_truth.tsv"
    if record_path.is_file() and truth_path.is_file():
        previous = json.loads(record_path.read_text())
        same = {k: v for k, v in previous.items() if k not in ("software", "runs_detail")} == record
        if same and not overwrite:
            table = _read_truth(truth_path)
            return SimulatedCohort(fmriprep_dir, truth_dir, table, subjects)
        if not overwrite:
            raise InputError(
                f"{out_dir}: holds a simulated cohort made with other settings; "
                "pass overwrite=True or choose another folder"
            )
    for folder in (fmriprep_dir, truth_dir):
        folder.mkdir(parents=True, exist_ok=True)

    anat = _load_anatomy(int(resolution_mm), params)
    _write_dataset_description(fmriprep_dir)
    rows, details = [], []
    seeds = np.random.SeedSequence(int(random_state)).spawn(len(subjects))
    for subject, seed in zip(subjects, seeds):
        prefixes = _run_prefixes(subject, sessions, None if runs is None else int(runs))
        person_seed, *run_seeds = seed.spawn(1 + len(prefixes))
        person = _participant(anat, params, np.random.default_rng(person_seed))
        if anatomy:
            from .simulate_anat import write_simulated_anat

            write_simulated_anat(fmriprep_dir, subject, np.random.default_rng(person_seed.spawn(1)[0]))
        for (ses, run, prefix), run_seed in zip(prefixes, run_seeds):
            func = fmriprep_dir / f"sub-{subject}" / (f"ses-{ses}" if ses else "") / "func"
            func.mkdir(parents=True, exist_ok=True)
            result = _simulate_run(anat, params, person, int(n_volumes), float(tr),
                                   np.random.default_rng(run_seed))
            _write_run(func, prefix, anat, result, float(tr), confounds_suffix)
            centre = person["centre"]
            rows.append({
                "participant_id": f"sub-{subject}", "session": ses or "n/a", "run": run or "n/a",
                "x": centre[0], "y": centre[1], "z": centre[2], "space": MNI_SPACE,
                "patch_radius_mm": params.patch_radius_mm, "effect_size": params.effect_size,
                "note": "simulated",
            })
            details.append({
                "bold": str(Path(func.relative_to(out_dir)) / f"{prefix}_space-{MNI_SPACE}_desc-preproc_bold.nii.gz"),
                "spike_volumes": [int(t) for t in result["spikes"]],
            })
    table = pd.DataFrame(rows)
    _write_participants(fmriprep_dir, subjects)
    _write_text(truth_path, table.to_csv(sep="\t", index=False, float_format="%.2f"))
    _write_json(record_path, {**record, "runs_detail": details, "software": _software()})
    _write_text(out_dir / "SIMULATED_DATA.txt",
                "SIMULATED data made by trdnet's simulator (not from any person); "
                "ground truth in truth/, derivatives in fmriprep/.\n")
    table = _read_truth(truth_path)
    return SimulatedCohort(fmriprep_dir, truth_dir, table, subjects)


def _write_participants(fmriprep_dir: Path, subjects: list[str]) -> None:
    """participants.tsv with an alternating (arbitrary, simulated) patient / control label."""
    groups = ["patient" if i % 2 == 0 else "control" for i in range(len(subjects))]
    table = pd.DataFrame({"participant_id": [f"sub-{s}" for s in subjects], "group": groups,
                          "note": "simulated; group label arbitrary"})
    _write_text(fmriprep_dir / "participants.tsv", table.to_csv(sep="\t", index=False))


def _software() -> dict[str, str]:
    import nilearn
    import scipy

    return {
        "trdnet": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
        "nibabel": nib.__version__, "nilearn": nilearn.__version__, "pandas": pd.__version__,
        "python": platform.python_version(),
    }


def _write_dataset_description(fmriprep_dir: Path) -> None:
    _write_json(fmriprep_dir / "dataset_description.json", {
        "Name": "SIMULATED resting-state cohort (trdnet simulator)",
        "BIDSVersion": "1.8.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "trdnet-simulator", "Version": __version__,
                         "Description": SIMULATED_NOTE}],
        "Simulated": True,
        "GridNote": GRID_NOTE,
    })


def _write_run(func: Path, prefix: str, anat: _Anatomy, result: dict, tr: float, suffix: str):
    space = f"{prefix}_space-{MNI_SPACE}"
    # Confounds are computed from the values as stored (after int16 quantisation).
    img, stored = _bold_image(anat, result["data"], tr)
    _write_nifti(func / f"{space}_desc-preproc_bold.nii.gz", img)
    _write_json(func / f"{space}_desc-preproc_bold.json", {
        "RepetitionTime": tr, "TaskName": TASK, "SkullStripped": False,
        "Simulated": True, "Description": SIMULATED_NOTE, "GridNote": GRID_NOTE,
        "DataType": "int16 with scl_slope",
    })
    mask_img = nib.Nifti1Image(anat.mask.astype(np.uint8), anat.affine)
    _mni_header(mask_img, anat.affine)
    _write_nifti(func / f"{space}_desc-brain_mask.nii.gz", mask_img)
    _write_json(func / f"{space}_desc-brain_mask.json", {
        "Type": "Brain", "Simulated": True, "GridNote": GRID_NOTE,
    })
    frame, sidecar = _confounds(anat, stored, result["motion"], result["fd"], tr)
    _write_text(func / f"{prefix}_desc-confounds_{suffix}.tsv",
                frame.to_csv(sep="\t", index=False, na_rep="n/a", float_format="%.8g"))
    _write_json(func / f"{prefix}_desc-confounds_{suffix}.json", sidecar)


def _read_truth(path: Path) -> pd.DataFrame:
    """The truth table with ``session``/``run`` kept as text (``n/a`` when absent)."""
    return pd.read_csv(path, sep="\t", keep_default_na=False,
                       dtype={"participant_id": str, "session": str, "run": str})
