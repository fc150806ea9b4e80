"""Navigator files read back with readers written from the format descriptions
(tests/navigator_files.py) and checked target by target against the head:
coil normal along the scalp normal, coil on the scalp, the Brainsight and
Localite files giving one pose, the Brainsight coordinate system named
after the T1w's codes. SIMULATED anatomy throughout."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import stat
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from navigator_files import (
    ScalpOracle,
    angle_deg,
    cropped_copy,
    is_rotation,
    oblique_copy,
    pose_from_brainsight,
    pose_from_localite,
    read_brainsight,
    read_localite_entry_targets,
    read_localite_markers,
)
from trdnet.cli import main
from trdnet.config import ExportSettings, Settings
from trdnet.errors import ExportError, SettingsError
from trdnet.export import coordinate_system, export_targets
from trdnet.inputs.anatomy import find_native_anatomy
from trdnet.export.scalp import otsu_threshold, template_head
from trdnet.inputs.simulate.t1w import write_simulated_anat

MNI = "MNI152NLin2009cAsym"
PREFIX = f"sub-01_task-rest_space-{MNI}"
#: DLPFC sites of both hemispheres (MNI, mm) and one outside every image.
SITES = pd.DataFrame({
    "name": ["5cm", "f3_beam", "ba9", "ba46", "group_optimum", "right_5cm", "outside"],
    "x": [-41.0, -37.0, -36.0, -44.0, -38.0, 41.0, 0.0],
    "y": [16.0, 26.0, 39.0, 40.0, 44.0, 16.0, 0.0],
    "z": [54.0, 49.0, 43.0, 29.0, 26.0, 54.0, 400.0],
})
#: Half the simulated scalp's intensity (0.70 over a background of 0): the oracle's scalp edge.
SCALP_LEVEL = 0.35


def _files(result) -> dict:
    # a run's files (desc-navtargets) and a participant target's (desc-participantnavtargets)
    return {p.name.split("navtargets_")[1]: p for p in result.files}


def check_navigator_files(result, head: ScalpOracle, system: str, axes=None, scalp_tol_mm: float = 1.0):
    """Every check the TMS team relies on, for every exported target.

    ``axes(name)`` gives the head's true (posterior, right) directions at a
    target, to check the handle angle.
    """
    files = _files(result)
    brainsight = read_brainsight(files["brainsight.txt"])
    markers = read_localite_markers(files["localiteInstrumentMarker.xml"])
    pairs = read_localite_entry_targets(files["localiteEntryTarget.xml"])
    table = result.table.set_index("name")
    assert brainsight["header"]["Coordinate system"] == system
    version = int(brainsight["header"]["Version"])
    assert (version >= 14) == (system.count(":") == 2)  # the name's form matches the version
    assert markers["space"] == pairs["space"] == "RAS"
    exported = list(table.index[table["in_fov"].astype(bool)])
    assert exported and set(brainsight["targets"]) == set(markers["markers"]) == set(pairs["pairs"]) == set(exported)
    for name in exported:
        b, m = brainsight["targets"][name], markers["markers"][name]
        assert is_rotation(b) and is_rotation(m), name
        normal, handle, position = pose_from_localite(m)
        b_normal, b_handle, b_position = pose_from_brainsight(b)
        # one pose in both files (Brainsight keeps 4 decimals)
        assert np.allclose(position, b_position, atol=1e-3), name
        assert np.allclose(normal, b_normal, atol=1e-3) and np.allclose(handle, b_handle, atol=1e-3), name
        entry, target = pairs["pairs"][name]
        true_normal = head.inward_normal(position, target)
        assert angle_deg(normal, true_normal) < 5.0, (name, angle_deg(normal, true_normal))
        assert angle_deg(b[:3, 2], -true_normal) < 5.0, name  # Brainsight z out of the head
        assert head.on_scalp(position, true_normal, scalp_tol_mm), name
        assert np.allclose(entry, position, atol=1e-5), name  # coil-to-scalp distance 0 by default
        assert np.allclose(target, table.loc[name, ["x", "y", "z"]].to_numpy(float), atol=1e-4), name
        assert angle_deg(target - entry, normal) < 0.5, name  # the coil normal runs through the target
        if axes is not None:
            posterior, right = axes(name)
            side = right if table.loc[name, "source_x"] > 0 else -right
            back = posterior - (posterior @ normal) * normal
            lateral = side - (side @ normal) * normal - (side @ back) * back / (back @ back)
            measured = np.degrees(np.arctan2(handle @ lateral / np.linalg.norm(lateral),
                                             handle @ back / np.linalg.norm(back)))
            assert abs(measured - 45.0) < 3.0, (name, measured)
    return brainsight, markers, pairs


def _truth_axes(mni_to_t1w, table):
    """The head's posterior and right directions at each target from the exact MNI -> T1w map."""
    def axes(name):
        p = table.set_index("name").loc[name, ["source_x", "source_y", "source_z"]].to_numpy(float)
        out = []
        for delta in ([0.0, -0.5, 0.0], [0.5, 0.0, 0.0]):
            d = mni_to_t1w(p + delta)[0] - mni_to_t1w(p - np.asarray(delta))[0]
            out.append(d / np.linalg.norm(d))
        return out
    return axes


