"""Writers parsed back field by field, and the coil pose's conversions."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from navigator_files import (
    pose_from_brainsight,
    pose_from_localite,
    read_brainsight,
    read_localite_entry_targets,
    read_localite_markers,
)
from trdnet import __version__
from trdnet.export import coil
from trdnet.export.brainsight import CoordinateSystem, write_brainsight
from trdnet.export.localite import write_entry_targets, write_instrument_markers
from trdnet.export.writers import ExportMeta, write_sphere_nifti, write_table

NAMES = ["cluster", "5cm rule"]
XYZ = np.array([[-38.123, 44.5, 26.25], [-41.0, 16.0, 54.75]])


def _poses():
    """Two poses: one with the normal straight down, one tilted, handles not along any axis."""
    out = []
    for name, target, normal in zip(NAMES, XYZ, ([0.0, 0.0, -1.0], [0.6, -0.2, -0.77])):
        normal = np.asarray(normal) / np.linalg.norm(normal)
        entry = target - 20.0 * normal
        out.append(coil.scalp_normal_pose(name, target, entry, normal, [0.0, -1.0, 0.0], [-1.0, 0.0, 0.0],
                                          45.0, 3.0))
    return out


@pytest.fixture
def meta():
    return ExportMeta("sub-01", "sub-01_desc-preproc_T1w.nii.gz", "T1w", simulated=True, notes=["a -- note"])


def test_pose_frames_and_conversions():
    for pose in _poses():
        m = pose.matrix
        assert np.allclose(m[:3, :3].T @ m[:3, :3], np.eye(3)) and np.linalg.det(m[:3, :3]) > 0
        assert np.allclose(m[:3, 3], pose.entry - 3.0 * pose.normal)  # 3 mm out from the scalp
        # the handle is posterior-lateral (left) at 45 degrees to the midline, in the tangent plane
        assert abs(pose.handle @ pose.normal) < 1e-12
        back = np.array([0.0, -1.0, 0.0]) - (-pose.normal[1]) * pose.normal
        assert np.degrees(np.arccos(pose.handle @ back / np.linalg.norm(back))) == pytest.approx(45.0)
        assert pose.handle @ [-1.0, 0.0, 0.0] > 0
        for matrix, reader in ((pose.brainsight(), pose_from_brainsight), (pose.localite(), pose_from_localite)):
            normal, handle, position = reader(matrix)
            assert np.allclose(normal, pose.normal) and np.allclose(handle, pose.handle)
            assert np.allclose(position, pose.centre)
            assert np.linalg.det(matrix[:3, :3]) > 0


def test_handle_angle_sweeps_from_straight_back_to_lateral():
    normal = np.array([0.0, 0.0, -1.0])
    back, left = np.array([0.0, -1.0, 0.0]), np.array([-1.0, 0.0, 0.0])
    assert np.allclose(coil.handle_direction(normal, back, left, 0.0), back)
    assert np.allclose(coil.handle_direction(normal, back, left, 90.0), left)
    assert np.allclose(coil.handle_direction(normal, back, -left, 90.0), -left)  # right hemisphere
    # normal along the midline (frontal pole): the handle still lies in the tangent plane
    pole = coil.handle_direction([0.0, -1.0, 0.0], back, left, 45.0)
    assert abs(pole @ [0.0, -1.0, 0.0]) < 1e-12 and np.isclose(np.linalg.norm(pole), 1.0)


def test_brainsight_layout(tmp_path, meta):
    path, side = write_brainsight(tmp_path / "t_brainsight.txt", _poses(), meta, CoordinateSystem("NIfTI:Scanner", 12),
                                  {"Extra": 1})
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[:7] == [
        "# Version: 12",
        "# Coordinate system: NIfTI:Scanner",
        f"# Created by: trdnet {__version__}; SIMULATED DATA",
        "# Units: millimetres, degrees, milliseconds, and microvolts",
        "# Encoding: UTF-8",
        "# Notes: Each column is delimited by a tab. Each value within a column is delimited by a semicolon.",
        "# Target Name\tLoc. X\tLoc. Y\tLoc. Z\tm0n0\tm0n1\tm0n2\tm1n0\tm1n1\tm1n2\tm2n0\tm2n1\tm2n2",
    ]
    targets = read_brainsight(path)["targets"]
    assert list(targets) == NAMES
    for pose in _poses():
        b = targets[pose.name]
        assert np.allclose(b[:3, 3], pose.centre, atol=1e-4)
        assert np.allclose(b[:3, 2], -pose.normal, atol=1e-4)  # z out of the head
        assert np.allclose(b[:3, 1], -pose.handle, atol=1e-4)  # y away from the handle
    values = json.loads(side.read_text())
    assert values["Simulated"] is True and values["Extra"] == 1 and values["Participant"] == "sub-01"
    assert "a -- note" in values["Notes"]
    assert not list(tmp_path.glob(".*tmp"))


def test_localite_layouts(tmp_path, meta):
    markers_path, _ = write_instrument_markers(tmp_path / "t_localiteInstrumentMarker.xml", _poses(), meta)
    pairs_path, side = write_entry_targets(tmp_path / "t_localiteEntryTarget.xml", _poses(), meta)
    for path in (markers_path, pairs_path):
        text = path.read_text(encoding="utf-8")
        assert text.splitlines()[0] == '<?xml version="1.0" encoding="UTF-8"?>'
        assert "SIMULATED" in text and "sub-01_desc-preproc_T1w.nii.gz" in text and __version__ in text
        assert "a - - note" in text  # "--" is not allowed in an XML comment
    markers = read_localite_markers(markers_path)
    pairs = read_localite_entry_targets(pairs_path)
    assert markers["space"] == pairs["space"] == "RAS"
    assert list(markers["markers"]) == list(pairs["pairs"]) == NAMES
    for pose in _poses():
        m = markers["markers"][pose.name]
        assert np.allclose(m[:3, 0], pose.normal, atol=1e-6)  # column 0 into the head
        assert np.allclose(m[:3, 1], pose.handle, atol=1e-6)  # column 1 along the handle
        assert np.allclose(m[:3, 3], pose.centre, atol=1e-6)
        assert np.allclose(m[3], [0, 0, 0, 1])
        entry, target = pairs["pairs"][pose.name]
        assert np.allclose(entry, pose.entry, atol=1e-6) and np.allclose(target, pose.target, atol=1e-6)
    how = json.loads(side.read_text())["HowToLoad"]
    assert "EntryTarget/EntryTarget<yyyyMMddHHmmssSSS>.xml" in how


@pytest.mark.parametrize("space, scode, expected", [("T1w", 1, 1), ("T1w", 2, 2), ("T1w", 0, 2),
                                                     ("MNI152NLin2009cAsym", 1, 4)])
def test_sphere_nifti(tmp_path, space, scode, expected):
    meta = ExportMeta("sub-01", "ref.nii.gz", space, simulated=True)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-90, -120, -70]
    ref = nib.Nifti1Image(np.zeros((91, 109, 91), np.float32), affine)
    ref.set_sform(affine, code=scode)
    ref.set_qform(affine, code=scode)
    far = np.vstack([XYZ, [[500.0, 0.0, 0.0]]])
    img_path, side_path = write_sphere_nifti(tmp_path / "t_dseg.nii.gz", NAMES + ["far"], far, ref, 5.0, meta)
    img = nib.load(img_path)
    data = np.asanyarray(img.dataobj)
    affine = ref.affine  # without codes nibabel falls back to the voxel sizes
    assert np.allclose(img.affine, affine)
    # the spheres carry the reference's coordinate system (MNI for template coordinates)
    assert int(img.header["sform_code"]) == int(img.header["qform_code"]) == expected
    descrip = img.header["descrip"].item().decode()
    assert "SIMULATED" in descrip and "sub-01" in descrip and __version__ in descrip
    for value, point in enumerate(XYZ, start=1):
        ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(affine), point)).astype(int)
        assert data[tuple(ijk)] == value
        # a sphere of radius 5 mm on 2 mm voxels: about 4/3 pi 125 / 8 ~ 65 voxels
        assert 40 <= (data == value).sum() <= 90
    side = json.loads(side_path.read_text())
    assert side["Labels"]["1"]["Name"] == "cluster"
    assert side["Labels"]["3"] == {"Name": "far", "InImage": False}
    assert side["Simulated"] is True and side["Space"] == space


def test_table_and_sidecar(tmp_path, meta):
    table = pd.DataFrame({"name": NAMES, "x": XYZ[:, 0], "y": XYZ[:, 1], "z": XYZ[:, 2]})
    path, side = write_table(tmp_path / "t_coords.tsv", table, meta, {"Extra": 1})
    back = pd.read_csv(path, sep="\t")
    assert list(back["name"]) == NAMES
    assert np.allclose(back[["x", "y", "z"]], XYZ, atol=1e-4)
    values = json.loads(side.read_text())
    assert values["Extra"] == 1 and values["Participant"] == "sub-01"
    assert values["CoordinateConvention"] == "RAS world millimetres"
