"""Head-motion confounds in fMRIPrep's form, from other pipelines' forms.

fMRIPrep writes six rigid-body parameters per volume (``trans_x``,
``trans_y``, ``trans_z`` in mm, ``rot_x``, ``rot_y``, ``rot_z`` in radians),
their expansions (``<name>_derivative1``, ``<name>_power2``,
``<name>_derivative1_power2``) and Power's framewise displacement. Other
pipelines (ANTs' ``antsMotionCorr``, ANTsPy's ``motion_correction``) store each
volume's rigid transform as a 3 x 3 matrix and an offset instead. The
functions here turn those into fMRIPrep's columns, so the same nilearn
confound selection applies to both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

#: fMRIPrep's six rigid-body motion parameters, translations (mm) then rotations (radians).
MOTION_PARAMETERS = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")

#: Euler convention of :func:`rigid_motion_parameters`: scipy's extrinsic ``"xyz"``
#: (rotate about the fixed x axis, then y, then z; matrix = Rz @ Ry @ Rx).
EULER_CONVENTION = "xyz"

#: ITK and ANTs store points in LPS; this flips x and y to RAS (and back).
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def rigid_motion_parameters(matrices, offsets, *, lps: bool = True) -> pd.DataFrame:
    """Six fMRIPrep-named motion parameters from per-volume rigid transforms.

    Rotation angles are the Euler angles of each 3 x 3 matrix in scipy's
    extrinsic ``"xyz"`` convention (:data:`EULER_CONVENTION`,
    :meth:`scipy.spatial.transform.Rotation.as_euler`); translations are the
    offsets. Transforms stored in ITK's LPS frame (ANTs) are first expressed
    in RAS (``F R F`` and ``F t`` with ``F = diag(-1, -1, 1)``), so the signs
    follow the RAS axes fMRIPrep's names refer to.

    The offset of an ITK transform includes the effect of rotating about the
    transform's centre (``offset = t + c - R c``); the centre is not stored in
    a matrix + offset table, so it cannot be taken out. For volume-to-volume
    motion of a few hundredths of a radian this adds at most a fraction of a
    millimetre per 10 mm of distance between the centre and the origin.

    Parameters
    ----------
    matrices : array-like, shape (T, 3, 3)
        Rotation part of each volume's transform (orthonormal, determinant 1).
    offsets : array-like, shape (T, 3)
        Translation part of each transform, mm.
    lps : bool, default True
        Whether the transforms are in ITK's LPS frame (as ANTs writes them).

    Returns
    -------
    pandas.DataFrame, shape (T, 6)
        Columns :data:`MOTION_PARAMETERS`: mm and radians.

    Raises
    ------
    ValueError
        Wrong shapes, non-finite values, or a matrix that is not a rotation
        (``R.T @ R`` differs from the identity by more than 1e-3, or a reflection).
    """
    matrices = np.asarray(matrices, dtype=float)
    offsets = np.asarray(offsets, dtype=float)
    if matrices.ndim != 3 or matrices.shape[1:] != (3, 3) or offsets.shape != (len(matrices), 3):
        raise ValueError(f"expected matrices (T, 3, 3) and offsets (T, 3); got {matrices.shape} and {offsets.shape}")
    if not (np.isfinite(matrices).all() and np.isfinite(offsets).all()):
        raise ValueError("motion matrices or offsets contain missing or infinite values")
    orthogonality = np.abs(np.einsum("tji,tjk->tik", matrices, matrices) - np.eye(3)).max(axis=(1, 2))
    if orthogonality.max() > 1e-3 or (np.linalg.det(matrices) <= 0).any():
        worst = int(np.argmax(orthogonality))
        raise ValueError(f"volume {worst}: the motion matrix is not a rotation (a rigid-body transform is needed)")
    if lps:
        matrices = _LPS_TO_RAS @ matrices @ _LPS_TO_RAS
        offsets = offsets @ _LPS_TO_RAS
    angles = Rotation.from_matrix(matrices).as_euler(EULER_CONVENTION)
    return pd.DataFrame(np.column_stack([offsets, angles]), columns=list(MOTION_PARAMETERS))


def fmriprep_expansions(table: pd.DataFrame, columns) -> pd.DataFrame:
    """Add fMRIPrep's derivative and quadratic expansions of some columns.

    For each column ``c``: ``c_derivative1`` (backward difference, ``n/a`` at
    the first volume), ``c_power2`` (square) and ``c_derivative1_power2``
    (square of the derivative), as fMRIPrep names and defines them (Satterthwaite
    et al. 2013 24/36-parameter models).

    Parameters
    ----------
    table : pandas.DataFrame
    columns : sequence of str
        Columns of ``table`` to expand.

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with the new columns after the existing ones.
    """
    out = table.copy()
    for name in columns:
        values = out[name].to_numpy(dtype=float)
        derivative = np.r_[np.nan, np.diff(values)]
        out[f"{name}_derivative1"] = derivative
        out[f"{name}_power2"] = values**2
        out[f"{name}_derivative1_power2"] = derivative**2
    return out


def power_framewise_displacement(parameters: pd.DataFrame, radius_mm: float = 50.0) -> np.ndarray:
    """Framewise displacement as Power et al. (2012) define it and fMRIPrep computes it.

    ``FD_t = sum |d trans| + radius * sum |d rot|`` (rotations in radians turned
    into arc length on a sphere of ``radius_mm``), ``n/a`` (NaN) at the first volume.

    Parameters
    ----------
    parameters : pandas.DataFrame
        Columns :data:`MOTION_PARAMETERS` (mm, radians).
    radius_mm : float, default 50
        Head radius of Power et al. 2012.

    Returns
    -------
    numpy.ndarray, shape (T,)
        mm.
    """
    values = parameters[list(MOTION_PARAMETERS)].to_numpy(dtype=float)
    steps = np.abs(np.diff(values, axis=0))
    return np.r_[np.nan, steps[:, :3].sum(axis=1) + radius_mm * steps[:, 3:].sum(axis=1)]


def non_steady_state_columns(n_volumes: int, n_dummy: int) -> pd.DataFrame:
    """fMRIPrep's one-hot ``non_steady_state_outlierXX`` columns for the first volumes.

    nilearn's ``load_confounds`` drops the flagged volumes from the sample mask.

    Parameters
    ----------
    n_volumes : int
    n_dummy : int
        Initial volumes to flag.

    Returns
    -------
    pandas.DataFrame, shape (n_volumes, n_dummy)
    """
    columns = {}
    for index in range(n_dummy):
        column = np.zeros(n_volumes)
        column[index] = 1.0
        columns[f"non_steady_state_outlier{index:02d}"] = column
    return pd.DataFrame(columns)
