"""Writing the simulated files: NIfTI, JSON and TSV, in the BIDS / fMRIPrep layout."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from ..._version import __version__
from ...config import MNI_SPACE
from ...outputs import atomic_write_text, write_json, write_nifti
from .anatomy import _Anatomy
from .confounds import _confounds
from .parameters import GRID_NOTE, SIMULATED_NOTE, TASK


def _bold_image(anat: _Anatomy, data: np.ndarray, tr: float):
    """int16 image with ``scl_slope`` chosen so the largest value uses the full range.

    Returns the image and the (T, V) values as stored (after quantisation).
    """
    slope = float(np.abs(data).max()) / 32000.0 or 1.0
    quantised = np.rint(data / slope).astype(np.int16)
    # Fortran order is what NIfTI stores: nibabel then writes without a transposed copy.
    volume = np.zeros((*anat.mask.shape, data.shape[0]), dtype=np.int16, order="F")
    volume[anat.mask] = quantised.T
    img = nib.Nifti1Image(volume, anat.affine)
    _mni_header(img, anat.affine)
    img.header.set_slope_inter(slope, 0.0)
    img.header.set_zooms((*img.header.get_zooms()[:3], tr))
    img.header.set_xyzt_units("mm", "sec")
    return img, quantised.astype(np.float32) * np.float32(slope)


def _mni_header(img: nib.Nifti1Image, affine: np.ndarray) -> None:
    img.header.set_sform(affine, code=4)
    img.header.set_qform(affine, code=4)
    img.header.set_xyzt_units("mm")


def _run_prefixes(subject: str, sessions, runs) -> list[tuple[str | None, str | None, str]]:
    out = []
    for ses in sessions or [None]:
        for run in (list(range(1, runs + 1)) if runs else [None]):
            parts = [f"sub-{subject}"]
            if ses is not None:
                parts.append(f"ses-{ses}")
            parts.append(f"task-{TASK}")
            if run is not None:
                parts.append(f"run-{run}")
            out.append((ses, None if run is None else str(run), "_".join(parts)))
    return out


def _write_participants(fmriprep_dir: Path, subjects: list[str]) -> None:
    """participants.tsv with an alternating (arbitrary, simulated) patient / control label."""
    groups = ["patient" if i % 2 == 0 else "control" for i in range(len(subjects))]
    table = pd.DataFrame({"participant_id": [f"sub-{s}" for s in subjects], "group": groups,
                          "note": "simulated; group label arbitrary"})
    atomic_write_text(fmriprep_dir / "participants.tsv", table.to_csv(sep="\t", index=False))


def _write_dataset_description(fmriprep_dir: Path, preset: str) -> None:
    write_json(fmriprep_dir / "dataset_description.json", {
        "Name": f"SIMULATED resting-state cohort (trdnet simulator, {preset} preset)",
        "BIDSVersion": "1.8.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "trdnet-simulator", "Version": __version__,
                         "Description": SIMULATED_NOTE}],
        "Simulated": True,
        "SimulatorPreset": preset,
        "GridNote": GRID_NOTE,
    })


def _write_run(func: Path, prefix: str, anat: _Anatomy, result: dict, tr: float, suffix: str):
    space = f"{prefix}_space-{MNI_SPACE}"
    # Confounds are computed from the values as stored (after int16 quantisation).
    img, stored = _bold_image(anat, result["data"], tr)
    write_nifti(func / f"{space}_desc-preproc_bold.nii.gz", img)
    write_json(func / f"{space}_desc-preproc_bold.json", {
        "RepetitionTime": tr, "TaskName": TASK, "SkullStripped": False,
        "Simulated": True, "Description": SIMULATED_NOTE, "GridNote": GRID_NOTE,
        "DataType": "int16 with scl_slope",
    })
    mask_img = nib.Nifti1Image(anat.mask.astype(np.uint8), anat.affine)
    _mni_header(mask_img, anat.affine)
    write_nifti(func / f"{space}_desc-brain_mask.nii.gz", mask_img)
    write_json(func / f"{space}_desc-brain_mask.json", {
        "Type": "Brain", "Simulated": True, "GridNote": GRID_NOTE,
    })
    frame, sidecar = _confounds(anat, stored, result["motion"], result["fd"], tr)
    atomic_write_text(func / f"{prefix}_desc-confounds_{suffix}.tsv",
                frame.to_csv(sep="\t", index=False, na_rep="n/a", float_format="%.8g"))
    write_json(func / f"{prefix}_desc-confounds_{suffix}.json", sidecar)
