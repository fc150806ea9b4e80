"""Regions, seed maps and target methods on small synthetic grids with known answers."""

from __future__ import annotations

import dataclasses
import re

import nibabel as nib
import numpy as np
import pytest
from nilearn import datasets

from trdnet.cleaned import CleanedRun, zscore_columns
from trdnet.config import TargetSettings
from trdnet.errors import InputError, NotImplementedFeatureError, SettingsError, TargetingError
from trdnet.grid import VoxelSpace
from trdnet.targeting import (
    cluster_target,
    fisher_z,
    group_mean_map,
    hierarchical_target,
    peak_target,
    search_columns,
    seed_columns,
    seed_map,
    seedmap_target,
)


def box_space(shape=(14, 14, 14), voxel=2.0, name="synthetic"):
    """A fully in-mask box grid with voxel (0,0,0) at world (0,0,0)."""
    affine = np.diag([voxel, voxel, voxel, 1.0])
    return VoxelSpace(np.ones(shape, dtype=bool), affine, name)


def columns_of(space, ijk_list):
    index = space.column_index()
    ijk = np.asarray(ijk_list)
    return index[ijk[:, 0], ijk[:, 1], ijk[:, 2]]


def cube(lo, size):
    return np.stack(
        np.meshgrid(*[np.arange(a, a + size) for a in lo], indexing="ij"), -1
    ).reshape(-1, 3)


def cleaned_from(space, data, tr=2.0):
    data = zscore_columns(np.asarray(data, dtype=np.float32))
    return CleanedRun(data, space, tr, np.arange(data.shape[0]), data.shape[0], simulated=True)


@pytest.fixture(scope="module")
def mni_space():
    mask = datasets.load_mni152_brain_mask(resolution=3)
    data = np.asarray(mask.dataobj) > 0
    return VoxelSpace(data, mask.affine, "MNI152NLin2009cAsym")


# ---------------------------------------------------------------- regions


def test_seed_sphere_is_around_fox_coordinate(mni_space):
    settings = TargetSettings()
    cols = seed_columns(mni_space, settings)
    dist = np.linalg.norm(mni_space.xyz[cols] - np.array([6.0, 16.0, -10.0]), axis=1)
    assert cols.size > 20 and dist.max() <= 10.0
    both = seed_columns(mni_space, dataclasses.replace(settings, seed_bilateral=True))
    assert both.size > cols.size and (mni_space.xyz[both][:, 0] < 0).any()


def test_search_region_is_grey_matter_near_sites(mni_space):
    settings = TargetSettings()
    cols = search_columns(mni_space, settings)
    xyz = mni_space.xyz[cols]
    sites = np.array([[-41, 16, 54], [-37, 26, 49], [-36, 39, 43], [-44, 40, 29]], float)
    nearest = np.linalg.norm(xyz[:, None] - sites[None], axis=2).min(axis=1)
    assert nearest.max() <= 20.0
    assert (xyz[:, 0] < 0).all()
    ungated = search_columns(mni_space, dataclasses.replace(settings, restrict_to_grey_matter=False))
    assert 0 < cols.size < ungated.size


def test_user_mask_on_other_grid_is_resampled_with_warning(tmp_path, mni_space):
    fine = datasets.load_mni152_brain_mask(resolution=2)
    vol = np.zeros(fine.shape, dtype=np.uint8)
    ijk = np.rint(np.linalg.inv(fine.affine) @ np.array([-40.0, 30.0, 40.0, 1.0]))[:3].astype(int)
    vol[ijk[0] - 3 : ijk[0] + 4, ijk[1] - 3 : ijk[1] + 4, ijk[2] - 3 : ijk[2] + 4] = 1
    path = tmp_path / "dlpfc.nii.gz"
    nib.save(nib.Nifti1Image(vol, fine.affine), path)
    settings = TargetSettings(search_mask=str(path))
    with pytest.warns(UserWarning, match="resampled"):
        cols = search_columns(mni_space, settings)
    assert np.linalg.norm(mni_space.xyz[cols].mean(0) - [-40, 30, 40]) < 3.0


