"""Magnitudes of real scans the realistic simulator is set against (and the same measures on the simulator).

Two real runs trdnet already reads (both fetched from PyPI wheels; see
``trdnet.inputs.brainfc`` and ``trdnet.inputs.lemon``):

- ``lemon_fsaverage5``: one MPI-LEMON participant on fsaverage5 (652 volumes,
  TR 1.4 s, about 15 minutes), already cleaned and band-passed by its provider;
- ``brainfc_rest01``: one participant, Schaefer-100 parcel means before temporal
  denoising (150 volumes, TR 2 s, 5 minutes); Schaefer-100 has no sgACC parcel.

Measured, each with and without global signal regression where it matters:

- the sgACC seed map over the left DLPFC search region (union of the four 20 mm
  spheres; Fox 2012 seed sphere (6, 16, -10), 10 mm): its 5th, 50th and 95th
  percentiles, minimum and standard deviation;
- its spatial smoothness: FWHM of a Gaussian field with the correlation measured
  between the maps' values at neighbouring vertices;
- the spatial smoothness of the data themselves (neighbouring vertices' time series);
- brainfc: the spread (SD) of all inter-parcel correlations after the project's
  default cleaning, and the lag-one autocorrelation of the parcel series after
  regression and detrending but before filtering.

The same map measures are taken on one simulated run of each preset with the
LEMON run's duration (456 volumes at TR 2 s), cleaned with the default
denoising. Output: ``results/real_scans.json`` (read by the simulator's
documentation; nothing is tuned on a method's score).

    python validation/calibrate_real.py [--out validation/results/real_scans.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from nilearn import signal as nsignal

from trdnet.config import Settings
from trdnet.inputs.simulate.parameters import DLPFC_SITES

SEED_MM = np.array([6.0, 16.0, -10.0])
SEED_RADIUS_MM = 10.0
SEARCH_RADIUS_MM = 20.0


def _fwhm_from_neighbour_correlation(rho: float, distance_mm: float) -> float:
    """FWHM (mm) of a Gaussian-smoothed white field whose correlation at ``distance_mm`` is ``rho``.

    Smoothing white noise with a Gaussian of SD ``s`` gives an autocorrelation
    ``exp(-d^2 / (4 s^2))``; FWHM = 2.3548 s.
    """
    if not 0 < rho < 1:
        return float("nan")
    return float(2.3548 * distance_mm / np.sqrt(-4.0 * np.log(rho)))


def _seed_map(data: np.ndarray, seed: np.ndarray) -> np.ndarray:
    z = (data - data.mean(0)) / data.std(0)
    s = z[:, seed].mean(1)
    s = (s - s.mean()) / s.std()
    return z.T @ s / len(s)


def _map_stats(r: np.ndarray) -> dict:
    return {"p05": float(np.percentile(r, 5)), "median": float(np.median(r)), "p95": float(np.percentile(r, 95)),
            "min": float(r.min()), "sd": float(r.std()), "n": int(r.size)}


def _search(xyz: np.ndarray) -> np.ndarray:
    sites = np.array(list(DLPFC_SITES.values()))
    d = np.linalg.norm(xyz[:, None] - sites[None], axis=2).min(1)
    return d <= SEARCH_RADIUS_MM


def lemon() -> dict:
    """Seed-map magnitudes and smoothness on the LEMON fsaverage5 run."""
    from trdnet.inputs.lemon import fetch_lemon_fsaverage5
    from trdnet.inputs.surface import read_gifti_series, standard_meshes, template_affine

    folder = Path(fetch_lemon_fsaverage5().cache_dir)
    meshes, _ = standard_meshes("fsaverage5")
    affine = template_affine("fsaverage5")
    data, xyz, edges, offset = [], [], [], 0
    for hemi in ("L", "R"):
        path = next(folder.rglob(f"*hemi-{hemi}_space-fsaverage5_bold.func.gii"))
        series = read_gifti_series(path)
        coords, faces = meshes[hemi]
        data.append(series)
        xyz.append(coords @ affine[:3, :3].T + affine[:3, 3])
        e = np.vstack([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [0, 2]]])
        edges.append(np.unique(np.sort(e, axis=1), axis=0) + offset)
        offset += coords.shape[0]
    data, xyz, edges = np.hstack(data).astype(float), np.vstack(xyz), np.vstack(edges)
    live = data.std(0) > 0
    hemi_left = np.arange(data.shape[1]) < meshes["L"][0].shape[0]
    seed = live & (np.linalg.norm(xyz - SEED_MM, axis=1) <= SEED_RADIUS_MM)
    search = live & hemi_left & _search(xyz)
    ok_edges = edges[live[edges].all(1)]
    lengths = np.linalg.norm(xyz[ok_edges[:, 0]] - xyz[ok_edges[:, 1]], axis=1)
    z = (data - data.mean(0)) / np.where(live, data.std(0), 1)
    edge_r = np.einsum("ti,ti->i", z[:, ok_edges[:, 0]], z[:, ok_edges[:, 1]]) / len(z)
    out = {"source": "MPI-LEMON sub-010188 ses-02 rest, fsaverage5, brainspace 0.3.0 wheel "
                     "(already cleaned and band-passed by the provider)",
           "n_volumes": int(len(data)), "tr_s": 1.4, "n_seed_vertices": int(seed.sum()),
           "median_edge_mm": float(np.median(lengths)),
           "data_neighbour_r": float(np.median(edge_r)),
           "data_fwhm_mm": _fwhm_from_neighbour_correlation(float(np.median(edge_r)), float(np.median(lengths)))}
    for label, use_gsr in (("gsr", True), ("no_gsr", False)):
        cleaned = data[:, live]
        if use_gsr:
            cleaned = nsignal.clean(cleaned, confounds=cleaned.mean(1, keepdims=True), detrend=False,
                                    standardize=None)
        full = np.zeros_like(data)
        full[:, live] = cleaned
        r = _seed_map(full[:, live], np.flatnonzero(seed[live]))
        r_full = np.full(data.shape[1], np.nan)
        r_full[live] = r
        in_search = ok_edges[search[ok_edges].all(1)]
        rho = float(np.corrcoef(r_full[in_search[:, 0]], r_full[in_search[:, 1]])[0, 1])
        out[f"seed_map_{label}"] = {**_map_stats(r_full[search]), "neighbour_r": rho,
                                    "fwhm_mm": _fwhm_from_neighbour_correlation(rho, float(np.median(lengths)))}
    return out


def brainfc() -> dict:
    """Parcel-level magnitudes of the brainfc rest01 run."""
    from trdnet.inputs.brainfc import fetch_brainfc_rest01

    folder = Path(fetch_brainfc_rest01().cache_dir)
    series = pd.read_csv(next(folder.rglob("*_seg-Schaefer100_timeseries.tsv")), sep="\t")
    confounds = pd.read_csv(next(folder.rglob("*desc-confounds_timeseries.tsv")), sep="\t")
    atlas = pd.read_csv(folder / "atlas-Schaefer100_dseg.tsv", sep="\t")
    motion = [c for c in ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z") if c in confounds]
    tissue = [c for c in ("white_matter", "csf") if c in confounds]
    conf = confounds[motion + tissue].to_numpy(float)
    data = series.to_numpy(float)
    residual = nsignal.clean(data, confounds=conf, detrend=True, standardize=None)
    ar1 = [float(np.corrcoef(residual[1:, j], residual[:-1, j])[0, 1]) for j in range(data.shape[1])]
    out = {"source": "brainfc 0.5.1 wheel, rest01: Schaefer-100 parcel means before temporal denoising",
           "n_volumes": int(len(data)), "tr_s": 2.0,
           "parcel_lag1_autocorrelation_unfiltered_median": float(np.median(ar1))}
    xyz = atlas[["x", "y", "z"]].to_numpy(float)
    nearest = int(np.argmin(np.linalg.norm(xyz - SEED_MM, axis=1)))
    left_pfc = (xyz[:, 0] < 0) & _search(xyz)
    out["seed_proxy_parcel"] = {"name": str(atlas["name"].iloc[nearest]),
                                "distance_to_fox2012_seed_mm": float(np.linalg.norm(xyz[nearest] - SEED_MM))}
    for label, gsr in (("gsr", True), ("no_gsr", False)):
        extra = [data.mean(1, keepdims=True)] if gsr else []
        cleaned = nsignal.clean(data, confounds=np.hstack([conf, *extra]), detrend=True, standardize="zscore_sample",
                                low_pass=0.1, high_pass=0.01, t_r=2.0, filter="butterworth")
        corr = np.corrcoef(cleaned, rowvar=False)
        off = corr[np.triu_indices_from(corr, 1)]
        out[f"inter_parcel_r_{label}"] = _map_stats(off)
        out[f"seed_proxy_to_left_dlpfc_parcels_{label}"] = _map_stats(corr[nearest, left_pfc])
    return out


def simulated(preset: str, n_volumes: int = 456, resolution_mm: int = 3, random_state: int = 7,
              **overrides) -> dict:
    """The LEMON map measures on one simulated run of ``preset``, cleaned with the default denoising."""
    from trdnet.denoise import clean_run
    from trdnet.inputs.bids import find_runs
    from trdnet.inputs.simulate import simulate_cohort

    with tempfile.TemporaryDirectory() as tmp:
        cohort = simulate_cohort(tmp, n_subjects=1, n_volumes=n_volumes, resolution_mm=resolution_mm,
                                 random_state=random_state, anatomy=False, preset=preset,
                                 **overrides)
        run = find_runs(cohort.fmriprep_dir)[0]
        cleaned = clean_run(run, Settings().denoise)
    xyz = cleaned.space.xyz
    data = np.asarray(cleaned.data, float)
    seed = np.flatnonzero(np.linalg.norm(xyz - SEED_MM, axis=1) <= SEED_RADIUS_MM)
    r = _seed_map(data, seed)
    search = _search(xyz) & (xyz[:, 0] < 0)
    # Neighbours along x on the grid (one voxel apart).
    key = {tuple(np.round(p, 3)): i for i, p in enumerate(xyz)}
    pairs = [(i, key[k]) for i, p in enumerate(xyz)
             if (k := tuple(np.round(p + [resolution_mm, 0, 0], 3))) in key]
    pairs = np.array(pairs)
    edge_r = np.einsum("ti,ti->i", data[:, pairs[:, 0]], data[:, pairs[:, 1]]) / len(data)
    s_pairs = pairs[search[pairs].all(1)]
    rho = float(np.corrcoef(r[s_pairs[:, 0]], r[s_pairs[:, 1]])[0, 1])
    return {"preset": preset, "overrides": overrides, "n_volumes": n_volumes, "tr_s": 2.0, "resolution_mm": resolution_mm,
            "data_neighbour_r": float(np.median(edge_r)),
            "data_fwhm_mm": _fwhm_from_neighbour_correlation(float(np.median(edge_r)), resolution_mm),
            "seed_map_gsr": {**_map_stats(r[search]), "neighbour_r": rho,
                             "fwhm_mm": _fwhm_from_neighbour_correlation(rho, resolution_mm)}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "real_scans.json"))
    parser.add_argument("--presets", nargs="*", default=["realistic", "easy"])
    args = parser.parse_args(argv)
    record = {"lemon_fsaverage5": lemon(), "brainfc_rest01": brainfc(),
              "simulated": [simulated(p) for p in args.presets],
              "note": "seed: Fox 2012 sphere (6, 16, -10), 10 mm; search: left-hemisphere union of the four "
                      "20 mm DLPFC spheres; data are real for lemon/brainfc, SIMULATED for 'simulated'"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
