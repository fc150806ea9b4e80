"""Rigid-body matrices + offsets -> fMRIPrep's motion columns, their expansions and Power FD."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trdnet.inputs.motion import (
    MOTION_PARAMETERS,
    fmriprep_expansions,
    non_steady_state_columns,
    power_framewise_displacement,
    rigid_motion_parameters,
)


def _rx(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rz(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_single_axis_rotations_and_offsets_become_named_ras_parameters():
    matrices = np.stack([np.eye(3), _rx(0.02), _rz(-0.03)])
    offsets = np.array([[0.0, 0.0, 0.0], [0.5, -0.2, 0.3], [0.0, 0.0, 1.0]])
    ras = rigid_motion_parameters(matrices, offsets, lps=False)
    assert list(ras.columns) == list(MOTION_PARAMETERS)
    np.testing.assert_allclose(ras.loc[1], [0.5, -0.2, 0.3, 0.02, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(ras.loc[2], [0.0, 0.0, 1.0, 0.0, 0.0, -0.03], atol=1e-12)
    # The same transforms stored by ITK/ANTs in LPS: x and y (and rotations about them) change sign.
    lps = rigid_motion_parameters(matrices, offsets)
    np.testing.assert_allclose(lps.loc[1], [-0.5, 0.2, 0.3, -0.02, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(lps.loc[2], [0.0, 0.0, 1.0, 0.0, 0.0, -0.03], atol=1e-12)


def test_a_matrix_that_is_not_a_rotation_is_refused():
    matrices = np.stack([np.eye(3), np.diag([1.0, 1.0, 1.1])])
    with pytest.raises(ValueError, match="volume 1"):
        rigid_motion_parameters(matrices, np.zeros((2, 3)))


def test_expansions_and_power_fd_follow_fmriprep():
    params = pd.DataFrame(np.zeros((3, 6)), columns=list(MOTION_PARAMETERS))
    params.loc[1, "trans_x"] = 0.3
    params.loc[2, "trans_x"] = 0.1
    params.loc[2, "rot_z"] = 0.002
    fd = power_framewise_displacement(params)
    assert np.isnan(fd[0])
    np.testing.assert_allclose(fd[1:], [0.3, 0.2 + 50 * 0.002])
    expanded = fmriprep_expansions(params, ["trans_x"])
    np.testing.assert_allclose(expanded["trans_x_derivative1"].to_numpy()[1:], [0.3, -0.2])
    np.testing.assert_allclose(expanded["trans_x_power2"], [0.0, 0.09, 0.01])
    np.testing.assert_allclose(expanded["trans_x_derivative1_power2"].to_numpy()[1:], [0.09, 0.04])
    flags = non_steady_state_columns(4, 2)
    assert list(flags.columns) == ["non_steady_state_outlier00", "non_steady_state_outlier01"]
    np.testing.assert_array_equal(flags.to_numpy(), [[1, 0], [0, 1], [0, 0], [0, 0]])
