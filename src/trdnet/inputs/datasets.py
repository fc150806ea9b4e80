"""Public datasets trdnet reads: their names and the records a fetch returns.

Kept apart from the fetchers (:mod:`trdnet.inputs.public`, :mod:`~trdnet.inputs.brainfc`,
:mod:`~trdnet.inputs.lemon`) so that the command line lists the names without
importing nilearn, and the fetchers share the records without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from .runs import Run
    from .timeseries import RoiTimeseriesRun

#: Names accepted by :func:`trdnet.inputs.public.fetch_dataset`: nilearn's datasets, then the real
#: parcel-level sample shipped in a wheel on PyPI (:mod:`trdnet.inputs.brainfc`), the real fsaverage5
#: run of the brainspace wheel (:mod:`trdnet.inputs.lemon`).
NILEARN_DATASETS = ("development_fmri", "adhd", "abide_pcp")
#: Real samples read from wheels on the package index by pip (:mod:`trdnet.inputs.registry`), not through nilearn.
WHEEL_DATASETS = ("brainfc_rest01", "lemon_fsaverage5")
DATASETS = (*NILEARN_DATASETS, *WHEEL_DATASETS)


@dataclass(frozen=True)
class Preprocessing:
    """What a dataset's files already had done, and what trdnet may still do.

    Attributes
    ----------
    band_passed : bool
        The images are already band-pass filtered: do not filter again.
    gsr_applied : bool
        Global signal regression is already applied: it cannot be switched off.
    nuisance_regressed : bool
        Motion / tissue regressors are already removed from the images.
    confounds_format : str
        ``"fmriprep"`` (usable by :func:`nilearn.interfaces.fmriprep.load_confounds`),
        ``"adhd_csv"`` (read with :func:`read_dataset_confounds`) or ``"none"``.
    can_scrub : bool
        Framewise displacement is available, so motion censoring is possible.
    resting_state : bool
        False when the runs are a task (e.g. movie watching), not rest.
    notes : tuple of str
        Human-readable statements for the outputs and the methods text.
    """

    band_passed: bool
    gsr_applied: bool
    nuisance_regressed: bool
    confounds_format: str
    can_scrub: bool
    resting_state: bool
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form for output sidecars."""
        return {
            "band_passed": self.band_passed,
            "gsr_applied": self.gsr_applied,
            "nuisance_regressed": self.nuisance_regressed,
            "confounds_format": self.confounds_format,
            "can_scrub": self.can_scrub,
            "resting_state": self.resting_state,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class PublicDataset:
    """A public dataset read from nilearn's cache.

    Attributes
    ----------
    name : str
        One of :data:`DATASETS`.
    runs : list of Run
        One record per functional image (empty for ABIDE ROI time series).
    roi_runs : list of RoiTimeseriesRun
        ABIDE ROI time-series derivatives (``rois_*``), when requested.
    description : str
        nilearn's description of the dataset.
    preprocessing : Preprocessing
        What was already done to the data and what the pipeline will not do.
    cache_dir : Path
        The folder nilearn read the files from.
    phenotypic : pandas.DataFrame
        The dataset's participant table, restricted to the fetched participants.
    fetch_arguments : dict
        The arguments passed to the nilearn fetcher.
    notes : tuple of str
        Per-dataset remarks found while reading (e.g. TR disagreements).
    """

    name: str
    runs: list[Run]
    description: str
    preprocessing: Preprocessing
    cache_dir: Path
    phenotypic: pd.DataFrame
    fetch_arguments: dict = field(default_factory=dict)
    roi_runs: list[RoiTimeseriesRun] = field(default_factory=list)
    notes: tuple[str, ...] = ()
