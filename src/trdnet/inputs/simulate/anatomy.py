"""Anatomy shared by every simulated participant, and each participant's planted patch."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from scipy import ndimage, spatial

from ...errors import SettingsError
from ...templates import mni152
from .parameters import SignalParameters


@dataclass
class _Anatomy:
    mask: np.ndarray  # (X, Y, Z) bool
    affine: np.ndarray
    xyz: np.ndarray  # (V, 3) world mm of in-mask voxels
    gm: np.ndarray  # (V,) probabilities
    wm: np.ndarray
    wm_cols: np.ndarray
    csf_cols: np.ndarray
    network_names: list[str]
    network_loadings: np.ndarray  # (n_networks, V)
    roi_index: np.ndarray  # (V,) nearest ROI
    roi_loading: np.ndarray  # (V,) regional loading
    n_rois: int
    sgacc_loading: np.ndarray  # (V,)
    search_cols: np.ndarray  # columns in the grey-matter search region
    patch_candidates: np.ndarray  # columns allowed as patch centre
    resolution_mm: int
    shared_profile: np.ndarray  # (V,) the group region's profile, 1 at its centre


@functools.lru_cache(maxsize=3)
def _templates(resolution_mm: int):
    """nilearn's MNI152 2009 brain mask, grey and white matter on one grid (trdnet's template cache)."""
    mask_img = mni152("brain_mask", resolution_mm)
    mask = np.asanyarray(mask_img.dataobj) > 0
    gm = mni152("GM", resolution_mm).get_fdata(dtype=np.float32)
    wm = mni152("WM", resolution_mm).get_fdata(dtype=np.float32)
    for array in (mask, gm, wm):
        array.flags.writeable = False
    return mask, mask_img.affine.copy(), gm, wm


def _load_anatomy(resolution_mm: int, params: SignalParameters) -> _Anatomy:
    """The shared anatomy of a grid and parameters (cached: building it takes seconds)."""
    # Key order kept: the order of the networks decides which latent signal each one gets.
    return _cached_anatomy(int(resolution_mm), json.dumps(params.to_dict()))


@functools.lru_cache(maxsize=2)
def _cached_anatomy(resolution_mm: int, params_json: str) -> _Anatomy:
    from nilearn import datasets

    params = SignalParameters(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in json.loads(params_json).items()})

    mask, affine, gm_full, wm_full = _templates(resolution_mm)
    affine = affine.copy()
    ijk = np.argwhere(mask)
    xyz = nib.affines.apply_affine(affine, ijk)
    gm, wm = gm_full[mask], wm_full[mask]
    wm_cols = np.flatnonzero(wm > 0.5)
    csf_cols = np.flatnonzero((gm < 0.2) & (wm < 0.2))

    rois = datasets.fetch_coords_seitzman_2018()
    roi_xyz = rois.rois[["x", "y", "z"]].to_numpy(dtype=float)
    labels = np.asarray(rois.networks)
    dist, nearest = spatial.cKDTree(roi_xyz).query(xyz)
    beyond = np.maximum(dist - params.roi_radius_mm, 0.0)
    falloff = np.exp(-0.5 * (beyond / params.loading_decay_mm) ** 2)
    falloff *= np.where(gm > params.grey_matter_threshold, gm, 0.0)
    names = list(dict.fromkeys(params.networks.values()))
    loadings = np.zeros((len(names), xyz.shape[0]), dtype=np.float32)
    for label, name in params.networks.items():
        on = labels[nearest] == label
        loadings[names.index(name), on] = falloff[on]

    sgacc = _sphere_taper(xyz, params.sgacc_center_mm, params.sgacc_radius_mm, plateau=0.5)
    if params.sgacc_bilateral:
        mirror = (-params.sgacc_center_mm[0], *params.sgacc_center_mm[1:])
        sgacc = np.maximum(sgacc, _sphere_taper(xyz, mirror, params.sgacc_radius_mm, plateau=0.5))
    # Inside the sgACC, network signals fade out except for the leaking fraction, and the
    # neighbouring network (DMN by default) loads with that fraction of its full weight:
    # at leak 0 the seed's coupling to the DLPFC is exactly the one specified.
    leak = params.sgacc_network_leak
    loadings *= (1.0 - (1.0 - leak) * sgacc)[None]
    if leak and params.sgacc_leak_network in names:
        row = names.index(params.sgacc_leak_network)
        loadings[row] = np.maximum(loadings[row], leak * sgacc * gm)

    sites = np.asarray(params.search_sites, dtype=float).reshape(-1, 3)
    site_dist = np.min(np.linalg.norm(xyz[:, None, :] - sites[None], axis=2), axis=1)
    in_union = site_dist <= params.search_radius_mm
    search_cols = np.flatnonzero(in_union & (gm > params.grey_matter_threshold))
    if params.plant_region == "search_spheres":
        # Depth inside the nearest sphere: a lower bound of the depth in the union.
        depth = params.search_radius_mm - site_dist
        candidates = np.flatnonzero(in_union & (gm > 0.5) & (depth >= params.patch_min_depth_mm))
        where = f"{params.patch_min_depth_mm} mm inside the DLPFC search spheres"
    else:
        scaled = (xyz - np.asarray(params.plant_center_mm)) / np.asarray(params.plant_radii_mm)
        candidates = np.flatnonzero(((scaled**2).sum(axis=1) <= 1.0) & (gm > params.plant_grey_matter))
        where = f"in the planting ellipsoid at {tuple(params.plant_center_mm)}"
    if candidates.size == 0:
        raise SettingsError(
            f"no grey-matter voxel lies {where} at {resolution_mm} mm; "
            "change the planting region (plant_* or patch_min_depth_mm, search_radius_mm)"
        )
    offset = (xyz - np.asarray(params.shared_center_mm)) / (params.shared_fwhm_mm / 2.3548)
    shared = np.exp(-0.5 * (offset**2).sum(axis=1))
    return _Anatomy(
        mask=mask, affine=affine, xyz=xyz, gm=gm, wm=wm, wm_cols=wm_cols, csf_cols=csf_cols,
        network_names=names, network_loadings=loadings, roi_index=nearest,
        roi_loading=falloff.astype(np.float32), n_rois=len(roi_xyz),
        sgacc_loading=sgacc.astype(np.float32), search_cols=search_cols,
        patch_candidates=candidates, resolution_mm=resolution_mm,
        shared_profile=shared.astype(np.float32),
    )


def _sphere_taper(xyz: np.ndarray, center, radius: float, plateau: float = 0.0) -> np.ndarray:
    """1 within ``plateau * radius`` of the centre, then a raised cosine to 0 at ``radius``."""
    d = np.linalg.norm(xyz - np.asarray(center, dtype=float), axis=1)
    inner = plateau * radius
    phase = np.clip((d - inner) / (radius - inner), 0.0, 1.0)
    return 0.5 * (1 + np.cos(np.pi * phase))


def _participant(anat: _Anatomy, params: SignalParameters, rng: np.random.Generator) -> dict:
    """Planted patch and background coupling of one participant.

    The sgACC loading of a voxel is ``-effect_size * patch - shared_weight *
    shared_profile + background * (1 - patch)``: the person's own patch, the
    broad region everyone shares, and a smooth random coupling elsewhere.
    """
    centre_col = int(rng.choice(anat.patch_candidates))
    centre = anat.xyz[centre_col]
    field3d = rng.standard_normal(anat.mask.shape)
    sigma = params.background_smoothness_mm / 2.3548 / anat.resolution_mm
    field3d = ndimage.gaussian_filter(field3d, sigma)
    background = np.zeros(anat.xyz.shape[0])
    values = field3d[anat.mask][anat.search_cols]
    background[anat.search_cols] = (values - values.mean()) / values.std() * params.background_coupling
    baseline_field = ndimage.gaussian_filter(rng.standard_normal(anat.mask.shape), 15 / anat.resolution_mm)
    if params.plant_off_grid:
        centre = centre + rng.uniform(-0.5, 0.5, 3) * anat.resolution_mm
    patch = _sphere_taper(anat.xyz, centre, params.patch_radius_mm, plateau=params.patch_plateau)
    coupling = -params.effect_size * patch + background * (1.0 - patch)
    if params.shared_weight:
        coupling -= params.shared_weight * anat.shared_profile
    sgacc_row = params.sgacc_weight * anat.sgacc_loading + coupling
    baseline_field = baseline_field[anat.mask] / baseline_field[anat.mask].std()
    tissue = 1.0 * anat.gm + 0.85 * anat.wm + 1.2 * np.clip(1 - anat.gm - anat.wm, 0, 1)
    baseline = params.baseline * tissue * (1 + params.baseline_variation * baseline_field)
    return {
        "centre": centre,
        "sgacc_row": sgacc_row.astype(np.float32),
        "baseline": baseline.astype(np.float32),
    }
