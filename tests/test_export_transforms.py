"""Tests of transform loading and point mapping with fMRIPrep-format files."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest
from nitransforms.nonlinear import DenseFieldTransform

from trdnet.entities import parse_entities
from trdnet.errors import ExportError
from trdnet.export.transforms import load_point_transform
from trdnet.inputs.simulate.t1w import write_simulated_anat

MNI = "MNI152NLin2009cAsym"
POINTS = np.array([[-38.0, 44.0, 26.0], [-41.0, 16.0, 54.0], [6.0, 16.0, -10.0], [30.0, -60.0, 20.0]])


@pytest.fixture(scope="module", params=[5, 11])
def sim(request, tmp_path_factory):
    """Two participants' transforms; seed 5 is the test run's shared simulated anatomy (read only)."""
    if request.param == 5:
        return request.getfixturevalue("simulated_anat").paths
    root = tmp_path_factory.mktemp("fmriprep")
    return write_simulated_anat(root, "01", request.param)


#: Points all over the brain's box (MNI mm), beside the named ones.
BRAIN_BOX = np.random.default_rng(1).uniform([-70, -100, -40], [70, 70, 80], (300, 3))
#: The simulator's transforms are exact formulas sampled on a 4 mm grid; read back through
#: nitransforms they agree with the formula to about 4e-5 mm. 0.05 mm fails for a displacement
#: evaluated at the wrong point (~0.7 mm here) or a missed LPS flip, and leaves room for float32 fields.
TOLERANCE_MM = 0.05


@pytest.mark.parametrize("points", [POINTS, BRAIN_BOX], ids=["sites", "brain_box"])
def test_mni_to_t1w_matches_truth(sim, points):
    xfm = load_point_transform(sim["xfm_t1w_to_template"], MNI, "T1w", "01")
    mapped, covered = xfm.map(points)
    assert covered.all()
    assert any(isinstance(x, DenseFieldTransform) for x in xfm.chain.transforms)  # the field is applied
    err = np.linalg.norm(mapped - sim["truth"].mni_to_t1w(points), axis=1)
    assert err.max() < TOLERANCE_MM


def test_t1w_to_mni_matches_truth(sim):
    xfm = load_point_transform(sim["xfm_template_to_t1w"], "T1w", MNI, "01")
    t1w = sim["truth"].mni_to_t1w(BRAIN_BOX)
    mapped, covered = xfm.map(t1w)
    assert covered.all()
    assert np.linalg.norm(mapped - sim["truth"].t1w_to_mni(t1w), axis=1).max() < TOLERANCE_MM


def test_round_trip(sim):
    to_t1w = load_point_transform(sim["xfm_t1w_to_template"], MNI, "T1w", "01")
    to_mni = load_point_transform(sim["xfm_template_to_t1w"], "T1w", MNI, "01")
    back, _ = to_mni.map(to_t1w.map(BRAIN_BOX)[0])
    assert np.linalg.norm(back - BRAIN_BOX, axis=1).max() < 2 * TOLERANCE_MM


def test_affine_alone_is_not_enough(sim):
    """The displacement field matters: without it the error exceeds 1 mm somewhere."""
    truth = sim["truth"]
    affine_only = nib.affines.apply_affine(np.linalg.inv(truth.affine), POINTS)
    assert np.linalg.norm(affine_only - truth.mni_to_t1w(POINTS), axis=1).max() > 1.0


def test_point_outside_field_is_flagged(sim):
    xfm = load_point_transform(sim["xfm_t1w_to_template"], MNI, "T1w", "01")
    _, covered = xfm.map([[0.0, 0.0, 400.0]])
    assert not covered[0]


def test_other_participant_refused(sim, tmp_path):
    other = tmp_path / f"sub-02_from-T1w_to-{MNI}_mode-image_xfm.h5"
    shutil.copy(sim["xfm_t1w_to_template"], other)
    with pytest.raises(ExportError, match="sub-02"):
        load_point_transform(other, MNI, "T1w", "01")


def test_wrong_direction_refused(sim):
    with pytest.raises(ExportError, match="from-T1w_to-"):
        load_point_transform(sim["xfm_template_to_t1w"], MNI, "T1w", "01")


@pytest.mark.parametrize("content", [b"not an hdf5 file", b""])
def test_corrupt_h5_refused(tmp_path, content):
    bad = tmp_path / f"sub-01_from-T1w_to-{MNI}_mode-image_xfm.h5"
    bad.write_bytes(content)
    with pytest.raises(ExportError, match="cannot read transform"):
        load_point_transform(bad, MNI, "T1w", "01")


def test_h5_without_transforms_refused(tmp_path):
    import h5py

    bad = tmp_path / f"sub-01_from-T1w_to-{MNI}_mode-image_xfm.h5"
    with h5py.File(bad, "w") as f:
        f.create_group("Other")
    with pytest.raises(ExportError, match=r"cannot read transform .*accepted: ITK composite \.h5"):
        load_point_transform(bad, MNI, "T1w", "01")


def test_missing_file_refused(tmp_path):
    with pytest.raises(ExportError, match="not found"):
        load_point_transform(tmp_path / "nope.h5", MNI, "T1w", "01")


def test_plain_itk_affine_txt(tmp_path):
    """ITK affine text file in LPS; the point mapping must come out in RAS."""
    ras = np.eye(4)
    ras[:3, :3] = [[0.98, -0.05, 0.0], [0.05, 0.98, 0.02], [0.0, -0.02, 1.03]]
    ras[:3, 3] = [4.0, -7.0, 12.0]
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    lps = flip @ ras @ flip
    params = " ".join(f"{v:.10f}" for v in [*lps[:3, :3].ravel(), *lps[:3, 3]])
    path = tmp_path / "affine.txt"
    path.write_text(
        "#Insight Transform File V1.0\n#Transform 0\n"
        "Transform: AffineTransform_double_3_3\n"
        f"Parameters: {params}\nFixedParameters: 0 0 0\n"
    )
    xfm = load_point_transform(path, MNI, "T1w")
    mapped, covered = xfm.map(POINTS)
    assert covered.all()
    assert np.allclose(mapped, nib.affines.apply_affine(ras, POINTS), atol=1e-4)


def test_transform_file_entities():
    ents = parse_entities("sub-01_ses-a_from-T1w_to-MNI152NLin2009cAsym_mode-image_xfm.h5")
    assert ents == {"sub": "01", "ses": "a", "from": "T1w", "to": "MNI152NLin2009cAsym", "mode": "image"}
