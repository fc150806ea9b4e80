"""Write ITK/ANTs composite transforms (``.h5``) as ANTs and fMRIPrep lay them out.

Reading is left to :mod:`nitransforms`; writing is needed only to build
synthetic participants whose transforms are known exactly. The layout is
``TransformGroup/0`` (``CompositeTransform_double_3_3``), ``/1`` (an
``AffineTransform_double_3_3``) and ``/2`` (a
``DisplacementFieldTransform_float_3_3``). ITK applies the members of a
composite to a *point* in reverse order: the displacement field first, then
the affine. Everything inside the file is in LPS millimetres.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

#: Flip between RAS and LPS (its own inverse).
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def write_itk_composite_h5(
    path: str | Path,
    affine_ras: np.ndarray,
    field_ras: np.ndarray,
    field_affine_ras: np.ndarray,
    center_ras=(0.0, 0.0, 0.0),
) -> Path:
    """Write a point mapping ``y = A(x + u(x))`` as an ITK composite transform.

    Parameters
    ----------
    path : str or Path
        Output ``.h5`` file.
    affine_ras : numpy.ndarray, shape (4, 4)
        Point mapping ``A`` in RAS mm.
    field_ras : numpy.ndarray, shape (X, Y, Z, 3)
        Displacements ``u`` (RAS mm) sampled on a grid of the input domain.
    field_affine_ras : numpy.ndarray, shape (4, 4)
        Voxel-to-RAS affine of that grid; it must be diagonal with spacing
        along -x, -y and +z (identity direction cosines in LPS, as ITK writes).
    center_ras : sequence of 3 floats
        ITK's centre of rotation (fixed parameters of the affine).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    lps_affine = RAS_TO_LPS @ affine_ras @ RAS_TO_LPS
    center = (RAS_TO_LPS[:3, :3] @ np.asarray(center_ras, dtype=float))
    matrix, translation = lps_affine[:3, :3], lps_affine[:3, 3]
    # ITK: y = M (x - c) + t' + c
    itk_translation = translation + matrix @ center - center
    field_lps_affine = RAS_TO_LPS @ field_affine_ras
    spacing = np.diag(field_lps_affine[:3, :3])
    if not np.allclose(field_lps_affine[:3, :3], np.diag(spacing)) or np.any(spacing <= 0):
        raise ValueError("displacement grid must have identity LPS direction cosines")
    field_lps = np.asarray(field_ras, dtype=np.float32).copy()
    field_lps[..., :2] *= -1.0
    shape = field_lps.shape[:3]
    fixed = np.concatenate(
        [np.asarray(shape, float), field_lps_affine[:3, 3], spacing, np.eye(3).ravel()]
    )
    # ITK stores the vector components fastest, then x, y, z (Fortran order).
    params = np.moveaxis(field_lps, -1, 0).ravel(order="F")
    with h5py.File(path, "w") as f:
        f.create_dataset("HDFVersion", data=np.array([h5py.version.hdf5_version.encode()]))
        f.create_dataset("ITKVersion", data=np.array([b"5.3.0"]))
        group = f.create_group("TransformGroup")
        g0 = group.create_group("0")
        g0.create_dataset("TransformType", data=np.array([b"CompositeTransform_double_3_3"]))
        g1 = group.create_group("1")
        g1.create_dataset("TransformType", data=np.array([b"AffineTransform_double_3_3"]))
        g1.create_dataset(
            "TransformParameters",
            data=np.concatenate([matrix.ravel(), itk_translation]).astype(np.float64),
        )
        g1.create_dataset("TransformFixedParameters", data=center.astype(np.float64))
        g2 = group.create_group("2")
        g2.create_dataset(
            "TransformType", data=np.array([b"DisplacementFieldTransform_float_3_3"])
        )
        g2.create_dataset("TransformParameters", data=params.astype(np.float32))
        g2.create_dataset("TransformFixedParameters", data=fixed.astype(np.float64))
    return path
