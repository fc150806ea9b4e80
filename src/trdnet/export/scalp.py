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


def head_mask(img, data: np.ndarray | None = None, threshold: float | None = None) -> np.ndarray:
    """Filled head of a T1w: intensity above Otsu's threshold, large
    components, holes (skull, sinuses) filled in 3D and per axial slice.

    Parameters
    ----------
    img : nibabel image
        A T1w with the scalp visible.
    data : numpy.ndarray, optional
        ``img``'s data as float32, when already loaded.
    threshold : float, optional
        Intensity threshold (default: Otsu's threshold of ``data``).

    Returns
    -------
    numpy.ndarray of bool
    """
    if data is None:
        data = np.asarray(img.dataobj, dtype=np.float32)
    mask = data > (otsu_threshold(data) if threshold is None else threshold)
    labels, n = ndimage.label(mask)
    if n == 0:
        raise ExportError("T1w has no voxel above Otsu's threshold; cannot find the head")
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    # scalp and brain are separate components when the skull is dark: keep
    # every large component, drop specks of noise
    mask = (sizes >= 0.05 * sizes.max())[labels]
    mask = ndimage.binary_closing(mask, iterations=2, border_value=0) | mask
    mask = fill_holes(mask)
    # A head cut by the field of view is open at the bottom: fill each axial slice.
    axis = int(np.argmax(np.abs(img.affine[2, :3])))
    structure = np.zeros((3, 3, 3), dtype=bool)
    index = [slice(None)] * 3
    index[axis] = 1
    structure[tuple(index)] = ndimage.generate_binary_structure(2, 1)
    return fill_holes(mask, structure)


