"""Per-run core benchmark: trdnet vs a plain-nilearn pipeline vs the floor.

For each run length (default 300 and 1,200 volumes) a SIMULATED run is written
to a temporary folder (2 mm MNI grid, float32 ``.nii.gz``, fMRIPrep-style
confounds with FD spikes so both sides censor the same volumes). Then, in
alternation, each side runs in a fresh subprocess: the floor (decompress +
gather + one T x T product + z-score + seed correlation), trdnet's core and
the nilearn reference. Reported: median time of the work (after imports) and
of the whole process, peak RSS measured by the kernel for that process, ratios,
and the agreement of the two seed maps and peak targets.
Writes ``results/core.tsv`` and ``results/core.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import run_child  # noqa: E402
from synthetic import write_run  # noqa: E402
from tables import load_average, write_tables  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TR = {300: 2.0, 1200: 0.72}  # a 10-minute scan and an HCP-length run


def bench_length(work: Path, n_volumes: int, repeats: int, reference_repeats: int, log,
                 censoring: bool = True, memory_limit_gib: float | None = None) -> list[dict]:
    """Benchmark one run length (with or without FD censoring); return one row per side.

    A nilearn reference that runs out of memory is recorded as such (no time,
    its peak RSS up to the failure) instead of stopping the benchmark.
    """
    tr = TR.get(n_volumes, 2.0)
    label = f"[{n_volumes} volumes, {'censored' if censoring else 'uncensored'}]"
    log(f"{label} writing the simulated run (TR {tr} s)")
    paths = write_run(work / f"run{n_volumes}", n_volumes, tr, seed=n_volumes, censoring=censoring)
    size_mib = paths["bold"].stat().st_size / 2**20
    samples: dict[str, list[dict]] = {"floor": [], "trdnet": [], "nilearn": []}
    scripts = {"floor": "floor.py", "trdnet": "trdnet_core.py", "nilearn": "reference_nilearn.py"}
    for i in range(max(repeats, reference_repeats)):
        for side in ("floor", "trdnet", "nilearn"):
            wanted = reference_repeats if side == "nilearn" else repeats
            if i >= wanted:
                continue
            limit = memory_limit_gib if side == "nilearn" else None
            result = run_child(scripts[side], paths["root"], work / f"{side}.npz", memory_limit_gib=limit)
            samples[side].append(result)
            outcome = result["error"] or f"work {float(result['work_s']):.1f} s"
            log(f"{label} {side} #{i + 1}: {outcome}, process {result['process_s']:.1f} s, "
                f"peak RSS {result['peak_rss_mib']:.0f} MiB")
    shutil.rmtree(paths["root"], ignore_errors=True)

    ours = samples["trdnet"][-1]
    finished = [s for s in samples["nilearn"] if not s["error"]]
    agreement = _agreement(ours, finished[-1]) if finished else {}
    floor_work = _median_work(samples["floor"])
    ref_work = _median_work(samples["nilearn"])
    rows = []
    for side, runs in samples.items():
        work_s = _median_work(runs)
        rows.append({
            "n_volumes": n_volumes,
            "tr_s": tr,
            "censoring": "FD > 0.5 mm" if censoring else "none",
            "side": side,
            "repeats": len(runs),
            "failed": "; ".join(sorted({s["error"] for s in runs if s["error"]})),
            "median_work_s": work_s,
            "median_process_s": float(np.median([s["process_s"] for s in runs if not s["error"]] or [np.nan])),
            "max_peak_rss_mib": float(max(s["peak_rss_mib"] for s in runs)),
            "speedup_vs_nilearn": ref_work / work_s,
            "ratio_to_floor": work_s / floor_work,
            "n_retained": int(ours["n_retained"]),
            "bold_gz_mib": size_mib,
            **({key: value if side != "floor" else np.nan for key, value in agreement.items()}
               if agreement else {}),
        })
    if agreement:
        log(f"{label} seed map max |diff| {agreement['seed_map_max_abs_diff']:.2e}, target distance "
            f"{agreement['target_distance_mm']:.2f} mm, retained {int(ours['n_retained'])} vs "
            f"{int(finished[-1]['n_retained'])}")
        if int(ours["n_retained"]) != int(finished[-1]["n_retained"]):
            raise RuntimeError("trdnet and nilearn retained different numbers of volumes")
    return rows


def _median_work(runs: list[dict]) -> float:
    """Median work time of the runs that finished (NaN when none did)."""
    times = [float(s["work_s"]) for s in runs if not s["error"]]
    return float(np.median(times)) if times else float("nan")


def _agreement(ours: dict, ref: dict) -> dict:
    """Seed map, target, search region and ROI correlations: trdnet vs the nilearn reference."""
    return {
        "seed_map_max_abs_diff": float(np.max(np.abs(ours["seed_map"].astype(np.float64) - ref["seed_map"]))),
        "target_distance_mm": float(np.linalg.norm(ours["target_xyz"] - ref["target_xyz"])),
        "same_search_region": bool(np.array_equal(np.sort(ours["search_columns"]),
                                                   np.sort(ref["search_columns"]))),
        "roi_corr_max_abs_diff": float(np.max(np.abs(ours["connectivity"] - ref["connectivity"]))),
    }


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Command line: ``python bench_core.py [--volumes 300 1200] [--repeats 3] [--reference-repeats 3]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, nargs="+", default=[300, 1200])
    parser.add_argument("--repeats", type=int, default=3, help="runs of trdnet and of the floor")
    parser.add_argument("--reference-repeats", type=int, nargs="+", default=[3, 1],
                        help="runs of the nilearn reference, one value per run length (last one repeats)")
    parser.add_argument("--uncensored-volumes", type=int, nargs="*", default=[1200],
                        help="run lengths measured a second time without FD censoring (nilearn's "
                             "censoring interpolation needs more memory than the machine may have)")
    parser.add_argument("--memory-limit-gib", type=float, default=_default_memory_limit(),
                        help="address-space limit of the nilearn reference child")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="trdnet-bench-") as tmp:
        for i, n in enumerate(args.volumes):
            ref_repeats = args.reference_repeats[min(i, len(args.reference_repeats) - 1)]
            for censoring in (True, False) if n in args.uncensored_volumes else (True,):
                rows += bench_length(Path(tmp), n, args.repeats, ref_repeats, log, censoring=censoring,
                                     memory_limit_gib=args.memory_limit_gib)
            # Written after every run length, so a long run leaves partial results.
            table = pd.DataFrame(rows)
            write_tables(table, args.results / "core.tsv", args.results / "core.md",
                         "Per-run core: trdnet vs plain nilearn (SIMULATED data)",
                         _notes(table, args.memory_limit_gib))
    return table


def _default_memory_limit() -> float:
    """85% of the machine's memory, in GiB (the reference fails cleanly beyond it)."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 16.0
    return round(0.85 * pages / 2**30, 1)


