"""Public dataset loading against fake nilearn caches laid out like the real ones."""

from __future__ import annotations

import numpy as np
import pytest
import requests
from fakes.nilearn_caches import ABIDE_ROWS, make_abide_cache, make_adhd_cache, make_development_fmri_cache

from trdnet.config import DenoiseSettings, Settings
from trdnet.errors import DatasetError, SettingsError
from trdnet.inputs.dataset_runs import adapt_settings
from trdnet.inputs.datasets import DATASETS
from trdnet.inputs.public import (
    fetch_dataset,
    nilearn_cache_dir,
    read_dataset_confounds,
)
from trdnet.inputs.runs import Run


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every HTTP request fails, so passing tests prove the cache alone was used."""
    calls = []

    def refuse(self, request, **kwargs):
        calls.append(request.url)
        raise requests.ConnectionError(f"network disabled in tests: {request.url}")

    monkeypatch.setattr(requests.Session, "send", refuse)
    return calls


def test_dataset_names():
    assert set(DATASETS) == {"development_fmri", "adhd", "abide_pcp", "brainfc_rest01", "lemon_fsaverage5"}


def test_development_fmri_runs_from_cache(tmp_path, no_network):
    make_development_fmri_cache(tmp_path)
    ds = fetch_dataset("development_fmri", data_dir=tmp_path)
    assert no_network == []
    assert [r.subject for r in ds.runs] == ["pixar001", "pixar002", "pixar123"]
    for run in ds.runs:
        assert isinstance(run, Run)
        assert run.tr == 2.0
        assert run.space == "MNI152NLin2009cAsym"
        assert run.entities["task"] == "pixar"
        assert run.source == "development_fmri"
        assert run.bold.is_file() and run.confounds.is_file()
        assert run.confounds.name == f"sub-{run.subject}_task-pixar_desc-confounds_regressors.tsv"
    assert ds.cache_dir == (tmp_path / "development_fmri").resolve()
    assert not ds.preprocessing.resting_state
    assert ds.preprocessing.confounds_format == "fmriprep"
    assert ds.fetch_arguments["reduce_confounds"] is False
    # nothing written into the cache (no reduced-confounds copies)
    assert not list((tmp_path / "development_fmri").glob("*reducedConfounds*"))
    assert len(ds.phenotypic) == 3


def test_development_fmri_n_subjects_keeps_nilearn_child_adult_rule(tmp_path):
    make_development_fmri_cache(tmp_path)
    ds = fetch_dataset("development_fmri", data_dir=tmp_path, n_subjects=2)
    # nilearn: with age_group='both' and 2 subjects, one adult and one child
    assert sorted(r.subject for r in ds.runs) == ["pixar001", "pixar123"]


def test_adhd_runs_tr_and_confounds(tmp_path):
    make_adhd_cache(tmp_path)
    ds = fetch_dataset("adhd", data_dir=tmp_path, n_subjects=2)
    assert [r.subject for r in ds.runs] == ["0010042", "0010064"]
    assert all(r.tr == 2.0 and r.entities["task"] == "rest" for r in ds.runs)
    assert ds.preprocessing.confounds_format == "adhd_csv"
    assert not ds.preprocessing.can_scrub
    assert list(ds.phenotypic["Subject"]) == ["0010042", "0010064"]
    table = read_dataset_confounds(ds.runs[0])
    assert table.shape == (30, 17)
    renamed = ("trans_x", "rot_z", "white_matter", "csf", "global_signal", "a_comp_cor_00", "a_comp_cor_04")
    assert set(renamed) <= set(table.columns)
    assert ds.notes == ()


def test_adhd_header_tr_disagreement_is_noted(tmp_path):
    make_adhd_cache(tmp_path, header_tr=2.5)
    ds = fetch_dataset("adhd", data_dir=tmp_path, n_subjects=1)
    assert ds.runs[0].tr == 2.0
    assert len(ds.notes) == 1 and "2.5" in ds.notes[0]


def test_abide_quality_filter_and_site_tr(tmp_path):
    make_abide_cache(tmp_path)
    ds = fetch_dataset("abide_pcp", data_dir=tmp_path)
    # 50004 fails QC, 50953 has no file
    assert [r.subject for r in ds.runs] == ["50003", "50952", "51456"]
    assert [r.tr for r in ds.runs] == [1.5, 2.0, 2.0]
    assert all(r.bold.is_file() and r.confounds is None for r in ds.runs)
    assert ds.runs[0].bold.parent == (tmp_path / "ABIDE_pcp" / "cpac" / "nofilt_noglobal").resolve()
    assert ds.notes == ()  # header TRs of the fake agree with the site table


def test_abide_n_subjects_and_tr_override(tmp_path):
    make_abide_cache(tmp_path)
    ds = fetch_dataset("abide_pcp", data_dir=tmp_path, n_subjects=1, abide_site_tr={"PITT": 3.0})
    assert [(r.subject, r.tr) for r in ds.runs] == [("50003", 3.0)]
    assert "1.5" in ds.notes[0]  # the header (1.5 s) now disagrees


def test_abide_unknown_site_is_refused(tmp_path):
    rows = ((51234, "MARS", "Mars_0051234", True),)
    make_abide_cache(tmp_path, rows=rows)
    with pytest.raises(DatasetError, match="MARS"):
        fetch_dataset("abide_pcp", data_dir=tmp_path)


def test_abide_filt_global_preprocessing_conflicts(tmp_path):
    make_abide_cache(tmp_path, strategy="filt_global")
    ds = fetch_dataset("abide_pcp", data_dir=tmp_path, abide_strategy="filt_global")
    prep = ds.preprocessing
    assert prep.band_passed and prep.gsr_applied and prep.confounds_format == "none"
    assert ds.fetch_arguments["band_pass_filtering"] and ds.fetch_arguments["global_signal_regression"]
    assert prep.to_dict()["band_passed"] is True
    settings, changes = adapt_settings(Settings(), ds)
    assert settings.denoise.high_pass is None and settings.denoise.low_pass is None and not settings.denoise.scrub
    changes = " ".join(changes)
    assert "band-passed" in changes and "scrubbing" in changes and "no confounds table" in changes
    no_gsr = Settings(denoise=DenoiseSettings(global_signal="none"))
    with pytest.raises(SettingsError, match="already regressed the global signal"):
        adapt_settings(no_gsr, ds)


def test_abide_nofilt_allows_filtering(tmp_path):
    make_abide_cache(tmp_path)
    prep = fetch_dataset("abide_pcp", data_dir=tmp_path).preprocessing
    dataset = fetch_dataset("abide_pcp", data_dir=tmp_path)
    settings, changes = adapt_settings(Settings(denoise=DenoiseSettings(global_signal="none", scrub=False)), dataset)
    assert settings.denoise.high_pass == DenoiseSettings().high_pass and not settings.denoise.gsr
    assert not any("band-passed" in c for c in changes) and any("no confounds table" in c for c in changes)


def test_abide_roi_timeseries(tmp_path):
    make_abide_cache(tmp_path, derivatives=("rois_cc200",))
    labels = {"DMN": ["1", "2"], "SN": ["3", "4"], "ECN": ["5", "6"]}
    ds = fetch_dataset("abide_pcp", data_dir=tmp_path, abide_derivative="rois_cc200", roi_labels=labels)
    assert ds.runs == []
    assert [r.subject for r in ds.roi_runs] == ["50003", "50952", "51456"]
    run = ds.roi_runs[0]
    assert run.tr == 1.5 and run.entities["seg"] == "cc200"
    signals, rois = run.load()
    expected = np.loadtxt(run.path, comments="#")
    np.testing.assert_allclose(signals, expected)
    assert list(rois["network"]) == ["DMN", "DMN", "SN", "SN", "ECN", "ECN"]


def test_abide_roi_timeseries_need_labels(tmp_path):
    with pytest.raises(DatasetError, match="labels"):
        fetch_dataset("abide_pcp", data_dir=tmp_path, abide_derivative="rois_cc200")


@pytest.mark.parametrize(
    "kwargs", [{"abide_pipeline": "spm"}, {"abide_strategy": "filt"}, {"abide_derivative": "reho"}]
)
def test_abide_bad_options(tmp_path, kwargs):
    with pytest.raises(DatasetError, match="accepted"):
        fetch_dataset("abide_pcp", data_dir=tmp_path, **kwargs)


def test_unknown_dataset_and_bad_n_subjects(tmp_path):
    with pytest.raises(DatasetError, match="accepted: development_fmri, adhd, abide_pcp"):
        fetch_dataset("hcp", data_dir=tmp_path)
    with pytest.raises(DatasetError, match="n_subjects"):
        fetch_dataset("adhd", data_dir=tmp_path, n_subjects=0)


@pytest.mark.parametrize(
    ("name", "folder", "expected_file"),
    [
        ("development_fmri", "development_fmri", "participants.tsv"),
        ("adhd", "adhd", "ADHD200_40subs_motion_parameters_and_phenotypics.csv"),
        ("abide_pcp", "ABIDE_pcp", "Phenotypic_V1_0b_preprocessed1.csv"),
    ],
)
def test_offline_empty_cache_gives_one_clear_error(tmp_path, no_network, name, folder, expected_file):
    with pytest.raises(DatasetError) as info:
        fetch_dataset(name, data_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert repr(name) in message
    assert str(tmp_path / folder) in message
    assert "by hand" in message and expected_file in message
    assert no_network  # the fetcher did try the network
    assert not (tmp_path / folder).exists()  # no empty folders left behind


def test_offline_partial_cache_names_missing_subjects_folder(tmp_path):
    make_adhd_cache(tmp_path)  # 3 of the 40 participants
    with pytest.raises(DatasetError, match="data/<id>/<id>_rest_tshift_RPI_voreg_mni.nii.gz"):
        fetch_dataset("adhd", data_dir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "adhd").iterdir()) == [
        "ADHD200_40subs_motion_parameters_and_phenotypics.csv",
        "data",
    ]


def test_default_cache_follows_nilearn_data_env(tmp_path, monkeypatch):
    monkeypatch.delenv("NILEARN_SHARED_DATA", raising=False)
    monkeypatch.setenv("NILEARN_DATA", str(tmp_path / "nl"))
    assert nilearn_cache_dir("abide_pcp") == tmp_path / "nl" / "ABIDE_pcp"
    assert not (tmp_path / "nl").exists()  # asking does not create it
    make_adhd_cache(tmp_path / "nl")
    ds = fetch_dataset("adhd", n_subjects=1)
    assert ds.cache_dir == (tmp_path / "nl" / "adhd").resolve()
    assert ds.runs[0].subject == "0010042"


def test_fake_abide_rows_cover_the_filters():
    # guards the fixture: one QC failure and one missing file must stay in it
    assert any(not r[3] for r in ABIDE_ROWS) and any(r[2] == "no_filename" for r in ABIDE_ROWS)


def _network_errors():
    import http.client
    import socket
    import urllib.error

    import urllib3

    url = "https://www.nitrc.org/frs/download.php/7781/adhd40_metadata.tgz"
    return {
        "connection": requests.ConnectionError("Max retries exceeded (Name or service not known)"),
        "http status": requests.HTTPError(f"503 Server Error: Service Unavailable for url: {url}"),
        "requests timeout": requests.Timeout("read timed out"),
        "urllib": urllib.error.URLError("[Errno -3] Temporary failure in name resolution"),
        "socket timeout": socket.timeout("timed out"),
        "truncated body": http.client.IncompleteRead(b"partial", 1000),
        "aborted stream": urllib3.exceptions.ProtocolError("Connection aborted."),
        "urllib3 timeout": urllib3.exceptions.ReadTimeoutError(None, url, "Read timed out."),
    }


@pytest.mark.parametrize("kind", list(_network_errors()))
def test_a_network_failure_while_fetching_is_one_line_naming_dataset_address_and_error(tmp_path, monkeypatch,
                                                                                       capsys, kind):
    """Whatever the network raises under nilearn's fetcher (requests, urllib, urllib3, http.client, sockets), the
    command says in one line which dataset, which address and what went wrong, and exits 2 as its --help says."""
    from trdnet.cli import main

    error = _network_errors()[kind]

    def fail(self, request, **kwargs):
        raise error

    monkeypatch.setattr(requests.Session, "send", fail)
    assert main(["fetch", "adhd", "--data-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert lines[0].startswith("trdnet: error: cannot fetch dataset 'adhd' from https://www.nitrc.org")
    assert f"({type(error).__name__}: " in lines[0]
    assert str(tmp_path / "adhd") in lines[0] and "by hand" in lines[0]


def test_the_address_a_request_failed_on_is_named(tmp_path):
    """requests attaches the request to its errors: that URL, not the dataset's host, is named."""
    url = "https://osf.io/yr3av/download"
    request = requests.Request("GET", url).prepare()

    def fail(self, prepared, **kwargs):
        raise requests.ConnectionError("Name or service not known", request=request)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(requests.Session, "send", fail)
        with pytest.raises(DatasetError) as info:
            fetch_dataset("development_fmri", data_dir=tmp_path)
    assert f"cannot fetch dataset 'development_fmri' from {url} (ConnectionError: " in str(info.value)


