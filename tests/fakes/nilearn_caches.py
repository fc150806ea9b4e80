"""Fake nilearn dataset caches, laid out exactly as nilearn's fetchers store them.

Layouts follow ``nilearn/datasets/func.py`` (nilearn 0.14):

- ``development_fmri/``: ``participants.tsv``;
  ``sub-<id>_task-pixar_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz``;
  ``sub-<id>_task-pixar_desc-confounds_regressors.tsv`` (ids must be listed in
  nilearn's ``datasets/data/development_fmri.csv``).
- ``adhd/``: ``ADHD200_40subs_motion_parameters_and_phenotypics.csv``;
  ``data/<id>/<id>_rest_tshift_RPI_voreg_mni.nii.gz``; ``data/<id>/<id>_regressors.csv``
  (tab-separated, 17 columns as in the real files).
- ``ABIDE_pcp/``: ``Phenotypic_V1_0b_preprocessed1.csv`` (first header cell empty);
  ``<pipeline>/<strategy>/<FILE_ID>_<derivative>.nii.gz`` or ``.1D``.

Images are tiny (10 x 12 x 10 voxels x 30 volumes, 4 mm) and simulated.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

SHAPE = (10, 12, 10)
N_VOLUMES = 30

ADHD_REGRESSORS = (
    "csf constant linearTrend wm global motion-pitch motion-roll motion-yaw "
    "motion-x motion-y motion-z gm compcor1 compcor2 compcor3 compcor4 compcor5"
).split()

FMRIPREP1_CONFOUNDS = (
    ["global_signal", "csf", "white_matter", "std_dvars", "dvars", "framewise_displacement"]
    + [f"a_comp_cor_{i:02d}" for i in range(6)]
    + ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
)


def write_bold(path: Path, tr: float, n_volumes: int = N_VOLUMES, seed: int = 0) -> Path:
    """Write a small simulated 4D image with ``tr`` (seconds) in its header."""
    rng = np.random.default_rng(seed)
    data = (100 + rng.standard_normal((*SHAPE, n_volumes))).astype(np.float32)
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = [-18.0, -22.0, -18.0]
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = tr
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    return path


DEVELOPMENT_PARTICIPANTS = (("sub-pixar001", "adult"), ("sub-pixar002", "adult"), ("sub-pixar123", "child"))


def make_development_fmri_cache(root: Path, participants=DEVELOPMENT_PARTICIPANTS, tr: float = 2.0) -> Path:
    """Lay out ``root/development_fmri`` for ``(participant_id, 'adult'|'child')`` pairs."""
    folder = Path(root) / "development_fmri"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "participant_id": pid,
            "Age": 25.0 if group == "adult" else 7.5,
            "AgeGroup": "Adult" if group == "adult" else "7yo",
            "Child_Adult": group,
            "Gender": "F" if i % 2 else "M",
            "Handedness": "R",
            "ExtraColumn": i,
        }
        for i, (pid, group) in enumerate(participants)
    ]
    pd.DataFrame(rows).to_csv(folder / "participants.tsv", sep="\t", index=False)
    rng = np.random.default_rng(1)
    for i, (pid, _) in enumerate(participants):
        write_bold(folder / f"{pid}_task-pixar_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz", tr, seed=i)
        values = rng.standard_normal((N_VOLUMES, len(FMRIPREP1_CONFOUNDS)))
        table = pd.DataFrame(values, columns=FMRIPREP1_CONFOUNDS)
        table[["framewise_displacement", "std_dvars", "dvars"]] = table[
            ["framewise_displacement", "std_dvars", "dvars"]
        ].abs()
        table["framewise_displacement"] *= 0.1  # mostly below the usual 0.5 mm censoring threshold
        table.loc[0, ["framewise_displacement", "std_dvars", "dvars"]] = np.nan
        confounds = folder / f"{pid}_task-pixar_desc-confounds_regressors.tsv"
        table.to_csv(confounds, sep="\t", index=False, na_rep="n/a")
    return folder


def make_adhd_cache(root: Path, ids=("0010042", "0010064", "0010128"), header_tr: float = 2.0) -> Path:
    """Lay out ``root/adhd`` for the given ADHD-200 ids (the first of nilearn's ``adhd_ids``)."""
    folder = Path(root) / "adhd"
    folder.mkdir(parents=True, exist_ok=True)
    pheno = pd.DataFrame(
        {
            "Subject": [int(i) for i in ids],
            "site": ["NYU"] * len(ids),
            "adhd": [i % 2 for i in range(len(ids))],
            "age": [10.0 + i for i in range(len(ids))],
        }
    )
    pheno.to_csv(folder / "ADHD200_40subs_motion_parameters_and_phenotypics.csv", index=False)
    rng = np.random.default_rng(2)
    for k, sid in enumerate(ids):
        write_bold(folder / "data" / sid / f"{sid}_rest_tshift_RPI_voreg_mni.nii.gz", header_tr, seed=10 + k)
        table = pd.DataFrame(rng.standard_normal((N_VOLUMES, len(ADHD_REGRESSORS))), columns=ADHD_REGRESSORS)
        table.to_csv(folder / "data" / sid / f"{sid}_regressors.csv", sep="\t", index=False)
    return folder


#: (SUB_ID, SITE_ID, FILE_ID, passes QC) rows of the fake ABIDE phenotype.
ABIDE_ROWS = (
    (50003, "PITT", "Pitt_0050003", True),
    (50004, "PITT", "Pitt_0050004", False),  # fails quality control
    (50952, "NYU", "NYU_0050952", True),
    (50953, "NYU", "no_filename", True),  # no preprocessed data
    (51456, "CALTECH", "Caltech_0051456", True),
)


def make_abide_cache(
    root: Path,
    rows=ABIDE_ROWS,
    pipeline: str = "cpac",
    strategy: str = "nofilt_noglobal",
    derivatives=("func_preproc",),
    site_tr=None,
    n_rois: int = 6,
) -> Path:
    """Lay out ``root/ABIDE_pcp``; ``.1D`` files get a ``#1 #2 ...`` header."""
    site_tr = site_tr or {"PITT": 1.5, "NYU": 2.0, "CALTECH": 2.0}
    folder = Path(root) / "ABIDE_pcp"
    folder.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(
        {
            "SUB_ID": [r[0] for r in rows],
            "X": range(1, len(rows) + 1),
            "subject": [r[0] for r in rows],
            "SITE_ID": [r[1] for r in rows],
            "FILE_ID": [r[2] for r in rows],
            "DX_GROUP": [1 + i % 2 for i in range(len(rows))],
            "AGE_AT_SCAN": [20.0 + i for i in range(len(rows))],
            "SEX": [1] * len(rows),
            "qc_rater_1": ["OK" if r[3] else "fail" for r in rows],
            "qc_notes_rater_1": ['"motion, slight"'] * len(rows),  # comma inside quotes, as in the real file
            "qc_anat_rater_2": ["OK"] * len(rows),
            "qc_func_rater_2": ["maybe"] * len(rows),
            "qc_anat_rater_3": ["OK"] * len(rows),
            "qc_func_rater_3": ["OK"] * len(rows),
            "func_mean_fd": [0.1] * len(rows),
        }
    )
    lines = ["," + ",".join(table.columns)]
    for i, rec in enumerate(table.itertuples(index=False)):
        lines.append(",".join([str(i)] + [str(v) for v in rec]))
    (folder / "Phenotypic_V1_0b_preprocessed1.csv").write_text("\n".join(lines) + "\n")
    out = folder / pipeline / strategy
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for k, (_, site, file_id, _) in enumerate(rows):
        if file_id == "no_filename":
            continue
        for derivative in derivatives:
            if derivative.startswith("rois"):
                data = rng.standard_normal((N_VOLUMES, n_rois))
                header = " ".join(f"#{j + 1}" for j in range(n_rois))
                np.savetxt(out / f"{file_id}_{derivative}.1D", data, header=header, comments="", fmt="%.6f")
            else:
                write_bold(out / f"{file_id}_{derivative}.nii.gz", site_tr.get(site, 2.0), seed=20 + k)
    return folder
