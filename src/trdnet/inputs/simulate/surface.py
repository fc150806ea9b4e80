"""SIMULATED resting-state runs on the fsaverage5 (or fsLR) cortex, written as fMRIPrep writes surface outputs.

Each participant gets ``sub-<l>_task-rest_hemi-{L,R}_space-fsaverage5_bold.func.gii`` (one data array per
volume) or, on fsLR, ``sub-<l>_task-rest_space-fsLR_den-91k_bold.dtseries.nii`` (cortex only), a JSON sidecar
with the TR and ``"Simulated": true``, and an fMRIPrep-style confounds table; the planted targets go to
``truth/targets_truth.tsv`` (never read by the pipeline).

What is planted, on nilearn's fsaverage5 midthickness (MNI152 positions through FreeSurfer's linear
MNI305-to-MNI152 matrix) or the Conte69 fsLR-32k midthickness (MNI152), with difficulties that do not mirror the pipeline's own regions:

- an sgACC source whose patch is a Gaussian (sigma 6 mm) around a point jittered by up to 4 mm from
  MNI152 (5, 20, -8), not the pipeline's 10 mm sphere at (6, 16, -10);
- each person's DLPFC target: a left-hemisphere vertex drawn within 15 mm of (-40, 36, 36) (not one of the
  pipeline's four search sites), carrying the sgACC source with a negative weight (Gaussian, sigma 5 mm);
- a group-typical anticorrelated region shared by everyone, half as strong and broader (sigma 10 mm), at
  (-38, 44, 26), which competes with the individual target;
- DMN, SN and ECN sources at the Seitzman 2018 coordinates (Gaussian, sigma 6 mm), a global signal, two
  non-cortical nuisance signals written as ``white_matter`` and ``csf`` that also leak into the cortex,
  head-motion spikes, and noise smoothed along the mesh (6 mm FWHM) plus white noise;
- as in the volume simulator's realistic preset (:class:`~.parameters.SignalParameters`): DMN signal
  leaking into the sgACC source (``sgacc_network_leak`` of its weight) and noise autocorrelated from volume
  to volume (``noise_ar1``).

The effect size and noise are not calibrated to real scans. Everything written says SIMULATED.
"""

from __future__ import annotations

import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy.signal import lfilter

from ...outputs import atomic_write_bytes, atomic_write_text, write_json, write_tsv
from ..registry import read_members
from ..surface import BRAINSPACE_WHEEL, MNI305_TO_MNI152, fslr_meshes, standard_meshes
from .confounds import _expansions, _motion, cosine_basis
from .parameters import SIMULATED_NOTE, TASK, SignalParameters
from .signals import _band_limited

SPACE = "fsaverage5"
SGACC_SOURCE = np.array([5.0, 20.0, -8.0])
TARGET_CENTRE = np.array([-40.0, 36.0, 36.0])
GROUP_REGION = np.array([-38.0, 44.0, 26.0])


