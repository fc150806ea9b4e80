"""The :class:`Run` record: one functional run and everything known about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..entities import ENTITY_ORDER, output_prefix, subject_folder

__all__ = ["ENTITY_ORDER", "Run", "subject_folder"]


@dataclass(frozen=True)
class Run:
    """One functional run as found on disk.

    Attributes
    ----------
    bold : Path
        Preprocessed 4D BOLD image.
    entities : dict
        BIDS entities (``sub``, ``ses``, ``task``, ``run``, ``space``, ...).
    mask : Path or None
        Brain mask in the BOLD grid.
    confounds : Path or None
        fMRIPrep confounds table (``desc-confounds_timeseries`` or the older
        ``desc-confounds_regressors``).
    tr : float or None
        Repetition time in seconds, from the JSON sidecar; ``None`` means
        "read it from the image header".
    simulated : bool
        True for the built-in simulated cohort: every output says so.
    source : str
        Where the run came from (``fmriprep``, ``simulated``, a dataset name).
    t1w, t1w_mask, t1w_dseg : Path or None
        The participant's preprocessed T1w image, brain mask and tissue
        segmentation (for export to native space).
    xfm_t1w_to_template, xfm_template_to_t1w : Path or None
        fMRIPrep transforms between T1w and the template space.
    """

    bold: Path
    entities: dict = field(default_factory=dict)
    mask: Path | None = None
    confounds: Path | None = None
    tr: float | None = None
    simulated: bool = False
    source: str = "fmriprep"
    t1w: Path | None = None
    t1w_mask: Path | None = None
    t1w_dseg: Path | None = None
    xfm_t1w_to_template: Path | None = None
    xfm_template_to_t1w: Path | None = None
    confounds_format: str = "fmriprep"
    notes: tuple[str, ...] = ()

    @property
    def subject(self) -> str:
        """Participant label without ``sub-``."""
        return self.entities["sub"]

    @property
    def space(self) -> str:
        """Space of the BOLD image (``MNI152NLin2009cAsym``, ``T1w``, ...)."""
        return self.entities.get("space", "")

    @property
    def prefix(self) -> str:
        """BIDS prefix of the outputs: ``sub-<l>[_ses-<l>]_task-<l>[_run-<l>]_space-<l>``."""
        return output_prefix(self.entities, keep=("sub", "ses", "task", "acq", "dir", "run", "echo", "space"))

    @property
    def subject_dir(self) -> str:
        """Relative output folder: ``sub-<l>[/ses-<l>]/func``."""
        return subject_folder(self.entities)

