"""``trdnet demo`` into a folder finished with other settings: refused before anything is simulated."""

import json

import pytest

import trdnet.inputs.simulate as simulate
from trdnet.cli import main
from trdnet.config import Settings
from trdnet.demo import check_demo_settings
from trdnet.errors import SettingsError
from trdnet.records import write_completion_record

PREFIX = "sub-01_task-rest_space-MNI152NLin2009cAsym"


def _finished_demo_run(out, settings: Settings, digest: str | None = None) -> None:
    sidecar = f"sub-01/func/{PREFIX}_networks.json"
    (out / sidecar).parent.mkdir(parents=True, exist_ok=True)
    (out / sidecar).write_text(json.dumps({"Settings": settings.to_dict()}))
    write_completion_record(out, PREFIX, "sub-01", digest or settings.digest(), [sidecar], {}, True)


def test_demo_with_other_settings_is_refused_in_one_line_before_simulating(tmp_path, monkeypatch, capsys):
    out = tmp_path / "trdnet"
    _finished_demo_run(out, Settings.from_dict({"targeting": {"n_bootstrap": 7}}))

    def simulated(*args, **kwargs):
        raise AssertionError("the demo simulated before refusing its settings")

    monkeypatch.setattr(simulate, "simulate_cohort", simulated)
    assert main(["demo", str(tmp_path), "--n-bootstrap", "5", "--no-report"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert str(out) in err and "other settings" in err and "targeting.n_bootstrap (7 vs 5)" in err
    assert "--overwrite" in err
    assert not (tmp_path / "simulated").exists()


def test_demo_settings_check_accepts_its_own_and_earlier_records(tmp_path):
    settings = Settings.from_dict({"targeting": {"n_bootstrap": 5}})
    check_demo_settings(tmp_path / "none-yet", settings)  # an empty folder
    _finished_demo_run(tmp_path, settings)
    check_demo_settings(tmp_path, settings)
    _finished_demo_run(tmp_path, settings, settings.earlier_digest())  # processed again, as by trdnet run
    check_demo_settings(tmp_path, settings)
    _finished_demo_run(tmp_path, settings, "0123456789ab")
    with pytest.raises(SettingsError, match="record the same settings"):
        check_demo_settings(tmp_path, settings)
