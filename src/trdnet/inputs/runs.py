"""The :class:`Run` record: one functional run and everything known about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..entities import ENTITY_ORDER, output_prefix, subject_folder
from ..errors import InputError

if TYPE_CHECKING:
    from .anatomy import NativeAnatomy

#: fMRIPrep's preprocessed volume BOLD file (the ending after the entities).
BOLD_SUFFIX = "_desc-preproc_bold.nii.gz"
#: Preprocessed volume BOLD files trdnet reads: fMRIPrep's compressed form and
#: the uncompressed one (BIDS allows both; SPM users often decompress).
VOLUME_SUFFIXES = (BOLD_SUFFIX, "_desc-preproc_bold.nii")

__all__ = ["ENTITY_ORDER", "Run", "check_distinct_outputs", "subject_folder"]


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
        "read it from the image header". Checked against the header when the
        run is cleaned (:mod:`trdnet.inputs.repetition`).
    tr_source : str
        Where ``tr`` came from (e.g. ``sub-01_..._bold.json RepetitionTime``);
        recorded in the QC sidecar.
    simulated : bool
        True for the built-in simulated cohort: every output says so.
    source : str
        Where the run came from (``fmriprep``, ``simulated``, a dataset name).
    anatomy : NativeAnatomy or None
        The participant's T1w image, masks and fMRIPrep transforms between
        T1w and the template (:mod:`trdnet.inputs.anatomy`), found once with
        the run; None when ``anat/`` holds no ``desc-preproc_T1w``. Every later
        stage (T1w-space analysis, navigator export, report) reads it here.
    """

    bold: Path
    entities: dict = field(default_factory=dict)
    mask: Path | None = None
    confounds: Path | None = None
    tr: float | None = None
    simulated: bool = False
    source: str = "fmriprep"
    anatomy: NativeAnatomy | None = None
    confounds_format: str = "fmriprep"
    notes: tuple[str, ...] = ()
    tr_source: str = ""

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
        """BIDS prefix of the outputs: every entity of the BOLD file but ``desc``, in BIDS order.

        ``sub-<l>[_ses-<l>]_task-<l>[_acq-..._ce-..._rec-..._dir-...][_run-<l>][_echo-<l>][_part-<l>]_space-<l>
        [_res-<l>][_den-<l>]``: two inputs that differ in any entity get distinct outputs.
        """
        return output_prefix(self.entities)

    @property
    def subject_dir(self) -> str:
        """Relative output folder: ``sub-<l>[/ses-<l>]/func``."""
        return subject_folder(self.entities)



def check_distinct_outputs(runs) -> None:
    """Refuse runs whose outputs would share a name, before any of them is processed.

    Parameters
    ----------
    runs : sequence
        Objects with ``prefix``, ``subject_dir`` and the input file as ``bold`` or ``path``.

    Raises
    ------
    InputError
        Naming both input files and the shared output prefix.
    """
    seen: dict[tuple[str, str], object] = {}
    for run in runs:
        key = (run.subject_dir, run.prefix)
        if key in seen:
            first, second = (getattr(r, "bold", None) or getattr(r, "path", None) for r in (seen[key], run))
            raise InputError(
                f"{second}: its outputs would be named like those of {first} ({run.prefix}_*); "
                "trdnet keeps every entity that tells inputs apart, so rename one of them or select one "
                "(--participant-label, --task, --space, a --bids-filter-file)"
            )
        seen[key] = run
