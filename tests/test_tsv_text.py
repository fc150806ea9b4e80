"""trdnet's TSV text is pandas' to_csv text, whichever way it is made."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trdnet.outputs import TSV_FLOAT_FORMAT, read_tsv, tsv_text, write_tsv


def _pandas(table: pd.DataFrame) -> str:
    return table.to_csv(sep="\t", index=False, na_rep="n/a", float_format=TSV_FLOAT_FORMAT, lineterminator="\n")


def _tables():
    rng = np.random.default_rng(7)
    matrix = rng.normal(size=(40, 40))
    matrix[np.diag_indices(40)] = np.nan
    matrix[3, 5] = -0.0
    matrix[4, 6] = -4e-7  # rounds to -0.000000
    matrix[7, 8] = np.inf
    matrix[9, 1] = 1e12
    return {
        "relmat": pd.DataFrame(matrix, columns=[f"roi{i}" for i in range(40)]),
        "float32 series": pd.DataFrame(rng.normal(size=(25, 3)).astype(np.float32), columns=["nan", "DMN", "SN"]),
        "names with nan": pd.DataFrame({"nanoseconds": [np.nan, 1.5], "x nan y": [2.0, np.nan]}),
        "mixed": pd.DataFrame({"target": ["a", "b"], "x": [1.0, np.nan], "n": [3, 4], "ok": [True, pd.NA]}),
        "quoted name": pd.DataFrame({'say "hi"': [1.0, 2.0]}),
        "no rows": pd.DataFrame({"a": pd.Series([], dtype=float), "b": pd.Series([], dtype=float)}),
    }


@pytest.mark.parametrize("name", list(_tables()))
def test_the_text_is_pandas_to_csv(name):
    table = _tables()[name]
    assert tsv_text(table) == _pandas(table)


def test_a_float_matrix_is_not_formatted_by_pandas(monkeypatch, tmp_path):
    table = _tables()["relmat"]
    expected = _pandas(table)

    def refused(*args, **kwargs):
        raise AssertionError("formatted by pandas")

    monkeypatch.setattr(pd.DataFrame, "to_csv", refused)
    assert tsv_text(table) == expected
    with pytest.raises(AssertionError, match="by pandas"):
        tsv_text(_tables()["mixed"])
    write_tsv(tmp_path / "relmat.tsv", table)
    monkeypatch.undo()
    read = read_tsv(tmp_path / "relmat.tsv")
    np.testing.assert_allclose(read.to_numpy(float), table.to_numpy(float), atol=5e-7)