def test_mask_outside_brain_raises_naming_file(tmp_path, mni_space):
    vol = np.zeros(mni_space.shape, dtype=np.uint8)
    vol[0, 0, 0] = 1
    path = tmp_path / "outside.nii.gz"
    nib.save(nib.Nifti1Image(vol, mni_space.affine), path)
    with pytest.raises(TargetingError, match="outside.nii.gz"):
        search_columns(mni_space, TargetSettings(search_mask=str(path)))
    with pytest.raises(TargetingError, match="outside.nii.gz"):
        seed_columns(mni_space, TargetSettings(seed_mask=str(path)))


def test_empty_or_foreign_regions_raise():
    space = box_space(name="T1w")
    with pytest.raises(NotImplementedFeatureError, match="T1w"):
        search_columns(space, TargetSettings())
    with pytest.raises(NotImplementedFeatureError, match="seed_mask"):
        seed_columns(space, TargetSettings())
    mni_box = box_space(name="MNI152NLin2009cAsym")  # box far from the DLPFC sites
    with pytest.raises(TargetingError, match="search region"):
        search_columns(mni_box, TargetSettings())
    with pytest.raises(TargetingError, match="empty"):
        peak_target(np.zeros(mni_box.n_voxels), np.array([], int), TargetSettings(), mni_box)


# ---------------------------------------------------------------- seed maps


def test_seed_map_and_group_mean():
    rng = np.random.default_rng(0)
    space = box_space((4, 4, 4))
    s = rng.standard_normal(200)
    data = rng.standard_normal((200, space.n_voxels))
    data[:, :5] += 3 * s[:, None]
    data[:, 10] = -s
    run = cleaned_from(space, data)
    r = seed_map(run, np.arange(5))
    assert r.dtype == np.float32
    assert r[:5].min() > 0.8 and r[10] < -0.9 and np.abs(r[20:]).max() < 0.3
    maps = np.array([[0.5, -0.2], [0.1, 0.3], [0.9, 0.9]])
    assert np.allclose(group_mean_map(maps), np.arctanh(maps).mean(0), atol=1e-6)
    assert np.allclose(group_mean_map(maps, exclude=2), np.arctanh(maps[:2]).mean(0), atol=1e-6)
    assert np.isfinite(fisher_z(np.array([1.0, -1.0]))).all()
    with pytest.raises(InputError, match="every run was excluded"):
        group_mean_map(maps, exclude=[0, 1, 2])


# ---------------------------------------------------------------- peak / cluster


def test_peak_finds_planted_minimum():
    rng = np.random.default_rng(1)
    space = box_space()
    seed_r = rng.uniform(-0.3, 0.3, space.n_voxels).astype(np.float32)
    search = np.arange(0, space.n_voxels, 2)
    planted = search[123]
    seed_r[planted] = -0.8
    seed_r[1] = -0.99  # outside the search region: ignored
    result = peak_target(seed_r, search, TargetSettings(), space)
    assert result.column == planted and result.n_voxels == 1
    assert np.allclose(result.xyz, space.xyz[planted])
    assert result.r_sgacc == pytest.approx(-0.8)


def test_cluster_returns_blob_centre_not_isolated_extreme():
    space = box_space((16, 16, 16))
    values = np.full(space.n_voxels, 0.2, np.float32)
    blob = columns_of(space, cube((3, 4, 5), 3))  # centre voxel (4, 5, 6)
    single = columns_of(space, [(12, 12, 12)])
    weak = columns_of(space, cube((9, 0, 0), 7))[:252]  # far, barely negative
    values[weak] = -0.01
    values[blob] = -0.5
    values[single] = -0.9
    # 280 negative voxels -> top 10 % = 28 = blob (27) + the single voxel.
    settings = TargetSettings(smoothing_fwhm_mm=None)
    result = cluster_target(values, np.arange(space.n_voxels), settings, space)
    assert result.n_voxels == 27
    assert np.linalg.norm(result.xyz - np.array([8.0, 10.0, 12.0])) <= 1.0
    assert not result.moved_to_grey_matter and result.note == ""
    assert result.details["n_kept"] == 28


def test_cluster_centre_moves_into_region_with_note():
    space = box_space((12, 12, 12))
    shell = cube((4, 4, 4), 3)
    centre = columns_of(space, [(5, 5, 5)])[0]
    search = np.setdiff1d(np.arange(space.n_voxels), [centre])
    values = np.full(space.n_voxels, 0.1, np.float32)
    values[columns_of(space, shell)] = -0.6
    values[search[:234]] = -0.001  # 26 + 234 negatives -> top 10 % = the 26 shell voxels
    settings = TargetSettings(smoothing_fwhm_mm=None)
    result = cluster_target(values, search, settings, space)
    assert result.moved_to_grey_matter
    assert "moved" in result.note
    assert result.column in search
    assert np.linalg.norm(result.xyz - np.array([10.0, 10.0, 10.0])) == pytest.approx(2.0)


