"""The demo (SIMULATED data): the README's numbers, and an oracle that does not depend on them."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trdnet.cli import main
from trdnet.outputs import read_tsv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import readme_numbers  # noqa: E402

pytestmark = pytest.mark.slow  # the whole default demo


def test_default_demo_matches_the_readme_numbers(tmp_path, capsys):
    # Defaults of `make demo` except fewer bootstrap resamples and no HTML (neither moves the target).
    assert main(["demo", str(tmp_path), "--n-bootstrap", "5", "--no-report"]) == 0
    printed = capsys.readouterr().out
    assert "SIMULATED" in printed and "median distance" in printed
    out = tmp_path / "trdnet"
    accuracy = read_tsv(out / "demo_accuracy.tsv")
    assert len(accuracy) == 4
    sidecar = json.loads((out / "demo_accuracy.json").read_text())
    assert set(sidecar["Columns"]) == set(accuracy.columns) and sidecar["Simulated"] is True
    within_dmn, dmn_ecn = [], []
    for table_path in sorted(out.glob("sub-*/func/*_networks.tsv")):
        table = read_tsv(table_path).set_index(["network_a", "network_b"])
        within_dmn.append(table.loc[("DMN", "DMN"), "mean_z"])
        dmn_ecn.append(table.loc[("DMN", "ECN"), "mean_z"])
    assert min(within_dmn) > 0 and max(dmn_ecn) < 0

    # Pins: the numbers file the README shows, each with its stated tolerance (rounding + BLAS drift).
    numbers = readme_numbers.load()
    measured = {"demo_median_mm": accuracy["distance_mm"].median(), "demo_min_mm": accuracy["distance_mm"].min(),
                "demo_max_mm": accuracy["distance_mm"].max(), "demo_within_dmn_z": np.mean(within_dmn),
                "demo_dmn_ecn_z": np.mean(dmn_ecn)}
    drifted = {name: (value, numbers[name].value) for name, value in measured.items()
               if not numbers[name].matches(value)}
    assert not drifted, f"measured vs readme_numbers.json: {drifted}"

    description = json.loads((out / "dataset_description.json").read_text())
    assert description["Simulated"] is True and "SIMULATED" in description["Name"]
    # the navigator files are in the participant's (simulated) T1w space
    coords = sorted(out.glob("sub-*/func/*_space-T1w_desc-navtargets_coords.tsv"))
    assert len(coords) == 4
    assert set(pd.read_csv(coords[0], sep="\t")["space"]) == {"T1w"}
    assert (out / "group" / "networks.tsv").is_file()

    # A second `make demo` reuses the simulated data and skips the finished participants.
    targets = sorted(out.glob("sub-*/func/*_targets.tsv"))
    mtimes = [p.stat().st_mtime_ns for p in targets]
    assert main(["demo", str(tmp_path), "--n-bootstrap", "5", "--no-report"]) == 0
    assert capsys.readouterr().out.count(": skipped") >= 4
    assert [p.stat().st_mtime_ns for p in targets] == mtimes


def test_noiseless_simulation_lands_within_one_voxel_of_the_planted_target(tmp_path):
    """An oracle independent of any earlier run: with the easy preset (patch centred on a grid voxel, no
    shared anticorrelated region) and without noise, drift or a random background coupling, the only
    sgACC-anticorrelated DLPFC signal is the planted patch, so the primary target must be its centre up
    to the grid (one voxel, 3 mm)."""
    from trdnet.cohort import run_cohort
    from trdnet.config import Settings
    from trdnet.inputs.bids import find_runs
    from trdnet.inputs.simulate import simulate_cohort

    voxel_mm = 3
    cohort = simulate_cohort(tmp_path / "sim", n_subjects=2, n_volumes=200, resolution_mm=voxel_mm,
                             random_state=5, anatomy=False, preset="easy", noise=0.0, background_coupling=0.0,
                             drift_linear=0.0, drift_quadratic=0.0)
    settings = Settings.from_dict({"targeting": {"n_bootstrap": 2}})
    results = run_cohort(find_runs(cohort.fmriprep_dir), tmp_path / "out", settings)
    assert [r.status for r in results] == ["done", "done"], [r.error for r in results]
    truth = cohort.truth_table.set_index("participant_id")
    for table_path in sorted((tmp_path / "out").glob("sub-*/func/*_targets.tsv")):
        if "_desc-" in table_path.name:
            continue
        targets = read_tsv(table_path)
        primary = targets[targets["primary"].astype(str) == "True"].iloc[0]
        planted = truth.loc[table_path.parents[1].name]  # sub-<label>/func/
        distance = np.linalg.norm(primary[["x", "y", "z"]].to_numpy(float)
                                  - planted[["x", "y", "z"]].to_numpy(float))
        assert distance <= voxel_mm, (table_path.name, distance)
