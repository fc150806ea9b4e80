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
patch, a broad anticorrelated region shared by every participant and a smooth
random coupling over the rest of the search region. The noise is spatially
smooth and autocorrelated in time.

Two presets (:data:`PRESETS`): ``"realistic"`` (default; every difficulty on)
and ``"easy"`` (none: the demo's data). Each difficulty is a field of
:class:`SignalParameters` and can be switched on its own.

Modules: :mod:`.cohort` (entry point), :mod:`.anatomy` (functional grid and
planted patches), :mod:`.signals`, :mod:`.confounds`, :mod:`.writer`,
:mod:`.t1w` (a participant's T1w and fMRIPrep transforms) and :mod:`.itk_h5`
(writing ITK composite transforms).
"""

from __future__ import annotations

from .cohort import simulate_cohort
from .confounds import cosine_basis, framewise_displacement
from .parameters import (
    DLPFC_SITES,
    FD_RADIUS_MM,
    GRID_NOTE,
    PRESETS,
    SIMULATED_NOTE,
    TASK,
    SignalParameters,
    SimulatedCohort,
    preset_parameters,
)

__all__ = [
    "DLPFC_SITES",
    "FD_RADIUS_MM",
    "GRID_NOTE",
    "PRESETS",
    "SIMULATED_NOTE",
    "TASK",
    "SignalParameters",
    "SimulatedCohort",
    "cosine_basis",
    "framewise_displacement",
    "preset_parameters",
    "simulate_cohort",
]
