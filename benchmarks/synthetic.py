"""Write one SIMULATED fMRIPrep-style run on the 2 mm MNI grid for the benchmarks.

The run is streamed to disk block by block (the full 4D array is never held):
a ``.nii.gz`` float32 BOLD image on nilearn's MNI152 2 mm brain-mask grid
(99 x 117 x 95, 235,375 in-brain voxels), the brain mask, a confounds TSV with
fMRIPrep's column names (24 motion parameters, WM, CSF, global signal and their
expansions, framewise displacement with spikes so that censoring happens,
std DVARS) and a JSON sidecar with the repetition time.

Signal model (arbitrary units): every voxel is a baseline plus loadings on a
few band-limited latent signals (sgACC, DMN, SN, ECN, global), a motion term
and white noise. A left-DLPFC patch centred near BA46 loads negatively on the
sgACC latent, so the sgACC seed map has a clear most-negative voxel. The
voxels of the sgACC seed sphere share ONE time series (up to a per-voxel scale
and baseline): the mean of raw voxels (nilearn's ``NiftiSpheresMasker``) and the
mean of z-scored voxels (trdnet's seed signal) are then the same signal, so the
two seed maps can be compared to float32 precision. With ``seed_heterogeneity``
above 0 every seed voxel adds its own band-limited signal and noise, as real
voxels do, and the two seed signals differ (``bench_seed.py`` measures by how much).
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn import datasets

SPACE = "MNI152NLin2009cAsym"
SEED_CENTER_MM = (6.0, 16.0, -10.0)
SEED_RADIUS_MM = 10.0
PATCH_CENTER_MM = (-42.0, 40.0, 30.0)
PATCH_SIGMA_MM = 6.0
MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
LATENTS = ("sgacc", "dmn", "sn", "ecn", "global")
NETWORK_NODES = {  # Raichle-style node centres (MNI152 RAS mm), as in trdnet's raichle_nodes preset
    "dmn": [(0, -52, 27), (-1, 54, 27), (-46, -66, 30), (49, -63, 33)],
    "sn": [(0, 21, 36), (-41, 3, 6), (41, 3, 6)],
    "ecn": [(0, 24, 46), (-44, 45, 0), (44, 45, 0), (-50, -51, 45), (50, -51, 45)],
}


def _band_limited(rng: np.random.Generator, n_times: int, n_signals: int, tr: float) -> np.ndarray:
    """Unit-variance noise restricted to 0.01-0.1 Hz (FFT masking)."""
    spectrum = np.fft.rfft(rng.standard_normal((n_times, n_signals)), axis=0)
    freqs = np.fft.rfftfreq(n_times, d=tr)
    spectrum[(freqs < 0.01) | (freqs > 0.1)] = 0.0
    out = np.fft.irfft(spectrum, n=n_times, axis=0)
    return out / out.std(axis=0)


def _motion(rng: np.random.Generator, n_times: int, spike_fraction: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    """Six motion parameters (mm, radians) with spikes, and framewise displacement."""
    motion = np.cumsum(rng.normal(0, 0.02, size=(n_times, 6)), axis=0)
    motion[:, 3:] *= 0.01
    n_spikes = int(spike_fraction * n_times)
    for t in rng.choice(np.arange(10, n_times - 10), size=n_spikes, replace=False):
        motion[t:, :3] += rng.choice([-1, 1], size=3) * rng.uniform(0.3, 0.8, size=3)
    diffs = np.abs(np.diff(motion, axis=0))
    fd = np.r_[np.nan, diffs[:, :3].sum(axis=1) + 50 * diffs[:, 3:].sum(axis=1)]
    return motion, fd


def _in_spheres(xyz: np.ndarray, centers, radius: float) -> np.ndarray:
    inside = np.zeros(len(xyz), dtype=bool)
    for c in centers:
        inside |= np.linalg.norm(xyz - np.asarray(c, float), axis=1) <= radius
    return inside


def _write_header(stream, shape: tuple[int, ...], affine: np.ndarray, tr: float) -> None:
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.float32)
    header.set_qform(affine, code=4)
    header.set_sform(affine, code=4)
    header.set_xyzt_units("mm", "sec")
    header["pixdim"][4] = tr
    header["vox_offset"] = 352
    stream.write(header.binaryblock)
    stream.write(b"\0" * (352 - len(header.binaryblock)))


def _open_gzip_writer(path: Path):
    try:
        from isal import igzip_threaded

        return igzip_threaded.open(path, "wb", compresslevel=1, threads=2)
    except ImportError:
        import gzip

        return gzip.open(path, "wb", compresslevel=1)


def write_run(root: Path, n_volumes: int, tr: float, seed: int = 0, block: int = 50,
              censoring: bool = True, seed_heterogeneity: float = 0.0) -> dict:
    """Write one simulated run in fMRIPrep layout under ``root``.

    Parameters
    ----------
    root : Path
        Derivatives folder to create (``root/sub-01/func/...``).
    n_volumes : int
    tr : float
        Repetition time, seconds.
    seed : int
        Random seed (same inputs -> same files).
    block : int
        Volumes generated and written per block (bounds the writer's memory).
    censoring : bool
        Motion spikes in 4% of the volumes so that FD censoring happens; without
        them no volume exceeds the FD and DVARS thresholds.
    seed_heterogeneity : float
        0: the seed voxels share one time series. Above 0: each seed voxel adds
        its own band-limited signal and white noise, each with this standard
        deviation relative to the shared signal's (the rest of the run is
        unchanged for the same ``seed``).

    Returns
    -------
    dict
        ``bold``, ``mask``, ``confounds`` paths, ``root``, ``tr``, ``n_volumes``.
    """
    own_rng = np.random.default_rng([seed, 1])  # the seed voxels' own signals, apart from the rest of the run
    rng = np.random.default_rng(seed)
    root = Path(root)
    func = root / "sub-01" / "func"
    func.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({
        "Name": "trdnet benchmark (SIMULATED)", "BIDSVersion": "1.8.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "trdnet benchmarks (simulated data)"}]}))
    stem = "sub-01_task-rest"
    mask_img = datasets.load_mni152_brain_mask(resolution=2)
    mask = np.asanyarray(mask_img.dataobj) > 0
    affine = mask_img.affine
    mask_path = func / f"{stem}_space-{SPACE}_desc-brain_mask.nii.gz"
    out_mask = nib.Nifti1Image(mask.astype(np.uint8), affine)
    out_mask.header.set_qform(affine, code=4)
    out_mask.header.set_sform(affine, code=4)
    nib.save(out_mask, mask_path)

    ijk = np.argwhere(mask)
    xyz = nib.affines.apply_affine(affine, ijk)
    n_vox = len(ijk)
    gather = np.ravel_multi_index(ijk.T, mask.shape, order="F")
    grid_size = int(np.prod(mask.shape))

    latents = _band_limited(rng, n_volumes, len(LATENTS), tr)
    motion, fd = _motion(rng, n_volumes, spike_fraction=0.04 if censoring else 0.0)
    loadings = (0.3 * rng.standard_normal((len(LATENTS), n_vox))).astype(np.float32)
    loadings[LATENTS.index("global")] = 0.5
    for name, centers in NETWORK_NODES.items():
        nodes = _in_spheres(xyz, centers, 8.0)
        loadings[LATENTS.index(name), nodes] += 1.5
    patch = np.exp(-0.5 * (np.linalg.norm(xyz - PATCH_CENTER_MM, axis=1) / PATCH_SIGMA_MM) ** 2)
    loadings[LATENTS.index("sgacc")] -= (1.2 * patch).astype(np.float32)
    motion_coupling = (0.5 * rng.standard_normal((3, n_vox))).astype(np.float32)
    baseline = (1000.0 * (1.0 + 0.1 * rng.standard_normal(n_vox))).astype(np.float32)
    seed = _in_spheres(xyz, [SEED_CENTER_MM], SEED_RADIUS_MM)
    seed_scale = rng.uniform(0.5, 2.0, size=int(seed.sum())).astype(np.float32)
    # The seed sphere's one shared signal: sgACC latent, global, motion and noise.
    shared = (
        2.0 * latents[:, LATENTS.index("sgacc")] + 0.5 * latents[:, LATENTS.index("global")]
        + 0.5 * motion[:, 0] + rng.standard_normal(n_volumes)
    ).astype(np.float32)

    own = None
    if seed_heterogeneity > 0:
        n_seed = int(seed.sum())
        own = seed_heterogeneity * shared.std() * (
            _band_limited(own_rng, n_volumes, n_seed, tr) + own_rng.standard_normal((n_volumes, n_seed)))
        own = own.astype(np.float32)

    global_signal = np.empty(n_volumes)
    bold_path = func / f"{stem}_space-{SPACE}_desc-preproc_bold.nii.gz"
    volumes = np.zeros((block, grid_size), dtype=np.float32)
    with _open_gzip_writer(bold_path) as stream:
        _write_header(stream, (*mask.shape, n_volumes), affine, tr)
        for start in range(0, n_volumes, block):
            count = min(block, n_volumes - start)
            t = slice(start, start + count)
            data = rng.standard_normal((count, n_vox), dtype=np.float32)
            data += latents[t].astype(np.float32) @ loadings
            data += motion[t, :3].astype(np.float32) @ motion_coupling
            data[:, seed] = (shared[t, None] if own is None else shared[t, None] + own[t]) * seed_scale
            data *= 10.0
            data += baseline
            global_signal[t] = data.mean(axis=1, dtype=np.float64)
            volumes[:count, gather] = data
            stream.write(volumes[:count].tobytes())

    confounds = _confounds_table(rng, motion, fd, global_signal, latents[:, LATENTS.index("global")])
    confounds_path = func / f"{stem}_desc-confounds_timeseries.tsv"
    confounds.to_csv(confounds_path, sep="\t", index=False, na_rep="n/a")
    confounds_path.with_suffix(".json").write_text("{}")
    bold_path.with_name(bold_path.name.replace(".nii.gz", ".json")).write_text(
        json.dumps({"RepetitionTime": tr, "TaskName": "rest", "SkullStripped": False}))
    return {"bold": bold_path, "mask": mask_path, "confounds": confounds_path, "root": root,
            "tr": tr, "n_volumes": n_volumes, "fd": fd}


def _confounds_table(rng, motion, fd, global_signal, global_latent) -> pd.DataFrame:
    n = len(fd)
    table: dict[str, np.ndarray] = {}

    def expand(name, column):
        derivative = np.r_[np.nan, np.diff(column)]
        table[name] = column
        table[f"{name}_derivative1"] = derivative
        table[f"{name}_power2"] = column**2
        table[f"{name}_derivative1_power2"] = derivative**2

    for name, column in zip(MOTION, motion.T):
        expand(name, column)
    expand("global_signal", global_signal)
    expand("white_matter", 0.5 * global_latent + rng.standard_normal(n))
    expand("csf", 0.3 * global_latent + rng.standard_normal(n))
    table["framewise_displacement"] = fd
    std_dvars = np.r_[np.nan, 1.0 + np.abs(rng.normal(0, 0.1, n - 1))]
    table["std_dvars"] = std_dvars
    table["dvars"] = std_dvars * 10.0
    return pd.DataFrame(table)
