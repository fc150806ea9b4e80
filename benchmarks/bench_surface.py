"""Surface-run benchmark: trdnet's surface path vs a plain nibabel + nilearn surface pipeline.

A SIMULATED fsaverage5 run (``trdnet.inputs.simulate.surface``: fMRIPrep-shaped
GIFTI per hemisphere, confounds with motion, a planted anticorrelated DLPFC
target) is written to a temporary folder for each run length. Then, in
alternation, each side runs in a fresh subprocess (``spawn.py``, peak RSS from
``os.wait4``): trdnet (``trdnet_surface.py``: read, clean, seed map, peak target
on the mesh, node connectivity) and the same analysis with nibabel and nilearn
only (``reference_nilearn_surface.py``). Reported as ratios (time and peak
memory, nilearn / trdnet) beside the agreement of the two seed maps and targets.
Writes ``results/surface.tsv`` and ``results/surface.md``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import run_child  # noqa: E402
from tables import machine_note, write_tables  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SIDES = {"trdnet": "trdnet_surface.py", "nilearn": "reference_nilearn_surface.py"}


def bench_length(work: Path, n_volumes: int, repeats: int, log) -> dict:
    """One simulated fsaverage5 run of ``n_volumes`` (TR 2 s), both sides ``repeats`` times; one row."""
    from trdnet.inputs.simulate.surface import simulate_surface_cohort

    folder = work / f"run{n_volumes}"
    simulate_surface_cohort(folder, n_subjects=1, n_volumes=n_volumes, random_state=n_volumes)
    root = folder / "fmriprep"
    samples = {side: [] for side in SIDES}
    for i in range(repeats):
        for side, script in SIDES.items():
            result = run_child(script, root, work / f"{side}.npz")
            samples[side].append(result)
            log(f"[{n_volumes} volumes] {side} #{i + 1}: work {float(result['work_s']):.1f} s, "
                f"peak RSS {result['peak_rss_mib']:.0f} MiB")
    shutil.rmtree(folder, ignore_errors=True)
    ours, ref = samples["trdnet"][-1], samples["nilearn"][-1]
    work_s = {side: float(np.median([float(s["work_s"]) for s in runs])) for side, runs in samples.items()}
    rss = {side: float(max(s["peak_rss_mib"] for s in runs)) for side, runs in samples.items()}
    both = np.isfinite(ours["seed_map"]) & np.isfinite(ref["seed_map"])
    return {
        "n_volumes": n_volumes,
        "repeats": repeats,
        "trdnet_work_s": work_s["trdnet"],
        "nilearn_work_s": work_s["nilearn"],
        "time_ratio_nilearn_to_trdnet": work_s["nilearn"] / work_s["trdnet"],
        "trdnet_peak_rss_mib": rss["trdnet"],
        "nilearn_peak_rss_mib": rss["nilearn"],
        "memory_ratio_nilearn_to_trdnet": rss["nilearn"] / rss["trdnet"],
        "same_vertices": bool(np.array_equal(np.isfinite(ours["seed_map"]), np.isfinite(ref["seed_map"]))),
        "seed_map_max_abs_diff": float(np.max(np.abs(ours["seed_map"][both] - ref["seed_map"][both]))),
        "same_search_region": bool(np.array_equal(ours["search_vertices"], ref["search_vertices"])),
        "target_distance_mm": float(np.linalg.norm(ours["target_xyz"] - ref["target_xyz"])),
        "roi_corr_max_abs_diff": float(np.max(np.abs(ours["connectivity"] - ref["connectivity"]))),
        "n_retained": int(ours["n_retained"]),
    }


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Command line: ``python bench_surface.py [--volumes 300 1200] [--repeats 3]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, nargs="+", default=[300, 1200])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="trdnet-bench-surface-") as tmp:
        for n in args.volumes:
            rows.append(bench_length(Path(tmp), n, args.repeats, log))
            table = pd.DataFrame(rows)  # written after every run length, so a long run leaves partial results
            write_tables(table, args.results / "surface.tsv", args.results / "surface.md",
                         "Surface run: trdnet vs plain nibabel + nilearn on fsaverage5 (SIMULATED data)", [
                             "SIMULATED fsaverage5 GIFTI runs (trdnet.inputs.simulate.surface, TR 2 s), fMRIPrep "
                             "confounds; both sides: 24 motion + WM + CSF + GS, scrub 5 at FD > 0.5 mm, detrend, "
                             "0.01-0.1 Hz Butterworth, z-score; sgACC seed = vertices within 10 mm of MNI152 "
                             "(6, 16, -10); Fox 2012 peak in the left-hemisphere search region (20 mm of four sites); "
                             "Raichle-style nodes (6 mm).",
                             "work = wall time after imports inside the child (median of the repeats); peak RSS = "
                             "ru_maxrss of that child from os.wait4; ratios are nilearn / trdnet.",
                             "The ROI correlation difference is informational (nilearn's side averages its cleaned "
                             "vertices, trdnet z-scored cleaned ones).",
                             machine_note()])
    return table


if __name__ == "__main__":
    main()
