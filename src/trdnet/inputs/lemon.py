"""``lemon_fsaverage5``: one real resting-state run on the fsaverage5 cortex, from the brainspace wheel.

The ``brainspace`` 0.3.0 wheel on PyPI (BSD-3-Clause) ships, for its
preprocessing tutorial, one run of one participant of the MPI-LEMON study
(Babayan et al. 2019, Sci Data 6:180308), sampled on fsaverage5:
``brainspace/datasets/preprocessing/sub-010188_ses-02_task-rest_acq-AP_run-01.fsa5.{lh,rh}.mgz``
(10,242 vertices x 652 volumes per hemisphere) and a confounds text file
without a header.

What was checked, and what is taken from elsewhere:

- The files' headers give a TR of 1.0 s (1000 ms). LEMON's resting-state
  protocol (Babayan et al. 2019) is TR = 1400 ms, 657 volumes, 15 min 30 s;
  652 volumes at 1.4 s is 15.2 min, at 1.0 s it would be 10.9 min. The
  sidecar written here says **1.4 s** and why; the 1.0 s of the header is not
  the acquisition TR.
- The time series are already cleaned: each vertex has mean 0 and the power
  above 0.1 cycles per volume is below 0.5% of the total (band-passed); 888
  (left) and 881 (right) vertices are all zero (the medial wall). trdnet
  therefore filters no further and regresses no motion.
- The confounds text has 29 unnamed columns (the last three are a constant,
  linear and quadratic trend); their meaning is not documented, so they are
  kept unchanged in ``provenance/`` and not used.
- ``global_signal`` in the confounds table written here is the mean over the
  cortical vertices with signal (both hemispheres): fMRIPrep's whole-brain
  mean cannot be computed without the volume.

The run is laid out as fMRIPrep writes surface outputs (GIFTI per hemisphere
with one data array per volume, a JSON sidecar with the TR, a confounds TSV).
One person, one run: it shows that the surface path runs on real data; it
says nothing about accuracy.
"""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from ..errors import DatasetError
from ..outputs import atomic_write_bytes, write_json, write_tsv
from .datasets import Preprocessing, PublicDataset
from .motion import fmriprep_expansions
from .registry import read_members
from .surface import BRAINSPACE_WHEEL, make_surface_run, no_signal
from .wheel_data import dataset_folder, is_laid_out

NAME = "lemon_fsaverage5"
SUBJECT, SESSION = "010188", "02"
SPACE = "fsaverage5"
#: Acquisition TR of LEMON's resting-state scans (Babayan et al. 2019), seconds.
TR = 1.4
SOURCE = "brainspace/datasets/preprocessing/"
PROVIDER_STEM = "sub-010188_ses-02_task-rest_acq-AP_run-01"
MEMBERS = {"L": f"{SOURCE}{PROVIDER_STEM}.fsa5.lh.mgz", "R": f"{SOURCE}{PROVIDER_STEM}.fsa5.rh.mgz",
           "confounds": f"{SOURCE}{PROVIDER_STEM}_confounds.txt"}
RUN_STEM = f"sub-{SUBJECT}_ses-{SESSION}_task-rest_acq-AP_run-01"
#: Bumped whenever the layout changes, so an older copy is rewritten.
LAYOUT_VERSION = "1"

NOTES = (
    "lemon_fsaverage5: one real resting-state run (MPI-LEMON participant 010188, session 02; Babayan et al. "
    "2019) on fsaverage5, from the brainspace 0.3.0 wheel on PyPI (BSD-3-Clause)",
    "TR 1.4 s from the LEMON protocol (657 volumes, 15:30 min); the files' headers say 1.0 s, which does not fit "
    "the protocol's duration",
    "already cleaned by the provider (vertex means 0, band-passed): trdnet does not filter or regress motion",
    "global_signal is the mean of the cortical vertices with signal, not fMRIPrep's whole-brain mean",
    "the provider's confounds text (29 unnamed columns) is kept in provenance/ and not used",
    "one person, one run: a check that the surface path runs on real data, not a measure of accuracy",
)


def fetch_lemon_fsaverage5(data_dir: str | Path | None = None, *, verbose: bool = False):
    """Fetch (or reuse) the brainspace wheel and lay the LEMON run out as fMRIPrep would.

    Parameters
    ----------
    data_dir : str or Path, optional
        Parent folder of the laid-out run (see
        :func:`~trdnet.inputs.wheel_data.dataset_folder`); the wheel stays in
        the wheel cache.
    verbose : bool
        Show pip's output when downloading.

    Returns
    -------
    trdnet.inputs.public.PublicDataset
        One :class:`~trdnet.inputs.surface.SurfaceRun`; ``preprocessing``
        says what the provider did.

    Raises
    ------
    DatasetError
        The registry is unreachable and the wheel is not cached, or the
        wheel's files are not what this module expects.
    """

    folder = dataset_folder(NAME, data_dir)
    if not is_laid_out(folder, LAYOUT_VERSION, BRAINSPACE_WHEEL):
        write_lemon(folder, read_members(BRAINSPACE_WHEEL, list(MEMBERS.values()), verbose=verbose))
    func = folder / f"sub-{SUBJECT}" / f"ses-{SESSION}" / "func"
    left = func / f"{RUN_STEM}_hemi-L_space-{SPACE}_bold.func.gii"
    run = make_surface_run(left, _entities(), False, lambda *_: func / f"{RUN_STEM}_desc-confounds_timeseries.tsv")
    run = dataclasses.replace(run, source=NAME, confounds_format="table")
    return PublicDataset(
        name=NAME,
        runs=[run],
        description=__doc__,
        preprocessing=preprocessing(),
        cache_dir=folder,
        phenotypic=pd.DataFrame({"participant_id": [f"sub-{SUBJECT}"]}),
        fetch_arguments={"wheel": BRAINSPACE_WHEEL.requirement, "sha256": BRAINSPACE_WHEEL.sha256,
                         "members": list(MEMBERS.values())},
    )


