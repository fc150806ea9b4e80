"""End-to-end export on a simulated participant with known transforms (SIMULATED data)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import xml.etree.ElementTree as ET

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from trdnet.config import ExportSettings
from trdnet.errors import ExportError, SettingsError
from trdnet.export import export_targets, find_native_anatomy
from trdnet.inputs.simulate.t1w import SCALP_OUTER_MM, write_simulated_anat

MNI = "MNI152NLin2009cAsym"
F3_CORTICAL = (-35.5, 49.4, 32.4)  # Okamoto 2004 cortical projection, as in the shipped table


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    root = tmp_path_factory.mktemp("fmriprep")
    paths = write_simulated_anat(root, "01", 5)
    return root, paths, find_native_anatomy(root, "01")


def _targets():
    return pd.DataFrame(
        {
            "name": ["5cm", "F3", "outside"],
            "x": [-41.0, F3_CORTICAL[0], 0.0],
            "y": [16.0, F3_CORTICAL[1], 0.0],
            "z": [54.0, F3_CORTICAL[2], 400.0],
        }
    )


@pytest.fixture(scope="module")
def result(sim, tmp_path_factory):
    _, _, anat = sim
    out = tmp_path_factory.mktemp("out")
    settings = ExportSettings(coil_orientation="scalp_normal")
    return export_targets(_targets(), anat, out, "sub-01_task-rest_space-MNI152NLin2009cAsym",
                          settings)


def test_landmark_in_t1w_within_1mm_of_truth(sim, result):
    _, paths, _ = sim
    table = result.table
    assert result.space == "T1w"
    truth = paths["truth"].mni_to_t1w(_targets()[["x", "y", "z"]].to_numpy(float)[:2])
    err = np.linalg.norm(table[["x", "y", "z"]].to_numpy(float)[:2] - truth, axis=1)
    assert err.max() < 1.0
    t1w = nib.load(paths["t1w"])
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(t1w.affine), truth)).astype(int)
    assert np.array_equal(table[["i", "j", "k"]].to_numpy()[:2], ijk)
    assert set(table["image"]) == {"sub-01_desc-preproc_T1w.nii.gz"}


def test_outside_fov_is_flagged_not_silent(result):
    row = result.table.iloc[2]
    assert not row["in_fov"] and not row["ok"]
    assert "field of view" in row["note"]
    assert np.isnan(row["scalp_depth_mm"])


def test_scalp_projection_on_simulated_head(sim, result):
    _, paths, _ = sim
    t1w = nib.load(paths["t1w"])
    brain = np.asanyarray(nib.load(paths["brain_mask"]).dataobj) > 0
    zooms = np.sqrt((t1w.affine[:3, :3] ** 2).sum(axis=0))
    dist = ndimage.distance_transform_edt(~brain, sampling=zooms)
    for _, row in result.table.iloc[:2].iterrows():
        assert row["head_source"] == "T1w"
        scalp = row[["scalp_x", "scalp_y", "scalp_z"]].to_numpy(float)
        target = row[["x", "y", "z"]].to_numpy(float)
        ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(t1w.affine), scalp)).astype(int)
        # the simulated scalp is SCALP_OUTER_MM from the brain (template mm, scaled by ~5%)
        assert abs(dist[tuple(ijk)] - SCALP_OUTER_MM) < 4.0
        assert row["scalp_depth_mm"] == pytest.approx(np.linalg.norm(scalp - target))
        assert SCALP_OUTER_MM - 4 < row["scalp_depth_mm"] < SCALP_OUTER_MM + 20


def test_nearest_electrode(result):
    row = result.table.iloc[1]
    assert row["nearest_electrode"] == "F3"
    assert row["electrode_distance_mm"] < 1.0
    assert row["electrode_verified"] == "no"


def test_files_written_and_consistent(result):
    names = {p.name for p in result.files}
    stem = "sub-01_task-rest_space-T1w_desc-navtargets"
    assert {f"{stem}_coords.tsv", f"{stem}_coords.json", f"{stem}_brainsight.txt",
            f"{stem}_localite.xml", f"{stem}_dseg.nii.gz", f"{stem}_dseg.json"} == names
    files = {p.name: p for p in result.files}
    table = result.table
    brainsight = files[f"{stem}_brainsight.txt"].read_text().splitlines()
    rows = [line.split("\t") for line in brainsight if not line.startswith("#")]
    assert [r[0] for r in rows] == ["5cm", "F3"]  # the out-of-view target is not exported
    assert np.allclose([[float(v) for v in r[1:4]] for r in rows],
                       table[["x", "y", "z"]].to_numpy(float)[:2], atol=1e-3)
    assert "SIMULATED" in brainsight[5] and "sub-01_desc-preproc_T1w.nii.gz" in brainsight[5]
    root = ET.parse(files[f"{stem}_localite.xml"]).getroot()
    m4 = root.find("InstrumentMarker/Marker/Matrix4D").attrib
    assert float(m4["data03"]) == pytest.approx(table["x"].iloc[0], abs=1e-5)
    rot = np.array([[float(m4[f"data{r}{c}"]) for c in range(3)] for r in range(3)])
    assert np.allclose(rot.T @ rot, np.eye(3), atol=1e-5) and np.linalg.det(rot) > 0
    scalp = table[["scalp_x", "scalp_y", "scalp_z"]].to_numpy(float)[0]
    assert rot[:, 2] @ (scalp - table[["x", "y", "z"]].to_numpy(float)[0]) > 0  # z points out
    side = json.loads(files[f"{stem}_coords.json"].read_text())
    assert side["Simulated"] is True and side["Space"] == "T1w"
    assert side["TransformFile"] == f"sub-01_from-T1w_to-{MNI}_mode-image_xfm.h5"


def test_target_in_white_matter_gets_nearest_grey(sim, tmp_path):
    root, paths, anat = sim
    gm = nib.load(paths["gm_probseg"])
    dseg = np.asanyarray(nib.load(paths["dseg"]).dataobj)
    prob = np.asanyarray(gm.dataobj)
    # a deep white-matter voxel, given directly in T1w space
    wm = np.argwhere(ndimage.binary_erosion(dseg == 2, iterations=3))
    point = nib.affines.apply_affine(gm.affine, wm[len(wm) // 2])
    targets = pd.DataFrame({"name": ["wm"], "x": [point[0]], "y": [point[1]], "z": [point[2]],
                            "space": ["T1w"]})
    res = export_targets(targets, anat, tmp_path, "sub-01", ExportSettings(formats=()))
    row = res.table.iloc[0]
    assert np.allclose(row[["x", "y", "z"]].to_numpy(float), point)  # native: not moved
    assert row["in_brain_mask"] and not row["in_grey_matter"] and not row["ok"]
    nearest = row[["nearest_gm_x", "nearest_gm_y", "nearest_gm_z"]].to_numpy(float)
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(gm.affine), nearest)).astype(int)
    assert prob[tuple(ijk)] >= 0.5
    assert row["nearest_gm_distance_mm"] >= 3 * 2.0 * 0.9
    assert "nearest grey matter" in row["note"]


def test_header_shear_and_qform_flagged(sim, tmp_path):
    root, paths, anat = sim
    img = nib.load(paths["t1w"])
    sheared = img.affine.copy()
    sheared[0, 1] = 0.2
    bad = nib.Nifti1Image(np.asanyarray(img.dataobj), sheared)
    bad.set_sform(sheared, code=1)
    bad.set_qform(img.affine, code=1)
    path = tmp_path / "sub-01_desc-preproc_T1w.nii.gz"
    nib.save(bad, path)
    anat2 = dataclasses.replace(anat, t1w=path, brain_mask=None, gm_probseg=None, dseg=None)
    res = export_targets(_targets().iloc[:1], anat2, tmp_path, "sub-01", ExportSettings(formats=()))
    row = res.table.iloc[0]
    assert row["header_shear"] and row["qform_sform_mismatch"] and not row["ok"]
    assert any("shear" in n for n in res.notes) and any("qform" in n for n in res.notes)


def test_skull_stripped_t1w_uses_labelled_template_head(sim, tmp_path):
    root, paths, anat = sim
    img = nib.load(paths["t1w"])
    brain = np.asanyarray(nib.load(paths["brain_mask"]).dataobj) > 0
    stripped = nib.Nifti1Image(np.asanyarray(img.dataobj) * brain, img.affine)
    path = tmp_path / "sub-01_desc-preproc_T1w.nii.gz"
    nib.save(stripped, path)
    anat2 = dataclasses.replace(anat, t1w=path)
    res = export_targets(_targets().iloc[:1], anat2, tmp_path, "sub-01", ExportSettings(formats=()))
    assert res.table["head_source"].iloc[0] == "template head"
    assert any("not the participant's scalp" in n for n in res.notes)
    assert 5 < res.table["scalp_depth_mm"].iloc[0] < 40


def test_without_anatomy_stays_in_mni(tmp_path):
    res = export_targets(_targets().iloc[:2], None, tmp_path, "sub-01_task-rest", simulated=True)
    assert res.space == MNI
    assert np.allclose(res.table[["x", "y", "z"]].to_numpy(float),
                       _targets()[["x", "y", "z"]].to_numpy(float)[:2])
    assert (res.table["head_source"] == "template head").all()
    assert res.table["nearest_electrode"].iloc[1] == "F3"
    assert res.table["electrode_distance_mm"].iloc[1] < 1e-6
    text = next(p for p in res.files if p.suffix == ".txt").read_text()
    assert "SIMULATED" in text and MNI in text


def test_bad_inputs(sim, tmp_path):
    root, paths, anat = sim
    with pytest.raises(ExportError, match="desc-preproc_T1w is missing"):
        export_targets(_targets(), dataclasses.replace(anat, t1w=tmp_path / "none.nii.gz"),
                       tmp_path, "sub-01")
    with pytest.raises(ExportError, match="missing"):
        export_targets(_targets(), dataclasses.replace(anat, xfm_t1w_to_template=None),
                       tmp_path, "sub-01")
    other = tmp_path / f"sub-02_from-T1w_to-{MNI}_mode-image_xfm.h5"
    shutil.copy(paths["xfm_t1w_to_template"], other)
    with pytest.raises(ExportError, match="sub-02"):
        export_targets(_targets(), dataclasses.replace(anat, xfm_t1w_to_template=other),
                       tmp_path, "sub-01")
    corrupt = tmp_path / f"sub-01_from-T1w_to-{MNI}_mode-image_xfm.h5"
    corrupt.write_bytes(b"\x89HDF\r\n garbage")
    with pytest.raises(ExportError, match="cannot read transform"):
        export_targets(_targets(), dataclasses.replace(anat, xfm_t1w_to_template=corrupt),
                       tmp_path, "sub-01")
    with pytest.raises(ExportError, match="x, y, z"):
        export_targets(pd.DataFrame({"a": [1]}), anat, tmp_path, "sub-01")
    with pytest.raises(ExportError, match="T1w"):
        export_targets(_targets().assign(space="T1w"), None, tmp_path, "sub-01")
    with pytest.raises(SettingsError, match="coil_orientation"):
        export_targets(_targets(), anat, tmp_path, "sub-01", ExportSettings(coil_orientation="x"))
