"""trdnet's per-run core, as one benchmark child process.

Usage: ``python trdnet_core.py RUN_ROOT OUT.npz``. Cleans the run with
:func:`trdnet.denoise.clean_run`, computes the sgACC seed map and the
Fox 2012 peak target with :func:`trdnet.targeting.compute_targets`, and the
network ROI signals and their correlation matrix with :mod:`trdnet.networks`
(Raichle-style node spheres). Writes the seed map, target and timings to
``OUT.npz``.
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from trdnet.config import NetworkSettings, Settings, TargetSettings  # noqa: E402
from trdnet.denoise import clean_run  # noqa: E402
from trdnet.inputs.bids import find_runs  # noqa: E402
from trdnet.networks import connectivity_matrix, network_rois, roi_signals  # noqa: E402
from trdnet.targeting import compute_targets  # noqa: E402

from stage_times import stage_times  # noqa: E402  (beside this script)


def main(root: str, out: str) -> None:
    """Run the core on the one run under ``root`` and save results to ``out``."""
    t_imported = time.perf_counter()
    settings = Settings()
    run = find_runs(Path(root))[0]
    cleaned = clean_run(run, settings.denoise)
    t_clean = time.perf_counter()
    targeting = TargetSettings(methods=("peak",), reliability=False)
    result = compute_targets(cleaned, targeting, random_state=0)
    t_target = time.perf_counter()
    rois = network_rois(NetworkSettings(atlas="raichle_nodes"))
    signals = roi_signals(cleaned, rois)
    matrix = connectivity_matrix(signals.signals)
    t_end = time.perf_counter()
    row = result.table.iloc[0]
    np.savez(
        out,
        seed_map=result.seed_map,
        target_xyz=np.array([row.x, row.y, row.z], dtype=float),
        search_columns=result.search_columns,
        connectivity=np.asarray(matrix, dtype=float),
        n_retained=cleaned.n_timepoints,
        **stage_times(_T_START, t_imported, t_clean, t_target, t_end),
        decompressor=cleaned.qc["decompressor"],
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
