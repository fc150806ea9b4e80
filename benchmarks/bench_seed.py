"""Seed-map agreement with plain nilearn when the sgACC seed's voxels differ from each other.

``bench_core.py`` gives every seed voxel one shared time series, so trdnet's seed
signal (the mean of z-scored, cleaned voxels) and nilearn's (``NiftiSpheresMasker``:
the mean of raw voxels, then cleaned) are the same signal and the two seed maps
agree to float32 precision by construction. Here each seed voxel adds its own
band-limited signal and noise (``--heterogeneity``, relative to the shared signal),
so the two averages weigh the voxels differently; reported: the largest and the
median difference of the seed maps, their correlation, and the distance between
the two peak targets. Same children as ``bench_core.py`` (one run of each side).
Writes ``results/seed.tsv`` and ``results/seed.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import TR, _agreement, _default_memory_limit  # noqa: E402
from measure import run_child  # noqa: E402
from synthetic import write_run  # noqa: E402
from tables import machine_note, write_tables  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def compare(work: Path, n_volumes: int, heterogeneity: float, memory_limit_gib: float, log) -> dict:
    """One simulated run, trdnet's core and the nilearn reference once each; their agreement."""
    tr = TR.get(n_volumes, 2.0)
    paths = write_run(work / f"run{n_volumes}_{heterogeneity:g}", n_volumes, tr, seed=n_volumes,
                      seed_heterogeneity=heterogeneity)
    ours = run_child("trdnet_core.py", paths["root"], work / "trdnet.npz")
    ref = run_child("reference_nilearn.py", paths["root"], work / "nilearn.npz", memory_limit_gib=memory_limit_gib)
    if ref["error"]:
        raise RuntimeError(f"the nilearn reference failed: {ref['error']}")
    ours_map, ref_map = ours["seed_map"].astype(np.float64), ref["seed_map"].astype(np.float64)
    row = {"n_volumes": n_volumes, "tr_s": tr, "seed_heterogeneity": heterogeneity,
           **_agreement(ours, ref),
           "seed_map_median_abs_diff": float(np.median(np.abs(ours_map - ref_map))),
           "seed_map_correlation": float(np.corrcoef(ours_map, ref_map)[0, 1])}
    log(f"[{n_volumes} volumes, heterogeneity {heterogeneity:g}] max |diff| {row['seed_map_max_abs_diff']:.3g}, "
        f"target distance {row['target_distance_mm']:.1f} mm")
    return row


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Command line: ``python bench_seed.py [--volumes 150] [--heterogeneity 1]`` (0 repeats bench_core's case)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=150,
                        help="run length (the nilearn reference needs about 4 GiB and minutes per 150 volumes)")
    parser.add_argument("--heterogeneity", type=float, nargs="+", default=[1.0],
                        help="standard deviation of each seed voxel's own signal and of its own noise, "
                             "relative to the shared signal (0: one shared series, as in bench_core.py)")
    parser.add_argument("--memory-limit-gib", type=float, default=_default_memory_limit())
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="trdnet-bench-seed-") as tmp:
        table = pd.DataFrame([compare(Path(tmp), args.volumes, h, args.memory_limit_gib, log)
                              for h in args.heterogeneity])
    write_tables(table, args.results / "seed.tsv", args.results / "seed.md",
                 "Seed map: trdnet vs plain nilearn with a homogeneous and a heterogeneous seed (SIMULATED data)",
                 ["Same simulated run as bench_core.py (2 mm MNI grid, FD censoring) except the seed voxels: at "
                  "heterogeneity 0 they share one time series (the maps agree by construction); above 0 each adds "
                  "its own band-limited signal and white noise of that relative size.",
                  "trdnet's seed signal is the mean of the z-scored cleaned voxels; nilearn's NiftiSpheresMasker "
                  "averages the raw voxels and then cleans, weighting each voxel by its amplitude.",
                  machine_note()])
    return table


if __name__ == "__main__":
    main()
