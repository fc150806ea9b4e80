"""Tests of the simulated fMRIPrep anatomy (SIMULATED data)."""

from __future__ import annotations

import json

import h5py
import nibabel as nib
import numpy as np
import pytest
from nilearn import datasets

from trdnet.inputs.simulate.t1w import write_simulated_anat


@pytest.fixture(scope="module")
def sim(simulated_anat):
    """The shared simulated anatomy (read only)."""
    return simulated_anat.root, simulated_anat.paths


def test_files_named_as_fmriprep(sim):
    root, paths = sim
    anat = root / "sub-01" / "anat"
    expected = {
        "sub-01_desc-preproc_T1w.nii.gz",
        "sub-01_desc-brain_mask.nii.gz",
        "sub-01_label-GM_probseg.nii.gz",
        "sub-01_dseg.nii.gz",
        "sub-01_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5",
        "sub-01_from-T1w_to-MNI152NLin2009cAsym_mode-image_xfm.h5",
    }
    assert expected <= {p.name for p in anat.iterdir()}
    sidecar = json.loads((anat / "sub-01_desc-preproc_T1w.json").read_text())
    assert sidecar["Simulated"] is True
    assert "SIMULATED" in sidecar["Description"]


def test_session_layout(tmp_path):
    paths = write_simulated_anat(tmp_path, "02", 1, session="pre")
    assert paths["t1w"] == tmp_path / "sub-02/ses-pre/anat/sub-02_ses-pre_desc-preproc_T1w.nii.gz"
    assert paths["t1w"].is_file()


def test_h5_layout_matches_ants(sim):
    _, paths = sim
    with h5py.File(paths["xfm_t1w_to_template"], "r") as f:
        group = f["TransformGroup"]
        assert sorted(group) == ["0", "1", "2"]
        assert group["0/TransformType"][0] == b"CompositeTransform_double_3_3"
        assert group["1/TransformType"][0] == b"AffineTransform_double_3_3"
        assert group["1/TransformParameters"].shape == (12,)
        assert group["1/TransformFixedParameters"].shape == (3,)
        assert group["2/TransformType"][0] == b"DisplacementFieldTransform_float_3_3"
        fixed = group["2/TransformFixedParameters"][()]
        assert fixed.shape == (18,)
        n_vox = int(np.prod(fixed[:3]))
        assert group["2/TransformParameters"].shape == (3 * n_vox,)
        assert np.allclose(fixed[9:], np.eye(3).ravel())


def test_truth_is_invertible_and_nonlinear(sim):
    _, paths = sim
    truth = paths["truth"]
    rng = np.random.default_rng(0)
    pts = rng.uniform(-70, 70, (50, 3))
    assert np.allclose(truth.t1w_to_mni(truth.mni_to_t1w(pts)), pts, atol=1e-4)
    disp = np.linalg.norm(truth.displacement(pts), axis=1)
    assert disp.max() > 1.0  # a nonlinear part of a few mm exists
    assert not np.allclose(truth.affine[:3, 3], 0, atol=1.0)  # world frame is not MNI


def test_t1w_is_template_through_truth(sim):
    _, paths = sim
    truth = paths["truth"]
    t1w = nib.load(paths["t1w"])
    template = datasets.load_mni152_template(resolution=2)
    brain = np.asanyarray(datasets.load_mni152_brain_mask(resolution=2).dataobj) > 0
    ijk = np.argwhere(brain)[::97]
    mni = nib.affines.apply_affine(template.affine, ijk)
    t1w_ijk = np.rint(
        nib.affines.apply_affine(np.linalg.inv(t1w.affine), truth.mni_to_t1w(mni))
    ).astype(int)
    sim_values = np.asanyarray(t1w.dataobj)[tuple(t1w_ijk.T)]
    tpl_values = np.asanyarray(template.dataobj)[tuple(ijk.T)]
    assert np.corrcoef(sim_values, tpl_values)[0, 1] > 0.8