def _notes(table: pd.DataFrame, memory_limit_gib: float) -> list[str]:
    try:
        from trdnet.stream import decompressor_name

        decompressor = decompressor_name()
    except ImportError:
        decompressor = "unknown"
    return [
        "SIMULATED float32 runs on nilearn's MNI152 2 mm brain-mask grid (99 x 117 x 95, 235,375 in-brain voxels); "
        "TR 2.0 s at 300 volumes, 0.72 s at 1,200; 24 motion + WM + CSF + GS; censoring 'FD > 0.5 mm': motion "
        "spikes in 4% of volumes, censored with scrub 5 and interpolated before filtering; 'none': no spikes, "
        "so the same settings censor nothing.",
        f"The nilearn reference runs under a {memory_limit_gib:g} GiB address-space limit (default: 85% of the machine's memory); "
        "'failed' records a MemoryError there, with the peak RSS reached before it.",
        "work = wall time after imports inside the child; process = whole subprocess incl. interpreter start "
        "and imports; peak RSS = ru_maxrss of that one child from os.wait4 (kernel-measured, outside the child).",
        "Ratios use median work time. floor = decompress + gather + one float32 T x T product + z-score + "
        "seed correlation, measured in the same run.",
        "seed map / target agreement: last trdnet run vs last nilearn run, same inputs and settings; "
        "the seed sphere of the simulated data is homogeneous so that nilearn's mean-then-clean and "
        "trdnet's mean of z-scored voxels coincide. ROI correlation difference is informational "
        "(nilearn averages raw voxels, trdnet z-scored ones).",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"gzip via {decompressor}, 1-min load average at the end {load_average():.1f}.",
    ]


if __name__ == "__main__":
    main()
