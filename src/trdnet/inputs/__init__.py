"""Where runs come from: fMRIPrep derivatives, public datasets, the simulator,
and ROI time-series tables."""

from .runs import Run

__all__ = ["Run"]