@pytest.fixture(scope="module")
def simulated(simulated_anat):
    """The shared simulated anatomy's paths (read only: tests write copies into their ``tmp_path``)."""
    return simulated_anat.paths


@pytest.mark.parametrize("code, version, system", [(1, 12, "NIfTI:Scanner"), (2, 14, "NIfTI:S:Aligned")])
def test_oblique_fmriprep_t1w(simulated, tmp_path, code, version, system):
    """An oblique T1w (world frame turned 25 degrees, shifted) with scanner or aligned codes."""
    anat_paths = oblique_copy(simulated, tmp_path / "fmriprep", 25.0, code)
    anat = find_native_anatomy(tmp_path / "fmriprep", "01")
    assert anat.xfm_t1w_to_template is not None
    result = export_targets(SITES, anat, tmp_path / "out", PREFIX, ExportSettings(brainsight_version=version))
    table = result.table
    # the transform really carries the oblique frame: exported targets match the exact formula
    expected = anat_paths["truth"](SITES[["x", "y", "z"]].to_numpy(float)[:-1])
    assert np.linalg.norm(table[["x", "y", "z"]].to_numpy(float)[:-1] - expected, axis=1).max() < 0.05
    head = ScalpOracle(nib.load(anat_paths["t1w"]), SCALP_LEVEL)
    check_navigator_files(result, head, system, _truth_axes(anat_paths["truth"], table))
    assert not table.set_index("name").loc["outside", "in_fov"]


#: The demo's participants: ``make demo`` simulates 4 participants with seed 0 and gives each the
#: anatomy drawn from its child seed, reproduced here without simulating the BOLD runs.
DEMO_SEEDS = [np.random.SeedSequence(0).spawn(4)[i].spawn(1)[0].spawn(1)[0] for i in range(4)]


@pytest.mark.slow  # the four demo participants' simulated anatomy, end to end
@pytest.mark.parametrize("index", range(4))
def test_demo_participants(tmp_path, index):
    subject = f"{index + 1:02d}"
    paths = write_simulated_anat(tmp_path / "fmriprep", subject, np.random.default_rng(DEMO_SEEDS[index]))
    anat = find_native_anatomy(tmp_path / "fmriprep", subject)
    result = export_targets(SITES, anat, tmp_path / "out", PREFIX.replace("01", subject), ExportSettings(),
                            simulated=True)
    head = ScalpOracle(nib.load(paths["t1w"]), SCALP_LEVEL)
    check_navigator_files(result, head, "NIfTI:Scanner", _truth_axes(paths["truth"].mni_to_t1w, result.table))


def test_mni_fallback(tmp_path):
    result = export_targets(SITES, None, tmp_path, PREFIX, ExportSettings(), simulated=True)
    assert result.space == MNI
    _, _, mask, affine = template_head(ExportSettings().template_scalp_offset_mm)
    head = ScalpOracle(nib.Nifti1Image(mask.astype(np.float32), affine), 0.5)
    axes = lambda name: (np.array([0.0, -1.0, 0.0]), np.array([1.0, 0.0, 0.0]))  # noqa: E731
    brainsight, _, _ = check_navigator_files(result, head, "NIfTI:MNI-152", axes)
    assert "SIMULATED" in brainsight["header"]["Created by"]