def preprocessing():
    """What the provider did to the run, and what trdnet can still do."""

    return Preprocessing(band_passed=True, gsr_applied=False, nuisance_regressed=True, confounds_format="table",
                         can_scrub=False, resting_state=True, notes=NOTES)


def _entities() -> dict:
    return {"sub": SUBJECT, "ses": SESSION, "task": "rest", "acq": "AP", "run": "01", "space": SPACE}


def mgz_series(payload: bytes, member: str) -> np.ndarray:
    """Time series (T, V) of a FreeSurfer ``.mgz`` surface overlay (V x 1 x 1 x T)."""
    try:
        # .mgz is gzip-compressed MGH; from_bytes reads the uncompressed form
        img = nib.MGHImage.from_bytes(gzip.decompress(payload) if payload[:2] == b"\x1f\x8b" else payload)
    except Exception as exc:  # nibabel raises several types for unreadable files
        raise DatasetError(f"{BRAINSPACE_WHEEL.filename}: cannot read {member} ({exc})") from None
    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim != 4 or data.shape[1:3] != (1, 1):
        raise DatasetError(f"{BRAINSPACE_WHEEL.filename}: {member} has shape {data.shape}, expected (V, 1, 1, T)")
    return np.ascontiguousarray(data[:, 0, 0, :].T)


def write_lemon(folder: Path, files: dict[str, bytes]) -> Path:
    """Lay the wheel's LEMON files out as fMRIPrep's surface outputs.

    Parameters
    ----------
    folder : Path
        Created if needed; ``dataset_description.json`` is written last, so a
        half-written folder is rewritten by the next call.
    files : dict
        ``{wheel member: bytes}`` for :data:`MEMBERS`.

    Returns
    -------
    Path
        ``folder``.
    """
    series = {hemi: mgz_series(files[MEMBERS[hemi]], MEMBERS[hemi]) for hemi in ("L", "R")}
    if series["L"].shape[0] != series["R"].shape[0]:
        raise DatasetError(f"{BRAINSPACE_WHEEL.filename}: hemispheres with different numbers of volumes")
    func = folder / f"sub-{SUBJECT}" / f"ses-{SESSION}" / "func"
    sources = [f"{BRAINSPACE_WHEEL.requirement}:{MEMBERS[h]}" for h in ("L", "R")]
    for hemi, data in series.items():
        gifti = nib.gifti.GiftiImage(darrays=[
            nib.gifti.GiftiDataArray(volume, intent="NIFTI_INTENT_TIME_SERIES", datatype="NIFTI_TYPE_FLOAT32")
            for volume in data])
        name = f"{RUN_STEM}_hemi-{hemi}_space-{SPACE}_bold"
        atomic_write_bytes(func / f"{name}.func.gii", gifti.to_bytes())
        write_json(func / f"{name}.json", {
            "RepetitionTime": TR, "TaskName": "rest",
            "RepetitionTimeSource": "MPI-LEMON protocol (Babayan et al. 2019, Sci Data 6:180308); the .mgz "
                                    "header's 1.0 s does not fit the protocol's 15:30 min for 657 volumes",
            "Sources": sources, "InputNotes": list(NOTES)})
    cortex = np.concatenate([d[:, ~no_signal(d)] for d in series.values()], axis=1)
    table = fmriprep_expansions(pd.DataFrame({"global_signal": cortex.mean(axis=1, dtype=np.float64)}),
                                ["global_signal"])
    confounds = func / f"{RUN_STEM}_desc-confounds_timeseries"
    write_tsv(confounds.with_suffix(".tsv"), table)
    write_json(confounds.with_suffix(".json"), {
        "global_signal": {"Description": "mean of the cortical vertices with signal, both hemispheres (no volume "
                                         "data: not fMRIPrep's whole-brain mean)"},
        "Sources": sources, "InputNotes": list(NOTES)})
    atomic_write_bytes(folder / "provenance" / Path(MEMBERS["confounds"]).name, files[MEMBERS["confounds"]])
    write_json(folder / "dataset_description.json", {
        "Name": "MPI-LEMON sub-010188 resting state on fsaverage5 (from the brainspace wheel, laid out by trdnet)",
        "BIDSVersion": "1.9.0", "DatasetType": "derivative", "License": "BSD-3-Clause (brainspace)",
        "GeneratedBy": [{"Name": "trdnet", "Description": "converted from the brainspace wheel; see "
                                                          "trdnet.inputs.lemon"}],
        "SourceDatasets": [{"URL": f"https://pypi.org/project/brainspace/{BRAINSPACE_WHEEL.version}/",
                            "Version": BRAINSPACE_WHEEL.version}],
        "TrdnetLayoutVersion": LAYOUT_VERSION, "WheelSHA256": BRAINSPACE_WHEEL.sha256})
    return folder
