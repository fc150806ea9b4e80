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


def _rows(**columns):
    base = {"participant_id": ["p00", "p00", "p01", "p01"], "session": ["1", "2", "1", "2"],
            "minutes": 8.0, "variant": "default"}
    return pd.DataFrame({**base, **columns})


def test_session_distance_and_coverage_by_hand(validation):
    rows = _rows(x=[0.0, 3.0, 0.0, np.nan], y=[0.0, 4.0, 0.0, 0.0], z=0.0,
                 bootstrap_r95_mm=[5.0, 4.0, 1.0, 1.0])
    out = validation.add_session_distance(rows).set_index(["participant_id", "session"])
    assert out.loc[("p00", "1"), "session_distance_mm"] == pytest.approx(5.0)  # 3-4-5 triangle
    assert out.loc[("p00", "1"), "r95_covers_retest"] == 1.0  # 5 >= 5
    assert out.loc[("p00", "2"), "r95_covers_retest"] == 0.0  # 4 < 5
    assert np.isnan(out.loc[("p01", "1"), "session_distance_mm"])  # one session found no target
    assert np.isnan(out.loc[("p01", "1"), "r95_covers_retest"])


def test_summaries_count_errors_shared_region_and_good_targets(validation):
    rows = _rows(x=0.0, y=0.0, z=0.0, error_mm=[1.0, 4.0, 9.0, np.nan],
                 on_shared_region=[False, False, True, False], bootstrap_r95_mm=[5.0, 5.0, 5.0, 5.0],
                 reliability=["good", "good", "good", "poor"], retest_mm=np.nan, minutes_for_5mm=np.nan)
    rows = validation.add_session_distance(rows)
    summary = validation.summarise(rows).iloc[0]
    assert summary["n"] == 4 and summary["n_no_target"] == 1
    assert summary["median_error_mm"] == 4.0
    assert summary["share_within_5mm"] == pytest.approx(2 / 4)
    assert summary["share_on_shared_region"] == pytest.approx(1 / 4)
    default = validation.default_calibration(rows).iloc[0]
    assert default["n_good"] == 3 and default["n_poor"] == 1
    assert default["good_within_5mm"] == pytest.approx(2 / 3)  # 9 mm off and labelled good
    assert default["r95_coverage_of_retest"] == pytest.approx(1.0)  # same point: distance 0


def _worded(raw_r95, error_mm, **columns):
    n = len(raw_r95)
    base = {"participant_id": [f"p{i:02d}" for i in range(n)], "session": "1", "minutes": 8.0,
            "variant": "default", "bootstrap_r95_raw_mm": raw_r95, "bootstrap_r95_mm": np.nan,
            "error_mm": error_mm, "split_half_mm": 1.0, "competing_share": 0.0, "retest_mm": np.nan,
            "runner_up": "", "reliability": "", "minutes_retained": 30.0}
    return pd.DataFrame({**base, **columns})


def test_reword_applies_the_scale_and_thresholds_to_the_stored_inputs(validation):
    from trdnet.config import TargetSettings

    rows = _worded([4.0, 6.0, 4.0, 4.0, 20.0], 1.0,
                   runner_up=["", "", "the runner-up cluster is more anticorrelated", "", ""],
                   split_half_mm=[1.0, 1.0, 1.0, 30.0, 1.0])
    settings = TargetSettings(r95_scale=2.0, good_r95_mm=10.0, fair_r95_mm=20.0)
    out = validation.reword(rows, settings)
    assert out["bootstrap_r95_mm"].tolist() == [8.0, 12.0, 8.0, 8.0, 40.0]
    assert out["reliability"].tolist() == ["good", "fair", "fair", "fair", "poor"]
    assert rows["reliability"].eq("").all()  # the input is not changed


def test_reword_applies_the_data_rule_to_the_stored_minutes(validation):
    from trdnet.config import TargetSettings

    # Narrow radius, agreeing halves: only the retained minutes decide (15 min needed by default).
    rows = _worded([2.0, 2.0, 2.0], 1.0, minutes_retained=[14.9, 15.0, 26.0])
    out = validation.reword(rows, TargetSettings(r95_scale=1.0))
    assert out["reliability"].tolist() == ["poor", "good", "good"]
    assert out["too_little_data"].tolist()[0] == ("too little data: 14.9 min retained, 15 min needed for a word "
                                                  "better than poor")
    # With no minimum, 2.4 min (72 volumes at TR 2 s) still cuts the 100 s block to 72 s.
    short = validation.reword(_worded([2.0], 1.0, minutes_retained=2.4),
                              TargetSettings(r95_scale=1.0, min_minutes_for_word=0.0), high_pass_hz=0.01)
    assert short["reliability"].tolist() == ["poor"] and "cut to 72 s" in short["too_little_data"].iloc[0]
    with pytest.raises(ValueError, match="minutes_retained"):
        validation.reword(_worded([2.0], 1.0).drop(columns="minutes_retained"), TargetSettings())


