"""Template-mesh vertices followed to the participant's fsnative mesh, and surface targets in navigator files."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from test_surface import surf_gifti

from trdnet.errors import InputError
from trdnet.inputs.surface import native_vertices, participant_vertices, standard_meshes, template_sphere


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
    template = template_sphere(space, "L")
    wanted = np.array([5, 500, 3000])
    found = participant_vertices(tmp_path, "01", "a", space, "L", wanted)
    centred = template - template.mean(axis=0)
    directions = centred[wanted] / np.linalg.norm(centred[wanted], axis=1, keepdims=True)
    expected = np.argmax(rotation.apply(native_sphere) @ directions.T, axis=0)
    np.testing.assert_array_equal(found["vertex"], expected)
    np.testing.assert_allclose(found["xyz"], native_xyz[expected], atol=1e-4)
    assert found["sphere"].name == sphere_name
    # the other template family's sphere is not taken for this one
    other = "fsLR" if space.startswith("fsaverage") else "fsaverage5"
    assert participant_vertices(tmp_path, "01", "a", other, "L", wanted) is None


def test_template_spheres_share_their_meshes_vertex_order():
    for space in ("fsaverage5", "fsLR"):
        sphere = template_sphere(space, "L")
        assert sphere.shape == standard_meshes(space)[0]["L"][0].shape
        radius = np.linalg.norm(sphere - sphere.mean(axis=0), axis=1)
        assert np.ptp(radius) < 0.02 * radius.mean()  # a sphere


def nib_save(img, path):
    import nibabel as nib

    nib.save(img, path)
