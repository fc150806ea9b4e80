"""``brainfc_rest01``: one real resting-state scan at the parcel level, from the brainfc wheel.

The ``brainfc`` 0.5.1 wheel on PyPI (Apache-2.0) ships one participant's
resting-state sample as ``brainfc/data/rest01/``: 150 volumes (TR 2 s) of
Schaefer 2018 100-parcel / 7-network means in MNI152NLin6Asym, extracted
before temporal denoising, with its motion (ANTsPy rigid matrices + offsets),
ANTs generalised FD, CSF and white-matter signals. That it is a real,
de-identified scan shared with the data provider's authorisation is the
package's own statement (its ``README.md``, ``example.json`` and
``privacy-review.json``, copied beside the data); trdnet has not verified it.

brainfc itself is not installed (it pins old numpy and heavy dependencies):
the wheel file alone is fetched into trdnet's cache (:mod:`.registry`) and
the sample is laid out as trdnet's ROI input expects, with its confounds in
fMRIPrep's form, converted as a user would:

- six motion parameters from the matrices and offsets
  (:func:`trdnet.inputs.motion.rigid_motion_parameters`: LPS -> RAS, scipy's
  extrinsic ``"xyz"`` Euler angles in radians, offsets as translations in mm);
- fMRIPrep's derivative and quadratic expansions of motion, WM, CSF and global signal;
- ``framewise_displacement`` recomputed as Power's FD from those parameters
  (what fMRIPrep writes); the provider's ANTs generalised FD, a different
  measure, is kept as ``framewise_displacement_ants``;
- ``global_signal``: the mean of the 100 parcel signals (no voxel data are
  shipped, so fMRIPrep's whole-brain mean cannot be computed; cortex only);
- ``non_steady_state_outlier00..04`` for the 5 initial volumes the provider
  discards (its ``extraction_config.discard``).

No standardised DVARS can be computed from parcel means, so nilearn's
scrubbing (FD and DVARS together) is not available for this sample.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DatasetError
from ..outputs import atomic_write_bytes, write_json, write_tsv
from .datasets import Preprocessing, PublicDataset
from .motion import (
    MOTION_PARAMETERS,
    fmriprep_expansions,
    non_steady_state_columns,
    power_framewise_displacement,
    rigid_motion_parameters,
)
from .registry import Wheel, read_members
from .timeseries import find_roi_timeseries_runs
from .wheel_data import dataset_folder, is_laid_out

NAME = "brainfc_rest01"

#: The wheel holding the sample (SHA-256 of the file on PyPI).
BRAINFC_WHEEL = Wheel(
    package="brainfc",
    version="0.5.1",
    sha256="5439dc6b40d1847f935ec8f627169774bfbfa77bd189ad2c5eb1cae20fb27523",
    filename="brainfc-0.5.1-py3-none-any.whl",
)

SAMPLE_FOLDER = "brainfc/data/rest01/"
DATA_FILES = ("timeseries.tsv", "timeseries.json", "rois.tsv", "confounds.tsv")
#: The provider's own description of the sample, copied unchanged beside the converted files.
PROVENANCE_FILES = ("README.md", "example.json", "privacy-review.json")

SUBJECT = "rest01"
SPACE = "MNI152NLin6Asym"
SEG = "Schaefer100"
#: The parcellation, as the package states it.
ATLAS = "Schaefer 2018, 100 parcels, 7 networks (Schaefer-100)"
#: Initial volumes the provider discards (example.json, extraction_config.discard).
N_NON_STEADY = 5
#: Bumped whenever the converted layout changes, so an older copy is rewritten.
LAYOUT_VERSION = "1"

RUN_STEM = f"sub-{SUBJECT}_task-rest"
LABELS_NAME = f"atlas-{SEG}_dseg.tsv"

NOTES = (
    "brainfc_rest01: one real participant's resting-state scan (150 volumes, TR 2 s, Schaefer 2018 100 parcels / "
    "7 networks in MNI152NLin6Asym) from the brainfc 0.5.1 wheel on PyPI (Apache-2.0); that it is a real, "
    "de-identified scan shared with the provider's authorisation is the package's own statement (README.md, "
    "example.json, privacy-review.json copied beside the data), not verified by trdnet",
    "parcel means after motion correction, brain extraction and normalisation (ANTsPy), before temporal "
    "denoising; no slice-timing or susceptibility-distortion correction (provider's statement)",
    "motion converted by trdnet from ANTs rigid matrices + offsets (LPS) to trans_x..rot_z (RAS; scipy extrinsic "
    "xyz Euler angles, radians; offsets as translations, mm); framewise_displacement is Power's FD of those "
    "parameters; the provider's ANTs generalised FD is kept as framewise_displacement_ants",
    "global_signal is the mean of the 100 cortical parcel signals, not fMRIPrep's whole-brain mean",
    "the first 5 volumes are flagged non-steady-state, as the provider discards them",
    "one participant, 5 minutes: a demonstration on real data, not a reference for any group",
)


def fetch_brainfc_rest01(data_dir: str | Path | None = None, *, verbose: bool = False):
    """Fetch (or reuse) the brainfc wheel and lay the rest01 sample out as ROI input.

    Parameters
    ----------
    data_dir : str or Path, optional
        Parent folder of the laid-out sample (default: the trdnet cache's
        ``datasets`` folder). The wheel itself is kept in the wheel cache
        (:func:`trdnet.inputs.registry.wheels_dir`).
    verbose : bool
        Show pip's output when downloading.

    Returns
    -------
    trdnet.inputs.public.PublicDataset
        One ROI time-series run with its confounds, ``preprocessing`` saying
        what the provider did and what trdnet can still do.

    Raises
    ------
    DatasetError
        The registry is unreachable and the wheel is not cached, or its
        files are not what this converter expects.
    """

    folder = dataset_folder(NAME, data_dir)
    if not is_laid_out(folder, LAYOUT_VERSION, BRAINFC_WHEEL):
        files = read_members(BRAINFC_WHEEL, [SAMPLE_FOLDER + n for n in (*DATA_FILES, *PROVENANCE_FILES)],
                             verbose=verbose)
        write_sample(folder, {name.removeprefix(SAMPLE_FOLDER): data for name, data in files.items()})
    runs = find_roi_timeseries_runs(folder, folder / LABELS_NAME, source=NAME, atlas=ATLAS)
    return PublicDataset(
        name=NAME,
        runs=[],
        roi_runs=runs,
        description=(folder / "provenance" / "README.md").read_text(encoding="utf-8"),
        preprocessing=preprocessing(),
        cache_dir=folder,
        phenotypic=pd.DataFrame({"participant_id": [f"sub-{SUBJECT}"]}),
        fetch_arguments={"wheel": BRAINFC_WHEEL.requirement, "sha256": BRAINFC_WHEEL.sha256,
                         "member": SAMPLE_FOLDER},
    )


def preprocessing():
    """What the provider did to the sample, and what trdnet can still do with it."""

    return Preprocessing(band_passed=False, gsr_applied=False, nuisance_regressed=False, confounds_format="fmriprep",
                         can_scrub=False, resting_state=True, notes=NOTES)


def write_sample(folder: Path, files: dict[str, bytes]) -> Path:
    """Lay the wheel's rest01 files out as trdnet's ROI input (BIDS-derivative names).

    Parameters
    ----------
    folder : Path
        Created if needed; ``dataset_description.json`` is written last, so a
        half-written folder is rewritten by the next call.
    files : dict
        ``{file name: bytes}`` for :data:`DATA_FILES` and :data:`PROVENANCE_FILES`.

    Returns
    -------
    Path
        ``folder``.
    """
    signals = _table(files, "timeseries.tsv")
    rois = _table(files, "rois.tsv")
    provider = _table(files, "confounds.tsv")
    sidecar = json.loads(files["timeseries.json"])
    if signals.shape != (len(provider), len(rois)) or "network" not in rois or "name" not in rois:
        raise DatasetError(f"{BRAINFC_WHEEL.filename}: {SAMPLE_FOLDER} is not laid out as expected "
                           f"(signals {signals.shape}, {len(rois)} ROIs, {len(provider)} confound rows)")
    names = rois["name"].astype(str).tolist()
    func = folder / f"sub-{SUBJECT}" / "func"
    labels = pd.DataFrame({"index": rois["label_value"], "name": names, "network": rois["network"],
                           "x": rois["x"], "y": rois["y"], "z": rois["z"]})
    write_tsv(folder / LABELS_NAME, labels)
    write_json(folder / LABELS_NAME.replace(".tsv", ".json"), {
        "Description": "Schaefer 2018 100 parcels, 7 networks: label value, name, Yeo network and centroid",
        "Columns": {"x": f"centroid x ({SPACE}, RAS mm)", "y": "centroid y", "z": "centroid z"},
        "Sources": [f"{BRAINFC_WHEEL.requirement}:{SAMPLE_FOLDER}rois.tsv"]})
    series = f"{RUN_STEM}_space-{SPACE}_seg-{SEG}_timeseries"
    write_tsv(func / f"{series}.tsv", pd.DataFrame(signals.to_numpy(dtype=float), columns=names))
    write_json(func / f"{series}.json", {
        "RepetitionTime": float(sidecar["RepetitionTime"]), "TaskName": sidecar.get("TaskName", "rest"),
        "Description": "Mean signal of each parcel before temporal denoising (columns = parcel names)",
        "Sources": [f"{BRAINFC_WHEEL.requirement}:{SAMPLE_FOLDER}timeseries.tsv"], "InputNotes": list(NOTES)})
    confounds = fmriprep_confounds(provider, signals.to_numpy(dtype=float))
    write_tsv(func / f"{RUN_STEM}_desc-confounds_timeseries.tsv", confounds)
    write_json(func / f"{RUN_STEM}_desc-confounds_timeseries.json", confounds_sidecar())
    for name in PROVENANCE_FILES:
        atomic_write_bytes(folder / "provenance" / name, files[name])
    write_json(folder / "dataset_description.json", {
        "Name": "brainfc rest01: one real resting-state scan at the parcel level (laid out by trdnet)",
        "BIDSVersion": "1.9.0", "DatasetType": "derivative", "License": "Apache-2.0",
        "GeneratedBy": [{"Name": "trdnet", "Description": "converted from the brainfc wheel; see provenance/"}],
        "SourceDatasets": [{"URL": f"https://pypi.org/project/brainfc/{BRAINFC_WHEEL.version}/",
                            "Version": BRAINFC_WHEEL.version}],
        "TrdnetLayoutVersion": LAYOUT_VERSION, "WheelSHA256": BRAINFC_WHEEL.sha256})
    return folder


def fmriprep_confounds(provider: pd.DataFrame, signals: np.ndarray) -> pd.DataFrame:
    """The provider's confounds in fMRIPrep's columns (see the module docstring for each choice).

    Parameters
    ----------
    provider : pandas.DataFrame
        brainfc's ``confounds.tsv``: ``motion_matrix_ij``, ``motion_offset_x/y/z``,
        ``framewise_displacement`` (ANTs), ``csf``, ``white_matter``.
    signals : numpy.ndarray, shape (T, R)
        The parcel signals (for the global signal).

    Returns
    -------
    pandas.DataFrame, T rows
    """
    matrices = provider[[f"motion_matrix_{i}{j}" for i in range(3) for j in range(3)]].to_numpy(float)
    offsets = provider[["motion_offset_x", "motion_offset_y", "motion_offset_z"]].to_numpy(float)
    table = rigid_motion_parameters(matrices.reshape(-1, 3, 3), offsets, lps=True)
    table["white_matter"] = provider["white_matter"].to_numpy(float)
    table["csf"] = provider["csf"].to_numpy(float)
    table["global_signal"] = signals.mean(axis=1)
    table = fmriprep_expansions(table, [*MOTION_PARAMETERS, "white_matter", "csf", "global_signal"])
    table["framewise_displacement"] = power_framewise_displacement(table)
    table["framewise_displacement_ants"] = pd.to_numeric(provider["framewise_displacement"], errors="coerce")
    return pd.concat([table, non_steady_state_columns(len(table), N_NON_STEADY)], axis=1)


def confounds_sidecar() -> dict:
    """JSON sidecar of the converted confounds: how each column was made."""
    return {
        "Description": "brainfc rest01 confounds converted to fMRIPrep's column names by trdnet",
        "Sources": [f"{BRAINFC_WHEEL.requirement}:{SAMPLE_FOLDER}confounds.tsv"],
        "trans_x": {"Description": "translation (mm, RAS) = the ANTs transform offset, LPS x negated"},
        "rot_x": {"Description": "rotation (radians, RAS) from the ANTs matrix: scipy Rotation.as_euler('xyz') "
                                 "of F R F, F = diag(-1, -1, 1)"},
        "framewise_displacement": {"Description": "Power et al. 2012 FD of trans_*/rot_* (50 mm head radius)"},
        "framewise_displacement_ants": {"Description": "the provider's ANTs generalised FD (not Power FD)"},
        "global_signal": {"Description": "mean of the 100 parcel signals (cortex only; no voxel data shipped)"},
        "non_steady_state_outlier00": {"Description": "one-hot flags of the 5 initial volumes the provider "
                                                      "discards"},
        "InputNotes": list(NOTES),
    }


def _table(files: dict[str, bytes], name: str) -> pd.DataFrame:
    try:
        return pd.read_csv(io.BytesIO(files[name]), sep="\t", na_values="n/a")
    except (KeyError, ValueError, pd.errors.ParserError) as exc:
        raise DatasetError(f"{BRAINFC_WHEEL.filename}: cannot read {SAMPLE_FOLDER}{name} ({exc})") from None