def test_minutes_for_5mm_median_counts_non_converging_sessions_as_beyond(validation):
    # 2 finite, 3 beyond (inf), 1 without an estimate: the median of the 5 answered is inf.
    found = validation.minutes_for_5mm_summary(pd.Series([10.0, 20.0, np.inf, np.inf, np.inf, np.nan]))
    assert found == {"median_minutes_for_5mm": np.inf, "n_minutes_for_5mm_finite": 2,
                     "n_minutes_for_5mm_beyond": 3, "n_minutes_for_5mm_none": 1}
    # 3 finite, 2 beyond: the median is the largest finite one, not the median of the finite ones (20)
    assert validation.minutes_for_5mm_summary(pd.Series([10.0, 20.0, 40.0, np.inf, np.inf]))[
        "median_minutes_for_5mm"] == 40.0
    assert "| beyond |" in validation.markdown(pd.DataFrame({"m": [np.inf]}))


def test_calibration_covers_every_cell_and_keeps_good_targets_close(validation):
    from trdnet.config import TargetSettings

    # Cell 8 min: session distance / raw radius = 1/24 ... 24/24 (an interpolated 90th percentile covers 21 of 24);
    # cell 16 min: all 0.5.
    ratios = np.r_[np.arange(1, 25) / 24.0, np.full(10, 0.5)]
    rows = _worded(np.full(34, 10.0), 1.0, minutes=[8.0] * 24 + [16.0] * 10)
    rows["session_distance_mm"] = 10.0 * ratios
    found = validation.calibrate_words(rows, TargetSettings())
    scale = found["r95_scale"]
    covered = (scale * rows["bootstrap_r95_raw_mm"] >= rows["session_distance_mm"]).groupby(rows["minutes"]).mean()
    assert (covered >= 0.9).all(), covered.to_dict()
    smaller = ((scale - 0.02) * rows["bootstrap_r95_raw_mm"] >= rows["session_distance_mm"])
    assert smaller[rows["minutes"] == 8.0].mean() < 0.9  # the largest cell's factor, not a looser one

    # Good threshold: raw radii 5, 8, 12 mm (scale 1 after rounding), the 12 mm one is 20 mm off.
    rows = _worded([5.0, 8.0, 12.0], [1.0, 2.0, 20.0])
    rows["session_distance_mm"] = rows["bootstrap_r95_raw_mm"]  # ratio 1 everywhere
    found = validation.calibrate_words(rows, TargetSettings())
    assert found["r95_scale"] == 1.0
    assert found["good_r95_mm"] == 11.0 and found["fair_r95_mm"] == 22.0  # 12 mm would label the 20 mm miss good