def test_target_outside_field_of_view_left_out_of_every_navigator_file(simulated, tmp_path):
    anat = find_native_anatomy(simulated["t1w"].parents[2], "01")
    result = export_targets(SITES.iloc[[0, 6]], anat, tmp_path, PREFIX, ExportSettings())
    files = _files(result)
    assert list(read_brainsight(files["brainsight.txt"])["targets"]) == ["5cm"]
    assert list(read_localite_markers(files["localiteInstrumentMarker.xml"])["markers"]) == ["5cm"]
    assert list(read_localite_entry_targets(files["localiteEntryTarget.xml"])["pairs"]) == ["5cm"]
    assert "field of view" in result.table["note"].iloc[1]
    assert bool(result.table["scalp_in_fov"].iloc[0])
    assert pd.isna(result.table["scalp_in_fov"].iloc[1])  # not checked: the target is outside the image


def test_coil_distance_and_angle_settings(simulated, tmp_path):
    anat = find_native_anatomy(simulated["t1w"].parents[2], "01")
    base = export_targets(SITES.iloc[:1], anat, tmp_path / "a", PREFIX, ExportSettings())
    moved = export_targets(SITES.iloc[:1], anat, tmp_path / "b", PREFIX,
                           ExportSettings(coil_scalp_distance_mm=5.0, coil_handle_angle_deg=90.0))
    m0 = read_localite_markers(_files(base)["localiteInstrumentMarker.xml"])["markers"]["5cm"]
    m1 = read_localite_markers(_files(moved)["localiteInstrumentMarker.xml"])["markers"]["5cm"]
    entry, _ = read_localite_entry_targets(_files(moved)["localiteEntryTarget.xml"])["pairs"]["5cm"]
    # the coil centre sits 5 mm out along the normal; the entry point stays on the scalp
    assert np.allclose(m1[:3, 3], entry - 5.0 * m1[:3, 0], atol=1e-4)
    assert np.allclose(entry, m0[:3, 3], atol=1e-4)
    # 90 - 45 degrees more: the handle turned 45 degrees about the same normal
    assert np.allclose(m1[:3, 0], m0[:3, 0], atol=1e-6)
    assert angle_deg(m1[:3, 1], m0[:3, 1]) == pytest.approx(45.0, abs=0.01)


def test_identity_only_on_request_and_labelled(simulated, tmp_path):
    anat = find_native_anatomy(simulated["t1w"].parents[2], "01")
    assert ExportSettings().coil_orientation == "scalp_normal"
    result = export_targets(SITES.iloc[:1], anat, tmp_path, PREFIX, ExportSettings(coil_orientation="identity"))
    files = _files(result)
    (name, b), = read_brainsight(files["brainsight.txt"])["targets"].items()
    # the Brainsight file itself says it, in the only free text it has per target: the name
    assert name.startswith("5cm") and "not a coil placement" in name and "misses the target" in name
    assert np.allclose(b[:3, :3], np.eye(3), atol=1e-4)
    # and it is true: the identity z axis through the coil centre misses the target
    target = result.table[["x", "y", "z"]].to_numpy(float)[0]
    offset = target - b[:3, 3]
    assert np.linalg.norm(offset - (offset @ b[:3, 2]) * b[:3, 2]) > 5.0
    assert any("identity" in note and "not a coil placement" in note and "does not pass through the target"
               in note for note in result.notes)
    (marker,) = read_localite_markers(files["localiteInstrumentMarker.xml"])["markers"]
    assert "not a coil placement" in marker


@pytest.mark.parametrize("field, value", [("coil_handle_angle_deg", 200.0), ("coil_scalp_distance_mm", -1.0),
                                          ("coil_scalp_distance_mm", 31.0), ("brainsight_version", 13)])
def test_export_settings_out_of_range(field, value):
    with pytest.raises(SettingsError, match=field):
        ExportSettings(**{field: value})
    with pytest.raises(SettingsError, match=field):
        Settings.from_dict({"export": {field: value}})