def test_smoothing_inside_region_does_not_leak_outside_values():
    space = box_space((10, 10, 10))
    inside = columns_of(space, cube((2, 2, 2), 4))
    smoothed = space.smooth(np.full(inside.size, -0.5, np.float32), 6.0, inside)
    assert np.allclose(smoothed, -0.5, atol=1e-6)  # a plain filter would pull edges to 0
    ramp = space.xyz[inside][:, 0].astype(np.float32)
    smoothed = space.smooth(ramp, 6.0, inside)
    assert smoothed.min() >= ramp.min() - 1e-4 and smoothed.max() <= ramp.max() + 1e-4
    assert not np.allclose(smoothed, ramp)


def test_cluster_without_negative_voxels_raises():
    space = box_space((5, 5, 5))
    with pytest.raises(TargetingError, match="no negative"):
        cluster_target(np.ones(space.n_voxels, np.float32), np.arange(space.n_voxels),
                       TargetSettings(), space)


# ---------------------------------------------------------------- seedmap


def test_seedmap_uses_group_map_weights():
    rng = np.random.default_rng(2)
    space = box_space((12, 12, 12))
    t = 240
    s = rng.standard_normal(t)
    data = rng.standard_normal((t, space.n_voxels))
    network = columns_of(space, cube((0, 0, 0), 4))  # sgACC-like network
    search = columns_of(space, cube((5, 5, 5), 7))
    block = columns_of(space, cube((6, 7, 8), 3))  # centre voxel (7, 8, 9)
    data[:, network] += 2 * s[:, None]
    data[:, block] -= 1.5 * s[:, None]
    group = np.zeros(space.n_voxels, np.float32)
    group[network] = 0.6
    group[search] = 5.0  # must be zeroed: search voxels may not build the reference
    run = cleaned_from(space, data)
    result = seedmap_target(run, search, TargetSettings(), group)
    assert result.method == "seedmap"
    assert np.linalg.norm(result.xyz - np.array([14.0, 16.0, 18.0])) <= 2.0
    assert result.n_voxels >= 10
    assert np.isnan(result.r_sgacc)  # no individual seed map given
    with pytest.raises(InputError, match="one value per voxel"):
        seedmap_target(run, search, TargetSettings(), np.ones(7))
    with pytest.raises(TargetingError, match="group sgACC map"):
        seedmap_target(run, search, TargetSettings())


def test_group_map_image_is_resampled_to_the_grid(tmp_path):
    from trdnet.targeting import group_map_values

    space = box_space((10, 10, 10), voxel=2.0)
    fine = VoxelSpace(np.ones((20, 20, 20), bool), np.diag([1.0, 1.0, 1.0, 1.0]), "synthetic")
    values = fine.xyz[:, 0].astype(np.float32)  # map = world x coordinate
    path = tmp_path / "group.nii.gz"
    nib.save(fine.to_img(values), path)
    on_grid = group_map_values(space, str(path))
    inside = space.xyz[:, 0] <= 19
    assert np.allclose(on_grid[inside], space.xyz[inside, 0], atol=1e-3)


# ---------------------------------------------------------------- hierarchical


@pytest.mark.parametrize("voxel", [2.0, 3.0, 4.0])
def test_hierarchical_finds_planted_anticorrelated_block(voxel):
    rng = np.random.default_rng(3)
    space = box_space((16, 16, 10), voxel=voxel)
    t = 200
    s = rng.standard_normal(t)
    u = rng.standard_normal(t)
    noise = rng.standard_normal((t, space.n_voxels))
    seed = columns_of(space, cube((1, 1, 1), 3))
    search_ijk = cube((6, 4, 2), 8)
    search = np.sort(columns_of(space, search_ijk))
    side = {2.0: 4, 3.0: 3, 4.0: 2}[voxel]  # >= 400 mm3 on every grid
    anti = columns_of(space, cube((6, 4, 2), side))
    pos = columns_of(space, cube((14 - side, 12 - side, 10 - side), side))
    other = columns_of(space, cube((6, 12 - side, 10 - side), side))
    data = 0.5 * noise
    data[:, seed] += s[:, None]
    data[:, anti] += -s[:, None]
    data[:, pos] += s[:, None]
    data[:, other] += u[:, None]
    run = cleaned_from(space, data)
    settings = TargetSettings()
    result = hierarchical_target(run, search, settings, seed)
    assert result.column in anti
    assert result.n_voxels == anti.size
    assert result.r_sgacc < -0.5
    assert result.details["min_cluster_voxels"] == pytest.approx(400.0 / voxel**3)


