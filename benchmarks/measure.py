"""Run one benchmark side in a fresh child process and measure it from outside."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def run_child(script: str, run_root: Path, out: Path, env: dict | None = None) -> dict:
    """Run ``python <script> run_root out`` and measure wall time and peak RSS.

    Peak RSS is the child's ``ru_maxrss`` returned by ``os.wait4`` for that
    one process (measured by the kernel, outside the child).

    Returns
    -------
    dict
        ``process_s`` (wall, including interpreter start and imports),
        ``peak_rss_mib``, and every value the child saved (``work_s``, ...).
    """
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / script), str(run_root), str(out)],
        env={**os.environ, **(env or {})},
        stderr=subprocess.PIPE,
    )
    # wait4 reaps the child and gives its own rusage; read stderr afterwards.
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{script} failed (exit {proc.returncode}):\n{stderr[-3000:]}")
    saved = np.load(out, allow_pickle=False)
    result = {key: saved[key] for key in saved.files}
    result.update(process_s=wall, peak_rss_mib=usage.ru_maxrss / 1024.0)
    return result
