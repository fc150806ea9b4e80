"""The one group sgACC map definition: runs averaged within each participant, then participants averaged."""

from __future__ import annotations

import numpy as np
import pytest

from trdnet.errors import InputError
from trdnet.targeting.seedmap import group_mean_map


def test_each_participant_weighs_once_whatever_their_number_of_runs():
    maps = np.array([[0.1, 0.5], [-0.4, 0.2], [0.3, 0.5], [0.5, 0.5]], dtype=np.float32)
    participants = ["sub-01", "sub-02", "sub-01", "sub-01"]  # sub-01's runs need not be adjacent in an array
    sub01 = np.arctanh(maps[[0, 2, 3]].astype(np.float64)).mean(axis=0)
    expected = (sub01 + np.arctanh(maps[1].astype(np.float64))) / 2
    np.testing.assert_allclose(group_mean_map(maps, participants), expected, atol=1e-6)
    # without labels every run is its own participant: the plain mean over runs
    np.testing.assert_allclose(group_mean_map(maps), np.arctanh(maps.astype(np.float64)).mean(axis=0), atol=1e-6)
    # leaving out rows keeps the participants of the others
    np.testing.assert_allclose(group_mean_map(maps, participants, exclude=[0, 1]),
                               np.arctanh(maps[[2, 3]].astype(np.float64)).mean(axis=0), atol=1e-6)


def test_columns_outside_a_run_do_not_count_for_it():
    maps = [np.array([0.2, 0.0, np.nan]), np.array([0.4, 0.6, np.nan]), np.array([-0.2, 0.0, 0.0])]
    mean = group_mean_map(maps, ["a", "a", "b"])
    assert mean[0] == pytest.approx((np.arctanh([0.2, 0.4]).mean() + np.arctanh(-0.2)) / 2, abs=1e-6)
    assert mean[1] == pytest.approx(np.arctanh(0.6), abs=1e-6)  # only "a"'s second run covers it
    assert mean[2] == 0.0  # nobody covers it
    assert mean.dtype == np.float32


def test_maps_read_one_at_a_time_must_come_participant_by_participant():
    rows = [np.full(3, 0.1), np.full(3, 0.2), np.full(3, 0.3)]
    mean = group_mean_map(iter(rows), ["a", "a", "b"])
    np.testing.assert_allclose(mean, (np.arctanh([0.1, 0.2]).mean() + np.arctanh(0.3)) / 2, atol=1e-6)
    with pytest.raises(InputError, match="participant 'a' are not consecutive"):
        group_mean_map(iter(rows), ["a", "b", "a"])
    with pytest.raises(InputError, match="shape"):
        group_mean_map(iter([np.zeros(3) + 0.1, np.zeros(4) + 0.1]))
    with pytest.raises(InputError, match="every run was excluded"):
        group_mean_map(np.full((2, 3), 0.1), exclude=[0, 1])
