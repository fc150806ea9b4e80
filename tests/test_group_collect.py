"""Stacking per-run tables into the cohort's tables: column types survive the stacking."""

import pandas as pd

from trdnet.group.collect import RunRecord, collect_table
from trdnet.outputs import read_tsv, write_tsv


def _record(tmp_path, prefix, table):
    path = write_tsv(tmp_path / f"{prefix}_targets.tsv", pd.DataFrame(table))
    return RunRecord(prefix, prefix.split("_")[0], None, simulated=True, files={"targets": path})


def test_surface_vertex_stays_an_integer_beside_volume_runs(tmp_path):
    surface = _record(tmp_path, "sub-01_task-rest_space-fsaverage5",
                      {"method": ["cluster", "peak"], "hemi": ["L", "L"], "vertex": [4122, 77],
                       "x": [-38.5, -40.25], "n_voxels": [31, 1]})
    volume = _record(tmp_path, "sub-02_task-rest_space-MNI152NLin2009cAsym",
                     {"method": ["cluster"], "x": [-36.0], "n_voxels": [40]})
    table = collect_table([surface, volume], "targets")
    assert str(table["vertex"].dtype) == "Int64" and str(table["n_voxels"].dtype) == "Int64"
    assert table["x"].dtype == float  # a float column that happens to hold -36.0 stays a float
    written = write_tsv(tmp_path / "targets.tsv", table).read_text().splitlines()
    header = written[0].split("\t")
    rows = [dict(zip(header, line.split("\t"))) for line in written[1:]]
    assert [r["vertex"] for r in rows] == ["4122", "77", "n/a"]
    assert [r["n_voxels"] for r in rows] == ["31", "1", "40"]
    assert read_tsv(tmp_path / "targets.tsv")["vertex"].iloc[0] == 4122


def test_a_column_with_decimals_in_one_run_stays_float(tmp_path):
    whole = _record(tmp_path, "sub-01_task-rest", {"method": ["peak"], "r": [1]})
    decimal = _record(tmp_path, "sub-02_task-rest", {"method": ["peak"], "r": [-0.25]})
    table = collect_table([whole, decimal], "targets")
    assert table["r"].dtype == float and list(table["r"]) == [1.0, -0.25]
