"""Competing sites: candidate clusters, cluster ranking, centre weighting, bootstrap sites, reliability words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trdnet.cleaned import CleanedRun, zscore_columns
from trdnet.config import TargetSettings
from trdnet.errors import SettingsError
from trdnet.grid import VoxelSpace
from trdnet.targeting import cluster_target, compute_targets
from trdnet.targeting.reliability import reliability_word, target_reliability
from trdnet.targeting.sites import bootstrap_sites, competing_share, own_site_r95, stronger_runner_up


def box_space(shape=(16, 16, 16), voxel=2.0):
    return VoxelSpace(np.ones(shape, dtype=bool), np.diag([voxel, voxel, voxel, 1.0]), "synthetic")


def cube_columns(space, lo, size):
    index = space.column_index()
    return index[lo[0]:lo[0] + size, lo[1]:lo[1] + size, lo[2]:lo[2] + size].ravel()


def two_blob_map(space):
    """A large weak blob (27 voxels at -0.2) and a small strong one (8 voxels at -0.9).

    Everything else is +0.1, so the kept voxels (top 10 % of 35 negatives = 4) would be
    too few: the whole negative set is kept by top_fraction=1.
    """
    values = np.full(space.n_voxels, 0.1, np.float32)
    large = cube_columns(space, (2, 2, 2), 3)  # centre voxel (3, 3, 3) -> world (6, 6, 6)
    small = cube_columns(space, (10, 10, 10), 2)  # centre (10.5, ...) -> world (21, 21, 21)
    values[large] = -0.2
    values[small] = -0.9
    return values, large, small


@pytest.mark.parametrize("rank, expected_size, expected_xyz", [
    ("size", 27, (6.0, 6.0, 6.0)),  # 27 voxels beat 8
    ("sum", 8, (21.0, 21.0, 21.0)),  # 8 x 0.9 = 7.2 beats 27 x 0.2 = 5.4
    ("mean", 8, (21.0, 21.0, 21.0)),
])
def test_cluster_rank_chooses_by_size_sum_or_mean_and_lists_every_candidate(rank, expected_size, expected_xyz):
    space = box_space()
    values, large, small = two_blob_map(space)
    settings = TargetSettings(smoothing_fwhm_mm=None, top_fraction=1.0, cluster_rank=rank)
    result = cluster_target(values, np.arange(space.n_voxels), settings, space)
    assert result.n_voxels == expected_size
    np.testing.assert_allclose(result.xyz, expected_xyz, atol=1e-6)
    table = result.candidates
    assert len(table) == 2 and list(table["rank"]) == [1, 2]
    assert table["chosen"].tolist() == [True, False]
    by_size = table.set_index("n_voxels")
    assert by_size.loc[27, "mean_r"] == pytest.approx(-0.2) and by_size.loc[27, "peak_r"] == pytest.approx(-0.2)
    assert by_size.loc[8, "mean_r"] == pytest.approx(-0.9)
    assert by_size.loc[8, "volume_mm3"] == pytest.approx(8 * 8.0)
    np.testing.assert_allclose(by_size.loc[8, ["x", "y", "z"]].to_numpy(float), (21.0, 21.0, 21.0), atol=1e-6)


def test_weighted_centre_leans_to_the_strong_side_of_a_graded_blob():
    # A 3 x 3 x 3 blob whose x-layers hold -0.2, -0.4 and -0.8: weighted by |r| the centre's
    # x index is (0 * 0.2 + 1 * 0.4 + 2 * 0.8) / (0.2 + 0.4 + 0.8) = 10/7 of a voxel past the
    # first layer; the plain centroid is at 1 voxel. Voxels are 2 mm, the blob starts at index 4.
    space = box_space()
    values = np.full(space.n_voxels, 0.1, np.float32)
    index = space.column_index()
    for layer, r in enumerate((-0.2, -0.4, -0.8)):
        values[index[4 + layer, 4:7, 4:7].ravel()] = r
    search = np.arange(space.n_voxels)
    weighted = cluster_target(values, search, TargetSettings(smoothing_fwhm_mm=None, top_fraction=1.0), space)
    plain = cluster_target(values, search, TargetSettings(smoothing_fwhm_mm=None, top_fraction=1.0,
                                                          centre_weights="uniform"), space)
    np.testing.assert_allclose(weighted.xyz, [2 * (4 + 10 / 7), 10.0, 10.0], atol=1e-5)
    np.testing.assert_allclose(plain.xyz, [10.0, 10.0, 10.0], atol=1e-6)


def test_unknown_rank_or_weights_is_refused():
    with pytest.raises(SettingsError, match="targeting.cluster_rank.*biggest"):
        TargetSettings(cluster_rank="biggest")
    with pytest.raises(SettingsError, match="targeting.centre_weights"):
        TargetSettings(centre_weights="median")


def test_bootstrap_cloud_grouped_into_sites_with_shares():
    rng = np.random.default_rng(0)
    a, b = np.array([-40.0, 30.0, 40.0]), np.array([-40.0, 50.0, 40.0])  # 20 mm apart
    cloud = np.vstack([a + rng.normal(0, 1.0, (70, 3)), b + rng.normal(0, 1.0, (30, 3)),
                       np.full((5, 3), np.nan)])
    sites = bootstrap_sites(cloud, a, separation_mm=10.0)
    assert list(sites["site"]) == [1, 2]
    assert sites["share"].tolist() == pytest.approx([0.7, 0.3])  # NaN rows (no target) are not counted
    assert sites["holds_target"].tolist() == [True, False]
    np.testing.assert_allclose(sites.loc[1, ["x", "y", "z"]].to_numpy(float), b, atol=0.5)
    assert competing_share(sites) == pytest.approx(0.3)
    # With a separation larger than the gap, single linkage joins them into one site.
    one = bootstrap_sites(cloud, a, separation_mm=25.0)
    assert len(one) == 1 and competing_share(one) == 0.0
    # A target away from every resample is a site of its own with no share.
    alone = bootstrap_sites(cloud[:70], np.array([0.0, 0.0, 0.0]), separation_mm=10.0)
    assert alone.loc[alone["holds_target"], "share"].item() == 0.0 and competing_share(alone) == 1.0


def test_own_site_radius_leaves_out_the_resamples_of_another_site():
    a, b = np.array([-40.0, 30.0, 40.0]), np.array([-40.0, 50.0, 40.0])  # 20 mm apart
    steps = np.arange(1, 21, dtype=float)  # 1 ... 20 resamples at 0.1 ... 2.0 mm from the target along x
    near = a + np.outer(steps / 10, [1.0, 0.0, 0.0])
    cloud = np.vstack([near, np.tile(b, (5, 1)), np.full((2, 3), np.nan)])
    assert own_site_r95(cloud, a, 10.0) == pytest.approx(np.percentile(steps / 10, 95))
    # one site when the step joins them: the 95th percentile now reaches the other site
    assert own_site_r95(cloud, a, 25.0) == pytest.approx(20.0)
    assert np.isnan(own_site_r95(cloud[:20], np.array([0.0, 0.0, 0.0]), 10.0))  # no resample on its site


def test_reliability_word_is_never_good_with_a_competing_site_or_disagreeing_runs():
    s = TargetSettings()
    assert reliability_word(4.0, 8.0, s, competing_share=0.05, retest_mm=3.0)[0] == "good"
    word, reason = reliability_word(4.0, 8.0, s, competing_share=0.3)
    assert word == "fair" and "30%" in reason
    word, reason = reliability_word(4.0, 8.0, s, retest_mm=12.0)
    assert word == "fair" and "runs disagree by 12.0" in reason
    assert reliability_word(s.fair_r95_mm + 2.0, 8.0, s, competing_share=0.3)[0] == "poor"


def _seeded_grid(t, seed):
    """A 14^3 grid of 3 mm voxels with noise; a seed corner carrying signal s and the search region beyond it."""
    rng = np.random.default_rng(seed)
    space = VoxelSpace(np.ones((14, 14, 14), bool), np.diag([3.0, 3.0, 3.0, 1.0]), "synthetic")
    index = space.column_index()
    s = rng.standard_normal(t)
    data = rng.standard_normal((t, space.n_voxels)).astype(np.float32)
    seeds = np.sort(index[:3, :3, :3].ravel())
    search = np.sort(index[4:, 4:, 4:].ravel())
    data[:, seeds] += 2 * s[:, None]
    return space, index, s, data, seeds, search


def _two_site_run(t, seed):
    """Seed signal s; two DLPFC blocks anticorrelated with s at equal strength."""
    space, index, s, data, seeds, search = _seeded_grid(t, seed)
    for lo in ((5, 5, 5), (10, 10, 10)):
        data[:, index[lo[0]:lo[0] + 3, lo[1]:lo[1] + 3, lo[2]:lo[2] + 3].ravel()] -= 0.4 * s[:, None]
    return CleanedRun(zscore_columns(data), space, 2.0, np.arange(t), t, simulated=True), seeds, search


def test_two_equal_sites_share_the_bootstrap_and_the_word_is_not_good():
    run, seeds, search = _two_site_run(300, 3)
    settings = TargetSettings(n_bootstrap=40, min_half_volumes=20, bootstrap_block_s=10.0)
    rel = target_reliability(run, "cluster", settings, 0, seed_cols=seeds, search_cols=search)
    sites = rel["sites"]
    assert len(sites[sites["share"] >= 0.1]) == 2
    assert rel["competing_share"] >= 0.1
    assert rel["n_sites"] == 2
    assert rel["reliability"] != "good"


def test_compute_targets_reports_runner_up_and_writes_candidates_and_sites():
    run, seeds, search = _two_site_run(300, 3)
    space = run.space
    from nibabel import Nifti1Image

    def mask(columns, path):
        volume = np.zeros(space.shape, np.uint8)
        volume[tuple(space.ijk[columns].T)] = 1
        img = Nifti1Image(volume, space.affine)
        img.to_filename(path)
        return str(path)

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        settings = TargetSettings(n_bootstrap=10, min_half_volumes=20, reference_targets=(),
                                  seed_mask=mask(seeds, Path(tmp) / "seed.nii.gz"),
                                  search_mask=mask(search, Path(tmp) / "search.nii.gz"))
        out = compute_targets(run, settings, random_state=0)
    row = out.table.iloc[0]
    candidates = out.candidates
    assert set(candidates["method"]) == {"cluster"} and row["n_candidates"] == len(candidates) >= 2
    runner = candidates[~candidates["chosen"]].iloc[0]
    assert row["runner_up_mean_r"] == pytest.approx(runner["mean_r"])
    assert row["runner_up_n_voxels"] == runner["n_voxels"]
    assert isinstance(out.sites, pd.DataFrame) and out.sites["share"].sum() == pytest.approx(1.0)
    assert row["competing_share"] == pytest.approx(competing_share(out.sites))


@pytest.mark.parametrize("rank", ["size", "sum"])
def test_a_stronger_runner_up_cluster_is_named_and_keeps_the_word_from_good(rank):
    space = box_space()
    values, _, _ = two_blob_map(space)
    settings = TargetSettings(smoothing_fwhm_mm=None, top_fraction=1.0, cluster_rank=rank)
    reason = stronger_runner_up(cluster_target(values, np.arange(space.n_voxels), settings, space).candidates)
    if rank == "size":
        # The large weak blob wins by size; the small one is stronger by mean and by peak.
        assert "mean r -0.90 < -0.20" in reason and "peak r -0.90 < -0.20" in reason and "(21, 21, 21)" in reason
        word, why = reliability_word(4.0, 8.0, TargetSettings(), competing_share=0.0, runner_up=reason)
        assert word == "fair" and "runner-up" in why
    else:
        assert reason == ""
    assert stronger_runner_up(None) == ""


def _large_weak_and_small_strong_run(t, seed):
    """A large block weakly and a small block strongly anticorrelated with the seed; little noise."""
    space, index, s, data, seeds, search = _seeded_grid(t, seed)
    data[:, index[5:9, 5:9, 5:9].ravel()] -= 0.6 * s[:, None]
    data[:, index[11:13, 11:13, 11:13].ravel()] -= 1.5 * s[:, None]
    return CleanedRun(zscore_columns(data), space, 2.0, np.arange(t), t, simulated=True), seeds, search


def test_a_stable_target_on_the_weaker_cluster_is_not_called_good():
    run, seeds, search = _large_weak_and_small_strong_run(600, 2)
    settings = TargetSettings(n_bootstrap=20, min_half_volumes=20, bootstrap_block_s=10.0,
                              smoothing_fwhm_mm=None, cluster_rank="size", centre_weights="abs")
    rel = target_reliability(run, "cluster", settings, 0, seed_cols=seeds, search_cols=search)
    # Stable: the bootstrap and the halves agree on the large block ...
    assert rel["bootstrap_r95_mm"] <= settings.good_r95_mm and rel["split_half_mm"] <= settings.good_split_half_mm
    assert rel["competing_share"] <= settings.max_competing_share
    # ... but the small block is more anticorrelated, so the word stops at fair.
    assert rel["reliability"] == "fair" and "runner-up" in rel["reliability_reason"]