def _image(scode, qcode):
    img = nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4))
    img.set_sform(np.eye(4), code=scode)
    img.set_qform(np.eye(4), code=qcode)
    return img


@pytest.mark.parametrize("scode, qcode, version, name", [
    (1, 1, 12, "NIfTI:Scanner"), (2, 1, 12, "NIfTI:Aligned"), (4, 4, 12, "NIfTI:MNI-152"),
    (1, 1, 14, "NIfTI:S:Scanner"), (0, 1, 14, "NIfTI:Q:Scanner"), (0, 2, 12, "NIfTI:Aligned"),
    (3, 0, 14, "NIfTI:S:Talairach"),
])
def test_brainsight_coordinate_system_from_codes(scode, qcode, version, name):
    assert coordinate_system(_image(scode, qcode), version).name == name


@pytest.mark.parametrize("scode, qcode, reason", [(0, 0, "qform_code = sform_code = 0"),
                                                    (5, 1, "sform_code 5 and qform_code 1")])
def test_undefined_frame_is_refused_and_no_navigator_file_written(simulated, tmp_path, scode, qcode, reason):
    """Codes 0/0 (nibabel falls back to another frame) or one Brainsight cannot name: no file at all."""
    system = coordinate_system(_image(scode, qcode))
    assert system.name is None and reason in system.reason
    img = nib.load(simulated["t1w"])
    bad = nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine)
    bad.set_sform(img.affine, code=scode)
    bad.set_qform(img.affine, code=qcode)
    folder = tmp_path / "fmriprep" / "sub-01" / "anat"
    folder.mkdir(parents=True)
    nib.save(bad, folder / "sub-01_desc-preproc_T1w.nii.gz")
    anat = find_native_anatomy(tmp_path / "fmriprep", "01")
    with pytest.raises(ExportError) as info:
        export_targets(SITES.iloc[:1].assign(space="T1w", x=-40.0, y=20.0, z=50.0), anat, tmp_path / "out",
                       "sub-01", ExportSettings())
    message = str(info.value)
    assert "\n" not in message and "sub-01_desc-preproc_T1w.nii.gz" in message and reason in message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_navigator_files_follow_the_umask(simulated, tmp_path):
    anat = find_native_anatomy(simulated["t1w"].parents[2], "01")
    result = export_targets(SITES.iloc[:1], anat, tmp_path, PREFIX, ExportSettings())
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in result.files}
    assert set(modes.values()) == {0o666 & ~umask}, modes


def _rotation(axis, degrees):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    t = np.deg2rad(degrees)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


