"""Targeting validation study on SIMULATED cohorts with known (planted) targets.

For every cell of a grid of scan lengths, noise levels and effect sizes, a
simulated cohort is written (:func:`trdnet.inputs.simulate.simulate_cohort`),
each run is cleaned once and every targeting method is applied. The
``seedmap`` method uses a leave-one-out group map: the mean Fisher-z sgACC map
of the other participants of the same cell. Distances are measured in
MNI152NLin2009cAsym world RAS millimetres against the planted patch centre.

Outputs (in ``--out``):

- ``validation_participants.tsv``: one row per participant and method.
- ``validation.tsv``: one row per cell and method: median and 90th-percentile
  error, median split-half distance, and the coverage of ``bootstrap_r95_mm``
  (fraction of participants whose true error is at most their r95).
- ``validation.md``: the summary as a markdown table.
- ``validation.png``: error and split-half against scan length.

Run ``python validation/run_validation.py --help``. All data are simulated.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from trdnet.config import MNI_SPACE, Settings
from trdnet.denoise import clean_run
from trdnet.errors import TargetingError
from trdnet.inputs.bids import find_runs
from trdnet.inputs.simulate import simulate_cohort
from trdnet.targeting import compute_targets, group_mean_map, seed_columns, seed_map

ALL_METHODS = ("peak", "cluster", "seedmap", "hierarchical")
TR = 2.0


@dataclasses.dataclass(frozen=True)
class StudyGrid:
    """The cells of the study and the per-cell cohort size."""

    minutes: tuple[float, ...] = (5.0, 10.0, 20.0)
    noise: tuple[float, ...] = (1.0, 2.0)
    effect_size: tuple[float, ...] = (0.5, 0.8)
    n_participants: int = 6
    n_bootstrap: int = 30
    resolution_mm: int = 3
    seed: int = 2026

    def cells(self, only_minutes=None) -> list[dict]:
        """One dict per cell with a fixed, distinct random seed.

        ``only_minutes`` keeps only those scan lengths; seeds stay those of the full grid.
        """
        out = []
        for i, (minutes, noise, effect) in enumerate(
            itertools.product(self.minutes, self.noise, self.effect_size)
        ):
            out.append({"minutes": minutes, "noise": noise, "effect_size": effect,
                        "random_state": self.seed + i})
        return [c for c in out if only_minutes is None or c["minutes"] in only_minutes]


QUICK_GRID = StudyGrid(minutes=(4.0,), noise=(1.0,), effect_size=(0.8,), n_participants=3,
                       n_bootstrap=5)


def run_cell(cell: dict, grid: StudyGrid, methods: tuple[str, ...], workdir: Path) -> pd.DataFrame:
    """Simulate one cohort, target every participant with every method.

    Parameters
    ----------
    cell : dict
        ``minutes``, ``noise``, ``effect_size``, ``random_state``.
    grid : StudyGrid
    methods : tuple of str
        Targeting methods (names of :data:`trdnet.targeting.METHODS`).
    workdir : Path
        Folder for the simulated cohort files.

    Returns
    -------
    pandas.DataFrame
        One row per participant and method: planted and found target (world
        RAS mm), ``error_mm``, ``split_half_mm``, ``bootstrap_r95_mm``.
    """
    n_volumes = int(round(cell["minutes"] * 60.0 / TR))
    name = "min{minutes:g}_noise{noise:g}_effect{effect_size:g}".format(**cell)
    cohort = simulate_cohort(
        workdir / name, n_subjects=grid.n_participants, n_volumes=n_volumes, tr=TR,
        resolution_mm=grid.resolution_mm, random_state=cell["random_state"], anatomy=False,
        noise=cell["noise"], effect_size=cell["effect_size"],
    )
    truth = cohort.truth_table.set_index("participant_id")
    settings = Settings()
    targeting = dataclasses.replace(settings.targeting, n_bootstrap=grid.n_bootstrap)
    runs = find_runs(cohort.fmriprep_dir)
    cleaned = [clean_run(run, settings.denoise) for run in runs]
    maps = np.stack([seed_map(c, seed_columns(c.space, targeting)) for c in cleaned])

    rows = []
    for i, (run, clean) in enumerate(zip(runs, cleaned)):
        planted = truth.loc[f"sub-{run.subject}", ["x", "y", "z"]].to_numpy(float)
        group = group_mean_map(maps, exclude=i) if "seedmap" in methods else None
        for method in methods:
            started = time.perf_counter()
            base = {
                **{k: cell[k] for k in ("minutes", "noise", "effect_size")},
                "participant_id": f"sub-{run.subject}", "method": method,
                "minutes_retained": clean.minutes,
                "true_x": planted[0], "true_y": planted[1], "true_z": planted[2],
            }
            try:
                out = compute_targets(clean, dataclasses.replace(targeting, methods=(method,)),
                                      random_state=cell["random_state"] * 100 + i,
                                      group_map=group, high_pass_hz=settings.denoise.high_pass)
            except TargetingError as error:
                # A method that finds no target is a result of the study, not a crash.
                rows.append({**base, "x": np.nan, "y": np.nan, "z": np.nan, "error_mm": np.nan,
                             "split_half_mm": np.nan, "bootstrap_r95_mm": np.nan,
                             "failed": str(error), "seconds": time.perf_counter() - started})
                continue
            row = out.table.iloc[0]
            found = row[["x", "y", "z"]].to_numpy(float)
            rows.append({
                **base, "x": found[0], "y": found[1], "z": found[2],
                "error_mm": float(np.linalg.norm(found - planted)),
                "split_half_mm": float(row["split_half_mm"]),
                "bootstrap_r95_mm": float(row["bootstrap_r95_mm"]),
                "failed": "", "seconds": time.perf_counter() - started,
            })
    return pd.DataFrame(rows)


def summarise(participants: pd.DataFrame) -> pd.DataFrame:
    """Per cell and method: error quantiles, split-half and r95 coverage.

    Parameters
    ----------
    participants : pandas.DataFrame
        Output of :func:`run_cell` (concatenated over cells).

    Returns
    -------
    pandas.DataFrame
    """
    keys = ["minutes", "noise", "effect_size", "method"]
    covered = participants["error_mm"] <= participants["bootstrap_r95_mm"]
    data = participants.assign(covered=covered.where(participants["bootstrap_r95_mm"].notna()))
    grouped = data.groupby(keys, sort=True)
    table = grouped.agg(
        n=("error_mm", "size"),
        n_no_target=("error_mm", lambda e: int(e.isna().sum())),
        median_error_mm=("error_mm", "median"),
        p90_error_mm=("error_mm", lambda e: float(np.nanpercentile(e, 90)) if e.notna().any() else np.nan),
        median_split_half_mm=("split_half_mm", "median"),
        median_r95_mm=("bootstrap_r95_mm", "median"),
        r95_coverage=("covered", "mean"),
    ).reset_index()
    order = {m: i for i, m in enumerate(ALL_METHODS)}
    table = table.sort_values(keys[:3] + ["method"], key=lambda c: c.map(order) if c.name == "method" else c)
    return table.reset_index(drop=True)


def markdown_table(table: pd.DataFrame) -> str:
    """The summary as a GitHub markdown table (distances in mm, 1 decimal)."""
    header = ["minutes", "noise", "effect size", "method", "n", "no target", "median error", "p90 error",
              "median split-half", "median r95", "r95 coverage"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in table.iterrows():
        cells = [f"{r.minutes:g}", f"{r.noise:g}", f"{r.effect_size:g}", r.method,
                 str(int(r.n)), str(int(r.n_no_target)),
                 f"{r.median_error_mm:.1f}", f"{r.p90_error_mm:.1f}", f"{r.median_split_half_mm:.1f}",
                 f"{r.median_r95_mm:.1f}", f"{r.r95_coverage:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_summary(table: pd.DataFrame, path: Path) -> None:
    """Median error and median split-half distance against scan length, per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conditions = table[["noise", "effect_size"]].drop_duplicates().to_numpy()
    fig, axes = plt.subplots(2, len(conditions), figsize=(3.6 * len(conditions), 6.4),
                             squeeze=False, sharey="row")
    for j, (noise, effect) in enumerate(conditions):
        part = table[(table["noise"] == noise) & (table["effect_size"] == effect)]
        for method, rows in part.groupby("method", sort=False):
            axes[0, j].plot(rows["minutes"], rows["median_error_mm"], marker="o", label=method)
            axes[1, j].plot(rows["minutes"], rows["median_split_half_mm"], marker="o", label=method)
        axes[0, j].set_title(f"noise {noise:g}, effect {effect:g}", fontsize=9)
        axes[1, j].set_xlabel("scan length (min)")
    axes[0, 0].set_ylabel("median error to planted target (mm)")
    axes[1, 0].set_ylabel("median split-half distance (mm)")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("trdnet targeting on SIMULATED cohorts (MNI152NLin2009cAsym, mm)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_study(out_dir, grid: StudyGrid, methods=ALL_METHODS, n_jobs: int = 1, workdir=None,
              minutes=None) -> pd.DataFrame:
    """Run every cell, write the tables and the figure; return the summary.

    Parameters
    ----------
    out_dir : str or Path
        Where the results are written.
    grid : StudyGrid
    methods : tuple of str
    n_jobs : int
        Cells run in parallel (joblib processes).
    workdir : str or Path, optional
        Where the simulated cohorts are written (a temporary folder by default).
    minutes : sequence of float, optional
        Run only the cells of these scan lengths.

    Returns
    -------
    pandas.DataFrame
        The summary table (also written as ``validation.tsv``).
    """
    from joblib import Parallel, delayed

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trdnet-validation-") as tmp:
        base = Path(workdir) if workdir is not None else Path(tmp)
        frames = Parallel(n_jobs=n_jobs)(
            delayed(run_cell)(cell, grid, tuple(methods), base) for cell in grid.cells(minutes)
        )
    participants = pd.concat(frames, ignore_index=True)
    table = summarise(participants)
    participants.drop(columns="seconds").to_csv(
        out_dir / "validation_participants.tsv", sep="\t", index=False, float_format="%.2f")
    table.to_csv(out_dir / "validation.tsv", sep="\t", index=False, float_format="%.3f")
    (out_dir / "validation.md").write_text(markdown_table(table))
    plot_summary(table, out_dir / "validation.png")
    record = {
        "data": "SIMULATED (trdnet.inputs.simulate); not acquired from any person",
        "space": MNI_SPACE, "coordinates": "world RAS mm",
        "grid": dataclasses.asdict(grid), "methods": list(methods), "tr_s": TR,
        "seedmap_group_map": "leave-one-out mean Fisher-z sgACC map of the other participants of the cell",
        "wall_seconds": round(time.perf_counter() - started, 1), "n_jobs": n_jobs,
        "seconds_per_method_median": participants.groupby("method")["seconds"].median().round(2).to_dict(),
    }
    (out_dir / "validation.json").write_text(json.dumps(record, indent=2) + "\n")
    return table


def main(argv=None) -> int:
    """Command line entry point; see ``--help``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--quick", action="store_true", help="one tiny cell (for tests)")
    parser.add_argument("--no-hierarchical", action="store_true", help="skip the slow hierarchical method")
    parser.add_argument("--methods", nargs="+", choices=ALL_METHODS, default=None,
                        help="methods to run (default: all)")
    parser.add_argument("--minutes", nargs="+", type=float, default=None, help="only these scan lengths of the grid (min)")
    parser.add_argument("--participants", type=int, default=None, help="participants per cell")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--workdir", default=None, help="keep the simulated cohorts here")
    args = parser.parse_args(argv)
    grid = QUICK_GRID if args.quick else StudyGrid()
    if args.participants is not None:
        grid = dataclasses.replace(grid, n_participants=args.participants)
    methods = tuple(m for m in (args.methods or ALL_METHODS) if not (args.no_hierarchical and m == "hierarchical"))
    table = run_study(args.out, grid, methods, n_jobs=args.n_jobs, workdir=args.workdir,
                      minutes=args.minutes)
    print(markdown_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
