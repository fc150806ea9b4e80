"""Tests of finding a participant's native anatomy in fMRIPrep derivatives."""

from __future__ import annotations

from pathlib import Path

import pytest

from trdnet.export import find_native_anatomy

MNI = "MNI152NLin2009cAsym"


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def _anat_files(prefix: str) -> list[str]:
    return [
        f"{prefix}_desc-preproc_T1w.nii.gz",
        f"{prefix}_space-{MNI}_desc-preproc_T1w.nii.gz",
        f"{prefix}_desc-brain_mask.nii.gz",
        f"{prefix}_space-{MNI}_desc-brain_mask.nii.gz",
        f"{prefix}_label-GM_probseg.nii.gz",
        f"{prefix}_label-WM_probseg.nii.gz",
        f"{prefix}_desc-aseg_dseg.nii.gz",
        f"{prefix}_dseg.nii.gz",
        f"{prefix}_from-{MNI}_to-T1w_mode-image_xfm.h5",
        f"{prefix}_from-T1w_to-{MNI}_mode-image_xfm.h5",
        f"{prefix}_from-T1w_to-MNI152NLin6Asym_mode-image_xfm.h5",
    ]


def test_subject_level_anat(tmp_path):
    anat_dir = tmp_path / "sub-01" / "anat"
    _touch(anat_dir, *_anat_files("sub-01"))
    anat = find_native_anatomy(tmp_path, "sub-01")
    assert anat.t1w == anat_dir / "sub-01_desc-preproc_T1w.nii.gz"
    assert anat.brain_mask.name == "sub-01_desc-brain_mask.nii.gz"
    assert anat.gm_probseg.name == "sub-01_label-GM_probseg.nii.gz"
    assert anat.dseg.name == "sub-01_dseg.nii.gz"
    assert anat.xfm_t1w_to_template.name == f"sub-01_from-T1w_to-{MNI}_mode-image_xfm.h5"
    assert anat.xfm_template_to_t1w.name == f"sub-01_from-{MNI}_to-T1w_mode-image_xfm.h5"
    assert anat.session is None


def test_session_level_anat(tmp_path):
    _touch(tmp_path / "sub-01" / "ses-a" / "anat", *_anat_files("sub-01_ses-a"))
    _touch(tmp_path / "sub-01" / "ses-b" / "anat", *_anat_files("sub-01_ses-b"))
    anat = find_native_anatomy(tmp_path, "01", session="b")
    assert anat.session == "b"
    assert anat.t1w.name == "sub-01_ses-b_desc-preproc_T1w.nii.gz"
    first = find_native_anatomy(tmp_path, "01")
    assert first.session == "a"


def test_session_falls_back_to_subject_anat(tmp_path):
    _touch(tmp_path / "sub-01" / "anat", *_anat_files("sub-01"))
    _touch(tmp_path / "sub-01" / "ses-a" / "func", "x.nii.gz")
    anat = find_native_anatomy(tmp_path, "01", session="a")
    assert anat.t1w.name == "sub-01_desc-preproc_T1w.nii.gz"


@pytest.mark.parametrize("files", [[], ["sub-01_space-MNI152NLin2009cAsym_desc-preproc_T1w.nii.gz"]])
def test_no_native_t1w_gives_none(tmp_path, files):
    _touch(tmp_path / "sub-01" / "anat", *files)
    assert find_native_anatomy(tmp_path, "01") is None
    assert find_native_anatomy(tmp_path, "99") is None


def test_from_run(tmp_path):
    from trdnet.export import NativeAnatomy
    from trdnet.inputs.runs import Run

    run = Run(bold=tmp_path / "b.nii.gz", entities={"sub": "01", "ses": "a"},
              t1w=tmp_path / "t1.nii.gz", t1w_dseg=tmp_path / "sub-01_label-GM_probseg.nii.gz",
              xfm_t1w_to_template=tmp_path / "x.h5", simulated=True)
    anat = NativeAnatomy.from_run(run)
    assert anat.subject == "01" and anat.session == "a" and anat.simulated
    assert anat.gm_probseg.name == "sub-01_label-GM_probseg.nii.gz" and anat.dseg is None
    assert NativeAnatomy.from_run(Run(bold=tmp_path / "b.nii.gz", entities={"sub": "01"})) is None
