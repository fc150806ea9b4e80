"""Checks on a native T1w and on points placed in it: header sanity, field of
view, brain mask, grey matter (with the nearest grey-matter point)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from ..errors import ExportError


def load_image(path: str | Path, what: str) -> nib.spatialimages.SpatialImage:
    """Load a 3D image or raise :class:`ExportError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: {what} not found")
    try:
        img = nib.load(path)
        img.header.get_data_shape()
    except Exception as exc:
        raise ExportError(f"{path}: cannot read {what} ({exc}); accepted: NIfTI") from None
    if len(img.shape) < 3 or (len(img.shape) > 3 and int(np.prod(img.shape[3:])) != 1):
        raise ExportError(f"{path}: {what} must be a 3D image, got shape {img.shape}")
    return img


def header_checks(img, shear_tol: float = 1e-3, qs_tol_mm: float = 0.01) -> dict:
    """Shear in the voxel axes and qform/sform disagreement of a NIfTI header.

    Parameters
    ----------
    img : nibabel image
        The T1w.
    shear_tol : float
        Largest accepted |cosine| between two voxel axes.
    qs_tol_mm : float
        Largest accepted distance (mm) between qform and sform positions of
        the grid corners.

    Returns
    -------
    dict
        ``shear`` (bool), ``max_axis_cosine``, ``qform_sform_mismatch``
        (bool), ``qform_sform_max_mm`` and ``notes`` (list of str).
    """
    affine = img.affine
    axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    cosines = np.abs(axes.T @ axes - np.eye(3)).max()
    out = {"shear": bool(cosines > shear_tol), "max_axis_cosine": float(cosines),
           "qform_sform_mismatch": False, "qform_sform_max_mm": 0.0, "notes": []}
    if out["shear"]:
        out["notes"].append(
            f"T1w header has sheared voxel axes (max axis cosine {cosines:.4f}); "
            "navigators may drop the shear: check the T1w loads aligned"
        )
    header = img.header
    if isinstance(header, nib.Nifti1Header):
        qform, qcode = header.get_qform(coded=True)
        sform, scode = header.get_sform(coded=True)
        if qform is not None and sform is not None and qcode > 0 and scode > 0:
            shape = np.asarray(img.shape[:3]) - 1
            corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]) * shape
            diff = np.linalg.norm(
                nib.affines.apply_affine(qform, corners) - nib.affines.apply_affine(sform, corners),
                axis=1,
            ).max()
            out["qform_sform_max_mm"] = float(diff)
            if diff > qs_tol_mm:
                out["qform_sform_mismatch"] = True
                note = (f"T1w qform and sform disagree by up to {diff:.2f} mm; coordinates use "
                        "the sform (nibabel's choice): make sure the navigator does too")
                if qcode == scode:
                    # Brainsight up to file version 13 gives both forms the same name
                    note += ("; both have code " f"{scode}, so write Brainsight file version 14 "
                             "(export.brainsight_version), whose system names the sform (NIfTI:S:...)")
                out["notes"].append(note)
    return out


def world_to_voxel(img, points_ras) -> tuple[np.ndarray, np.ndarray]:
    """Voxel coordinates of world points and whether each lies in the field of view.

    Returns
    -------
    ijk : numpy.ndarray, shape (N, 3), float
        Continuous voxel coordinates.
    in_fov : numpy.ndarray of bool
        True where the nearest voxel exists.
    """
    ijk = nib.affines.apply_affine(np.linalg.inv(img.affine), np.atleast_2d(points_ras))
    shape = np.asarray(img.shape[:3])
    rounded = np.rint(ijk)
    in_fov = np.all((rounded >= 0) & (rounded <= shape - 1), axis=1)
    return ijk, in_fov


def values_at(img, points_ras) -> np.ndarray:
    """Values of a 3D image at the nearest voxel of each point (NaN outside)."""
    ijk, in_fov = world_to_voxel(img, points_ras)
    out = np.full(len(ijk), np.nan)
    idx = np.rint(ijk[in_fov]).astype(int)
    data = np.asanyarray(img.dataobj)
    out[in_fov] = data[idx[:, 0], idx[:, 1], idx[:, 2]]
    return out


def nearest_in_mask(img, mask: np.ndarray, points_ras, radius_mm: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Nearest voxel centre of ``mask`` to each point.

    Searched in growing boxes around each point (``radius_mm``, doubled until
    a voxel lies within the radius): every voxel within the radius is in the
    box, so the voxel found is the nearest of the whole mask, without
    placing all of a 1 mm grey-matter mask's voxels in space.

    Parameters
    ----------
    img : nibabel image
        Gives the voxel -> RAS affine of ``mask``.
    mask : numpy.ndarray of bool, shape (I, J, K)
    points_ras : array-like, shape (N, 3)
        RAS mm.
    radius_mm : float
        First search radius.

    Returns
    -------
    nearest : numpy.ndarray, shape (N, 3)
        World coordinates (NaN if the mask is empty). Of voxels at the same
        distance, the first in the array's (C) order.
    distance : numpy.ndarray, shape (N,)
        Distances in mm.
    """
    points = np.atleast_2d(np.asarray(points_ras, dtype=float))
    nearest, distance = np.full(points.shape, np.nan), np.full(len(points), np.nan)
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return nearest, distance
    shape = np.array(mask.shape)
    to_voxel = np.linalg.inv(img.affine)
    # half-widths of the voxel box holding a ball of 1 mm around a point, whatever the affine
    reach = np.linalg.norm(to_voxel[:3, :3], axis=1)
    for n, point in enumerate(points):
        centre = nib.affines.apply_affine(to_voxel, point)
        radius = radius_mm
        while True:
            low = np.clip(np.floor(centre - radius * reach).astype(int), 0, shape)
            high = np.clip(np.ceil(centre + radius * reach).astype(int) + 1, 0, shape)
            whole = np.all(low == 0) and np.all(high == shape)
            box = tuple(slice(a, b) for a, b in zip(low, high))
            voxels = np.argwhere(mask[box]) + low
            if len(voxels):
                world = nib.affines.apply_affine(img.affine, voxels)
                gaps = np.linalg.norm(world - point, axis=1)
                best = int(np.argmin(gaps))
                if gaps[best] <= radius or whole:
                    nearest[n], distance[n] = world[best], gaps[best]
                    break
            radius *= 2
    return nearest, distance
