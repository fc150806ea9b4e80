"""How far the cluster target on the cortex lands from the planted one, on SIMULATED fsaverage5 or fsLR cohorts.

Simulates a cohort with :func:`trdnet.inputs.simulate.surface.simulate_surface_cohort` (its difficulties:
mesh-smoothed and autocorrelated noise, a group-typical anticorrelated region shared by everyone, a personal
patch stronger than it, an sgACC source that is not the pipeline's seed, DMN signal leaking into it, targets
drawn away from the search sites), runs trdnet's default cleaning and the default ``cluster`` and ``peak``
methods on each run exactly as ``trdnet run`` would (nothing is chosen on this set: the settings are the
defaults), and writes the distance between each target's MNI152 position and the planted vertex's.

    python validation/surface_accuracy.py OUTPUT_DIR [--n-subjects 12] [--n-volumes 300] [--seed 7] [--space fsLR]

Writes ``OUTPUT_DIR/accuracy.tsv`` (one row per participant and method) and ``OUTPUT_DIR/summary.tsv``
(median, quartiles and range per method). The README reports the committed
``validation/results/surface/summary.tsv`` (fsaverage5 GIFTI) and ``validation/results/surface_fslr/summary.tsv``
(fsLR-32k CIFTI, the same settings). SIMULATED data: says nothing about real scans.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from trdnet.config import Settings
from trdnet.inputs.bids import find_runs
from trdnet.inputs.simulate.surface import simulate_surface_cohort
from trdnet.outputs import write_tsv
from trdnet.pipeline import clean
from trdnet.targeting import compute_targets

METHODS = ("cluster", "peak")


def surface_accuracy(work_dir: Path, n_subjects: int = 12, n_volumes: int = 300, tr: float = 2.0,
                     random_state: int = 7, space: str = "fsaverage5") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Distances between each person's targets and the planted target (SIMULATED).

    Parameters
    ----------
    work_dir : Path
        Where the simulated cohort is written.
    n_subjects, n_volumes : int
    tr : float
        Seconds (300 volumes at 2 s = 10 minutes).
    random_state : int
        Seed of the simulation.
    space : {"fsaverage5", "fsLR"}
        GIFTI per hemisphere on fsaverage5, or one CIFTI file per run on fsLR-32k.

    Returns
    -------
    accuracy : pandas.DataFrame
        ``participant_id, method, hemi, vertex, x, y, z`` (target, MNI152), ``planted_vertex``,
        ``distance_mm``, ``minutes``.
    summary : pandas.DataFrame
        Per method: ``n, median_mm, q25_mm, q75_mm, min_mm, max_mm, within_4mm``.
    """
    truth = simulate_surface_cohort(work_dir, n_subjects=n_subjects, n_volumes=n_volumes, tr=tr,
                                    random_state=random_state, space=space).set_index("participant_id")
    settings = Settings()
    targeting = dataclasses.replace(settings.targeting, methods=METHODS, reliability=False)
    rows = []
    for run in find_runs(work_dir / "fmriprep", space=space):
        cleaned = clean(run, settings.denoise)
        table = compute_targets(cleaned, targeting, settings.random_state,
                                high_pass_hz=settings.denoise.high_pass).table
        planted = truth.loc[f"sub-{run.subject}"]
        for row in table[table["method"] != "reference"].itertuples():
            target = np.array([row.mni152_x, row.mni152_y, row.mni152_z])
            rows.append({"participant_id": f"sub-{run.subject}", "method": row.method, "hemi": row.hemi,
                         "vertex": int(row.vertex), "x": target[0], "y": target[1], "z": target[2],
                         "planted_vertex": int(planted["vertex"]),
                         "distance_mm": float(np.linalg.norm(target - planted[["x", "y", "z"]].to_numpy(float))),
                         "minutes": float(cleaned.minutes)})
    accuracy = pd.DataFrame(rows)
    return accuracy, summarise(accuracy)


def summarise(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Median, quartiles, range and the share within 4 mm of the distances, per method."""
    out = []
    for method, group in accuracy.groupby("method", sort=False):
        d = group["distance_mm"].to_numpy(float)
        out.append({"method": method, "n": int(d.size), "median_mm": float(np.median(d)),
                    "q25_mm": float(np.percentile(d, 25)), "q75_mm": float(np.percentile(d, 75)),
                    "min_mm": float(d.min()), "max_mm": float(d.max()), "within_4mm": float(np.mean(d <= 4.0)),
                    "minutes": float(group["minutes"].median()), "data": "SIMULATED"})
    return pd.DataFrame(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--n-subjects", type=int, default=12)
    parser.add_argument("--n-volumes", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--space", choices=("fsaverage5", "fsLR"), default="fsaverage5")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        accuracy, summary = surface_accuracy(Path(work), args.n_subjects, args.n_volumes, random_state=args.seed,
                                               space=args.space)
    write_tsv(args.output_dir / "accuracy.tsv", accuracy)
    write_tsv(args.output_dir / "summary.tsv", summary)
    print(summary.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
