"""The README's claims about the demo (SIMULATED data), checked on the demo's defaults."""

import json

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
    for table_path in sorted(out.glob("sub-*/func/*_networks.tsv")):
        table = read_tsv(table_path).set_index(["network_a", "network_b"])
        assert table.loc[("DMN", "DMN"), "mean_z"] > 0
        assert table.loc[("DMN", "ECN"), "mean_z"] < 0
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["Simulated"] is True and "SIMULATED" in description["Name"]
    # the navigator files are in the participant's (simulated) T1w space
    coords = sorted(out.glob("sub-*/func/*_space-T1w_desc-navtargets_coords.tsv"))
    assert len(coords) == 4
    assert set(pd.read_csv(coords[0], sep="\t")["space"]) == {"T1w"}
    assert (out / "group" / "networks.tsv").is_file()