@pytest.mark.slow  # a 150 x 160 x 150 head
def test_scalp_entries_on_an_analytic_ellipsoid_head(tmp_path):
    """A head whose scalp is an ellipsoid, on an oblique 1.5 mm grid: exact surface and normals.

    The T1w is bright (scalp, 0.8) within 14 mm inside the ellipsoid and grey (brain, 0.6)
    deeper, and its outer edge falls off linearly over two voxels centred on the surface
    (linear interpolation between voxels then reproduces it).
    Checked: the entry lies where that ramp crosses the head threshold (Otsu's level of the
    image, a fixed distance from the ellipsoid: 0.1 mm, the first-order distance used to draw
    the ramp), the coil normal is the ellipsoid's normal there (2 degrees: the 4 mm smoothing
    of a surface curving with radii of 75-95 mm), and the line along it runs through the
    target (the nearest scalp point).
    """
    centre = np.array([2.0, -10.0, 15.0])
    axes = np.array([75.0, 95.0, 85.0])
    orient = _rotation([0.2, 1.0, 0.3], 12.0)  # the head's axes in the world
    voxel = 1.5
    affine = np.eye(4)
    affine[:3, :3] = _rotation([1.0, -0.5, 0.4], 20.0) * voxel  # oblique voxel axes
    shape = (150, 160, 150)
    affine[:3, 3] = centre - affine[:3, :3] @ (np.array(shape) / 2)
    world = nib.affines.apply_affine(affine, np.indices(shape).reshape(3, -1).T)
    local = (world - centre) @ orient  # coordinates along the ellipsoid's axes

    def implicit(points):
        q = (np.atleast_2d(points) - centre) @ orient
        f = np.sqrt(((q / axes) ** 2).sum(axis=1))
        grad = orient @ ((q / axes**2).T / f)  # gradient of f in world coordinates
        return f, grad.T

    f = np.sqrt(((local / axes) ** 2).sum(axis=1))
    grad = np.linalg.norm(local / axes**2, axis=1) / f
    depth = (1.0 - f) / grad  # signed distance inside the surface, to first order
    data = np.where(depth > 14, 0.6, 0.8) * np.clip(0.5 + depth / (2 * voxel), 0, 1)
    img = nib.Nifti1Image(data.reshape(shape).astype(np.float32), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    folder = tmp_path / "fmriprep" / "sub-01" / "anat"
    folder.mkdir(parents=True)
    nib.save(img, folder / "sub-01_desc-preproc_T1w.nii.gz")
    anat = find_native_anatomy(tmp_path / "fmriprep", "01")
    # targets 15-25 mm under the scalp in six directions of the upper head
    directions = np.array([[-0.6, 0.3, 0.75], [0.6, 0.3, 0.75], [-0.9, 0.0, 0.4], [0.0, 0.7, 0.7],
                           [-0.3, -0.5, 0.8], [0.0, 0.0, 1.0]])
    targets = []
    for d, under in zip(directions, [15.0, 18.0, 20.0, 22.0, 25.0, 17.0]):
        d = orient @ (d / np.linalg.norm(d))
        s = 1.0 / np.sqrt(((d @ orient / axes) ** 2).sum())  # where the ray from the centre meets the surface
        targets.append(centre + (s - under) * d)
    targets = np.array(targets)
    table = pd.DataFrame({"name": [f"t{i}" for i in range(len(targets))], "x": targets[:, 0], "y": targets[:, 1],
                          "z": targets[:, 2], "space": "T1w"})
    result = export_targets(table, anat, tmp_path / "out", "sub-01", ExportSettings())
    markers = read_localite_markers(_files(result)["localiteInstrumentMarker.xml"])["markers"]
    assert len(markers) == len(targets)
    level = otsu_threshold(img.get_fdata())
    edge_depth = (level / 0.8 - 0.5) * 2 * voxel  # where the ramp crosses the level, inside the surface
    for name, target in zip(table["name"], targets):
        normal, _, position = pose_from_localite(markers[name])
        f_entry, grad_entry = implicit(position)
        inside = (1.0 - f_entry[0]) / np.linalg.norm(grad_entry[0])
        assert inside == pytest.approx(edge_depth, abs=0.1), name
        assert angle_deg(normal, -grad_entry[0]) < 2.0, (name, angle_deg(normal, -grad_entry[0]))
        assert angle_deg(target - position, normal) < 0.5, name
        row = result.table.set_index("name").loc[name]
        assert row["scalp_depth_mm"] == pytest.approx(np.linalg.norm(position - target), abs=1e-3)
    assert "NIfTI:Scanner" == read_brainsight(_files(result)["brainsight.txt"])["header"]["Coordinate system"]


@pytest.mark.slow  # two simulated heads, end to end
@pytest.mark.parametrize("z_max", [50.0, 66.0])
def test_field_of_view_cutting_through_the_head_is_not_taken_for_scalp(tmp_path, z_max):
    """The demo's first participant with every image cropped at world z = ``z_max``: where the line
    from a target meets the image's cut face before the scalp, the target is flagged and left out;
    every target still written has its coil on the real scalp of the uncropped head."""
    full = write_simulated_anat(tmp_path / "full", "01", np.random.default_rng(DEMO_SEEDS[0]))
    cropped_copy(full, tmp_path / "fmriprep", z_max)
    anat = find_native_anatomy(tmp_path / "fmriprep", "01")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no numpy warning leaks to the user
        result = export_targets(SITES, anat, tmp_path / "out", PREFIX, ExportSettings(), simulated=True)
    files = _files(result)
    brainsight = read_brainsight(files["brainsight.txt"])["targets"]
    markers = read_localite_markers(files["localiteInstrumentMarker.xml"])["markers"]
    pairs = read_localite_entry_targets(files["localiteEntryTarget.xml"])["pairs"]
    head = ScalpOracle(nib.load(full["t1w"]), SCALP_LEVEL)
    for name, matrix in markers.items():
        normal, _, position = pose_from_localite(matrix)
        _, target = pairs[name]
        assert head.on_scalp(position, head.inward_normal(position, target), 1.0), name
        assert angle_deg(normal, head.inward_normal(position, target)) < 5.0, name
    table = result.table.set_index("name")
    cut = table.index[table["in_fov"].astype(bool) & ~table["scalp_in_fov"].fillna(True).astype(bool)]
    assert len(cut)  # the crop does reach the scalp above some targets
    for name in cut:
        assert not table.loc[name, "ok"]
        assert "field of view cuts through the head" in table.loc[name, "note"]
        assert not np.isfinite(table.loc[name, ["scalp_x", "scalp_y", "scalp_z"]].to_numpy(float)).any()
    assert not set(cut) & (set(brainsight) | set(markers) | set(pairs))


def test_problems_reach_the_console_and_flags_reach_the_navigator_sidecars(simulated, tmp_path, caplog):
    """One warning per problem and per flagged target; a written target keeps its flag beside it."""
    anat = find_native_anatomy(simulated["t1w"].parents[2], "01")
    anat = dataclasses.replace(anat, brain_mask=None)
    # MNI (0, 16, 54) lies on the midline: outside grey matter in every head
    sites = pd.concat([SITES.iloc[:1], pd.DataFrame({"name": ["midline"], "x": [0.0], "y": [16.0], "z": [54.0]})])
    with caplog.at_level(logging.WARNING, logger="trdnet"):
        result = export_targets(sites, anat, tmp_path, PREFIX, ExportSettings())
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith(f"{PREFIX}: no desc-brain_mask found") for m in warned)
    table = result.table.set_index("name")
    assert not table.loc["midline", "ok"]
    assert sum(m.startswith(f"{PREFIX}: target midline not ok") for m in warned) == 1
    assert len(warned) == len(set(warned))
    files = _files(result)
    for key in ("brainsight.json", "localiteInstrumentMarker.json", "localiteEntryTarget.json"):
        side = json.loads(files[key].read_text())
        assert any("no desc-brain_mask" in note for note in side["Notes"]), key
        assert side["Targets"]["midline"]["Ok"] is False, key
        assert "grey matter" in side["Targets"]["midline"]["Note"], key
        assert side["Targets"]["5cm"]["Ok"] is bool(table.loc["5cm", "ok"]), key
        assert "Fox et al. 2012" in side["TargetNames"]["5cm"] and "non-personalised" in side["TargetNames"]["5cm"]
        assert "CoilFrame" not in side  # one description of the axes: the file's own Convention
        assert "obtuse" in side["CoilHandleAngleMeaning"] and "negative" in side["CoilHandleAngleMeaning"]


