"""``make bench``: the per-run core benchmark, the seed-map agreement with a heterogeneous seed, the surface
path against plain nibabel + nilearn, the cohort throughput, the participant step on the cohort's workers and the
report writing time."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_cohort  # noqa: E402
import bench_core  # noqa: E402
import bench_participant_step  # noqa: E402
import bench_reports  # noqa: E402
import bench_seed  # noqa: E402
import bench_surface  # noqa: E402


def main() -> None:
    """Run every benchmark with its default settings; results go to ``benchmarks/results``."""
    print(bench_core.main([]).to_string(index=False))
    print(bench_seed.main([]).to_string(index=False))
    print(bench_surface.main([]).to_string(index=False))
    print(bench_cohort.main([]).to_string(index=False))
    print(bench_participant_step.main([]).to_string(index=False))
    print(bench_reports.main([]).to_string(index=False))


if __name__ == "__main__":
    main()
