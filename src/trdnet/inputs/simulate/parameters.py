"""Signal parameters, naming constants and the result record of the simulator."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

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