def simulate_surface_cohort(out_dir, n_subjects: int = 2, n_volumes: int = 300, tr: float = 2.0,
                            effect: float = 0.8, noise: float = 1.0, random_state: int = 0,
                            space: str = SPACE) -> pd.DataFrame:
    """Write a SIMULATED fsaverage5 (GIFTI) or fsLR (CIFTI) cohort as fMRIPrep derivatives plus its ground truth.

    Parameters
    ----------
    out_dir : str or Path
        Gets ``fmriprep/`` (the derivatives) and ``truth/targets_truth.tsv``.
    n_subjects : int
    n_volumes : int
    tr : float
        Seconds.
    effect : float
        Weight of the sgACC source at the planted target (negative sign applied).
    noise : float
        Standard deviation of the smooth and of the white noise.
    random_state : int
    space : {"fsaverage5", "fsLR"}
        ``fsaverage5``: one ``.func.gii`` per hemisphere on nilearn's fsaverage5. ``fsLR``: one
        ``space-fsLR_den-91k_bold.dtseries.nii`` on the Conte69 fsLR-32k midthickness meshes (the
        ``brainspace`` wheel, see :func:`~trdnet.inputs.surface.fslr_meshes`), cortex only: the medial
        wall left out with the wheel's cortex masks, and no subcortical voxels (a simplification of
        fMRIPrep's 91k grayordinates, which add them).

    Returns
    -------
    pandas.DataFrame
        The truth table: ``participant_id``, ``hemi``, ``vertex``, ``x``, ``y``, ``z`` (MNI152, the
        planted target's vertex), ``space``, ``mesh``, ``note``.
    """
    from ...config import NetworkSettings
    from ...geometry import MeshGeometry
    from ...networks import network_rois

    out_dir = Path(out_dir)
    root = out_dir / "fmriprep"
    if space == SPACE:
        meshes, surface = standard_meshes(SPACE)
        geometry = MeshGeometry.from_meshes(meshes, SPACE, template_affine=MNI305_TO_MNI152, surface=surface)
    elif space == "fsLR":
        geometry = MeshGeometry.from_meshes(fslr_meshes(), "fsLR", keep=_fslr_cortex(), template_affine=np.eye(4))
    else:
        raise ValueError(f"space must be {SPACE!r} or 'fsLR', got {space!r}")
    xyz = geometry.template_xyz
    rois = network_rois(NetworkSettings())
    params = SignalParameters()
    rows = []
    for index, seed in enumerate(np.random.SeedSequence(random_state).spawn(n_subjects), start=1):
        rng = np.random.default_rng(seed)
        subject = f"{index:02d}"
        left = geometry.hemisphere_columns("L")
        near = left[np.linalg.norm(xyz[left] - TARGET_CENTRE, axis=1) <= 15]
        target = int(rng.choice(near))
        sgacc = SGACC_SOURCE + rng.uniform(-4, 4, 3)
        latents = _band_limited(rng, n_volumes, 7, tr, (0.01, 0.08))
        names = ("sgACC", "DMN", "SN", "ECN", "global", "white_matter", "csf")
        maps = np.zeros((len(names), geometry.n_points))
        maps[0] = _taper(xyz, sgacc, 6.0) * (1 + abs(effect))
        maps[0] -= effect * _taper(xyz, xyz[target], 5.0) + 0.5 * effect * _taper(xyz, GROUP_REGION, 10.0)
        for row in rois.itertuples():
            maps[names.index(row.network)] += _taper(xyz, (row.x, row.y, row.z), 6.0)
        maps[names.index(params.sgacc_leak_network)] += params.sgacc_network_leak * _taper(xyz, sgacc, 6.0)
        maps[4] = 0.5
        maps[5:] = 0.3 * rng.standard_normal((2, geometry.n_points))
        motion, spikes, fd = _motion(rng, n_volumes, params)
        artefact = np.zeros(n_volumes)
        artefact[spikes] = 3.0
        smooth = geometry.smooth(rng.standard_normal((geometry.n_points, n_volumes)), 6.0).T
        smooth /= smooth.std()
        white = rng.standard_normal((n_volumes, geometry.n_points))
        data = (latents @ maps + noise * _ar1(smooth, params.noise_ar1) + noise * _ar1(white, params.noise_ar1)
                + np.outer(artefact, rng.standard_normal(geometry.n_points)) + 1000.0)
        _write_run(root, subject, geometry, data.astype(np.float32), tr, motion, fd, latents[:, 5:])
        rows.append({"participant_id": f"sub-{subject}", "hemi": "L", "vertex": int(geometry.vertex[target]),
                     "x": xyz[target, 0], "y": xyz[target, 1], "z": xyz[target, 2],
                     "space": "MNI152NLin2009cAsym", "mesh": space, "effect_size": effect, "noise": noise,
                     "note": f"SIMULATED planted target (vertex of the {space} midthickness)"})
    _write_description(root, space)
    truth = pd.DataFrame(rows)
    write_tsv(out_dir / "truth" / "targets_truth.tsv", truth)
    atomic_write_text(out_dir / "SIMULATED_DATA.txt",
                      f"SIMULATED {space} surface data made by trdnet's simulator (not from any person); "
                      "ground truth in truth/, derivatives in fmriprep/.\n")
    return truth


def _ar1(noise: np.ndarray, a: float) -> np.ndarray:
    """Noise (T x V, unit variance) made first-order autocorrelated in time, its variance kept."""
    if not a:
        return noise
    start = noise.copy()
    start[0] /= np.sqrt(1 - a * a)  # starts the process in its stationary state
    return lfilter([np.sqrt(1 - a * a)], [1.0, -a], start, axis=0)


def _taper(xyz: np.ndarray, centre, sigma_mm: float) -> np.ndarray:
    distance2 = np.sum((xyz - np.asarray(centre, dtype=float)) ** 2, axis=1)
    return np.exp(-distance2 / (2 * sigma_mm**2))


