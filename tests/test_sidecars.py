"""Sidecar metadata the BIDS-derivative conventions ask for: BEP017 fields of the connectivity outputs,
the sampling rate of time series, and the provenance in ``dataset_description.json``."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest

from trdnet.config import Settings
from trdnet.entities import build_name, output_prefix, parse_entities
from trdnet.errors import InputError
from trdnet.inputs.runs import Run
from trdnet.inputs.timeseries import read_roi_timeseries
from trdnet.outputs import read_tsv, write_dataset_description
from trdnet.sidecars import bep017_metadata, censored_rows, sidecar

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


def test_censoring_table_sidecar_has_the_sampling_frequency(fmriprep_run):
    """The per-volume censoring table is a ``_timeseries.tsv`` too: one row per volume, every TR."""
    content = sidecar("censoring", "Per-volume motion and censoring", _run(fmriprep_run), Settings(),
                      extra={"RepetitionTime": 0.8})
    assert content["SamplingFrequency"] == pytest.approx(1 / 0.8) and content["RepetitionTime"] == 0.8
    assert "Measure" not in content


def test_a_censored_time_series_says_which_volume_each_row_is(fmriprep_run):
    """Rows of the retained volumes only are not sampled every TR: no SamplingFrequency, the volume indices
    instead; a run that kept every volume keeps its SamplingFrequency."""
    assert censored_rows(range(5), 5, "censoring.tsv") == {}
    rows = censored_rows([0, 1, 4], 5, "sub-01_desc-censoring_timeseries.tsv")
    assert rows == {"SampleMask": [0, 1, 4], "NumberOfVolumes": 5,
                    "CensoringTable": "sub-01_desc-censoring_timeseries.tsv"}
    content = sidecar("timeseries", "ROI signals", _run(fmriprep_run), Settings(),
                      extra={"RepetitionTime": 2.0, **rows})
    assert "SamplingFrequency" not in content and content["SampleMask"] == [0, 1, 4]
    assert content["RepetitionTime"] == 2.0  # the acquisition's, still


def test_roi_series_of_a_run_with_censoring_name_their_volumes(tmp_path):
    from test_timeseries_input import NETWORKS, ROIS, write_confounds, write_tsv

    from trdnet.cli import main

    labels = tmp_path / "labels.tsv"
    pd.DataFrame({"index": range(1, 7), "name": ROIS, "network": NETWORKS}).to_csv(labels, sep="\t", index=False)
    func = tmp_path / "derivs" / "sub-01" / "func"
    write_tsv(func / "sub-01_task-rest_timeseries.tsv", n_volumes=120, seed=1)
    (func / "sub-01_task-rest_timeseries.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    write_confounds(func / "sub-01_task-rest_desc-confounds_timeseries.tsv", 120, spikes=(50, 90))
    out = tmp_path / "out"
    assert main(["run", "--roi-timeseries", str(tmp_path / "derivs"), "--labels", str(labels), str(out),
                 "participant", "--no-report", "-q"]) == 0
    (series_json,) = out.glob("sub-01/func/*_seg-*_timeseries.json")
    series, meta = read_tsv(series_json.with_suffix(".tsv")), json.loads(series_json.read_text())
    censoring_tsv = series_json.parent / meta["CensoringTable"]
    retained = read_tsv(censoring_tsv)["retained"].to_numpy()
    assert 0 < retained.sum() < 120  # the spikes were censored
    assert meta["SampleMask"] == [int(v) for v in retained.nonzero()[0]] and len(series) == retained.sum()
    assert meta["NumberOfVolumes"] == 120 and "SamplingFrequency" not in meta
    assert "not evenly spaced" in meta["Description"]
    assert json.loads(censoring_tsv.with_suffix(".json").read_text())["SamplingFrequency"] == pytest.approx(0.5)
    with pytest.raises(InputError, match="rows are only the volumes SampleMask lists"):  # not read back as evenly spaced
        read_roi_timeseries(series_json.with_suffix(".tsv"), labels)


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


def test_dataset_description_code_url_is_the_repository_of_pyproject(tmp_path):
    """GeneratedBy.CodeURL comes from [project.urls] through the installed package's metadata."""
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    description = json.loads(write_dataset_description(tmp_path, simulated=False).read_text())
    assert description["GeneratedBy"][0]["CodeURL"] == pyproject["project"]["urls"]["Repository"]


def test_pipeline_sidecars_and_the_atlas_table(processed_cohort):
    out = processed_cohort.out
    atlas = read_tsv(out / "atlas-Seitzman2018_dseg.tsv")
    assert len(atlas) == 67 + 9 + 36 and atlas["roi"].is_unique  # DefaultMode, Salience, FrontoParietal
    assert "n_voxels" not in atlas.columns  # per-run counts stay with the runs
    for relmat in sorted(out.glob("sub-*/ses-*/func/*_relmat.json")):
        content = json.loads(relmat.read_text())
        assert content["Measure"] == "Pearson correlation" and content["AtlasTable"] == "atlas-Seitzman2018_dseg.tsv"
        matrix = read_tsv(relmat.with_suffix(".tsv"))
        assert content["ROIs"]["roi"] == list(matrix.columns)
        assert set(content["ROIs"]["roi"]) <= set(atlas["roi"])
        entities = {k: v for k, v in parse_entities(relmat.name).items() if k != "meas"}
        series_name = build_name(entities, "timeseries", ".json")
        timeseries = json.loads((relmat.parent / series_name).read_text())
        prefix = output_prefix(entities, drop=("desc", "seg"))
        retained = read_tsv(relmat.parent / f"{prefix}_desc-censoring_timeseries.tsv")["retained"].to_numpy()
        if retained.all():
            assert timeseries["SamplingFrequency"] == pytest.approx(1 / timeseries["RepetitionTime"])
        else:  # rows are the retained volumes only
            assert "SamplingFrequency" not in timeseries and timeseries["SampleMask"] == retained.nonzero()[0].tolist()
        censoring = json.loads((relmat.parent / f"{prefix}_desc-censoring_timeseries.json").read_text())
        assert censoring["RepetitionTime"] == timeseries["RepetitionTime"] > 0
        assert censoring["SamplingFrequency"] == pytest.approx(1 / censoring["RepetitionTime"])
        for name in (series_name, f"{prefix}_networks.json", f"{prefix}_graph.json"):
            other = json.loads((relmat.parent / name).read_text())
            assert "ROIs" not in other and other["AtlasTable"] == "atlas-Seitzman2018_dseg.tsv", name
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["SourceDatasets"] == [{"URL": processed_cohort.fmriprep_dir.resolve().as_uri(),
                                              "Version": description["SourceDatasets"][0]["Version"]}]
