"""Voxels and mesh vertices as one geometry: neighbours, smoothing, clusters, spheres (analytic cases)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from trdnet.geometry import FWHM_PER_SIGMA, Geometry, MeshGeometry, VoxelGeometry, mesh_edges


def flat_lattice(n: int, spacing: float):
    """Equilateral triangle lattice in the plane z = 0 (n x n vertices), as (coordinates, faces)."""
    rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    x = spacing * (cols + 0.5 * (rows % 2))
    y = spacing * np.sqrt(3) / 2 * rows
    coords = np.column_stack([x.ravel(), y.ravel(), np.zeros(n * n)])
    faces = []
    for r in range(n - 1):
        for c in range(n - 1):
            a, b, d, e = r * n + c, r * n + c + 1, (r + 1) * n + c, (r + 1) * n + c + 1
            if r % 2 == 0:
                faces += [(a, b, d), (b, e, d)]
            else:
                faces += [(a, b, e), (a, e, d)]
    return coords, np.asarray(faces)


def voxel_box(shape=(21, 21, 21), voxel=2.0, space="MNI152NLin2009cAsym") -> VoxelGeometry:
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = -voxel * (np.asarray(shape) // 2)
    return VoxelGeometry(np.ones(shape, dtype=bool), affine, space)


def weighted_variance(xyz: np.ndarray, weights: np.ndarray) -> np.ndarray:
    weights = weights / weights.sum()
    mean = weights @ xyz
    return weights @ (xyz - mean) ** 2


def test_lattice_is_regular():
    coords, faces = flat_lattice(9, 2.0)
    lengths = np.linalg.norm(coords[mesh_edges(faces)[:, 0]] - coords[mesh_edges(faces)[:, 1]], axis=1)
    np.testing.assert_allclose(lengths, 2.0, atol=1e-9)
    degree = np.bincount(mesh_edges(faces).ravel(), minlength=81).reshape(9, 9)
    assert (degree[1:-1, 1:-1] == 6).all()


@pytest.mark.parametrize("fwhm", [4.0, 8.0])
def test_mesh_smoothing_reaches_the_requested_fwhm(fwhm):
    # on a regular flat mesh a point spreads into a kernel whose variance per
    # axis is exactly (FWHM / 2.3548)^2 when no mass reaches the border
    coords, faces = flat_lattice(61, 2.0)
    geometry = MeshGeometry.from_meshes({"L": (coords, faces)}, space="test")
    centre = geometry.nearest_column(coords.mean(axis=0))
    delta = np.zeros(geometry.n_points)
    delta[centre] = 1.0
    kernel = geometry.smooth(delta, fwhm).astype(float)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-6)
    variance = weighted_variance(coords[:, :2], kernel)
    sigma2 = (fwhm / FWHM_PER_SIGMA) ** 2
    np.testing.assert_allclose(variance, sigma2, rtol=0.01)


def test_mesh_smoothing_keeps_constants_and_stays_inside_the_region():
    coords, faces = flat_lattice(20, 2.0)
    geometry = MeshGeometry.from_meshes({"L": (coords, faces)}, space="test")
    np.testing.assert_allclose(geometry.smooth(np.full(geometry.n_points, 3.0), 6.0), 3.0, rtol=1e-6)
    # values outside the region are huge: a region smoothed on its own must not see them
    region = np.flatnonzero(coords[:, 0] < 15)
    values = np.where(coords[:, 0] < 15, 1.0, 1e6)
    smoothed = geometry.smooth(values[region], 6.0, columns=region)
    np.testing.assert_allclose(smoothed, 1.0, rtol=1e-6)
    assert geometry.smooth(values, None) is not values  # a copy, unchanged
    np.testing.assert_array_equal(geometry.smooth(values, 0), values.astype(np.float32))


def test_voxel_smoothing_reaches_the_requested_fwhm():
    geometry = voxel_box()
    delta = np.zeros(geometry.n_points)
    delta[geometry.nearest_column((0, 0, 0))] = 1.0
    kernel = geometry.smooth(delta, 8.0).astype(float)
    variance = weighted_variance(geometry.xyz, kernel)
    np.testing.assert_allclose(variance, (8.0 / FWHM_PER_SIGMA) ** 2, rtol=0.03)


def test_voxel_adjacency_is_26_neighbours():
    geometry = voxel_box(shape=(5, 5, 5))
    degree = np.asarray(geometry.adjacency().sum(axis=1)).ravel()
    assert degree[geometry.nearest_column((0, 0, 0))] == 26
    assert degree[geometry.nearest_column((-4, -4, -4))] == 7
    assert (geometry.adjacency() != geometry.adjacency().T).nnz == 0
    # restricted to a subset, rows follow the order of the columns given
    subset = np.array([geometry.nearest_column((0, 0, 0)), geometry.nearest_column((2, 2, 2)), 0])
    sub = geometry.adjacency(subset).toarray()
    assert sub[0, 1] and sub[1, 0] and not sub[0, 2]


def test_voxel_clusters_match_26_connected_labelling():
    rng = np.random.default_rng(0)
    geometry = voxel_box(shape=(12, 12, 12))
    selected = rng.random(geometry.n_points) < 0.12
    labels = geometry.clusters(selected)
    volume = np.zeros(geometry.shape, dtype=bool)
    volume[tuple(geometry.ijk[selected].T)] = True
    expected, n = ndimage.label(volume, np.ones((3, 3, 3)))
    expected = expected[tuple(geometry.ijk.T)]
    assert labels.max() == n > 1
    # the same partition (labels may be numbered differently)
    pairs = set(zip(labels[selected], expected[selected]))
    assert len(pairs) == n
    assert (labels[~selected] == 0).all()


def test_voxels_touching_at_a_corner_are_one_cluster():
    geometry = voxel_box(shape=(6, 6, 6))
    a, b, c = (geometry.nearest_column(p) for p in [(0, 0, 0), (2, 2, 2), (4, 4, 4)])
    far = geometry.nearest_column((-6, -6, -6))
    selected = np.zeros(geometry.n_points, dtype=bool)
    selected[[a, b, c, far]] = True
    labels = geometry.clusters(selected)
    assert labels[a] == labels[b] == labels[c] != labels[far]
    assert sorted(set(labels[selected])) == [1, 2]


def test_mesh_geometry_columns_exclusion_and_clusters():
    coords, faces = flat_lattice(10, 2.0)
    right = (coords + [100.0, 0, 0], faces)
    keep = np.ones(100, dtype=bool)
    keep[40:50] = False  # a "medial wall" row cuts the left mesh in two
    geometry = MeshGeometry.from_meshes({"R": right, "L": (coords, faces)}, "test", keep={"L": keep})
    assert geometry.n_points == 190
    assert geometry.n_excluded == {"L": 10, "R": 0}
    assert geometry.n_mesh_vertices == {"L": 100, "R": 100}
    # left first, vertex numbers of the mesh, medial wall absent
    assert list(geometry.hemi[:90]) == ["L"] * 90 and list(geometry.hemi[90:]) == ["R"] * 100
    np.testing.assert_array_equal(geometry.vertex[:90], np.flatnonzero(keep))
    np.testing.assert_allclose(geometry.xyz[90:], right[0])
    labels = geometry.clusters(geometry.hemi == "L")
    assert set(labels[geometry.hemi == "L"]) == {1, 2}
    assert (labels[geometry.hemi == "R"] == 0).all()
    # no edge crosses the excluded row or the hemispheres
    edge_hemi = geometry.hemi[geometry.edges]
    assert (edge_hemi[:, 0] == edge_hemi[:, 1]).all()
    assert not np.isin(geometry.vertex[geometry.edges[edge_hemi[:, 0] == "L"]], np.arange(40, 50)).any()
    with pytest.raises(ValueError, match="keep has 3 values"):
        MeshGeometry.from_meshes({"L": (coords, faces)}, "test", keep={"L": np.ones(3, bool)})


def test_mesh_reads_gifti(tmp_path):
    coords, faces = flat_lattice(5, 3.0)
    gii = nib.gifti.GiftiImage(
        darrays=[
            nib.gifti.GiftiDataArray(coords.astype(np.float32), intent="NIFTI_INTENT_POINTSET"),
            nib.gifti.GiftiDataArray(faces.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE"),
        ]
    )
    path = tmp_path / "sub-01_hemi-L_midthickness.surf.gii"
    nib.save(gii, path)
    geometry = MeshGeometry.from_meshes({"L": path}, "fsnative")
    np.testing.assert_allclose(geometry.xyz, coords, atol=1e-5)
    assert geometry.edges.shape[0] == mesh_edges(faces).shape[0]


def test_spheres_and_template_coordinates():
    coords, faces = flat_lattice(15, 2.0)
    shift = np.eye(4)
    shift[:3, 3] = [1.0, -2.0, 3.0]
    geometry = MeshGeometry.from_meshes({"L": (coords, faces)}, "fsaverage5", template_affine=shift)
    centre, radius = coords[100] + [0.3, 0.1, 1.0], 5.0
    brute = np.flatnonzero(np.linalg.norm(coords - centre, axis=1) <= radius)
    np.testing.assert_array_equal(geometry.sphere_columns(centre, radius), brute)
    # an MNI point is looked up among the mapped coordinates
    np.testing.assert_array_equal(geometry.template_sphere_columns(centre + [1.0, -2.0, 3.0], radius), brute)
    assert geometry.template_coordinates is geometry.template_xyz
    plain = MeshGeometry.from_meshes({"L": (coords, faces)}, "fsnative")
    with pytest.raises(ValueError, match="no template coordinates"):
        plain.template_sphere_columns(centre, radius)
    voxels = voxel_box(shape=(9, 9, 9))
    np.testing.assert_array_equal(
        voxels.template_sphere_columns((1, 1, 1), 3.0),
        np.flatnonzero(np.linalg.norm(voxels.xyz - 1.0, axis=1) <= 3.0),
    )


def _most_negative_cluster_centre(geometry: Geometry, values: np.ndarray, fwhm: float) -> np.ndarray:
    """A function written once against Geometry: centre of the largest cluster of the lowest 10%."""
    smoothed = geometry.smooth(values, fwhm)
    selected = smoothed <= np.quantile(smoothed, 0.1)
    labels = geometry.clusters(selected)
    largest = np.argmax(np.bincount(labels[selected]))
    return geometry.xyz[labels == largest].mean(axis=0)


def test_one_function_serves_voxels_and_vertices():
    rng = np.random.default_rng(1)
    blob = np.array([6.0, -4.0, 0.0])
    coords, faces = flat_lattice(25, 2.0)
    coords = coords - coords.mean(axis=0)
    mesh = MeshGeometry.from_meshes({"L": (coords, faces)}, "test")
    voxels = voxel_box(shape=(15, 15, 3))
    for geometry in (mesh, voxels):
        distance = np.linalg.norm(geometry.xyz - blob, axis=1)
        values = -np.exp(-(distance**2) / 20.0) + rng.normal(0, 0.05, geometry.n_points)
        centre = _most_negative_cluster_centre(geometry, values, 4.0)
        assert np.linalg.norm(centre - blob) < 2.0, geometry.kind


def test_voxel_geometry_from_mask_and_space(tmp_path):
    mask = np.zeros((4, 5, 6), dtype=np.uint8)
    mask[1:3, 1:4, 2:5] = 1
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    nib.save(nib.Nifti1Image(mask, affine), tmp_path / "mask.nii.gz")
    geometry = VoxelGeometry.from_mask(tmp_path / "mask.nii.gz", "MNI152NLin2009cAsym")
    assert geometry.n_points == 18 and geometry.kind == "voxel"
    np.testing.assert_allclose(geometry.xyz[0], [3.0, 3.0, 6.0])
    from trdnet.grid import VoxelSpace

    assert VoxelSpace is VoxelGeometry  # the grid every stage uses is a Geometry
