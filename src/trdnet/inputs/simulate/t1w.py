"""Simulated participant anatomy laid out as fMRIPrep writes it (SIMULATED data).

A simulated T1w is nilearn's MNI template seen through a known, per-participant
transform: an affine (rotation of a few degrees, ~10 mm translation, ~5%
scaling) composed with a smooth sinusoidal displacement of a few millimetres.
World coordinates are in a scanner-like RAS frame, not MNI. The brain mask,
grey-matter probability map and tissue segmentation come from the template's
own maps through the same transform. Both fMRIPrep transforms are written as
ITK composite ``.h5`` files, so export code is tested against the real format
with an exactly known answer (:class:`AnatomyTruth`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from ...config import MNI_SPACE
from ...outputs import write_json, write_nifti
from ...templates import mni152
from .itk_h5 import write_itk_composite_h5

#: The template nilearn ships (ICBM 2009a symmetric), standing in for MNI152NLin2009cAsym.
TEMPLATE_NOTE = "nilearn MNI152 template (ICBM 2009 nonlinear symmetric), used as MNI152NLin2009cAsym"
_FIELD_SPACING_MM = 4.0
#: The simulated head: brain, then CSF, skull (dark) and scalp (bright) shells.
SCALP_OUTER_MM = 16.0
_SHELLS = ((3.0, 0.10), (11.0, 0.03), (SCALP_OUTER_MM, 0.70))  # (outer distance mm, intensity)


@dataclass(frozen=True)
class AnatomyTruth:
    """The exact mapping between a simulated T1w and MNI.

    ``t1w_to_mni(y) = A (y + u(y))`` with ``u(y)_c = amp_c sin(2 pi k_c . y /
    wavelength + phase_c)``.

    Attributes
    ----------
    affine : numpy.ndarray, shape (4, 4)
        ``A``, T1w world -> MNI world (RAS mm).
    amplitude_mm, phase : numpy.ndarray, shape (3,)
        Displacement amplitude and phase per component.
    directions : numpy.ndarray, shape (3, 3)
        Unit wave vectors ``k_c`` (rows).
    wavelength_mm : float
        Spatial wavelength of the displacement.
    """

    affine: np.ndarray
    amplitude_mm: np.ndarray
    phase: np.ndarray
    directions: np.ndarray
    wavelength_mm: float

    def displacement(self, points) -> np.ndarray:
        """``u`` at T1w points (RAS mm), shape (N, 3)."""
        p = np.atleast_2d(np.asarray(points, dtype=float))
        arg = 2 * np.pi * _matmul(p, self.directions.T) / self.wavelength_mm + self.phase
        return self.amplitude_mm * np.sin(arg)

    def t1w_to_mni(self, points) -> np.ndarray:
        """Map T1w world points to MNI world points (RAS mm)."""
        p = np.atleast_2d(np.asarray(points, dtype=float))
        return _apply(self.affine, p + self.displacement(p))

    def mni_to_t1w(self, points) -> np.ndarray:
        """Map MNI world points to T1w world points (RAS mm), exact to ~1e-6 mm."""
        q = _apply(np.linalg.inv(self.affine), np.atleast_2d(points))
        x = q.copy()
        # x = q - u(x) contracts by |grad u| <= 2 pi amp / wavelength < 0.2
        for _ in range(20):
            x = q - self.displacement(x)
        return x


def random_truth(rng: np.random.Generator) -> AnatomyTruth:
    """Draw a participant's transform: few-degree rotation, ~10 mm shift, ~5% scaling."""
    angles = np.deg2rad(rng.uniform(-4.0, 4.0, 3))
    rot = _rotation(angles)
    scale = np.diag(1.0 + rng.uniform(-0.05, 0.05, 3))
    affine = np.eye(4)
    affine[:3, :3] = rot @ scale
    affine[:3, 3] = rng.normal(0.0, 10.0, 3)
    directions = rng.normal(size=(3, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return AnatomyTruth(
        affine=affine,
        amplitude_mm=rng.uniform(2.0, 3.5, 3),
        phase=rng.uniform(0, 2 * np.pi, 3),
        directions=directions,
        wavelength_mm=float(rng.uniform(110.0, 150.0)),
    )


def write_simulated_anat(
    fmriprep_dir: str | Path,
    subject: str,
    rng_or_seed,
    resolution_mm: float = 2,
    session: str | None = None,
) -> dict:
    """Write a simulated participant's fMRIPrep ``anat/`` folder.

    Parameters
    ----------
    fmriprep_dir : str or Path
        Root of the fMRIPrep derivatives (created if absent).
    subject : str
        Participant label without ``sub-``.
    rng_or_seed : int or numpy.random.Generator
        Source of the participant's transform.
    resolution_mm : float
        Voxel size of the simulated T1w (1 or 2 use nilearn's template at that
        resolution; others resample the 2 mm template).
    session : str, optional
        Session label; files then go to ``sub-<l>/ses-<l>/anat``.

    Returns
    -------
    dict
        Paths under keys ``t1w``, ``brain_mask``, ``gm_probseg``, ``dseg``,
        ``xfm_t1w_to_template``, ``xfm_template_to_t1w``, and ``truth`` (an
        :class:`AnatomyTruth`).
    """
    rng = np.random.default_rng(rng_or_seed)
    truth = random_truth(rng)
    template, mask, gm, wm = _templates(1 if resolution_mm <= 1 else 2)

    # T1w grid: axis-aligned scanner frame around the template's head.
    corners = _box_corners(template)
    t1w_corners = truth.mni_to_t1w(corners)
    lo = np.floor(t1w_corners.min(axis=0)) - 4.0
    hi = np.ceil(t1w_corners.max(axis=0)) + 4.0
    shape = tuple(np.ceil((hi - lo) / resolution_mm).astype(int) + 1)
    t1w_affine = np.diag([resolution_mm] * 3 + [1.0])
    t1w_affine[:3, 3] = lo
    grid = np.indices(shape, dtype=np.float32).reshape(3, -1).T
    mni_points = truth.t1w_to_mni(_apply(t1w_affine, grid))
    # all template images share one grid
    ijk = _apply(np.linalg.inv(template.affine), mni_points).T.astype(np.float32)

    def sample(img):
        data = np.asarray(img.dataobj, dtype=np.float32)
        out = ndimage.map_coordinates(data, ijk, order=1, mode="constant", cval=0.0)
        return out.reshape(shape)

    t1w = sample(_headed(template, mask))
    brain = sample(mask) > 0.5
    gm_prob = np.clip(sample(gm), 0, 1) * brain
    wm_prob = np.clip(sample(wm), 0, 1) * brain
    csf_prob = np.clip(brain - gm_prob - wm_prob, 0, 1)
    dseg = (np.argmax(np.stack([gm_prob, wm_prob, csf_prob]), axis=0) + 1) * brain

    anat = Path(fmriprep_dir) / f"sub-{subject}"
    prefix = f"sub-{subject}"
    if session:
        anat = anat / f"ses-{session}"
        prefix += f"_ses-{session}"
    anat = anat / "anat"
    anat.mkdir(parents=True, exist_ok=True)
    _write_description(Path(fmriprep_dir))
    note = {
        "Simulated": True,
        "Description": "SIMULATED anatomy made by trdnet from " + TEMPLATE_NOTE
        + f" with a simulated scalp (brain mask dilated by {SCALP_OUTER_MM:g} mm) through a "
        "known per-participant affine + smooth displacement",
    }
    paths = {
        "t1w": _save(t1w, t1w_affine, anat / f"{prefix}_desc-preproc_T1w.nii.gz", note),
        "brain_mask": _save(
            brain.astype(np.uint8), t1w_affine, anat / f"{prefix}_desc-brain_mask.nii.gz", note
        ),
        "gm_probseg": _save(gm_prob, t1w_affine, anat / f"{prefix}_label-GM_probseg.nii.gz", note),
        "dseg": _save(
            dseg.astype(np.uint8), t1w_affine, anat / f"{prefix}_dseg.nii.gz",
            {**note, "Labels": {"1": "GM", "2": "WM", "3": "CSF"}},
        ),
    }

    # Image transform from-<template>_to-T1w == point mapping T1w -> MNI.
    t1w_lo = nib.affines.apply_affine(t1w_affine, [0, 0, 0]) - 8
    t1w_hi = nib.affines.apply_affine(t1w_affine, np.asarray(shape) - 1) + 8
    field_shape, field_affine = _lps_grid(t1w_lo, t1w_hi, _FIELD_SPACING_MM)
    pts = nib.affines.apply_affine(field_affine, np.indices(field_shape).reshape(3, -1).T)
    u = truth.displacement(pts).reshape(*field_shape, 3)
    fwd = anat / f"{prefix}_from-{MNI_SPACE}_to-T1w_mode-image_xfm.h5"
    write_itk_composite_h5(fwd, truth.affine, u, field_affine, center_ras=rng.normal(0, 5, 3))

    # Image transform from-T1w_to-<template> == point mapping MNI -> T1w:
    # y = A^-1 (p + v(p)) with v(p) = A W^-1 (A^-1 p) - p on an MNI grid.
    m_lo, m_hi = corners.min(axis=0) - 8, corners.max(axis=0) + 8
    field_shape, field_affine = _lps_grid(m_lo, m_hi, _FIELD_SPACING_MM)
    pts = nib.affines.apply_affine(field_affine, np.indices(field_shape).reshape(3, -1).T)
    inv_w = truth.mni_to_t1w(pts)
    v = (nib.affines.apply_affine(truth.affine, inv_w) - pts).reshape(*field_shape, 3)
    inv = anat / f"{prefix}_from-T1w_to-{MNI_SPACE}_mode-image_xfm.h5"
    write_itk_composite_h5(inv, np.linalg.inv(truth.affine), v, field_affine)
    for xfm in (fwd, inv):
        write_json(xfm.with_suffix("").with_suffix(".json"), note)
    paths["xfm_template_to_t1w"] = fwd
    paths["xfm_t1w_to_template"] = inv
    paths["truth"] = truth
    return paths


def _matmul(points, matrix) -> np.ndarray:
    """(N, 3) @ (3, 3) without BLAS (threaded BLAS is slow for this shape on busy machines); einsum's own
    loop gives the same sums in the same order as three scaled columns added."""
    return np.einsum("ij,jk->ik", points, matrix)


def _apply(affine, points) -> np.ndarray:
    """Affine applied to (N, 3) points."""
    return _matmul(points, affine[:3, :3].T) + affine[:3, 3]


def _headed(template, mask):
    """The (skull-stripped) template with simulated CSF, skull and scalp shells."""
    brain = np.asanyarray(mask.dataobj) > 0.5
    zooms = np.sqrt((mask.affine[:3, :3] ** 2).sum(axis=0))
    dist = ndimage.distance_transform_edt(~brain, sampling=zooms)
    data = np.asarray(template.dataobj, dtype=np.float32).copy()
    inner = 0.0
    for outer, value in _SHELLS:
        data[(dist > inner) & (dist <= outer)] = value
        inner = outer
    return nib.Nifti1Image(data, template.affine)


def _templates(resolution: int):
    return tuple(mni152(kind, resolution) for kind in ("T1w", "brain_mask", "GM", "WM"))


def _rotation(angles) -> np.ndarray:
    ax, ay, az = angles
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _box_corners(img) -> np.ndarray:
    shape = np.asarray(img.shape[:3]) - 1
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]) * shape
    return nib.affines.apply_affine(img.affine, corners)


def _lps_grid(lo, hi, spacing):
    """Grid with identity LPS directions (RAS axes -x, -y, +z) covering [lo, hi]."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    shape = tuple(np.ceil((hi - lo) / spacing).astype(int) + 1)
    affine = np.diag([-spacing, -spacing, spacing, 1.0])
    affine[:3, 3] = [hi[0], hi[1], lo[2]]
    return shape, affine


def _save(data, affine, path: Path, sidecar: dict) -> Path:
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    write_nifti(path, img)
    write_json(Path(str(path).replace(".nii.gz", ".json")), sidecar)
    return path


def _write_description(root: Path) -> None:
    desc = root / "dataset_description.json"
    if not desc.exists():
        write_json(
            desc,
            {
                "Name": "trdnet SIMULATED fMRIPrep derivatives",
                "BIDSVersion": "1.8.0",
                "DatasetType": "derivative",
                "GeneratedBy": [{"Name": "trdnet (simulated anatomy)"}],
            },
        )
