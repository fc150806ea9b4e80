"""Scalp projection of targets: head mask from a T1w, nearest scalp point
above a target, scalp-to-target depth, and the 10-20 electrode table."""

from __future__ import annotations

import functools

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from ..errors import ExportError
from ..resources import read_table

#: Label of the fallback head in every output that uses it.
TEMPLATE_HEAD = (
    "approximate template head (nilearn MNI152 brain mask dilated by {offset:g} mm), "
    "not the participant's scalp"
)
ELECTRODES_TABLE = "okamoto2004_1020_mni.tsv"


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the cut maximising the between-class variance."""
    values = np.asarray(values, dtype=np.float64).ravel()
    hist, edges = np.histogram(values, bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centers[np.argmax(between[:-1])])


def head_mask(img) -> np.ndarray:
    """Filled head of a T1w: intensity above Otsu's threshold, large
    components, holes (skull, sinuses) filled in 3D and per axial slice.

    Parameters
    ----------
    img : nibabel image
        A T1w with the scalp visible.

    Returns
    -------
    numpy.ndarray of bool
    """
    data = np.asarray(img.dataobj, dtype=np.float32)
    mask = data > otsu_threshold(data)
    labels, n = ndimage.label(mask)
    if n == 0:
        raise ExportError("T1w has no voxel above Otsu's threshold; cannot find the head")
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    # scalp and brain are separate components when the skull is dark: keep
    # every large component, drop specks of noise
    mask = (sizes >= 0.05 * sizes.max())[labels]
    mask = ndimage.binary_closing(mask, iterations=2, border_value=0) | mask
    mask = ndimage.binary_fill_holes(mask)
    # A head cut by the field of view is open at the bottom: fill each axial slice.
    axis = int(np.argmax(np.abs(img.affine[2, :3])))
    structure = np.zeros((3, 3, 3), dtype=bool)
    index = [slice(None)] * 3
    index[axis] = 1
    structure[tuple(index)] = ndimage.generate_binary_structure(2, 1)
    return ndimage.binary_fill_holes(mask, structure=structure)


def surface_points(img, mask: np.ndarray) -> np.ndarray:
    """World coordinates (RAS mm) of the outer voxels of a mask."""
    shell = mask & ~ndimage.binary_erosion(mask, border_value=0)
    return nib.affines.apply_affine(img.affine, np.argwhere(shell))


def dilated_brain_head(brain_img, offset_mm: float) -> np.ndarray:
    """Approximate head: voxels within ``offset_mm`` of a brain mask."""
    brain = np.asanyarray(brain_img.dataobj) > 0.5
    zooms = np.sqrt((brain_img.affine[:3, :3] ** 2).sum(axis=0))
    dist = ndimage.distance_transform_edt(~brain, sampling=zooms)
    return dist <= offset_mm


@functools.lru_cache(maxsize=4)
def template_scalp(offset_mm: float = 16.0) -> tuple[np.ndarray, np.ndarray]:
    """Scalp surface points and head centre of the approximate template head (MNI, RAS mm).

    nilearn's MNI152 template is skull-stripped, so the fallback head is its
    brain mask dilated by ``offset_mm`` (a typical scalp-to-cortex distance;
    configurable, unverified). Outputs that use it say so.
    """
    from ..templates import mni152_2mm

    brain = mni152_2mm("brain_mask")
    # pad so the dilated head is not cut by the template's field of view
    pad = int(np.ceil(offset_mm / 2.0)) + 2
    data = np.pad(np.asanyarray(brain.dataobj) > 0, pad).astype(np.uint8)
    affine = brain.affine.copy()
    affine[:3, 3] -= affine[:3, :3] @ np.full(3, pad)
    padded = nib.Nifti1Image(data, affine)
    mask = dilated_brain_head(padded, offset_mm)
    center = nib.affines.apply_affine(affine, np.argwhere(mask).mean(axis=0))
    return surface_points(padded, mask), center


def project_to_scalp(points, surface: np.ndarray, center) -> tuple[np.ndarray, np.ndarray]:
    """Nearest scalp point above each target.

    "Above" means on the outer side of the target as seen from the head
    centre: only surface points ``s`` with ``(s - t) . (t - c) > 0`` are
    candidates.

    Parameters
    ----------
    points : array-like, shape (N, 3)
        Targets, RAS mm.
    surface : numpy.ndarray, shape (S, 3)
        Scalp surface points in the same space.
    center : array-like, shape (3,)
        Head centre in the same space.

    Returns
    -------
    scalp : numpy.ndarray, shape (N, 3)
        Scalp points (NaN when none qualifies).
    depth : numpy.ndarray, shape (N,)
        Scalp-to-target distance in mm.
    """
    points = np.atleast_2d(np.asarray(points, dtype=float))
    center = np.asarray(center, dtype=float)
    scalp = np.full(points.shape, np.nan)
    depth = np.full(len(points), np.nan)
    for n, target in enumerate(points):  # one vectorised pass per target
        diff = surface - target
        outward = target - center
        ok = diff @ outward > 0
        if not ok.any():
            continue
        dist = np.linalg.norm(diff[ok], axis=1)
        best = np.argmin(dist)
        scalp[n] = surface[ok][best]
        depth[n] = dist[best]
    return scalp, depth


def scalp_frame(target, scalp) -> np.ndarray:
    """Coil frame at a scalp point, columns = axes in RAS.

    Third axis: unit vector from the target out through the scalp point
    (the head's outward normal there; Brainsight's exported samples point
    their z axis away from the head). Second axis: RAS anterior (+y) made
    orthogonal to the third (the handle direction is a clinical choice:
    rotate as needed). First axis: second x third (right-handed).
    """
    z = np.asarray(scalp, float) - np.asarray(target, float)
    norm = np.linalg.norm(z)
    if not np.isfinite(norm) or norm == 0:
        return np.eye(3)
    z /= norm
    ref = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([0.0, 0.0, 1.0])
    y = ref - (ref @ z) * z
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    return np.column_stack([x, y, z])


def electrode_table(kind: str = "cortical_projection") -> pd.DataFrame:
    """10-20 positions (MNI152, RAS mm) shipped with trdnet.

    Parameters
    ----------
    kind : {"cortical_projection", "scalp"}
        Okamoto et al. (2004) give both the scalp positions and their
        projection onto the cortex.
    """
    table = read_table(ELECTRODES_TABLE)
    kinds = sorted(table["kind"].unique())
    if kind not in kinds:
        raise ExportError(f"electrode kind {kind!r} not in {ELECTRODES_TABLE}; accepted: {kinds}")
    return table[table["kind"] == kind].reset_index(drop=True)


def nearest_electrode(points, electrodes_xyz: np.ndarray, labels) -> tuple[list, np.ndarray]:
    """Label of and distance (mm) to the nearest electrode for each point."""
    points = np.atleast_2d(points)
    dist = np.linalg.norm(points[:, None, :] - electrodes_xyz[None], axis=2)
    best = np.argmin(dist, axis=1)
    names = [labels[b] if np.isfinite(dist[n, b]) else "" for n, b in enumerate(best)]
    return names, dist[np.arange(len(points)), best]
