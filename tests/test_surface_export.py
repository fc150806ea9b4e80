"""Template-mesh vertices followed to the participant's fsnative mesh, and surface targets in navigator files."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.transform import Rotation
from test_surface import surf_gifti

from trdnet.errors import ExportError, InputError
from trdnet.inputs.anatomy import find_native_anatomy
from trdnet.inputs.surface import (native_vertices, participant_vertices, sphere_family, standard_meshes,
                                   template_sphere)


def fibonacci_sphere(n: int) -> np.ndarray:
    """n points spread evenly on the unit sphere."""
    k = np.arange(n) + 0.5
    polar = np.arccos(1 - 2 * k / n)
    azimuth = np.pi * (1 + 5 ** 0.5) * k
    return np.c_[np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)]


def test_native_vertices_follow_a_known_rotation():
    template = 100 * fibonacci_sphere(2000)
    native_sphere = fibonacci_sphere(5000)
    rotation = Rotation.from_euler("xyz", [12, -7, 25], degrees=True)
    # the registration moved each participant vertex to rotation(p) on a sphere of radius 98 centred elsewhere
    registered = 98 * rotation.apply(native_sphere) + [2.0, -1.0, 4.0]
    # the participant's cortex: an ellipsoid in T1w world mm, same vertex order
    native_xyz = native_sphere * [68.0, 95.0, 70.0] + [1.0, 18.0, 22.0]
    wanted = np.array([0, 17, 999, 1999])
    vertex, xyz, angle = native_vertices(wanted, template, registered, native_xyz)
    # brute force: the participant vertex whose registered direction is closest to the template direction
    directions = rotation.apply(native_sphere)
    expected = np.argmax(directions @ (template[wanted] / 100).T, axis=0)
    np.testing.assert_array_equal(vertex, expected)
    np.testing.assert_allclose(xyz, native_xyz[expected])
    assert (angle < 3.0).all()  # 5000 points: about 3 degrees between neighbours
    # a template vertex placed exactly where a participant vertex was registered finds it, at angle 0
    exact = np.vstack([template, 100 * rotation.apply(native_sphere[[1234]])])
    vertex, xyz, angle = native_vertices(len(exact) - 1, exact, registered, native_xyz)
    assert vertex.tolist() == [1234] and angle[0] < 0.01
    np.testing.assert_allclose(xyz[0], native_xyz[1234])


def test_a_sphere_and_a_surface_of_different_meshes_are_refused():
    with pytest.raises(InputError, match="not the same mesh"):
        native_vertices(0, fibonacci_sphere(10), fibonacci_sphere(20), fibonacci_sphere(21))


@pytest.mark.parametrize("space, sphere_name", [
    ("fsaverage5", "sub-01_ses-a_hemi-L_desc-reg_sphere.surf.gii"),
    ("fsLR", "sub-01_ses-a_hemi-L_space-fsLR_desc-reg_sphere.surf.gii"),
])
def test_participant_vertices_through_fmripreps_registered_sphere(tmp_path, space, sphere_name):
    # a participant laid out as fMRIPrep writes anat/: fsnative midthickness (T1w mm) and the registered sphere
    anat = tmp_path / "sub-01" / "ses-a" / "anat"
    anat.mkdir(parents=True)
    native_sphere = fibonacci_sphere(4000)
    faces = np.array([[0, 1, 2]])
    native_xyz = native_sphere * [66.0, 90.0, 72.0] + [0.0, 15.0, 20.0]
    rotation = Rotation.from_euler("zyx", [-9, 4, 15], degrees=True)
    nib_save(surf_gifti(native_xyz, faces), anat / "sub-01_ses-a_hemi-L_midthickness.surf.gii")
    nib_save(surf_gifti(100 * rotation.apply(native_sphere), faces), anat / sphere_name)
    nib_save(surf_gifti(native_xyz, faces), anat / "sub-01_ses-a_hemi-R_midthickness.surf.gii")
    (anat / "sub-01_ses-a_desc-preproc_T1w.nii.gz").touch()  # found by name: the anatomy is discovered, not read
    anatomy = find_native_anatomy(tmp_path, "01", "a")
    assert anatomy.registered_spheres[sphere_family(space)] == {"L": anat / sphere_name}
    template = template_sphere(space, "L")
    wanted = np.array([5, 500, 3000])
    found = participant_vertices(anatomy, space, "L", wanted)
    centred = template - template.mean(axis=0)
    directions = centred[wanted] / np.linalg.norm(centred[wanted], axis=1, keepdims=True)
    expected = np.argmax(rotation.apply(native_sphere) @ directions.T, axis=0)
    np.testing.assert_array_equal(found["vertex"], expected)
    np.testing.assert_allclose(found["xyz"], native_xyz[expected], atol=1e-4)
    assert found["sphere"].name == sphere_name
    # the other template family's sphere is not taken for this one
    other = "fsLR" if space.startswith("fsaverage") else "fsaverage5"
    assert participant_vertices(anatomy, other, "L", wanted) is None


def test_template_spheres_share_their_meshes_vertex_order():
    for space in ("fsaverage5", "fsLR"):
        sphere = template_sphere(space, "L")
        assert sphere.shape == standard_meshes(space)[0]["L"][0].shape
        radius = np.linalg.norm(sphere - sphere.mean(axis=0), axis=1)
        assert np.ptp(radius) < 0.02 * radius.mean()  # a sphere


def nib_save(img, path):
    import nibabel as nib

    nib.save(img, path)


# ---- surface targets in navigator files (the rows a surface run's target table carries) -------------------------

DLPFC_MNI = np.array([-41.0, 16.0, 54.0])


@pytest.fixture(scope="module")
def participant(simulated_anat, tmp_path_factory):
    """A SIMULATED fMRIPrep participant (T1w, masks, transforms) with fsnative surfaces and a registered sphere."""
    from trdnet.inputs.anatomy import find_native_anatomy

    root = tmp_path_factory.mktemp("fmriprep")
    paths = simulated_anat.copy(root)
    anat = root / "sub-01" / "anat"
    sphere = fibonacci_sphere(3000)
    # the participant's cortex: an ellipsoid in T1w mm through the DLPFC point (vertex 0 is placed on it)
    native = sphere * [62.0, 80.0, 62.0] + [0.0, -10.0, 15.0]
    native[0] = paths["truth"].mni_to_t1w(DLPFC_MNI[None])[0]
    rotation = Rotation.from_euler("xyz", [6, -4, 10], degrees=True)
    for hemi in ("L", "R"):
        nib_save(surf_gifti(native, np.array([[0, 1, 2]])), anat / f"sub-01_hemi-{hemi}_midthickness.surf.gii")
    nib_save(surf_gifti(100 * rotation.apply(sphere), np.array([[0, 1, 2]])),
             anat / "sub-01_hemi-L_desc-reg_sphere.surf.gii")
    return {"root": root, "paths": paths, "anat": find_native_anatomy(root, "01"), "native": native,
            "registered": rotation.apply(sphere)}


def test_an_fsnative_target_is_written_in_t1w_without_a_volume_transform(participant, tmp_path):
    import dataclasses

    from trdnet.config import ExportSettings
    from trdnet.export import export_targets
    from navigator_files import read_brainsight, read_localite_markers

    # no transform at all: an fsnative vertex needs none
    anat = dataclasses.replace(participant["anat"], xfm_t1w_to_template=None, xfm_template_to_t1w=None)
    point = participant["native"][0]
    row = {"name": ["personalised"], "x": [point[0]], "y": [point[1]], "z": [point[2]], "space": ["fsnative"],
           "hemi": ["L"], "vertex": [0]}
    settings = ExportSettings(formats=("brainsight", "localite"))
    result = export_targets(pd.DataFrame(row), anat, tmp_path / "mesh", "sub-01_task-rest_space-fsnative",
                            settings, simulated=True)
    assert result.space == "T1w"
    np.testing.assert_allclose(result.table[["x", "y", "z"]].to_numpy(float)[0], point)
    assert any("fsnative mesh): T1w world coordinates" in note and "no volume transform" in note
               for note in result.notes)
    # the same files as a target given directly in T1w: one writer, one coil pose
    direct = export_targets(pd.DataFrame(row).assign(space="T1w").drop(columns=["hemi", "vertex"]), anat,
                            tmp_path / "t1w", "sub-01_task-rest_space-fsnative", settings, simulated=True)
    files = sorted(p.name for p in result.files)
    assert files == sorted(p.name for p in direct.files) and any(f.endswith(".txt") for f in files)
    brainsight = next(p for p in result.files if p.name.endswith("brainsight.txt"))
    ours = read_brainsight(brainsight)
    theirs = read_brainsight(next(p for p in direct.files if p.name == brainsight.name))
    assert list(ours["targets"]) == ["personalised"] and ours["header"] == theirs["header"]
    np.testing.assert_allclose(ours["targets"]["personalised"], theirs["targets"]["personalised"])
    scalp = result.table[["scalp_x", "scalp_y", "scalp_z"]].to_numpy(float)[0]
    np.testing.assert_allclose(ours["targets"]["personalised"][:3, 3], scalp, atol=1e-3)  # the coil above it
    assert np.linalg.norm(scalp - point) < 40
    localite = [p for p in result.files if p.suffix == ".xml" and "InstrumentMarkerList" in p.read_text()]
    assert localite
    markers = read_localite_markers(localite[0])
    same = read_localite_markers(next(p for p in direct.files if p.name == localite[0].name))
    assert markers["space"] == same["space"] == "RAS" and list(markers["markers"]) == list(same["markers"])
    for name, matrix in markers["markers"].items():
        np.testing.assert_allclose(matrix, same["markers"][name])
    # without the participant's anatomy an fsnative vertex cannot be written
    with pytest.raises(ExportError, match="needs the participant's T1w anatomy"):
        export_targets(pd.DataFrame(row), None, tmp_path / "none", "sub-01", settings)


def test_a_template_vertex_goes_to_the_participants_own_vertex(participant, tmp_path):
    from trdnet.config import ExportSettings
    from trdnet.export import export_targets

    template = template_sphere("fsaverage5", "L")
    vertex = 2345
    from trdnet.inputs.surface import MNI305_TO_MNI152

    # a row as a surface run's targets.tsv gives it: mesh coordinates (MNI305) and the MNI152 position
    mni152 = nib_affine(MNI305_TO_MNI152, [-40.0, 30.0, 40.0])
    row = pd.DataFrame({"name": ["personalised"], "x": [-40.0], "y": [30.0], "z": [40.0], "space": ["MNI305"],
                        "hemi": ["L"], "vertex": [vertex], "mesh": ["fsaverage5"], "mni152_x": [mni152[0]],
                        "mni152_y": [mni152[1]], "mni152_z": [mni152[2]],
                        "mni152_mapping": ["FreeSurfer's MNI305-to-MNI152 matrix (linear approximation)"]})
    result = export_targets(row, participant["anat"], tmp_path, "sub-01_task-rest_space-fsaverage5",
                            ExportSettings(formats=()), simulated=True)
    direction = template[vertex] - template.mean(axis=0)
    expected = np.argmax(participant["registered"] @ (direction / np.linalg.norm(direction)))
    np.testing.assert_allclose(result.table[["x", "y", "z"]].to_numpy(float)[0], participant["native"][expected],
                               atol=1e-4)
    assert result.space == "T1w" and any(f"participant's vertex {expected} through" in n for n in result.notes)
    # the right hemisphere has no registered sphere: its MNI152 position, then the volume transform
    truth = participant["paths"]["truth"].mni_to_t1w(mni152[None])[0]
    for right in (row.assign(hemi="R"),  # as the targets table gives it
                  row.assign(hemi="R", space="fsaverage5").drop(columns=["mesh", "mni152_x", "mni152_y", "mni152_z"])):
        result = export_targets(right, participant["anat"], tmp_path, "sub-01_task-rest_space-fsaverage5",
                                ExportSettings(formats=()), simulated=True)
        np.testing.assert_allclose(result.table[["x", "y", "z"]].to_numpy(float)[0], truth, atol=0.05)
        assert any("no registered sphere" in n and "MNI305-to-MNI152" in n for n in result.notes)
        # the mesh's MNI152 is FSL's, fed to fMRIPrep's MNI152NLin2009cAsym transform: the note says so
        assert any("MNI152NLin6Asym" in n and "further approximation" in n for n in result.notes)
    with pytest.raises(ExportError, match="need columns hemi and vertex"):
        export_targets(row.drop(columns=["vertex"]), participant["anat"], tmp_path, "sub-01",
                       ExportSettings(formats=()))


def nib_affine(affine, point):
    import nibabel as nib

    return nib.affines.apply_affine(affine, np.asarray(point, dtype=float))


@pytest.mark.slow  # a whole fsnative run with its anatomy, through the command line
def test_trdnet_run_on_fsnative_writes_t1w_navigator_files_at_the_target_vertex(simulated_anat, surface_networks_run,
                                                                               tmp_path, capsys):
    # SIMULATED participant: T1w anatomy and transforms, a cortex that happens to be fsaverage5's (in T1w mm),
    # its registered sphere, and an fsnative BOLD run
    import json

    import nibabel as nib
    from nilearn.datasets import load_fsaverage

    from navigator_files import read_brainsight
    from trdnet.cli import main

    root = tmp_path / "fmriprep"
    simulated_anat.copy(root)
    shutil.copytree(surface_networks_run("fsnative"), root, dirs_exist_ok=True)
    anat = root / "sub-01" / "anat"
    meshes, fsaverage = standard_meshes("fsaverage5")[0], load_fsaverage("fsaverage5")
    for hemi, part in (("L", "left"), ("R", "right")):
        nib.save(surf_gifti(*meshes[hemi]), anat / f"sub-01_hemi-{hemi}_midthickness.surf.gii")
        nib.save(surf_gifti(fsaverage["sphere"].parts[part].coordinates, meshes[hemi][1]),
                 anat / f"sub-01_hemi-{hemi}_desc-reg_sphere.surf.gii")
    out = tmp_path / "out"
    assert main(["run", str(root), str(out), "participant", "--space", "fsnative", "--no-report",
                 "--n-bootstrap", "5"]) == 0
    func = out / "sub-01" / "func"
    target = pd.read_csv(func / "sub-01_task-rest_space-fsnative_targets.tsv", sep="\t").iloc[0]
    assert target["space"] == "T1w" and target["mesh"] == "fsnative"
    # the target is the vertex's own T1w position, and the navigator files carry it untransformed
    vertex = meshes[target["hemi"]][0][int(target["vertex"])]
    np.testing.assert_allclose(target[["x", "y", "z"]].to_numpy(float), vertex,
                               atol=1e-3)
    nav = pd.read_csv(func / "sub-01_task-rest_space-T1w_desc-navtargets_coords.tsv", sep="\t").iloc[0]
    np.testing.assert_allclose(nav[["x", "y", "z"]].to_numpy(float), target[["x", "y", "z"]].to_numpy(float),
                               atol=1e-3)
    brainsight = read_brainsight(func / "sub-01_task-rest_space-T1w_desc-navtargets_brainsight.txt")
    np.testing.assert_allclose(brainsight["targets"][nav["navigator_name"]][:3, 3],
                               nav[["coil_x", "coil_y", "coil_z"]].to_numpy(float), atol=1e-3)
    sidecar = json.dumps(json.loads((func / "sub-01_task-rest_space-T1w_desc-navtargets_coords.json").read_text()))
    assert "T1w world coordinates of fMRIPrep's surface; no volume transform" in sidecar
    assert "no volume transform" not in capsys.readouterr().err  # said in the files, not warned about


def test_trdnet_run_on_fsaverage5_with_fmripreps_anatomy_writes_the_participants_own_vertex(simulated_anat,
                                                                                          surface_networks_run,
                                                                                          tmp_path):
    # SIMULATED participant with T1w anatomy, fsnative surfaces and a registered sphere (fsaverage's, turned by
    # 4 degrees: the registration of this made-up brain), and an fsaverage5 BOLD run
    import nibabel as nib
    from nilearn.datasets import load_fsaverage
    from trdnet.cli import main

    root = tmp_path / "fmriprep"
    simulated_anat.copy(root)
    shutil.copytree(surface_networks_run("fsaverage5"), root, dirs_exist_ok=True)
    anat = root / "sub-01" / "anat"
    meshes, fsaverage = standard_meshes("fsaverage5")[0], load_fsaverage("fsaverage5")
    turn = Rotation.from_euler("z", 4, degrees=True)
    for hemi, part in (("L", "left"), ("R", "right")):
        native = meshes[hemi][0] * 0.95 + [2.0, -3.0, 5.0]  # the participant's cortex in T1w mm
        nib.save(surf_gifti(native, meshes[hemi][1]), anat / f"sub-01_hemi-{hemi}_midthickness.surf.gii")
        nib.save(surf_gifti(turn.apply(fsaverage["sphere"].parts[part].coordinates), meshes[hemi][1]),
                 anat / f"sub-01_hemi-{hemi}_desc-reg_sphere.surf.gii")
    out = tmp_path / "out"
    assert main(["run", str(root), str(out), "participant", "--space", "fsaverage5", "--no-report",
                 "--n-bootstrap", "5"]) == 0
    func = out / "sub-01" / "func"
    target = pd.read_csv(func / "sub-01_task-rest_space-fsaverage5_targets.tsv", sep="\t").iloc[0]
    assert target["space"] == "MNI305" and target["mesh"] == "fsaverage5"
    sphere = fsaverage["sphere"].parts[target["hemi"] == "L" and "left" or "right"].coordinates
    direction = sphere[int(target["vertex"])] / np.linalg.norm(sphere[int(target["vertex"])])
    registered = turn.apply(sphere)
    expected = np.argmax(registered @ direction / np.linalg.norm(registered, axis=1))
    nav = pd.read_csv(func / "sub-01_task-rest_space-T1w_desc-navtargets_coords.tsv", sep="\t").iloc[0]
    np.testing.assert_allclose(nav[["x", "y", "z"]].to_numpy(float),
                               meshes[target["hemi"]][0][expected] * 0.95 + [2.0, -3.0, 5.0], atol=1e-3)
    assert expected != int(target["vertex"])  # the turned sphere moved it: the participant's own vertex


def test_the_console_says_a_template_mesh_targets_navigation_position_is_approximate(capsys):
    from types import SimpleNamespace

    from trdnet.console import report_results

    summary = {"target_space": "MNI305", "target_x": -38.0, "target_y": 40.0, "target_z": 30.0,
               "r_sgacc": -0.4, "reliability": "high", "navigation_space": "MNI152NLin2009cAsym",
               "navigation_x": -39.0, "navigation_y": 38.0, "navigation_z": 33.0}
    volume = SimpleNamespace(prefix="sub-01_task-rest", status="done", error="", summary=dict(summary))
    mesh = SimpleNamespace(prefix="sub-02_task-rest", status="done", error="",
                           summary=summary | {"target_hemi": "L", "target_vertex": 1234})
    report_results([volume, mesh], "out")
    lines = [line for line in capsys.readouterr().out.splitlines() if "for navigation" in line]
    assert "MNI152NLin6Asym" not in lines[0]
    assert lines[1].strip().startswith("for navigation: (-39.0, 38.0, 33.0) mm MNI152NLin2009cAsym")
    assert "approximate" in lines[1] and "MNI152NLin6Asym" in lines[1]


def test_the_export_reads_the_spheres_found_with_the_run_and_searches_no_folder(participant, tmp_path):
    """Input discovery is done once, into Run.anatomy: an anatomy without spheres is exported through the MNI152
    position (with its warning) even though the sphere file is on disk."""
    import dataclasses

    from trdnet.config import ExportSettings
    from trdnet.export import export_targets

    anat = participant["anat"]
    assert set(anat.registered_spheres) == {"fsaverage"} and set(anat.surfaces) == {"L", "R"}
    row = pd.DataFrame({"name": ["personalised"], "x": [-40.0], "y": [30.0], "z": [40.0], "space": ["MNI305"],
                        "hemi": ["L"], "vertex": [2345], "mesh": ["fsaverage5"]})
    settings = ExportSettings(formats=())
    with_sphere = export_targets(row, anat, tmp_path / "a", "sub-01_task-rest_space-fsaverage5", settings,
                                 simulated=True)
    assert with_sphere.space == "T1w"
    without = dataclasses.replace(anat, registered_spheres={})
    assert (participant["root"] / "sub-01" / "anat" / "sub-01_hemi-L_desc-reg_sphere.surf.gii").is_file()
    result = export_targets(row, without, tmp_path / "b", "sub-01_task-rest_space-fsaverage5", settings,
                            simulated=True)
    assert any("no registered sphere from fMRIPrep" in note for note in result.notes), result.notes
