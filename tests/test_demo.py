"""The README's claims about the demo (SIMULATED data), checked on the demo's defaults."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from trdnet.cli import main
from trdnet.outputs import read_tsv


def test_default_demo_recovers_planted_targets_and_network_signs(tmp_path, capsys):
    # Defaults of `make demo` except fewer bootstrap resamples and no HTML (neither moves the target).
    assert main(["demo", str(tmp_path), "--n-bootstrap", "5", "--no-report"]) == 0
    printed = capsys.readouterr().out
    assert "SIMULATED" in printed and "median distance" in printed
    out = tmp_path / "trdnet"
    accuracy = read_tsv(out / "demo_accuracy.tsv")
    assert len(accuracy) == 4
    assert accuracy["distance_mm"].median() <= 4.0
    within_dmn, dmn_ecn = [], []
    for table_path in sorted(out.glob("sub-*/func/*_networks.tsv")):
        table = read_tsv(table_path).set_index(["network_a", "network_b"])
        within_dmn.append(table.loc[("DMN", "DMN"), "mean_z"])
        dmn_ecn.append(table.loc[("DMN", "ECN"), "mean_z"])
    assert min(within_dmn) > 0 and max(dmn_ecn) < 0
    _check_readme_numbers(accuracy["distance_mm"], np.mean(within_dmn), np.mean(dmn_ecn))
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


def _check_readme_numbers(distances, within_dmn, dmn_ecn):
    """The demo numbers the README states are the ones the demo gives (to the README's rounding)."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    stated = re.search(r"median distance is \*\*([\d.]+) mm\*\* \(range ([\d.]+)-([\d.]+) mm", readme)
    assert stated, "README no longer states the demo's distances"
    # Half a unit of the stated decimal, plus room for BLAS rounding on other machines.
    np.testing.assert_allclose([distances.median(), distances.min(), distances.max()],
                               [float(v) for v in stated.groups()], atol=0.05 + 0.01)
    stated = re.search(r"about \+([\d.]+) and -([\d.]+) mean Fisher z", readme)
    assert stated, "README no longer states the demo's network connectivity"
    np.testing.assert_allclose([within_dmn, dmn_ecn], [float(stated[1]), -float(stated[2])], atol=0.005 + 0.001)
