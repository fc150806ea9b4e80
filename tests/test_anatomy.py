"""Tests of finding a participant's native anatomy in fMRIPrep derivatives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_fmriprep_run, write_mni_run

from trdnet.inputs.anatomy import find_native_anatomy

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


def test_find_runs_records_the_anatomy_once_per_participant_and_session(tmp_path, monkeypatch):
    """Each run carries its participant's anatomy; ``anat/`` is searched once per participant and session."""
    import trdnet.inputs.anatomy as anatomy_module
    from trdnet.inputs.bids import find_runs

    for run in ("1", "2"):
        write_fmriprep_run(tmp_path, sub="01", ses="a", run=run)
    write_fmriprep_run(tmp_path, sub="02")
    _touch(tmp_path / "sub-01" / "ses-a" / "anat", *_anat_files("sub-01_ses-a"))
    searched = []
    scan = anatomy_module._scan
    monkeypatch.setattr(anatomy_module, "_scan", lambda folder, *a: searched.append(folder) or scan(folder, *a))
    runs = find_runs(tmp_path)
    assert [r.anatomy.t1w.name if r.anatomy else None for r in runs] == [
        "sub-01_ses-a_desc-preproc_T1w.nii.gz", "sub-01_ses-a_desc-preproc_T1w.nii.gz", None]
    assert runs[0].anatomy.xfm_template_to_t1w.name == f"sub-01_ses-a_from-{MNI}_to-T1w_mode-image_xfm.h5"
    assert searched.count(tmp_path / "sub-01" / "ses-a" / "anat") == 1


@pytest.mark.slow  # a whole run, its export and its report
def test_processing_and_report_read_the_anatomy_from_the_run(tmp_path, monkeypatch):
    """After the run is found, no stage searches ``anat/``: analysis, navigator export and report read the record."""
    import trdnet.inputs.anatomy as anatomy_module
    from trdnet.cli import main
    from trdnet.config import Settings
    from trdnet.inputs.bids import find_runs
    from trdnet.inputs.simulate.t1w import write_simulated_anat
    from trdnet.pipeline import process_run

    root, out = tmp_path / "fmriprep", tmp_path / "out"
    write_mni_run(root, "01", space="T1w", seed=1)
    paths = write_simulated_anat(root, "01", 5, resolution_mm=4)  # a coarse T1w: the files matter, not the image
    run = find_runs(root, space="T1w")[0]
    assert run.anatomy.t1w == paths["t1w"]

    def searched(*args):
        raise AssertionError(f"anat/ searched again: {args}")

    monkeypatch.setattr(anatomy_module, "_scan", searched)
    settings = Settings.from_dict({"space": "T1w", "denoise": {"min_volumes": 40, "min_minutes": 1.0},
                                   "targeting": {"reliability": False}, "export": {"formats": ["brainsight"]}})
    result = process_run(run, out, settings)
    assert result.status == "done", result
    assert result.summary["navigation_space"] == "T1w"
    sidecar = json.loads(next((out / "sub-01" / "func").glob("*_targets.json")).read_text())
    assert sidecar["QC"]["template_transform"] == str(paths["xfm_template_to_t1w"])
    assert sidecar["Anatomy"]["T1w"] == str(paths["t1w"])
    assert main(["report", str(out)]) == 0
    assert f"on the participant&#39;s T1w ({paths['t1w'].name})" in (out / "sub-01.html").read_text()
