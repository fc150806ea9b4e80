import json

import pytest

from trdnet.config import Settings, with_gsr
from trdnet.errors import SettingsError


def test_settings_round_trip_through_json(tmp_path):
    settings = Settings()
    settings.targeting.top_fraction = 0.2
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(settings.to_dict()))
    again = Settings.from_json(path)
    assert again.to_dict() == settings.to_dict()
    assert again.digest() == settings.digest()
    assert again.digest() != Settings().digest()


def test_unknown_setting_is_named():
    with pytest.raises(SettingsError, match="fd_treshold"):
        Settings.from_dict({"denoise": {"fd_treshold": 0.2}})


def test_gsr_switch_changes_confound_strategy():
    on = Settings()
    off = with_gsr(on, False)
    assert "global_signal" in on.denoise.confound_strategy()
    assert "global_signal" not in off.denoise.confound_strategy()
    assert on.digest() != off.digest()
