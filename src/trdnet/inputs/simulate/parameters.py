"""Signal parameters, naming constants and the result record of the simulator."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ...errors import SettingsError

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

    The defaults are the ``"realistic"`` preset: spatially smooth and
    autocorrelated noise, a broad anticorrelated region shared by everyone,
    a planted patch of moderate strength against a background coupling of
    comparable size, planted off-grid by a rule of the simulator's own, and
    network signal leaking into an sgACC that is not the analysis's seed.
    ``PRESETS["easy"]`` switches each difficulty off.

    Magnitudes set against the real scans trdnet reads
    (``validation/calibrate_real.py``, ``validation/results/real_scans.json``;
    never against a method's score). The LEMON fsaverage5 run (15 min, GSR,
    Fox 2012 seed, left DLPFC search spheres) has a seed map with SD 0.146,
    5th percentile -0.28, minimum -0.38 and a smoothness of 9.1 mm FWHM, and
    its data are 11.4 mm FWHM smooth between neighbouring vertices (the
    provider's band-passed series, sampled onto the mesh). One simulated run of
    the same length with these defaults: SD 0.115, 5th percentile -0.24,
    minimum -0.33, map 8.6 mm and data 10.0 mm FWHM. The brainfc parcels
    (5 min) give a seed-proxy (right OFC parcel, 24 mm from the seed) to left
    DLPFC parcel r of -0.52 to -0.05 with GSR. The temporal autocorrelation
    (``noise_ar1``) is not calibrated: the brainfc parcel means' lag-one
    autocorrelation (0.68 before filtering) is dominated by signal.

    The planted patch is the strongest anticorrelated site of each person's
    noise-free seed map (:func:`~trdnet.inputs.simulate.expected.expected_seed_map`;
    tested): ``effect_size`` 1.1 against a background spread of 0.2 and a broad
    shared region of 0.35 gives a noise-free patch r of about -0.41, the shared
    region's centre about -0.2 and the strongest other site about -0.30.

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
        (and its mirror when bilateral), with this amplitude. The realistic
        default is not the pipeline's Fox 2012 seed (6, 16, -10), 10 mm: a
        real sgACC is not exactly the sphere an analysis searches.
    sgacc_network_leak : float
        Fraction of network signal inside the sgACC: network loadings there
        are kept at this fraction, and ``sgacc_leak_network`` loads on the
        sgACC with this fraction of its weight (times grey matter). At 0 the
        seed is a clean copy of its own signal (easy); real seeds mix in
        neighbouring DMN signal.
    sgacc_leak_network : str
        Simulated network name whose signal leaks into the sgACC.
    search_sites, search_radius_mm
        DLPFC search region of the ``"search_spheres"`` planting rule: union
        of spheres, restricted to grey matter.
    plant_region : {"ellipsoid", "search_spheres"}
        Where patch centres are drawn. ``"ellipsoid"`` (realistic): inside an
        ellipsoid of its own (``plant_center_mm``, ``plant_radii_mm``) in
        grey matter above ``plant_grey_matter``, anywhere up to the grey
        matter's edge; not the analysis's search spheres. ``"search_spheres"``
        (easy): a grid voxel ``patch_min_depth_mm`` inside the sphere union.
    plant_center_mm, plant_radii_mm : tuple of 3 floats
        Centre and semi-axes (mm, MNI x, y, z) of the planting ellipsoid.
    plant_grey_matter : float
        Grey-matter probability above which a voxel can hold a patch centre.
    plant_off_grid : bool
        Move the patch centre by a uniform offset within its voxel, so the
        truth is not a grid point.
    patch_radius_mm : float
        Radius of the planted DLPFC patch.
    effect_size : float
        Negative sgACC loading at the patch centre (tapering to 0 at its rim).
    patch_plateau : float
        Fraction of the radius over which the loading is at full strength
        before tapering (a patch, not a single peak voxel).
    patch_min_depth_mm : float
        ``"search_spheres"`` rule: the patch centre lies at least this far
        inside the sphere union.
    background_coupling : float
        Standard deviation of the smooth random sgACC loading over the
        search region outside the patch.
    background_smoothness_mm : float
        FWHM of that random field.
    shared_weight : float
        Negative sgACC loading at the centre of a broad region shared by every
        participant (the group-typical anticorrelated site); 0 switches it off.
    shared_center_mm : tuple of 3 floats
        Its centre: the "Fox 2012 optimised" group site (-38, 44, 26), MNI mm
        (unverified; see SCIENCE notes).
    shared_fwhm_mm : float
        FWHM of its Gaussian profile (broad: wider than a patch).
    global_weight : float
        Amplitude of the positive global signal in grey matter (20 % of it
        in white matter and CSF), added to every brain voxel.
    noise : float
        Standard deviation of the noise (per voxel and volume).
    noise_fwhm_mm : float
        Spatial smoothness (FWHM) of the noise, as in preprocessed BOLD;
        0 gives noise independent per voxel (easy: the analysis's own 4 mm
        smoothing then averages it away).
    noise_ar1 : float
        First-order autocorrelation of the noise from volume to volume
        (0 = independent in time); the variance stays ``noise ** 2``.
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
    sgacc_center_mm: tuple[float, float, float] = (4.0, 20.0, -8.0)
    sgacc_radius_mm: float = 8.0
    sgacc_bilateral: bool = True
    sgacc_weight: float = 1.0
    sgacc_network_leak: float = 0.5
    sgacc_leak_network: str = "DMN"
    search_sites: tuple[tuple[float, float, float], ...] = tuple(DLPFC_SITES.values())
    search_radius_mm: float = 20.0
    plant_region: str = "ellipsoid"
    plant_center_mm: tuple[float, float, float] = (-40.0, 34.0, 38.0)
    plant_radii_mm: tuple[float, float, float] = (12.0, 16.0, 14.0)
    plant_grey_matter: float = 0.35
    plant_off_grid: bool = True
    patch_radius_mm: float = 10.0
    patch_plateau: float = 0.5
    effect_size: float = 1.1
    patch_min_depth_mm: float = 6.0
    background_coupling: float = 0.2
    background_smoothness_mm: float = 12.0
    shared_weight: float = 0.35
    shared_center_mm: tuple[float, float, float] = (-38.0, 44.0, 26.0)
    shared_fwhm_mm: float = 20.0
    global_weight: float = 2.0
    noise: float = 1.0
    noise_fwhm_mm: float = 10.0
    noise_ar1: float = 0.3
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


#: Named presets: overrides of :class:`SignalParameters` (whose own defaults are ``"realistic"``).
#: ``"easy"`` is the simulator before its difficulties were added: white noise, the analysis's own
#: seed and search spheres, no shared group region, a strong patch on a grid voxel deep in the region.
#: It is what the demo uses; it flatters every method and says little about real scans.
PRESETS: dict[str, dict[str, Any]] = {
    "realistic": {},
    "easy": {
        "sgacc_center_mm": (6.0, 16.0, -10.0), "sgacc_radius_mm": 10.0, "sgacc_network_leak": 0.0,
        "plant_region": "search_spheres", "plant_off_grid": False, "effect_size": 0.8,
        "background_coupling": 0.15, "shared_weight": 0.0, "noise": 1.0, "noise_fwhm_mm": 0.0,
        "noise_ar1": 0.0,
    },
}

#: Accepted values of ``SignalParameters.plant_region``.
PLANT_REGIONS = ("ellipsoid", "search_spheres")


def preset_parameters(preset: str, **overrides) -> SignalParameters:
    """Signal parameters of a named preset, with explicit overrides on top.

    Parameters
    ----------
    preset : {"realistic", "easy"}
    **overrides
        Fields of :class:`SignalParameters`.

    Returns
    -------
    SignalParameters

    Raises
    ------
    SettingsError
        For an unknown preset or field, or an out-of-range value.
    """
    if preset not in PRESETS:
        raise SettingsError(f"simulator preset {preset!r} is unknown; accepted: {sorted(PRESETS)}")
    known = {f.name for f in dataclasses.fields(SignalParameters)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise SettingsError(f"unknown signal parameter(s) {unknown}; accepted: {sorted(known)}")
    params = SignalParameters(**{**PRESETS[preset], **overrides})
    if params.plant_region not in PLANT_REGIONS:
        raise SettingsError(f"plant_region={params.plant_region!r}; accepted: {list(PLANT_REGIONS)}")
    if not 0.0 <= params.noise_ar1 < 1.0:
        raise SettingsError(f"noise_ar1={params.noise_ar1!r}; accepted: 0 <= value < 1")
    if not 0.0 <= params.sgacc_network_leak <= 1.0:
        raise SettingsError(f"sgacc_network_leak={params.sgacc_network_leak!r}; accepted: 0 <= value <= 1")
    if params.noise_fwhm_mm < 0 or params.shared_fwhm_mm <= 0:
        raise SettingsError("noise_fwhm_mm must be >= 0 and shared_fwhm_mm > 0 (mm)")
    return params


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
    preset : str
        Name of the difficulty preset (``"realistic"`` or ``"easy"``).
    """

    fmriprep_dir: Path
    truth_dir: Path
    truth_table: pd.DataFrame
    subjects: list[str]
    preset: str = "realistic"
