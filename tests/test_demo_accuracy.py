"""demo_accuracy.tsv (SIMULATED) has a sidecar saying what each column holds, in which unit and space."""

import json

import pandas as pd

from trdnet.config import Settings
from trdnet.demo import accuracy_table, write_accuracy
from trdnet.outputs import read_tsv
from trdnet.pipeline import RunResult


def test_accuracy_table_has_a_sidecar_with_columns_units_space_and_the_simulated_label(tmp_path):
    truth = pd.DataFrame({"participant_id": ["sub-01", "sub-02"], "x": [-40.0, -38.0], "y": [30.0, 44.0],
                          "z": [40.0, 26.0]})
    results = [RunResult("sub-01_task-rest_space-MNI152NLin2009cAsym", "01", "done",
                         summary={"target_x": -43.0, "target_y": 34.0, "target_z": 40.0, "reliability": "fair"}),
               RunResult("sub-02_task-rest_space-MNI152NLin2009cAsym", "02", "failed", error="a reason")]
    accuracy = accuracy_table(results, truth)
    out = tmp_path / "demo" / "trdnet"
    path = write_accuracy(out / "demo_accuracy.tsv", accuracy, Settings(), tmp_path / "demo" / "simulated" / "truth")

    table = read_tsv(path)
    assert list(table["distance_mm"]) == [5.0]
    sidecar = json.loads((out / "demo_accuracy.json").read_text())
    assert set(sidecar["Columns"]) == set(table.columns)
    units = {c: d for c, d in sidecar["Columns"].items() if c.startswith(("found_", "planted_")) or c == "distance_mm"}
    assert len(units) == 7 and all("(mm" in d for d in units.values()), units
    assert sidecar["Space"] == "MNI152NLin2009cAsym" and set(table["space"]) == {sidecar["Space"]}
    assert "RAS" in sidecar["CoordinateConvention"]
    assert sidecar["Simulated"] is True and "SIMULATED" in sidecar["Note"]
    assert sidecar["GroundTruth"] == "../simulated/truth"
    assert sidecar["SettingsDigest"] == Settings().digest()