def test_header_warnings_reach_the_console(simulated, tmp_path, caplog):
    """Shear and a qform/sform disagreement under the same code: a warning each, version 14 suggested."""
    img = nib.load(simulated["t1w"])
    sheared = img.affine.copy()
    sheared[0, 1] = 0.2
    bad = nib.Nifti1Image(np.asanyarray(img.dataobj), sheared)
    bad.set_sform(sheared, code=1)
    bad.set_qform(img.affine, code=1)
    folder = tmp_path / "fmriprep" / "sub-01" / "anat"
    folder.mkdir(parents=True)
    nib.save(bad, folder / "sub-01_desc-preproc_T1w.nii.gz")
    anat = find_native_anatomy(tmp_path / "fmriprep", "01")
    with caplog.at_level(logging.WARNING, logger="trdnet"):
        export_targets(SITES.iloc[:1].assign(space="T1w"), anat, tmp_path / "out", "sub-01", ExportSettings())
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("sheared voxel axes" in m for m in warned) == 1
    (qs,) = [m for m in warned if "qform and sform disagree" in m]
    assert "version 14" in qs and qs.startswith("sub-01: ")


def test_each_runs_export_warnings_name_that_run_once(tmp_path, caplog):
    """Two runs of one participant and session, and the participant target: each warning names its own files."""
    runs = [f"sub-01_ses-1_task-rest_run-{r}_space-{MNI}" for r in (1, 2)]
    with caplog.at_level(logging.WARNING, logger="trdnet"):
        for prefix in runs:
            export_targets(SITES.iloc[:1], None, tmp_path / prefix, prefix, ExportSettings(), simulated=True)
        export_targets(SITES.iloc[:1], None, tmp_path / "participant", PREFIX, ExportSettings(), simulated=True,
                       desc="participantnavtargets")
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for files in (*runs, f"{PREFIX} (participant)"):
        about = [m for m in warned if m.startswith(f"{files}: ")]
        assert sum("no native anatomy" in m for m in about) == 1, warned
    assert len(warned) == len(set(warned)) == 3 * len([m for m in warned if m.startswith(runs[0])]), warned