def fill_holes(mask: np.ndarray, structure: np.ndarray | None = None) -> np.ndarray:
    """``scipy.ndimage.binary_fill_holes(mask, structure)``, by labelling the background once.

    scipy's version grows the outside inward by repeated dilation, one voxel
    per pass (about a second on a 1 mm head); labelling the background
    connected components (``structure``: their connectivity, default the
    faces) and keeping those that reach the border gives the same mask in a
    third of the time.

    Parameters
    ----------
    mask : numpy.ndarray of bool
    structure : numpy.ndarray of bool, optional
        As scipy's: the background's connectivity.

    Returns
    -------
    numpy.ndarray of bool
        ``mask`` with every background component that does not reach the
        array's border (through ``structure``) filled.
    """
    mask = np.asarray(mask, dtype=bool)
    if structure is None:
        structure = ndimage.generate_binary_structure(mask.ndim, 1)
    inner = (slice(1, -1),) * mask.ndim
    # a frame of background around the array: what reaches the border is what joins the frame
    background = np.pad(~mask, 1, constant_values=True)
    labels, _ = ndimage.label(background, structure=structure)
    frame = np.ones(background.shape, dtype=bool)
    frame[inner] = False
    outside = np.zeros(labels.max() + 1, dtype=bool)
    outside[labels[frame]] = True
    outside[0] = False
    return ~outside[labels[inner]]


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
def template_head(offset_mm: float = 16.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The approximate template head (MNI, RAS mm).

    nilearn's MNI152 template is skull-stripped, so the fallback head is its
    brain mask dilated by ``offset_mm`` (a typical scalp-to-cortex distance;
    configurable, unverified). Outputs that use it say so.

    Returns
    -------
    surface : numpy.ndarray, shape (S, 3)
        Scalp surface points.
    center : numpy.ndarray, shape (3,)
        Head centre.
    mask : numpy.ndarray of bool
        The head, on the template grid padded to hold it.
    affine : numpy.ndarray, shape (4, 4)
        Voxel -> MNI affine of ``mask``.
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
    return surface_points(padded, mask), center, mask, affine


def template_scalp(offset_mm: float = 16.0) -> tuple[np.ndarray, np.ndarray]:
    """Scalp surface points and head centre of :func:`template_head` (MNI, RAS mm)."""
    surface, center, _, _ = template_head(offset_mm)
    return surface, center


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


def scalp_entries(
    points, surface: np.ndarray, center, mask=None, affine=None, intensity=None, threshold=None,
    sigma_mm: float = 4.0, radius_mm: float = 10.0, iterations: int = 3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scalp entry point, inward scalp normal and depth for each target.

    The entry is the scalp point whose normal line runs through the target
    (the nearest scalp point), so a coil centred there with its normal along
    the scalp normal points at the target. Starting from the nearest surface
    voxel above the target, each iteration takes the scalp normal at the
    current point and moves the point to where the line from the target
    along that normal leaves the head.

    - Normal: with a head mask, the gradient of the mask smoothed by a
      Gaussian of ``sigma_mm``; with surface points only (a template head
      mapped to T1w), the normal of the plane fitted to the points within
      ``radius_mm``.
    - Crossing: where the linear interpolation of the mask drops below 0.5,
      then, with the T1w intensities, where the interpolated intensity drops
      below the head threshold within one and a half voxels of it (the
      filled mask alone is exact to half a voxel); without a mask, the
      fitted plane.

    Parameters
    ----------
    points : array-like, shape (N, 3)
        Targets, RAS mm.
    surface : numpy.ndarray, shape (S, 3)
        Scalp surface points (outer voxels of the head) in the same space.
    center : array-like, shape (3,)
        Head centre.
    mask : numpy.ndarray of bool, optional
        Filled head mask the surface came from.
    affine : numpy.ndarray, shape (4, 4), optional
        Voxel -> world affine of ``mask``.
    intensity : numpy.ndarray, optional
        The T1w data on the grid of ``mask``.
    threshold : float, optional
        Intensity at the edge of the head (the threshold ``mask`` was made with).
    sigma_mm : float
        Smoothing of the mask for its gradient: larger than the voxel steps of
        a head surface cut by the grid (a surface close to a grid plane is
        voxelised into terraces several millimetres wide whose own normals
        are off by the surface's slope), smaller than the head's curvature.
    radius_mm : float
        Radius of the surface patch a plane is fitted to (no mask).
    iterations : int
        Normal / crossing updates.

    Returns
    -------
    entry : numpy.ndarray, shape (N, 3)
        Scalp entry points (NaN when no scalp lies above the target).
    normal : numpy.ndarray, shape (N, 3)
        Unit scalp normals pointing into the head.
    depth : numpy.ndarray, shape (N,)
        Entry-to-target distance in mm.
    """
    from scipy.spatial import cKDTree

    points = np.atleast_2d(np.asarray(points, dtype=float))
    first, _ = project_to_scalp(points, surface, center)
    entry = np.full(points.shape, np.nan)
    normal = np.full(points.shape, np.nan)
    tree = cKDTree(surface)
    for n, (target, point) in enumerate(zip(points, first)):
        if not np.all(np.isfinite(point)):
            continue
        for _ in range(iterations):
            if mask is not None:
                outward = -_mask_gradient(mask, affine, point, sigma_mm)
                if not np.all(np.isfinite(outward)):  # flat smoothed mask: no normal here
                    break
                crossing = _exit_distance(mask, affine, target, outward, np.linalg.norm(point - target),
                                          intensity, threshold)
            else:
                patch = surface[tree.query_ball_point(point, radius_mm)]
                if len(patch) < 3:
                    break
                centroid = patch.mean(axis=0)
                outward = np.linalg.svd(patch - centroid, full_matrices=False)[2][-1]
                outward = outward if outward @ (point - target) > 0 else -outward
                crossing = (centroid - target) @ outward
            if crossing is None or not np.all(np.isfinite(outward)):
                break
            point = target + crossing * outward
            entry[n], normal[n] = point, -outward
    depth = np.linalg.norm(entry - points, axis=1)
    return entry, normal, depth


def reaches_image_border(entries, mask: np.ndarray, affine: np.ndarray, margin_mm: float = 10.0) -> np.ndarray:
    """Whether each scalp entry lies where the image cuts through the head.

    A T1w whose field of view ends inside the head (top of the skull, face)
    gives a head mask that runs into the grid's edge; there the "scalp" found
    by :func:`scalp_entries` is the cut face of the image, not skin. An entry
    is flagged when it lies within one voxel of the grid's edge or within
    ``margin_mm`` of a head-mask voxel on the grid's edge (the smoothed
    normal there is bent by the cut).

    Parameters
    ----------
    entries : array-like, shape (N, 3)
        Scalp entries, RAS mm (NaN rows are not flagged).
    mask : numpy.ndarray of bool
        Head mask the entries were found on.
    affine : numpy.ndarray, shape (4, 4)
        Voxel -> world affine of ``mask``.
    margin_mm : float
        Distance to the head's cut face below which an entry is flagged.

    Returns
    -------
    numpy.ndarray of bool, shape (N,)
    """
    from scipy.spatial import cKDTree

    entries = np.atleast_2d(np.asarray(entries, dtype=float))
    out = np.zeros(len(entries), dtype=bool)
    finite = np.all(np.isfinite(entries), axis=1)
    if not finite.any():
        return out
    shape = np.asarray(mask.shape[:3])
    ijk = nib.affines.apply_affine(np.linalg.inv(affine), entries[finite])
    out[finite] = np.any((ijk < 1.0) | (ijk > shape - 2.0), axis=1)
    edge = np.zeros(mask.shape, dtype=bool)
    for axis in range(3):
        for end in (0, -1):
            index = [slice(None)] * 3
            index[axis] = end
            edge[tuple(index)] = True
    cut = np.argwhere(mask & edge)
    if len(cut):
        dist, _ = cKDTree(nib.affines.apply_affine(affine, cut)).query(entries[finite])
        out[finite] |= dist <= margin_mm
    return out


def _mask_gradient(mask, affine, point, sigma_mm: float) -> np.ndarray:
    """Unit world-space gradient of the Gaussian-smoothed mask at ``point`` (points into the mask)."""
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    ijk = nib.affines.apply_affine(np.linalg.inv(affine), point)
    half = np.ceil(4 * sigma_mm / zooms).astype(int) + 2
    lo = np.clip(np.floor(ijk).astype(int) - half, 0, mask.shape)
    hi = np.clip(np.floor(ijk).astype(int) + half + 2, 0, mask.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    smooth = ndimage.gaussian_filter(mask[box].astype(np.float32), sigma_mm / zooms, mode="constant")
    grad = np.array([ndimage.map_coordinates(g, (ijk - lo)[:, None], order=1)[0] for g in np.gradient(smooth)])
    world = np.linalg.inv(affine[:3, :3]).T @ grad
    norm = np.linalg.norm(world)
    return world / norm if norm > 0 else np.full(3, np.nan)


def _exit_distance(mask, affine, origin, direction, expected: float, intensity=None, threshold=None,
                   step: float = 0.25):
    """Distance along a ray where the head ends (None if the ray never leaves it)."""
    steps = np.arange(0.0, expected + 30.0, step)
    ijk = nib.affines.apply_affine(np.linalg.inv(affine), origin + steps[:, None] * direction)
    # interpolate in the box around the ray only (a 1 mm head mask has ~17M voxels)
    lo = np.clip(np.floor(ijk.min(axis=0)).astype(int) - 1, 0, mask.shape)
    hi = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 2, 0, mask.shape)
    if np.any(hi - lo < 2):
        return None
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    values = ndimage.map_coordinates(mask[box].astype(np.float32), (ijk - lo).T, order=1, mode="constant")
    inside = np.flatnonzero(values >= 0.5)
    if not len(inside):
        return None
    # first exit after the ray has been inside (the target may sit in a hole of the mask)
    after = np.flatnonzero(values < 0.5)
    after = after[after > inside[0]]
    if not len(after):
        return None
    distance = _crossing(steps, values, after[0], 0.5)
    if intensity is None:
        return distance
    voxel = float(np.sqrt((affine[:3, :3] ** 2).sum(axis=0)).max())
    near = np.flatnonzero(np.abs(steps - distance) <= 1.5 * voxel)
    grey = ndimage.map_coordinates(np.asarray(intensity[box], dtype=np.float32), (ijk[near] - lo).T,
                                   order=1, mode="constant")
    drops = np.flatnonzero((grey[:-1] >= threshold) & (grey[1:] < threshold)) + 1
    if not len(drops):
        return distance
    return _crossing(steps[near], grey, drops[-1], threshold)


def _crossing(steps, values, k: int, level: float) -> float:
    """Where the linear interpolation between samples ``k - 1`` and ``k`` meets ``level``."""
    v0, v1 = values[k - 1], values[k]
    return float(steps[k - 1] + (steps[k] - steps[k - 1]) * (v0 - level) / (v0 - v1))


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
