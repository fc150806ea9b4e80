"""Turn a fetched public dataset into runs and settings the pipeline can honour."""

from __future__ import annotations

import dataclasses

from ..config import Settings
from ..errors import SettingsError
from .datasets import PublicDataset


def adapt_settings(settings: Settings, dataset: PublicDataset) -> tuple[Settings, list[str]]:
    """Adjust the cleaning to what a dataset's files allow, saying what changed.

    Already band-passed images are not filtered again; without framewise
    displacement and standardised DVARS there is no scrubbing. A request to analyse without global
    signal regression on data whose provider already regressed it is refused.

    Returns
    -------
    settings : Settings
    changes : list of str
        One sentence per change, for the log and the sidecars.

    Raises
    ------
    SettingsError
        If the request cannot be honoured at all.
    """
    prep = dataset.preprocessing
    denoise = settings.denoise
    changes = []
    if prep.gsr_applied and not denoise.gsr:
        raise SettingsError(
            f"{dataset.name}: the provider already regressed the global signal; an analysis without GSR "
            "(--no-gsr) is impossible on these files; choose a strategy without global signal regression"
        )
    if prep.band_passed and (denoise.high_pass or denoise.low_pass):
        denoise = dataclasses.replace(denoise, high_pass=None, low_pass=None)
        changes.append("images already band-passed by the provider: trdnet does not filter again")
    if denoise.scrub and not prep.can_scrub:
        denoise = dataclasses.replace(denoise, scrub=False)
        changes.append("framewise displacement or standardised DVARS is missing from this dataset's confounds "
                       "(nilearn's scrubbing needs both): no motion censoring (scrubbing)")
    if prep.confounds_format == "none":
        changes.append("no confounds table: no motion or tissue regressors are removed by trdnet")
    if not prep.resting_state:
        changes.append("these runs are not resting state (task or movie): interpret connectivity accordingly")
    return dataclasses.replace(settings, denoise=denoise), changes


def dataset_runs(dataset: PublicDataset, changes: list[str]):
    """The dataset's image runs, then its ROI time-series runs, each carrying the dataset's notes and the
    changes made."""
    notes = tuple(dataset.preprocessing.notes) + tuple(dataset.notes) + tuple(changes)
    return [dataclasses.replace(run, notes=tuple(run.notes) + notes) for run in (*dataset.runs, *dataset.roi_runs)]