def test_mni_fallback_names_the_template_meant(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="trdnet"):
        result = export_targets(SITES.iloc[:1], None, tmp_path, PREFIX, ExportSettings(), simulated=True)
    side = json.loads(_files(result)["brainsight.json"].read_text())
    assert "MNI152NLin2009cAsym" in side["SourceImage"] and "asymmetric" in side["SourceImage"]
    assert "not a file to load" in side["SourceImage"] and "nonlinear symmetric" not in side["SourceImage"]
    assert any("no native anatomy" in r.getMessage() for r in caplog.records)


def test_export_help_states_the_real_default(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"default: the settings' export.coil_orientation, {ExportSettings().coil_orientation}" in help_text
    assert "default: identity" not in help_text


@pytest.mark.slow  # two simulated heads through the command line
def test_cli_export_refuses_an_undefined_frame_in_one_line_and_exports_the_others(tmp_path, monkeypatch, capsys):
    """``trdnet export`` on two participants, one T1w with qform and sform codes 0: one error line naming the
    file and the codes, a non-zero exit, no navigator file for it, the other participant exported."""
    import trdnet.inputs.bids
    from trdnet.inputs.runs import Run
    from trdnet.records import write_completion_record

    fmriprep, out = tmp_path / "fmriprep", tmp_path / "out"
    runs = []
    for subject in ("01", "02"):
        write_simulated_anat(fmriprep, subject, int(subject))
        entities = {"sub": subject, "task": "rest", "space": MNI}
        bold = fmriprep / f"sub-{subject}" / "func" / f"sub-{subject}_task-rest_space-{MNI}_desc-preproc_bold.nii.gz"
        run = Run(bold=bold, entities=entities, simulated=True, source="fmriprep",
                  anatomy=find_native_anatomy(fmriprep, subject))
        runs.append(run)
        folder = out / f"sub-{subject}" / "func"
        folder.mkdir(parents=True)
        SITES.iloc[:1].rename(columns={"name": "target"}).assign(space=MNI).to_csv(
            folder / f"{run.prefix}_targets.tsv", sep="\t", index=False)
        # a finished run: only runs with a completion record are exported
        write_completion_record(out, run.prefix, f"sub-{subject}", None,
                                [f"sub-{subject}/func/{run.prefix}_targets.tsv"], {}, simulated=True)
    img = nib.load(fmriprep / "sub-01" / "anat" / "sub-01_desc-preproc_T1w.nii.gz")
    bad = nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine)
    bad.set_sform(img.affine, code=0)
    bad.set_qform(img.affine, code=0)
    nib.save(bad, fmriprep / "sub-01" / "anat" / "sub-01_desc-preproc_T1w.nii.gz")
    monkeypatch.setattr(trdnet.inputs.bids, "find_runs", lambda *args, **kwargs: runs)
    code = main(["export", str(fmriprep), str(out)])
    captured = capsys.readouterr()
    assert code != 0
    (error,) = [line for line in captured.err.splitlines() if "error" in line]
    assert "sub-01_desc-preproc_T1w.nii.gz" in error and "qform_code = sform_code = 0" in error
    assert not list((out / "sub-01" / "func").glob("*navtargets*"))
    assert list((out / "sub-02" / "func").glob("*navtargets_brainsight.txt"))
