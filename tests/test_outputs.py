"""Outputs are written through a temporary file and a rename: a failure never leaves half a file."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from trdnet.outputs import atomic_write_text, read_tsv, write_json, write_nifti, write_tsv



def test_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "sub-01_networks.tsv"
    write_tsv(target, pd.DataFrame({"a": [1.0]}))
    before = target.read_bytes()
    real_write_bytes = Path.write_bytes

    def half_then_fail(self, data):
        real_write_bytes(self, data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_bytes", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_tsv(target, pd.DataFrame({"a": [2.0, 3.0, 4.0]}))
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_failed_nifti_save_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "map.nii.gz"

    def failing_save(img, filename):
        with open(filename, "wb") as handle:
            handle.write(b"partial")
        raise OSError("interrupted")

    monkeypatch.setattr(nib, "save", failing_save)
    with pytest.raises(OSError, match="interrupted"):
        write_nifti(target, nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)))
    assert list(tmp_path.iterdir()) == []


def test_json_nan_is_null_and_text_round_trips(tmp_path):
    write_json(tmp_path / "x.json", {"value": float("nan"), "n": np.int64(3)})
    assert (tmp_path / "x.json").read_text() == '{\n  "n": 3,\n  "value": null\n}\n'
    atomic_write_text(tmp_path / "t.txt", "é\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "é\n"
    write_tsv(tmp_path / "t.tsv", pd.DataFrame({"x": [np.nan, 1.5]}))
    assert (tmp_path / "t.tsv").read_text() == "x\nn/a\n1.500000\n"
    assert read_tsv(tmp_path / "t.tsv")["x"].isna().tolist() == [True, False]
