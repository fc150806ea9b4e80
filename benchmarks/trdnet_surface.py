"""trdnet's per-run core on a cortical-surface run, as one benchmark child process.

Usage: ``python trdnet_surface.py RUN_ROOT OUT.npz``. Reads and cleans the
fsaverage5 GIFTI run with :func:`trdnet.surface_pipeline.clean_surface_run`,
computes the sgACC seed map and the Fox 2012 peak target on the mesh with
:func:`trdnet.targeting.compute_targets`, and the Raichle-style node signals and
their correlation matrix with :mod:`trdnet.networks`. Writes the seed map (one
value per mesh vertex, NaN where left out), the target vertex and timings to ``OUT.npz``.
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from trdnet.config import NetworkSettings, Settings, TargetSettings  # noqa: E402
from trdnet.inputs.bids import find_runs  # noqa: E402
from trdnet.networks import connectivity_matrix, network_rois, roi_signals  # noqa: E402
from trdnet.surface_pipeline import clean_surface_run  # noqa: E402
from trdnet.targeting import compute_targets  # noqa: E402

from stage_times import stage_times  # noqa: E402  (beside this script)


def main(root: str, out: str) -> None:
    """Run the surface core on the one fsaverage5 run under ``root`` and save results to ``out``."""
    t_imported = time.perf_counter()
    settings = Settings()
    run = find_runs(Path(root), space="fsaverage5")[0]
    cleaned = clean_surface_run(run, settings.denoise, Path(root))
    t_clean = time.perf_counter()
    targeting = TargetSettings(methods=("peak",), reliability=False)
    result = compute_targets(cleaned, targeting, random_state=0)
    t_target = time.perf_counter()
    signals = roi_signals(cleaned, network_rois(NetworkSettings(atlas="raichle_nodes")))
    matrix = connectivity_matrix(signals.signals)
    t_end = time.perf_counter()
    geometry = cleaned.space
    row = result.table.iloc[0]
    np.savez(
        out,
        seed_map=np.concatenate([geometry.hemisphere_values(result.seed_map, h) for h in ("L", "R")]),
        target_vertex=int(row["vertex"]),
        target_xyz=geometry.xyz[geometry.hemisphere_columns("L")][
            np.flatnonzero(geometry.vertex[geometry.hemisphere_columns("L")] == int(row["vertex"]))[0]],
        search_vertices=np.sort(geometry.vertex[result.search_columns]),
        connectivity=np.asarray(matrix, dtype=float),
        n_retained=cleaned.n_timepoints,
        **stage_times(_T_START, t_imported, t_clean, t_target, t_end),
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
