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

from .cohort import simulate_cohort
from .confounds import cosine_basis, framewise_displacement
from .parameters import (
    DLPFC_SITES,
    FD_RADIUS_MM,
    GRID_NOTE,
    SIMULATED_NOTE,
    TASK,
    SignalParameters,
    SimulatedCohort,
)

__all__ = [
    "DLPFC_SITES",
    "FD_RADIUS_MM",
    "GRID_NOTE",
    "SIMULATED_NOTE",
    "TASK",
    "SignalParameters",
    "SimulatedCohort",
    "cosine_basis",
    "framewise_displacement",
    "simulate_cohort",
]
