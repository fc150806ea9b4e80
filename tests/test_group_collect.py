"""Stacking per-run tables into the cohort's tables: column types survive the stacking."""

import pandas as pd

from trdnet.group.collect import RunRecord, collect_table
from trdnet.outputs import read_tsv, write_tsv


def _record(tmp_path, prefix, table):
    path = write_tsv(tmp_path / f"{prefix}_targets.tsv", pd.DataFrame(table))
    return RunRecord(prefix, prefix.split("_")[0], None, simulated=True, files={"targets": path})


def test_surface_vertex_stays_an_integer_beside_volume_runs(tmp_path):
    # as a surface run writes it: reference sites have no vertex (n/a), so the run's own column reads as floats
    surface = _record(tmp_path, "sub-01_task-rest_space-fsaverage5",
                      {"method": ["cluster", "peak", "reference"], "hemi": ["L", "L", None],
                       "vertex": pd.array([4122, 77, None], dtype="Int64"), "x": [-38.5, -40.25, -41.0],
                       "n_voxels": pd.array([31, 1, None], dtype="Int64")})
    volume = _record(tmp_path, "sub-02_task-rest_space-MNI152NLin2009cAsym",
                     {"method": ["cluster"], "x": [-36.0], "n_voxels": [40]})
    reference_row = (tmp_path / "sub-01_task-rest_space-fsaverage5_targets.tsv").read_text().splitlines()[3]
    assert reference_row.split("\t")[2] == "n/a"
    table = collect_table([surface, volume], "targets")
    assert str(table["vertex"].dtype) == "Int64" and str(table["n_voxels"].dtype) == "Int64"
    assert table["x"].dtype == float  # a float column that happens to hold -36.0 stays a float
    written = write_tsv(tmp_path / "targets.tsv", table).read_text().splitlines()
    header = written[0].split("\t")
    rows = [dict(zip(header, line.split("\t"))) for line in written[1:]]
    assert [r["vertex"] for r in rows] == ["4122", "77", "n/a", "n/a"]
    assert [r["n_voxels"] for r in rows] == ["31", "1", "n/a", "40"]
    assert [r["x"] for r in rows] == ["-38.500000", "-40.250000", "-41.000000", "-36.000000"]
    assert read_tsv(tmp_path / "targets.tsv")["vertex"].iloc[0] == 4122


def test_a_column_with_decimals_in_one_run_stays_float(tmp_path):
    whole = _record(tmp_path, "sub-01_task-rest", {"method": ["peak"], "r": [1]})
    decimal = _record(tmp_path, "sub-02_task-rest", {"method": ["peak"], "r": [-0.25]})
    table = collect_table([whole, decimal], "targets")
    assert table["r"].dtype == float and list(table["r"]) == [1.0, -0.25]


def test_read_tsv_tells_whole_numbers_from_floats_by_their_text(tmp_path):
    path = write_tsv(tmp_path / "t.tsv", pd.DataFrame({"vertex": [3, None], "x": [2.0, None]}))
    assert path.read_text().splitlines() == ["vertex\tx", "3.000000\t2.000000", "n/a\tn/a"]  # floats as pandas has them
    path.write_text("vertex\tx\n3\t2.000000\nn/a\tn/a\n")
    table = read_tsv(path, integers=True)
    assert str(table["vertex"].dtype) == "Int64" and table["x"].dtype == float
    assert read_tsv(path)["vertex"].dtype == float  # the default reads as before
