"""Smoke test of the targeting validation study (SIMULATED data)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "validation" / "run_validation.py"


@pytest.fixture(scope="module")
def validation():
    spec = importlib.util.spec_from_file_location("run_validation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_summarise_known_values(validation):
    rows = pd.DataFrame({
        "minutes": 10.0, "noise": 1.0, "effect_size": 0.8, "method": "peak",
        "error_mm": [0.0, 1.0, 2.0, 3.0, 10.0],
        "split_half_mm": [1.0, 2.0, 3.0, 4.0, 5.0],
        "bootstrap_r95_mm": [0.0, 0.5, 5.0, np.nan, 20.0],
    })
    table = validation.summarise(rows)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["median_error_mm"] == 2.0
    assert row["p90_error_mm"] == pytest.approx(np.percentile([0, 1, 2, 3, 10], 90))
    assert row["median_split_half_mm"] == 3.0
    # covered: 0<=0 yes, 1<=0.5 no, 2<=5 yes, NaN r95 not counted, 10<=20 yes
    assert row["r95_coverage"] == pytest.approx(3 / 4)
    assert row["n_no_target"] == 0


def test_summarise_counts_runs_without_target(validation):
    rows = pd.DataFrame({
        "minutes": 5.0, "noise": 2.0, "effect_size": 0.5, "method": "hierarchical",
        "error_mm": [4.0, np.nan, 6.0], "split_half_mm": [1.0, np.nan, 3.0],
        "bootstrap_r95_mm": [5.0, np.nan, 5.0],
    })
    row = validation.summarise(rows).iloc[0]
    assert row["n"] == 3 and row["n_no_target"] == 1
    assert row["median_error_mm"] == 5.0
    assert row["r95_coverage"] == pytest.approx(0.5)


def test_quick_study_writes_results(validation, tmp_path):
    out = tmp_path / "results"
    assert validation.main(["--quick", "--no-hierarchical", "--n-jobs", "1", "--out", str(out)]) == 0
    for name in ("validation.tsv", "validation.md", "validation.png", "validation_participants.tsv"):
        assert (out / name).is_file(), name
    table = pd.read_csv(out / "validation.tsv", sep="\t")
    assert list(table["method"]) == ["peak", "cluster", "seedmap"]
    assert (table["n"] == validation.QUICK_GRID.n_participants).all()
    people = pd.read_csv(out / "validation_participants.tsv", sep="\t")
    found = people[["x", "y", "z"]].to_numpy()
    truth = people[["true_x", "true_y", "true_z"]].to_numpy()
    assert np.allclose(people["error_mm"], np.linalg.norm(found - truth, axis=1), atol=0.02)
    # Targets are in the left DLPFC search region (MNI x < 0).
    assert (people["x"] < 0).all()
    assert "| peak |" in (out / "validation.md").read_text()
