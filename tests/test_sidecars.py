"""Sidecar metadata the BIDS-derivative conventions ask for: BEP017 fields of the connectivity outputs,
the sampling rate of time series, and the provenance in ``dataset_description.json``."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from trdnet.config import Settings
from trdnet.inputs.runs import Run
from trdnet.outputs import write_dataset_description
from trdnet.sidecars import bep017_metadata, sidecar

from conftest import write_fmriprep_run


def _run(paths) -> Run:
    return Run(bold=paths["bold"], entities={"sub": "01", "task": "rest", "space": "MNI152NLin2009cAsym"},
               mask=paths["mask"], confounds=paths["confounds"], tr=2.0)


def test_relmat_sidecar_carries_bep017_fields(fmriprep_run):
    content = sidecar("relmat", "ROI-by-ROI Pearson correlation", _run(fmriprep_run), Settings(),
                      extra={"RepetitionTime": 2.0})
    assert content["Measure"] == "Pearson correlation"
    assert content["Weighted"] is True and content["Directed"] is False
    assert content["ValidDiagonal"] is False and content["NonNegative"] is False
    assert content["StorageFormat"] == "Full"
    assert "SamplingFrequency" not in content  # a matrix has no time axis


def test_timeseries_sidecar_has_the_sampling_frequency(fmriprep_run):
    content = sidecar("timeseries", "ROI signals", _run(fmriprep_run), Settings(), extra={"RepetitionTime": 1.6})
    assert content["SamplingFrequency"] == pytest.approx(1 / 1.6)
    assert "Measure" not in content
    assert sidecar("networks", "table", _run(fmriprep_run), Settings()).keys().isdisjoint(
        {"Measure", "SamplingFrequency"})


def test_unknown_measure_is_not_described_silently():
    # a stand-in: the settings themselves may refuse the measure before this point
    settings = SimpleNamespace(networks=SimpleNamespace(connectivity="PartialCorrelation"))
    with pytest.raises(NotImplementedError, match="PartialCorrelation"):
        bep017_metadata("relmat", settings)


def test_dataset_description_names_its_source_datasets(tmp_path):
    source = write_fmriprep_run(tmp_path / "fmriprep")["root"]
    path = write_dataset_description(tmp_path / "out", simulated=False, sources=[source, source])
    description = json.loads(path.read_text())
    assert description["SourceDatasets"] == [{"URL": source.resolve().as_uri(), "Version": "fMRIPrep 23.2.0"}]
    assert description["GeneratedBy"][0]["Name"] == "trdnet"
    no_source = json.loads(write_dataset_description(tmp_path / "bare", simulated=True).read_text())
    assert "SourceDatasets" not in no_source and "SIMULATED" in no_source["Name"]
