"""Run one benchmark side in a fresh child process and measure it from outside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def run_child(script: str, run_root: Path, out: Path, env: dict | None = None,
              memory_limit_gib: float | None = None) -> dict:
    """Run ``python <script> run_root out`` and measure wall time and peak RSS.

    The child is started by ``spawn.py``, a bare interpreter, and its peak RSS
    is its own ``ru_maxrss`` from ``os.wait4`` (measured by the kernel,
    outside the child, and not inflated by this driver's memory).

    Parameters
    ----------
    memory_limit_gib : float, optional
        Address-space limit of the child (``RLIMIT_AS``): a child needing more
        fails with a MemoryError instead of bringing the OOM killer onto the
        machine.

    Returns
    -------
    dict
        ``process_s`` (wall, including interpreter start and imports),
        ``peak_rss_mib``, ``error`` (empty, or why the child failed), and
        every value the child saved (``work_s``, ...).
    """
    usage_path = out.with_suffix(".usage.json")
    proc = subprocess.run(
        [sys.executable, "-S", str(HERE / "spawn.py"), str(memory_limit_gib or 0), str(usage_path), "--",
         sys.executable, str(HERE / script), str(run_root), str(out)],
        env={**os.environ, **(env or {})}, stderr=subprocess.PIPE, check=True,
    )
    usage = json.loads(usage_path.read_text())
    measured = {"process_s": usage["process_s"], "peak_rss_mib": usage["peak_rss_mib"]}
    if usage["exit_code"] != 0:
        stderr = proc.stderr.decode(errors="replace")
        if "MemoryError" in stderr:
            return {**measured, "error": f"MemoryError under a {memory_limit_gib:g} GiB address-space limit"}
        raise RuntimeError(f"{script} failed (exit {usage['exit_code']}):\n{stderr[-3000:]}")
    saved = np.load(out, allow_pickle=False)
    return {**{key: saved[key] for key in saved.files}, **measured, "error": ""}
