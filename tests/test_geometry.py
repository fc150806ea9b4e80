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


def folded_lattice(n: int = 30, spacing: float = 2.0):
    """A flat lattice bent along x into a right angle (a sulcal wall): vertices far apart along the mesh can be
    close in space, so a centre off the mesh must land on a vertex."""
    coords, faces = flat_lattice(n, spacing)
    x = coords[:, 0] - coords[:, 0].mean()
    bent = np.where(x[:, None] < 0, np.column_stack([x, coords[:, 1], np.zeros(len(x))]),
                    np.column_stack([np.zeros(len(x)), coords[:, 1], x]))
    return bent, faces


def test_cluster_target_on_a_mesh_is_the_vertex_nearest_the_planted_patch():
    from trdnet.config import TargetSettings
    from trdnet.targeting import cluster_target, peak_target

    coords, faces = folded_lattice()
    mesh = MeshGeometry.from_meshes({"L": (coords, faces)}, "test")
    rng = np.random.default_rng(3)
    patch = coords[mesh.nearest_column([-12.0, 20.0, 0.0])]
    values = -0.6 * np.exp(-np.sum((coords - patch) ** 2, axis=1) / (2 * 4.0**2)) + rng.normal(0, 0.05, len(coords))
    search = np.arange(mesh.n_points)
    result = cluster_target(values.astype(np.float32), search, TargetSettings(smoothing_fwhm_mm=4.0), mesh)
    # the target is a vertex of the mesh (on the cortex by construction), inside the patch
    assert np.any(np.all(np.isclose(mesh.xyz, result.xyz), axis=1))
    np.testing.assert_allclose(result.xyz, mesh.xyz[result.column])
    assert np.linalg.norm(result.xyz - patch) < 3.0 and not result.moved_to_grey_matter
    assert result.details["connectivity"] == "mesh edges"
    assert np.isnan(result.candidates["volume_mm3"]).all() and result.candidates["chosen"].sum() == 1
    assert np.linalg.norm(peak_target(values, search, TargetSettings(), mesh).xyz - patch) < 6.0


def test_placing_a_point_voxels_keep_it_vertices_snap_to_the_nearest():
    voxels = voxel_box(shape=(7, 7, 7))
    region = voxels.sphere_columns((0, 0, 0), 3.0)
    column, xyz, moved, _ = voxels.place([0.4, -0.3, 0.2], region)
    assert not moved and np.allclose(xyz, [0.4, -0.3, 0.2]) and column == voxels.nearest_column((0, 0, 0))
    column, xyz, moved, distance = voxels.place([6.0, 0.0, 0.0], region)
    assert moved and column in region and distance == pytest.approx(4.0) and np.allclose(xyz, [2.0, 0, 0])
    coords, faces = folded_lattice(10)
    mesh = MeshGeometry.from_meshes({"L": (coords, faces)}, "test")
    inside = np.flatnonzero(coords[:, 0] < -2)
    column, xyz, moved, distance = mesh.place([-1.0, 5.0, 1.0], inside)
    best = inside[np.argmin(np.linalg.norm(coords[inside] - [-1.0, 5.0, 1.0], axis=1))]
    assert column == best and np.allclose(xyz, coords[best]) and not moved


def test_mesh_subset_keeps_the_edges_among_its_columns():
    coords, faces = flat_lattice(8, 2.0)
    mesh = MeshGeometry.from_meshes({"L": (coords, faces)}, "fsaverage5", template_affine=np.eye(4))
    picked = np.array([9, 10, 11, 40, 41])
    sub = mesh.subset(picked)
    np.testing.assert_array_equal(sub.vertex, mesh.vertex[picked])
    np.testing.assert_allclose(sub.template_xyz, mesh.template_xyz[picked])
    np.testing.assert_array_equal(sub.adjacency().toarray(), mesh.adjacency(picked).toarray())
    assert sub.clusters(np.ones(5, bool)).tolist() == [1, 1, 1, 2, 2]
    assert sub.same_columns(mesh.subset(picked)) and not sub.same_columns(mesh)
    assert sub.coordinate_space == "MNI305" and "linear approximation" in sub.template_mapping
    assert "MNI152NLin6Asym" in sub.template_mapping  # FreeSurfer's matrix reaches FSL's MNI152
    row = sub.target_columns([3])
    assert row["hemi"] == ["L"] and row["vertex"] == [40] and row["mesh"] == ["fsaverage5"]
    assert voxel_box().target_columns([0]) == {}  # volume target tables gain no column


def test_hierarchical_is_refused_on_a_mesh_in_one_line():
    from trdnet.cleaned import CleanedRun
    from trdnet.config import TargetSettings
    from trdnet.errors import NotImplementedFeatureError
    from trdnet.targeting import hierarchical_target

    coords, faces = flat_lattice(6, 2.0)
    mesh = MeshGeometry.from_meshes({"L": (coords, faces)}, "test")
    data = np.random.default_rng(0).standard_normal((50, mesh.n_points)).astype(np.float32)
    run = CleanedRun(data=data, space=mesh, tr=2.0, retained=np.arange(50), n_volumes=50)
    with pytest.raises(NotImplementedFeatureError, match="no published equivalent on a cortical mesh"):
        hierarchical_target(run, np.arange(10), TargetSettings(), np.arange(20, 30))