def _fslr_cortex() -> dict:
    """Hemisphere -> boolean over the fsLR-32k vertices, True on the cortex (the brainspace wheel's masks)."""
    members = {h: f"brainspace/datasets/surfaces/conte69_32k_{s}_mask.csv" for h, s in (("L", "lh"), ("R", "rh"))}
    data = read_members(BRAINSPACE_WHEEL, list(members.values()))
    return {h: np.loadtxt(io.BytesIO(data[m])).astype(bool) for h, m in members.items()}


def _write_cifti(func: Path, stem: str, geometry, data, tr) -> None:
    """One ``space-fsLR_den-91k_bold.dtseries.nii``: left then right cortex, the geometry's columns."""
    axes = None
    for hemi, name in (("L", "CortexLeft"), ("R", "CortexRight")):
        mask = np.zeros(geometry.n_mesh_vertices[hemi], dtype=bool)
        mask[geometry.vertex[geometry.hemisphere_columns(hemi)]] = True
        axis = nib.cifti2.BrainModelAxis.from_mask(mask, name=name)
        axes = axis if axes is None else axes + axis
    series = nib.cifti2.SeriesAxis(start=0, step=tr, size=data.shape[0], unit="SECOND")
    name = f"{stem}_space-fsLR_den-91k_bold"
    atomic_write_bytes(func / f"{name}.dtseries.nii", nib.Cifti2Image(data, header=(series, axes)).to_bytes())
    write_json(func / f"{name}.json", {"RepetitionTime": tr, "TaskName": TASK, "Simulated": True,
                                       "Note": SIMULATED_NOTE})


def _write_run(root: Path, subject: str, geometry, data, tr, motion, fd, nuisance) -> None:
    func = root / f"sub-{subject}" / "func"
    stem = f"sub-{subject}_task-{TASK}"
    if geometry.space == "fsLR":
        _write_cifti(func, stem, geometry, data, tr)
    for hemi in ("L", "R") if geometry.space == SPACE else ():
        columns = geometry.hemisphere_columns(hemi)
        gifti = nib.gifti.GiftiImage(darrays=[
            nib.gifti.GiftiDataArray(np.ascontiguousarray(volume), intent="NIFTI_INTENT_TIME_SERIES",
                                     datatype="NIFTI_TYPE_FLOAT32")
            for volume in data[:, columns]])
        name = f"{stem}_hemi-{hemi}_space-{SPACE}_bold"
        atomic_write_bytes(func / f"{name}.func.gii", gifti.to_bytes())
        write_json(func / f"{name}.json", {"RepetitionTime": tr, "TaskName": TASK, "Simulated": True,
                                           "Note": SIMULATED_NOTE})
    table = {}
    table.update(_expansions("global_signal", data.mean(axis=1, dtype=np.float64)))
    table.update(_expansions("white_matter", nuisance[:, 0]))
    table.update(_expansions("csf", nuisance[:, 1]))
    for i, name in enumerate(("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")):
        table.update(_expansions(name, motion[:, i]))
    table["framewise_displacement"] = fd
    # no volume is simulated, so DVARS is the vertex-wise one (RMS of the temporal derivative)
    dvars = np.r_[np.nan, np.sqrt(np.mean(np.diff(data, axis=0) ** 2, axis=1))]
    table["dvars"] = dvars
    table["std_dvars"] = dvars / np.nanmedian(dvars)
    cosines = cosine_basis(data.shape[0], tr)
    for k in range(cosines.shape[1]):
        table[f"cosine{k:02d}"] = cosines[:, k]
    confounds = func / f"{stem}_desc-confounds_timeseries.tsv"
    write_tsv(confounds, pd.DataFrame(table))
    write_json(confounds.with_suffix(".json"), {
        "global_signal": {"Description": "mean of the cortical vertices (SIMULATED)"},
        "white_matter": {"Description": "SIMULATED non-cortical nuisance signal (no volume is simulated)"},
        "csf": {"Description": "SIMULATED non-cortical nuisance signal (no volume is simulated)"},
        "std_dvars": {"Description": "vertex-wise DVARS divided by its median (SIMULATED; not Nichols 2013)"},
        "Simulated": True})


def _write_description(root: Path, space: str) -> None:
    write_json(root / "dataset_description.json", {
        "Name": f"SIMULATED {space} surface cohort (trdnet)", "BIDSVersion": "1.9.0",
        "DatasetType": "derivative", "Simulated": True, "Note": SIMULATED_NOTE,
        "GeneratedBy": [{"Name": "trdnet simulator (surface mode)"}]})
    atomic_write_text(root / "participants.tsv", "participant_id\n" + "".join(
        f"{p.name}\n" for p in sorted(root.glob("sub-*"))))
