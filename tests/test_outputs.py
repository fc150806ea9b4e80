"""Outputs are written through a temporary file and a rename: a failure never leaves half a file."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

import trdnet.outputs
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

    monkeypatch.setattr(trdnet.outputs, "save_image", failing_save)
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


def _description(folder: Path) -> dict:
    import json

    return json.loads((folder / "dataset_description.json").read_text())


def test_dataset_description_keeps_the_versions_sources_and_simulated_label_of_earlier_results(tmp_path,
                                                                                                monkeypatch):
    import trdnet.outputs as outputs

    first, second = tmp_path / "fmriprep-a", tmp_path / "fmriprep-b"
    monkeypatch.setattr(outputs, "__version__", "0.9.0")
    outputs.write_dataset_description(tmp_path / "out", simulated=True, sources=[first])
    monkeypatch.setattr(outputs, "__version__", "1.0.0")
    outputs.write_dataset_description(tmp_path / "out", simulated=False, sources=[second])
    outputs.write_dataset_description(tmp_path / "out", simulated=False, sources=[second])  # same version again
    description = _description(tmp_path / "out")
    assert [(e["Name"], e["Version"]) for e in description["GeneratedBy"]] == [("trdnet", "1.0.0"),
                                                                                ("trdnet", "0.9.0")]
    assert "Software.trdnet" in description["GeneratedBy"][0]["Description"]
    assert description["Simulated"] is True and "SIMULATED" in description["Name"]
    assert [e["URL"] for e in description["SourceDatasets"]] == [first.resolve().as_uri(), second.resolve().as_uri()]
    # one version only: nothing to explain
    outputs.write_dataset_description(tmp_path / "fresh", simulated=False)
    assert "Description" not in _description(tmp_path / "fresh")["GeneratedBy"][0]


def test_a_rerun_that_only_resumes_leaves_the_dataset_description_as_it_is(tmp_path, monkeypatch):
    """The description names the version that wrote results: a re-run skipping every run does not rewrite it;
    a newer version adding a run lists itself beside the version that made the others."""
    import trdnet.cohort as cohort
    import trdnet.outputs as outputs
    from trdnet.config import Settings
    from trdnet.inputs.runs import Run
    from trdnet.pipeline import RunResult, is_finished
    from trdnet.records import write_completion_record

    settings = Settings()
    out = tmp_path / "out"

    def run_of(label):
        return Run(bold=tmp_path / "fmriprep" / f"sub-{label}" / "func" /
                   f"sub-{label}_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz",
                   entities={"sub": label, "task": "rest", "space": "MNI152NLin2009cAsym"})

    computed = []

    def process_run(run, out_dir, settings, *args, **kwargs):  # computing replaced by a record; skipping as is
        if is_finished(run, out_dir, settings):
            return RunResult(run.prefix, run.subject, "skipped", [], {})
        computed.append(run.prefix)
        write_completion_record(out_dir, run.prefix, f"sub-{run.subject}", settings.digest(), [], {}, False)
        return RunResult(run.prefix, run.subject, "done", [], {})

    monkeypatch.setattr(cohort, "process_run", process_run)
    monkeypatch.setattr(outputs, "__version__", "0.9.0")
    outputs.write_dataset_description(out, simulated=False, sources=[tmp_path / "fmriprep"])
    write_completion_record(out, run_of("01").prefix, "sub-01", settings.digest(), [], {}, False)
    before = (out / "dataset_description.json").read_bytes()
    monkeypatch.setattr(outputs, "__version__", "1.0.0")
    cohort.run_cohort([run_of("01")], out, settings, progress=False, prefetch=False)
    assert (out / "dataset_description.json").read_bytes() == before
    cohort.run_cohort([run_of("01"), run_of("02")], out, settings, progress=False, prefetch=False)
    assert computed == [run_of("02").prefix]
    assert [e["Version"] for e in _description(out)["GeneratedBy"]] == ["1.0.0", "0.9.0"]
