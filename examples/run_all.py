"""Run every numbered example in order, each as its own Python process.

Usage: ``python examples/run_all.py`` (``TRDNET_EXAMPLES_FAST=1`` for the quick
variants). Exits non-zero when any example fails, naming it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def example_scripts() -> list[Path]:
    """The numbered example scripts (``NN_name.py``), in order."""
    return sorted(p for p in HERE.glob("[0-9][0-9]_*.py"))


def main() -> int:
    """Run each example; return 1 when one or more failed."""
    failed = []
    for script in example_scripts():
        start = time.perf_counter()
        print(f"=== {script.name}", flush=True)
        code = subprocess.run([sys.executable, str(script)], cwd=HERE).returncode
        print(f"=== {script.name}: {'ok' if code == 0 else f'FAILED (exit {code})'} "
              f"in {time.perf_counter() - start:.0f} s", flush=True)
        if code != 0:
            failed.append(script.name)
    if failed:
        print(f"failed examples: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