@pytest.mark.parametrize("name", ["brainfc_rest01", "lemon_fsaverage5"])
def test_a_wheel_dataset_the_index_cannot_serve_is_one_line_naming_dataset_and_index(tmp_path, monkeypatch,
                                                                                    capsys, name):
    """The real samples in wheels come through pip: a failed download names the dataset, the index pip looked in
    and pip's last error line, and exits 2."""
    import subprocess

    from trdnet.cli import main

    def pip_offline(command, **kwargs):
        return subprocess.CompletedProcess(
            command, 1, stdout="Looking in indexes: https://mirror.example.org/simple\n",
            stderr="WARNING: Retrying after connection broken by 'NewConnectionError'\n"
                   "ERROR: No matching distribution found for the package\n")

    monkeypatch.setenv("TRDNET_WHEELS_DIR", str(tmp_path / "wheels"))
    monkeypatch.setattr("trdnet.inputs.registry.subprocess.run", pip_offline)
    assert main(["fetch", name, "--data-dir", str(tmp_path / "data")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert lines[0].startswith(f"trdnet: error: cannot fetch dataset {name!r}: ")
    assert "download from the package index (https://mirror.example.org/simple) failed" in lines[0]
    assert "No matching distribution found" in lines[0] and str(tmp_path / "wheels") in lines[0]
    assert not (tmp_path / "data").exists()