@pytest.mark.parametrize("voxel", [2.0, 3.0])
def test_hierarchical_finds_a_weak_patch_in_spatially_smooth_noise(voxel):
    # Noise smoothed at 6 mm FWHM (as in preprocessed BOLD) and a weak 10 mm patch: one-voxel-wide
    # correlation structure everywhere. Splitting functional clusters into connected pieces after
    # the fact leaves fragments under the 400 mm3 minimum here; merging only touching clusters grows
    # the patch into one cluster on both grids.
    from scipy import ndimage

    rng = np.random.default_rng(8)
    shape = (int(40 / voxel),) * 3
    space = box_space(shape, voxel=voxel)
    t = 300
    sigma = 6.0 / 2.3548 / voxel
    noise = ndimage.gaussian_filter(rng.standard_normal((t, *shape)), (0, sigma, sigma, sigma))
    noise = noise.reshape(t, -1) / noise.std()
    s = rng.standard_normal(t)
    xyz = space.xyz
    seed = np.flatnonzero(np.linalg.norm(xyz - [6.0, 6.0, 6.0], axis=1) <= 5.0)
    search = np.flatnonzero(xyz[:, 0] >= 14.0)
    centre = np.array([27.0, 20.0, 20.0])
    patch = np.flatnonzero(np.linalg.norm(xyz - centre, axis=1) <= 10.0)
    data = noise.copy()
    data[:, seed] += 2 * s[:, None]
    data[:, patch] -= 0.4 * s[:, None]
    run = cleaned_from(space, data)
    result = hierarchical_target(run, search, TargetSettings(), seed)
    assert result.n_voxels * voxel**3 >= 400.0
    assert np.linalg.norm(result.xyz - centre) <= 10.0  # a voxel of the planted patch


def test_spatial_constraint_splits_distant_look_alike_voxels():
    from trdnet.targeting.hierarchical import _ranked, spatial_clusters

    rng = np.random.default_rng(4)
    space = box_space((12, 4, 4))
    s = rng.standard_normal(150)
    data = 0.3 * rng.standard_normal((150, space.n_voxels))
    left = columns_of(space, cube((0, 0, 0), 2))
    right = columns_of(space, cube((10, 0, 0), 2))
    data[:, left] += s[:, None]
    data[:, right] += s[:, None]
    cols = np.arange(space.n_voxels)
    labels = spatial_clusters(_ranked(data.astype(np.float32)), space, cols)
    assert len(set(labels[left])) == 1 and len(set(labels[right])) == 1
    assert labels[left[0]] != labels[right[0]]  # same signal, not adjacent: two clusters


def test_hierarchical_cut_is_a_setting():
    from trdnet.targeting.hierarchical import _ranked, spatial_clusters

    rng = np.random.default_rng(5)
    space = box_space((6, 4, 4))
    s = rng.standard_normal(150)
    data = 0.3 * rng.standard_normal((150, space.n_voxels))
    data += s[:, None]  # every voxel shares one signal (rho ~ 0.9)
    ranked = _ranked(data.astype(np.float32))
    cols = np.arange(space.n_voxels)
    assert np.unique(spatial_clusters(ranked, space, cols, 0.5, "average")).size == 1
    # A cut below the shared signal's distance leaves every voxel alone.
    assert np.unique(spatial_clusters(ranked, space, cols, 0.01, "average")).size == space.n_voxels


@pytest.mark.parametrize("change, message", [
    ({"hierarchical_linkage": "ward"}, 'targeting.hierarchical_linkage = "ward"'),
    ({"hierarchical_distance_threshold": 0.0}, "targeting.hierarchical_distance_threshold = 0.0"),
])
def test_hierarchical_refuses_bad_cut_settings(change, message):
    # Refused when the settings are built, before any data is touched.
    with pytest.raises(SettingsError, match=re.escape(message)):
        TargetSettings(**change)