@pytest.mark.slow
def test_quick_study_writes_results(validation, tmp_path):
    out = tmp_path / "results"
    assert validation.main(["--quick", "--set", "choose", "--n-jobs", "1", "--out", str(out),
                            "--variants", "cluster_sum_4mm", "peak"]) == 0
    for name in ("validation.tsv", "validation.md", "validation_default.tsv", "validation_targets.tsv",
                 "validation.json"):
        assert (out / name).is_file(), name
    targets = pd.read_csv(out / "validation_targets.tsv", sep="\t")
    grid = validation.QUICK_GRID
    assert set(targets["variant"]) == {"default", "cluster_sum_4mm", "peak"}
    assert len(targets) == 3 * grid.n_participants * len(grid.sessions) * len(grid.cells_runs)
    found = targets[["x", "y", "z"]].to_numpy()
    truth = targets[["true_x", "true_y", "true_z"]].to_numpy()
    assert np.allclose(targets["error_mm"], np.linalg.norm(found - truth, axis=1), atol=0.02)
    assert (targets["x"] < 0).all()  # the left DLPFC search region
    default = targets[targets["variant"] == "default"]
    assert default["reliability"].isin(["good", "fair", "poor"]).all()
    assert "| default |" in (out / "validation.md").read_text()
    # Recomputing the radius and word from the stored raw inputs with the same settings gives what
    # participant_targets wrote (the summary relies on it to apply a calibration).
    from trdnet.config import Settings

    written = pd.concat([pd.read_csv(path, sep="\t", dtype={"session": str}) for path in
                         sorted((out / "participants").glob("*.tsv"))], ignore_index=True)
    again = validation.reword(written, Settings().targeting)
    rows = written["variant"] == "default"
    np.testing.assert_allclose(again.loc[rows, "bootstrap_r95_mm"], written.loc[rows, "bootstrap_r95_mm"], rtol=1e-12)
    assert again.loc[rows, "reliability"].tolist() == written.loc[rows, "reliability"].tolist()
    # A summary of the participants already run keeps the run's time and adds its own beside it.
    import json

    record = json.loads((out / "validation.json").read_text())
    assert "summarise_wall_seconds" not in record
    (out / "validation.json").write_text(json.dumps({**record, "wall_seconds": 1234.5}))
    assert validation.main(["--quick", "--set", "choose", "--n-jobs", "1", "--out", str(out),
                            "--variants", "cluster_sum_4mm", "peak", "--summarise-only"]) == 0
    summarised = json.loads((out / "validation.json").read_text())
    assert summarised["wall_seconds"] == 1234.5
    assert summarised["summarise_wall_seconds"] >= 0


@pytest.mark.slow
def test_a_small_cell_reproduces_the_method_ordering_the_readme_states(validation, tmp_path):
    # Three participants of a third seed set (neither choose nor report), one session of 2 x 8 minutes, 4 mm.
    grid = validation.StudyGrid(run_volumes=(240, 240), cells_runs=(2,), sessions=("1",), n_participants=3,
                                n_bootstrap=5, resolution_mm=4)
    rows = []
    for index in range(grid.n_participants):
        rows += validation.run_participant(index, grid, 7000, tmp_path, ("default", "peak", "hierarchical"))
    errors = pd.DataFrame(rows).groupby("variant")["error_mm"].median()
    # The README: the default cluster target is closer to the planted one than `peak` and `hierarchical`.
    assert errors["default"] < errors["peak"] and errors["default"] < errors["hierarchical"], errors.to_dict()


@pytest.mark.slow  # simulates and cleans a participant's sessions of the validation study
def test_older_rows_get_their_retained_minutes_from_the_same_simulation(validation, tmp_path):
    grid = validation.QUICK_GRID
    seed = grid.seed + validation.SETS["choose"]
    planted, cleaned = validation.simulate_and_clean(0, grid, seed, tmp_path / "sim")
    cells = [(ses, n) for n in grid.cells_runs for ses in grid.sessions]
    rows = pd.DataFrame({"participant_id": "p00", "session": [s for s, _ in cells], "n_runs": [n for _, n in cells],
                         "variant": "default", "bootstrap_r95_raw_mm": 5.0,
                         "true_x": planted[0], "true_y": planted[1], "true_z": planted[2]})
    out = validation.recover_minutes_retained(rows, grid, seed, tmp_path / "retained")
    expected = [sum(cleaned[(ses, str(k))].minutes for k in range(1, n + 1)) for ses, n in cells]
    np.testing.assert_allclose(out["minutes_retained"], expected)
    # rows written with another seed or grid (another planted target) are refused, not given these minutes
    with pytest.raises(ValueError, match="planted target is not the stored one"):
        validation.recover_minutes_retained(rows.assign(true_x=planted[0] + 3.0), grid, seed,
                                            tmp_path / "retained")


def test_site_radius_summary_counts_what_the_own_site_radius_covers(validation):
    rows = _worded([10.0, 10.0, 10.0, 10.0], 1.0, site_r95_raw_mm=[2.0, 2.0, 4.0, 4.0],
                   session_distance_mm=[1.0, 3.0, 4.0, 20.0], competing_share=[0.0, 0.3, 0.0, 0.0])
    found = validation.site_radius_summary(rows).iloc[0]
    assert found["n"] == 4 and found["site_r95_coverage"] == pytest.approx(2 / 4)  # 1 <= 2 and 4 <= 4
    assert found["site_r95_scale_for_coverage"] == pytest.approx(5.0)  # ratios 0.5, 1.5, 1, 5: the largest of 4
    assert found["n_missed"] == 2 and found["missed_flagged_by_competing_share"] == pytest.approx(0.5)
