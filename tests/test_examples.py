"""Every tutorial in ``examples/`` runs to completion in fast mode and writes its figures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("[0-9][0-9]_*.py"))

# Figures each example must leave in its output folder.
FIGURES = {
    "01_quickstart.py": ["targets_vs_truth.png"],
    "02_networks.py": ["network_timeseries.png", "network_connectivity.png", "network_graph.png"],
    "03_personalised_target.py": ["seed_map_targets.png", "bootstrap_targets.png"],
    "04_export_for_navigation.py": ["target_on_t1w.png"],
    "05_your_own_data.py": [],
    "06_cohort_on_dask.py": ["cohort_targets.png"],
    "07_real_parcellated_scan.py": ["raw_vs_cleaned_networks.png", "parcel_matrix.png"],
    "08_surface_real_scan.py": ["surface_networks.png", "surface_seed_map.png"],
}

# A line each example must print: evidence it reached its last step.
LAST_WORDS = {
    "01_quickstart.py": "distance to the planted target",
    "02_networks.py": "modularity",
    "03_personalised_target.py": "from the planted target",
    "04_export_for_navigation.py": "largest export error against the simulated truth",
    "05_your_own_data.py": "python API:",
    "06_cohort_on_dask.py": "runs included",
    "07_real_parcellated_scan.py": "within-network connectivity exceeds between-network connectivity",
    "08_surface_real_scan.py": "within-network connectivity exceeds between-network connectivity on the cortex",
}


def test_every_example_is_listed():
    assert SCRIPTS == sorted(FIGURES) == sorted(LAST_WORDS)


def _run(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "TRDNET_EXAMPLES_FAST": "1",
        "TRDNET_EXAMPLES_OUTPUT": str(tmp_path / "output"),
        "NILEARN_DATA": str(tmp_path / "nilearn_data"),  # never touch the user's cache
        "MPLBACKEND": "Agg",
    }
    env.pop("TRDNET_FMRIPREP_DIR", None)
    return subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # every tutorial in a subprocess
@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs_in_fast_mode(script, tmp_path):
    completed = _run(script, tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    folder = tmp_path / "output" / script.removesuffix(".py")
    for figure in FIGURES[script]:
        path = folder / figure
        assert path.is_file() and path.stat().st_size > 1000, f"{script} did not write {figure}"
    assert LAST_WORDS[script] in completed.stdout
    assert "Traceback" not in completed.stderr
    if script == "01_quickstart.py":  # two participants in fast mode, one targets table each
        tables = [p for p in (folder / "trdnet").glob("sub-*/func/*_targets.tsv") if "_desc-" not in p.name]
        assert len(tables) == 2


def test_run_all_reports_a_failing_example(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_all", EXAMPLES / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    broken = tmp_path / "01_broken.py"
    broken.write_text("raise SystemExit(3)\n")
    fine = tmp_path / "02_fine.py"
    fine.write_text("print('ok')\n")
    monkeypatch.setattr(module, "HERE", tmp_path)
    assert [p.name for p in module.example_scripts()] == ["01_broken.py", "02_fine.py"]
    assert module.main() == 1
    broken.write_text("print('fixed')\n")
    assert module.main() == 0
