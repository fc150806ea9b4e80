"""End-to-end export on a simulated participant with known transforms (SIMULATED data)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from trdnet.config import ExportSettings
from trdnet.errors import ExportError, SettingsError
from trdnet.export import export_targets
from trdnet.inputs.anatomy import find_native_anatomy
from navigator_files import ScalpOracle, read_brainsight, read_localite_markers

MNI = "MNI152NLin2009cAsym"
F3_CORTICAL = (-35.5, 49.4, 32.4)  # Okamoto 2004 cortical projection, as in the shipped table


@pytest.fixture(scope="module")
def sim(simulated_anat):
    """The shared simulated anatomy (read only: every test writes into its own ``tmp_path``)."""
    return simulated_anat.root, simulated_anat.paths, find_native_anatomy(simulated_anat.root, "01")


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
    settings = ExportSettings()
    return export_targets(_targets(), anat, out, "sub-01_task-rest_space-MNI152NLin2009cAsym",
                          settings)


def test_landmark_in_t1w_matches_truth(sim, result):
    _, paths, _ = sim
    table = result.table
    assert result.space == "T1w"
    truth = paths["truth"].mni_to_t1w(_targets()[["x", "y", "z"]].to_numpy(float)[:2])
    err = np.linalg.norm(table[["x", "y", "z"]].to_numpy(float)[:2] - truth, axis=1)
    assert err.max() < 0.05  # see test_export_transforms.TOLERANCE_MM
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
    """Entry point and depth against the scalp's intensity edge, found independently.

    The simulated scalp (intensity 0.70 over a background of 0) ends where the
    linearly interpolated T1w crosses 0.35. The export finds the edge on the
    same line from the target with Otsu's threshold (0.34 here) and a 0.25 mm
    step: the two agree to a small fraction of the 2 mm voxel, so 0.3 mm.
    """
    _, paths, _ = sim
    oracle = ScalpOracle(nib.load(paths["t1w"]), 0.35)
    for _, row in result.table.iloc[:2].iterrows():
        assert row["head_source"] == "T1w"
        entry = row[["scalp_x", "scalp_y", "scalp_z"]].to_numpy(float)
        target = row[["x", "y", "z"]].to_numpy(float)
        outward = (entry - target) / np.linalg.norm(entry - target)
        edge = oracle.edge(target, outward[None], 60.0)[0]
        assert np.linalg.norm(edge - entry) < 0.3
        assert row["scalp_depth_mm"] == pytest.approx(np.linalg.norm(edge - target), abs=0.3)
        # the line from the target leaves the head along the scalp normal
        assert np.degrees(np.arccos(outward @ -oracle.inward_normal(entry, target))) < 5.0


def test_nearest_electrode(result):
    row = result.table.iloc[1]
    assert row["nearest_electrode"] == "F3"
    assert row["electrode_distance_mm"] < 1.0
    assert row["electrode_verified"] == "no"


def test_files_written_and_consistent(result):
    names = {p.name for p in result.files}
    stem = "sub-01_task-rest_space-T1w_desc-navtargets"
    assert {f"{stem}_{suffix}" for suffix in (
        "coords.tsv", "coords.json", "brainsight.txt", "brainsight.json", "localiteEntryTarget.xml",
        "localiteEntryTarget.json", "localiteInstrumentMarker.xml", "localiteInstrumentMarker.json",
        "dseg.nii.gz", "dseg.json")} == names
    files = {p.name: p for p in result.files}
    table = result.table
    brainsight = read_brainsight(files[f"{stem}_brainsight.txt"])
    assert list(brainsight["targets"]) == ["5cm", "F3"]  # the out-of-view target is not exported
    assert brainsight["header"]["Coordinate system"] == "NIfTI:Scanner"  # the simulated T1w's codes are 1
    coil_xyz = table[["coil_x", "coil_y", "coil_z"]].to_numpy(float)[:2]
    assert np.allclose([m[:3, 3] for m in brainsight["targets"].values()], coil_xyz, atol=1e-3)
    markers = read_localite_markers(files[f"{stem}_localiteInstrumentMarker.xml"])["markers"]
    assert np.allclose([m[:3, 3] for m in markers.values()], coil_xyz, atol=1e-5)
    side = json.loads(files[f"{stem}_coords.json"].read_text())
    assert side["Simulated"] is True and side["Space"] == "T1w"
    assert side["TransformFile"] == f"sub-01_from-T1w_to-{MNI}_mode-image_xfm.h5"
    assert side["CoilOrientation"] == "scalp_normal" and side["CoilHandleAngleDeg"] == 45.0
    assert side["BrainsightCoordinateSystem"] == "NIfTI:Scanner"


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
    brainsight = read_brainsight(next(p for p in res.files if p.suffix == ".txt"))
    assert "SIMULATED" in brainsight["header"]["Created by"]
    assert brainsight["header"]["Coordinate system"] == "NIfTI:MNI-152"
    side = json.loads(next(p for p in res.files if p.name.endswith("_brainsight.json")).read_text())
    assert side["Space"] == MNI and side["Simulated"] is True


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


@pytest.mark.parametrize("connectivity", ["faces", "axial slices", "corners"])
def test_fill_holes_is_scipys_binary_fill_holes(connectivity):
    from trdnet.export.scalp import fill_holes

    structure = {"faces": None, "corners": ndimage.generate_binary_structure(3, 3)}.get(connectivity)
    rng = np.random.default_rng(7)
    filled = 0
    for trial in range(12):
        shape = tuple(int(n) for n in rng.integers(6, 30, 3))
        if connectivity == "axial slices":
            axis = trial % 3
            structure = np.zeros((3, 3, 3), dtype=bool)
            index = [slice(None)] * 3
            index[axis] = 1
            structure[tuple(index)] = ndimage.generate_binary_structure(2, 1)
        # blobs with enclosed background, some of it cut by the array's border
        mask = ndimage.gaussian_filter(rng.random(shape), rng.uniform(0.6, 1.6)) > rng.uniform(0.47, 0.53)
        corner = [int(rng.integers(0, n - 4)) for n in shape]  # and a hollow cube, whatever the connectivity
        mask[tuple(slice(c, c + 4) for c in corner)] = True
        mask[tuple(slice(c + 1, c + 3) for c in corner)] = False
        expected = ndimage.binary_fill_holes(mask, structure=structure)
        filled += int((expected & ~mask).sum())
        np.testing.assert_array_equal(fill_holes(mask, structure), expected)
    assert filled, "no case had a hole to fill"


def test_head_is_found_once_per_t1w_file_and_again_when_the_file_changes(sim, result, tmp_path, monkeypatch):
    from trdnet.export import native, scalp

    root, _, anat = sim
    calls = []
    head_mask = scalp.head_mask
    monkeypatch.setattr(scalp, "head_mask", lambda *a, **k: calls.append(1) or head_mask(*a, **k))
    monkeypatch.setattr(native, "_HEADS", type(native._HEADS)())
    again = [export_targets(_targets(), anat, tmp_path / f"out{i}", "sub-01_task-rest_space-MNI152NLin2009cAsym",
                            ExportSettings()) for i in range(2)]
    assert len(calls) == 1
    for other in again:
        pd.testing.assert_frame_equal(other.table, result.table)
    # a T1w replaced in place (a re-run of fMRIPrep) is read anew
    copy = tmp_path / "anat"
    shutil.copytree(root / "sub-01" / "anat", copy)
    moved = dataclasses.replace(anat, t1w=copy / Path(anat.t1w).name)
    export_targets(_targets(), moved, tmp_path / "out2", "sub-01_task-rest_space-MNI152NLin2009cAsym",
                   ExportSettings())
    assert len(calls) == 2
    image = nib.load(moved.t1w)
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj) * 2, image.affine, image.header), moved.t1w)
    export_targets(_targets(), moved, tmp_path / "out3", "sub-01_task-rest_space-MNI152NLin2009cAsym",
                   ExportSettings())
    assert len(calls) == 3


@pytest.mark.parametrize("radius_mm", [0.3, 4.0])
def test_nearest_in_mask_is_the_nearest_voxel_of_the_whole_mask_on_oblique_grids(radius_mm):
    from scipy.spatial import cKDTree

    from trdnet.export.checks import nearest_in_mask

    rng = np.random.default_rng(11)
    for trial in range(25):
        shape = tuple(int(n) for n in rng.integers(5, 35, 3))
        mask = ndimage.gaussian_filter(rng.random(shape), 1.5) > rng.uniform(0.5, 0.56)
        mask[tuple(int(rng.integers(0, n)) for n in shape)] = True
        affine = np.eye(4)  # anisotropic voxels, rotated, sheared, shifted
        rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
        shear = np.eye(3) + np.triu(rng.normal(0, 1, (3, 3)), 1)
        affine[:3, :3] = rotation @ np.diag(rng.uniform(0.5, 4.0, 3)) @ shear
        affine[:3, 3] = rng.normal(0, 20, 3)
        img = nib.Nifti1Image(mask.astype(np.uint8), affine)
        # inside, near and far outside the grid
        points = nib.affines.apply_affine(affine, rng.uniform(-40, np.array(shape) + 40, (6, 3)))
        world = nib.affines.apply_affine(affine, np.argwhere(mask))
        expected, _ = cKDTree(world).query(points)
        nearest, distance = nearest_in_mask(img, mask, points, radius_mm)
        np.testing.assert_allclose(distance, expected, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(np.linalg.norm(nearest - points, axis=1), expected, rtol=1e-12, atol=1e-9)
        assert cKDTree(world).query(nearest)[0].max() < 1e-9  # a voxel centre of the mask
    empty = nearest_in_mask(img, np.zeros(shape, dtype=bool), points)
    assert np.isnan(empty[0]).all() and np.isnan(empty[1]).all()
