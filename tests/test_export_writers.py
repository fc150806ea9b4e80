"""Writers parsed back field by field."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import nibabel as nib
import numpy as np
import pytest

from trdnet import __version__
from trdnet.export.writers import (
    ExportMeta,
    write_brainsight,
    write_localite,
    write_sphere_nifti,
    write_table,
)

NAMES = ["cluster", "5cm rule"]
XYZ = np.array([[-38.123, 44.5, 26.25], [-41.0, 16.0, 54.75]])


def _rotations():
    c, s = np.cos(0.3), np.sin(0.3)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return np.stack([np.eye(3), rot])


@pytest.fixture
def meta():
    return ExportMeta("sub-01", "sub-01_desc-preproc_T1w.nii.gz", "T1w", simulated=True,
                      notes=["a note"])


def test_brainsight_layout(tmp_path, meta):
    path = write_brainsight(tmp_path / "t.txt", NAMES, XYZ, _rotations(), meta)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# Version: 12"
    assert lines[1] == "# Coordinate system: NIfTI:Aligned"
    assert lines[2] == f"# Created by: trdnet {__version__}"
    assert lines[3] == "# Units: millimetres, degrees, milliseconds, and microvolts"
    assert lines[4] == "# Encoding: UTF-8"
    assert lines[5].startswith("# Notes: ")
    for word in ("SIMULATED", "sub-01", "sub-01_desc-preproc_T1w.nii.gz", "T1w", "a note"):
        assert word in lines[5]
    header = lines[6].split("\t")
    assert header == ["# Target Name", "Loc. X", "Loc. Y", "Loc. Z",
                      "m0n0", "m0n1", "m0n2", "m1n0", "m1n1", "m1n2", "m2n0", "m2n1", "m2n2"]
    rows = [line.split("\t") for line in lines[7:]]
    assert [r[0] for r in rows] == NAMES
    values = np.array([[float(v) for v in r[1:]] for r in rows])
    assert np.allclose(values[:, :3], XYZ, atol=1e-4)
    rot = _rotations()[1]
    # m<i>n<j>: component j of axis i (column i of the rotation)
    m = values[1, 3:].reshape(3, 3)
    assert np.allclose(m.T, rot, atol=1e-4)
    assert not list(tmp_path.glob(".*tmp"))


def test_localite_layout(tmp_path, meta):
    path = write_localite(tmp_path / "t.xml", NAMES, XYZ, _rotations(), meta)
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == '<?xml version="1.0" encoding="UTF-8"?>'
    assert "SIMULATED" in text and "sub-01_desc-preproc_T1w.nii.gz" in text and __version__ in text
    root = ET.fromstring(text.encode())
    assert root.tag == "InstrumentMarkerList"
    assert root.attrib == {"coordinateSpace": "RAS"}
    markers = root.findall("InstrumentMarker")
    assert len(markers) == 2
    for index, (node, name, point, rot) in enumerate(zip(markers, NAMES, XYZ, _rotations())):
        assert node.attrib == {"alwaysVisible": "false", "index": str(index), "selected": "false"}
        marker = node.find("Marker")
        assert marker.attrib == {"additionalInformation": "", "color": "#ff0000",
                                 "description": name, "set": "true"}
        m4 = marker.find("Matrix4D").attrib
        assert set(m4) == {f"data{r}{c}" for r in range(4) for c in range(4)}
        matrix = np.array([[float(m4[f"data{r}{c}"]) for c in range(4)] for r in range(4)])
        assert np.allclose(matrix[:3, 3], point, atol=1e-5)
        assert np.allclose(matrix[:3, :3], rot, atol=1e-5)
        assert np.allclose(matrix[3], [0, 0, 0, 1])


def test_sphere_nifti(tmp_path, meta):
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-90, -120, -70]
    ref = nib.Nifti1Image(np.zeros((91, 109, 91), np.float32), affine)
    far = np.vstack([XYZ, [[500.0, 0.0, 0.0]]])
    img_path, side_path = write_sphere_nifti(
        tmp_path / "t_dseg.nii.gz", NAMES + ["far"], far, ref, 5.0, meta
    )
    img = nib.load(img_path)
    data = np.asanyarray(img.dataobj)
    assert np.allclose(img.affine, affine)
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
    assert side["Simulated"] is True and side["Space"] == "T1w"
    assert side["SourceImage"] == "sub-01_desc-preproc_T1w.nii.gz"


def test_table_and_sidecar(tmp_path, meta):
    import pandas as pd

    table = pd.DataFrame({"name": NAMES, "x": XYZ[:, 0], "y": XYZ[:, 1], "z": XYZ[:, 2]})
    path, side = write_table(tmp_path / "t_coords.tsv", table, meta, {"Extra": 1})
    back = pd.read_csv(path, sep="\t")
    assert list(back["name"]) == NAMES
    assert np.allclose(back[["x", "y", "z"]], XYZ, atol=1e-4)
    values = json.loads(side.read_text())
    assert values["Extra"] == 1 and values["Participant"] == "sub-01"
    assert values["CoordinateConvention"] == "RAS world millimetres"
