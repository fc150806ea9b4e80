"""Reliability (split-half, block bootstrap) and the compute_targets table, on simulated data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from nilearn import datasets

from trdnet.cleaned import CleanedRun, zscore_columns
from trdnet.config import TargetSettings
from trdnet.errors import SettingsError
from trdnet.grid import VoxelSpace
from trdnet.targeting import TABLE_COLUMNS, compute_targets, select_targets, target_reliability
from trdnet.targeting.reliability import (
    block_length, circular_block_rows, intended_block_length, reliability_word, too_little_data,
)

PLANTED = np.array([-40.0, 30.0, 40.0])  # MNI152 mm, inside the default search region


def box_run(t, effect, seed=0, shape=(12, 12, 12)):
    """Simulated run on a 3 mm box: a seed cube and a weakly anticorrelated DLPFC block."""
    rng = np.random.default_rng(seed)
    space = VoxelSpace(np.ones(shape, bool), np.diag([3.0, 3.0, 3.0, 1.0]), "synthetic")
    s = rng.standard_normal(t)
    data = rng.standard_normal((t, space.n_voxels)).astype(np.float32)
    index = space.column_index()
    seed_cols = np.sort(index[:3, :3, :3].ravel())
    search_cols = np.sort(index[4:, 4:, 4:].ravel())
    block = index[6:9, 6:9, 6:9].ravel()
    data[:, seed_cols] += s[:, None]
    data[:, block] -= effect * s[:, None]
    run = CleanedRun(zscore_columns(data), space, 2.0, np.arange(t), t, simulated=True)
    return run, seed_cols, search_cols


def test_split_half_is_nan_with_reason_for_short_runs():
    run, seeds, search = box_run(60, 1.0)
    settings = TargetSettings(n_bootstrap=3, min_half_volumes=50)
    rel = target_reliability(run, "cluster", settings, 0, seed_cols=seeds, search_cols=search)
    assert np.isnan(rel["split_half_mm"])
    assert "60 retained volumes" in rel["split_half_reason"]
    assert rel["bootstrap_cloud"].shape == (3, 3)
    assert rel["reliability"] in ("fair", "poor")  # never "good" without a split-half


def test_bootstrap_is_deterministic_and_tightens_with_more_data():
    settings = TargetSettings(n_bootstrap=40, min_half_volumes=20)
    r95 = {}
    for t in (120, 1200):
        run, seeds, search = box_run(t, 0.35, seed=5)
        a = target_reliability(run, "cluster", settings, 7, seed_cols=seeds, search_cols=search)
        r95[t] = a["bootstrap_r95_mm"]
        if t == 120:
            b = target_reliability(run, "cluster", settings, 7, seed_cols=seeds, search_cols=search)
            c = target_reliability(run, "cluster", settings, 8, seed_cols=seeds, search_cols=search)
            assert np.array_equal(a["bootstrap_cloud"], b["bootstrap_cloud"], equal_nan=True)
            assert not np.array_equal(a["bootstrap_cloud"], c["bootstrap_cloud"], equal_nan=True)
            assert np.isfinite(a["split_half_mm"])
    assert r95[1200] < r95[120]


def test_block_bootstrap_rows_and_length():
    settings = TargetSettings()
    assert block_length(1000, 2.0, settings, 0.01) == 50  # 100 s at TR 2 s
    assert block_length(60, 2.0, settings, 0.01) == 30  # capped at half the rows
    assert block_length(1000, 2.0, dataclasses.replace(settings, bootstrap_block_s=20), None) == 10
    rows = circular_block_rows(100, 10, np.random.default_rng(0))
    assert rows.shape == (100,) and rows.min() >= 0 and rows.max() < 100
    steps = np.diff(rows) % 100
    assert (steps == 1).sum() >= 80  # mostly consecutive runs inside blocks


def test_reliability_words_follow_thresholds():
    s = TargetSettings()
    assert reliability_word(4.0, 8.0, s)[0] == "good"
    assert reliability_word(4.0, 12.0, s)[0] == "fair"
    assert reliability_word(4.0, np.nan, s)[0] == "fair"
    assert reliability_word(s.fair_r95_mm + 2.0, 1.0, s)[0] == "poor"
    assert reliability_word(s.good_r95_mm + 2.0, 1.0, s)[0] == "fair"
    assert reliability_word(np.nan, 1.0, s)[0] == "unknown"


def test_too_little_data_names_the_minutes_and_the_cut_block():
    s = TargetSettings()  # 15 min for a word better than poor; 100 s blocks at TR 2 s are 50 volumes
    assert too_little_data(15.0, s) == "" and too_little_data(30.0, s, block_volumes=50, intended_block_volumes=50) == ""
    reason = too_little_data(2.4, s)
    assert reason == "too little data: 2.4 min retained, 15 min needed for a word better than poor"
    # 72 retained volumes at TR 2 s: the block is cut to 36 volumes (72 s) from 50 (100 s)
    cut = too_little_data(2.4, dataclasses.replace(s, min_minutes_for_word=2.0),
                          block_volumes=block_length(72, 2.0, s, 0.01),
                          intended_block_volumes=intended_block_length(2.0, s, 0.01), tr=2.0)
    assert cut == "too little data: the bootstrap block was cut to 72 s (half the data) from 100 s"
    assert "2.4 min retained" in too_little_data(2.4, s, block_volumes=36, intended_block_volumes=50, tr=2.0)


def test_a_short_run_is_poor_whatever_its_radius():
    s = TargetSettings()
    assert reliability_word(4.0, 8.0, s)[0] == "good"
    word, reason = reliability_word(4.0, 8.0, s, too_little=too_little_data(2.4, s))
    assert word == "poor" and reason.startswith("too little data: 2.4 min retained, 15 min needed")
    assert reliability_word(np.nan, 8.0, s, too_little=too_little_data(2.4, s))[0] == "unknown"


def test_a_stable_short_run_is_flagged_by_both_rules():
    # 72 volumes (2.4 min) with a strong, stable planted block: the radius alone would allow a better word.
    run, seeds, search = box_run(72, 1.5, seed=3)
    loose = TargetSettings(n_bootstrap=10, min_half_volumes=20, min_minutes_for_word=0.0, bootstrap_block_s=20.0)
    rel = target_reliability(run, "cluster", loose, 0, seed_cols=seeds, search_cols=search)
    assert rel["reliability"] in ("good", "fair") and rel["too_little_data"] == ""
    # the default minimum refuses it ...
    rel = target_reliability(run, "cluster", dataclasses.replace(loose, min_minutes_for_word=15.0), 0,
                             seed_cols=seeds, search_cols=search)
    assert rel["reliability"] == "poor"
    assert rel["reliability_reason"].startswith("too little data: 2.4 min retained, 15 min needed")
    # ... and so does the default 100 s block, cut to half the run
    rel = target_reliability(run, "cluster", dataclasses.replace(loose, bootstrap_block_s=None), 0,
                             seed_cols=seeds, search_cols=search)
    assert rel["block_length_volumes"] == 36 and rel["block_intended_volumes"] == 50
    assert rel["reliability"] == "poor" and "block was cut to 72 s" in rel["reliability_reason"]


@pytest.fixture(scope="module")
def mni_run():
    """Simulated 3 mm MNI run: sgACC signal, anticorrelated 8 mm blob at PLANTED."""
    mask = datasets.load_mni152_brain_mask(resolution=3)
    space = VoxelSpace(np.asarray(mask.dataobj) > 0, mask.affine, "MNI152NLin2009cAsym")
    rng = np.random.default_rng(11)
    t = 200
    s = rng.standard_normal(t)
    data = rng.standard_normal((t, space.n_voxels)).astype(np.float32)
    seed = space.sphere_columns((6, 16, -10), 10)
    blob = space.sphere_columns(PLANTED, 8)
    data[:, seed] += s[:, None]
    data[:, blob] -= s[:, None]
    run = CleanedRun(zscore_columns(data), space, 2.0, np.arange(t), t, simulated=True)
    group = np.zeros(space.n_voxels, np.float32)
    group[seed] = 1.0
    return run, group


def test_compute_targets_table(mni_run):
    run, group = mni_run
    settings = TargetSettings(methods=("cluster", "peak", "seedmap"), n_bootstrap=5)
    out = compute_targets(run, settings, random_state=0, group_map=group)
    table = out.table
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert list(table.target[:3]) == ["personalised", "personalised_peak", "personalised_seedmap"]
    assert table.primary.tolist().count(True) == 1 and table.primary[0]
    assert {"5cm", "f3_beam", "ba9", "ba46"} <= set(table.target)
    assert (table.space == "MNI152NLin2009cAsym").all()
    # Tolerances from the geometry: cluster and seedmap take the |r|-weighted centre of the whole
    # 8 mm blob, whose voxels sit almost symmetrically around PLANTED (an off-grid point of the 3 mm
    # grid; the asymmetry of the voxel centres inside the sphere is a fraction of a voxel), so 1 mm;
    # peak is whichever single blob voxel is most negative under noise, so anywhere inside the 8 mm
    # sphere.
    tolerance = {"cluster": 1.0, "peak": 8.0, "seedmap": 1.0}
    for i in range(3):
        xyz = table.loc[i, ["x", "y", "z"]].to_numpy(float)
        assert np.linalg.norm(xyz - PLANTED) <= tolerance[table.loc[i, "method"]], table.loc[i, "method"]
        assert table.loc[i, "r_sgacc"] < -0.4
    assert table.loc[0, "minutes_retained"] == pytest.approx(200 * 2.0 / 60)
    assert np.isfinite(table.loc[0, "bootstrap_r95_mm"])
    assert set(out.bootstrap_cloud.method) == {"cluster", "peak", "seedmap"}
    assert len(out.bootstrap_cloud) == 15
    assert out.seed_map.dtype == np.float32 and out.seed_map.shape == (run.space.n_voxels,)
    assert tuple(out.details["settings"]["methods"]) == ("cluster", "peak", "seedmap")
    assert out.details["group_map"] == "array with one value per column"
    again = compute_targets(run, settings, random_state=0, group_map=group)
    assert again.table.equals(table)


def test_select_targets_rejects_unknown_method(mni_run):
    run, _ = mni_run
    with pytest.raises(SettingsError, match="accepted"):
        select_targets(run, TargetSettings(methods=("best",)))


def test_bootstrap_radius_is_the_95th_percentile_of_resampled_distances():
    run, seeds, search = box_run(200, 0.3, seed=2)
    settings = TargetSettings(n_bootstrap=40, min_half_volumes=20)
    full = select_targets_cluster(run, seeds, search, settings)
    rel = target_reliability(run, "cluster", settings, 3, seed_cols=seeds, search_cols=search)
    distances = np.linalg.norm(rel["bootstrap_cloud"] - full, axis=1)
    distances = distances[np.isfinite(distances)]
    assert distances.size >= 35 and np.ptp(distances) > 0  # a spread, so the percentile matters
    assert rel["bootstrap_r95_mm"] == pytest.approx(settings.r95_scale * np.percentile(distances, 95))
    assert rel["bootstrap_median_mm"] == pytest.approx(np.median(distances))
    # The calibration factor scales the radius alone (same resamples, same median).
    doubled = target_reliability(run, "cluster", dataclasses.replace(settings, r95_scale=2 * settings.r95_scale), 3,
                                 seed_cols=seeds, search_cols=search)
    assert doubled["bootstrap_r95_mm"] == pytest.approx(2 * rel["bootstrap_r95_mm"])
    assert doubled["bootstrap_median_mm"] == pytest.approx(rel["bootstrap_median_mm"])


def select_targets_cluster(run, seeds, search, settings):
    from trdnet.targeting import run_method, seed_map

    return run_method("cluster", run, seeds, search, settings, seed_map(run, seeds)).xyz


def test_longer_blocks_widen_the_bootstrap_for_slow_signals():
    # Every voxel carries its own slow signal (autocorrelated over ~30 volumes) and white noise;
    # the seed carries a slow signal that a 27-voxel block shares with the opposite sign.
    # Resampling single volumes treats the slow samples as independent and understates how much
    # the target moves; blocks longer than the autocorrelation keep it.
    rng = np.random.default_rng(4)
    t = 400
    space = VoxelSpace(np.ones((12, 12, 12), bool), np.diag([3.0, 3.0, 3.0, 1.0]), "synthetic")
    index = space.column_index()
    kernel = np.hanning(31)

    def slow(n):
        values = np.stack([np.convolve(rng.standard_normal(t + 30), kernel, mode="valid")[:t] for _ in range(n)],
                          axis=1)
        return values / values.std()

    shared = slow(1)[:, 0]
    data = (0.3 * rng.standard_normal((t, space.n_voxels)) + slow(space.n_voxels)).astype(np.float32)
    seeds = np.sort(index[:3, :3, :3].ravel())
    search = np.sort(index[4:, 4:, 4:].ravel())
    data[:, seeds] += 2 * shared[:, None]
    data[:, index[6:9, 6:9, 6:9].ravel()] -= 0.3 * shared[:, None]
    run = CleanedRun(zscore_columns(data), space, 2.0, np.arange(t), t, simulated=True)
    spread = {}
    for block_s in (2.0, 120.0):  # 1 volume and 60 volumes
        settings = TargetSettings(n_bootstrap=40, min_half_volumes=20, bootstrap_block_s=block_s)
        rel = target_reliability(run, "cluster", settings, 1, seed_cols=seeds, search_cols=search)
        assert rel["block_length_volumes"] == int(block_s / 2.0)
        spread[block_s] = (rel["bootstrap_median_mm"], rel["bootstrap_r95_mm"])
    assert spread[120.0][0] > 1.5 * spread[2.0][0]
    assert spread[120.0][1] > 2.0 * spread[2.0][1]


def test_the_targets_table_note_says_the_data_are_too_short(mni_run):
    run, _ = mni_run  # 200 volumes at TR 2 s: 6.7 min
    short = compute_targets(run, TargetSettings(n_bootstrap=5), random_state=0).table.iloc[0]
    assert short["reliability"] == "poor"
    assert "Too little data (6.7 min retained, 15 min needed for a word better than poor)" in short["note"]
    assert "do not use this target yet" in short["note"]  # the note says what the word means for the team
    enough = compute_targets(run, TargetSettings(n_bootstrap=5, min_minutes_for_word=5.0), random_state=0).table.iloc[0]
    assert "too little data" not in enough["note"].lower()


def test_a_poor_word_says_its_reason_and_not_to_use_the_target():
    from trdnet.targeting.reliability import poor_note

    word, reason = reliability_word(76.1, 3.0, TargetSettings())
    assert word == "poor"
    note = poor_note(word, reason)
    assert note.startswith("Reliability poor (r95 76.1 > ") and "do not use this target" in note
    # the data rule already says it: not twice
    assert poor_note(word, reason, too_little="too little data: 6.8 min retained") == ""
    good, good_reason = reliability_word(3.0, 2.0, TargetSettings())
    assert poor_note(good, good_reason) == ""
