import dataclasses
import json
import re
from pathlib import Path

import pytest

from trdnet.config import DenoiseSettings, NetworkSettings, Settings, TargetSettings, with_gsr
from trdnet.denoise import confound_arguments
from trdnet.errors import SettingsError
from trdnet.strategies import apply_strategy, strategies, strategy_name, strategy_values


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


# Digests earlier versions recorded for the default settings and for --no-gsr: output folders processed before
# resume only while these stay the same (new fields at their defaults are left out of the digest).
# Changed once on purpose: the default coil pose became scalp_normal (the identity pose tilted the coil), so a
# folder whose navigator files carry the old pose is named as made with other settings instead of resumed.
# Changed a second time on purpose: the seed map was smoothed at 8 mm FWHM by default, so targets from the old
# default were not resumed as if they were the new ones. Changed back on purpose: on the simulator whose planted
# patch is the strongest site of its noise-free map, 4 mm was more accurate than 8 mm (validation/results/choose),
# and the default returned to 4 mm. In the same change the bootstrap radius gained its calibration factor
# (r95_scale 1.1) and good_r95_mm / fair_r95_mm became 10 / 20 mm, calibrated on that choose set: reliability words
# differ from the ones old folders hold, so those are not resumed as if they were made with these settings.
# Changed on purpose once more: censored volumes at a run's ends are no longer extrapolated before the band-pass
# (nilearn >= 0.13's default; denoise.extrapolate), which changes cleaned edge volumes and so every map.
# Changed on purpose again: r95_scale and good_r95_mm / fair_r95_mm were calibrated on the validation's calibrate
# set (12 participants, seeds of their own) instead of the 6-participant choose set, whose factor did not replicate:
# radii and reliability words differ from the ones old folders hold.
# Changed on purpose again: denoise.min_dof and targeting.min_minutes_for_word count even at their defaults (a run
# may be refused, a reliability word lowered); the digests recorded before them are EARLIER_* and such runs are
# processed again instead of resumed.
DEFAULT_DIGEST = "b72d5c4c9f43"
NO_GSR_DIGEST = "adfe21317ac4"
EARLIER_DEFAULT_DIGEST = "323258b1adb8"
EARLIER_NO_GSR_DIGEST = "f3ac4ef39d6f"


@pytest.fixture
def shipped_settings(monkeypatch):
    """``Settings()`` as trdnet ships it: the tests' settings default to ``denoise.min_dof = 0`` (conftest)."""
    from conftest import SHIPPED_MIN_DOF

    monkeypatch.setattr(DenoiseSettings.__dataclass_fields__["min_dof"], "default", SHIPPED_MIN_DOF)
    return lambda: Settings(denoise=DenoiseSettings(min_dof=SHIPPED_MIN_DOF))


def test_digest_of_unchanged_settings_is_the_one_earlier_versions_recorded(shipped_settings):
    assert shipped_settings().digest() == DEFAULT_DIGEST
    assert with_gsr(shipped_settings(), False).digest() == NO_GSR_DIGEST
    assert shipped_settings().earlier_digest() == EARLIER_DEFAULT_DIGEST
    assert with_gsr(shipped_settings(), False).earlier_digest() == EARLIER_NO_GSR_DIGEST
    # with every added rule set explicitly, earlier versions wrote the same digest
    explicit = Settings.from_dict({"denoise": {"min_dof": 10}, "targeting": {"min_minutes_for_word": 5}})
    assert explicit.earlier_digest() is None
    # a new field changes the digest only when it is used
    assert Settings.from_dict({"denoise": {"n_compcor": 5}}).digest() != DEFAULT_DIGEST


def test_already_cleaned_signals_get_one_digest_whatever_the_denoise_section():
    """Nothing of the denoise section is applied to signals declared already cleaned: it cannot change the digest."""
    cleaned = Settings(denoise=DenoiseSettings(already_cleaned=True))
    assert with_gsr(cleaned, False).digest() == with_gsr(cleaned, True).digest() == cleaned.digest()
    assert Settings(denoise=DenoiseSettings(already_cleaned=True, fd_threshold=0.2)).digest() == cleaned.digest()
    assert cleaned.digest() != Settings().digest()
    # the other sections still count
    changed = dataclasses.replace(cleaned, networks=dataclasses.replace(cleaned.networks, graph_density=0.2))
    assert changed.digest() != cleaned.digest()


def test_paths_in_a_settings_file_are_read_from_its_folder(tmp_path, monkeypatch):
    """As with any configuration file, a relative path means 'beside the file', whatever folder trdnet runs in."""
    from trdnet.preflight import check_setting_files

    folder = tmp_path / "study" / "config"
    (folder / "masks").mkdir(parents=True)
    for name in ("seed.nii.gz", "atlas.nii.gz", "atlas.tsv"):
        (folder / "masks" / name).write_bytes(b"")
    (folder / "settings.json").write_text(json.dumps({
        "targeting": {"seed_mask": "masks/seed.nii.gz", "search_mask": str(folder / "masks" / "seed.nii.gz"),
                      "group_map": "loo"},
        "networks": {"atlas": "labels", "labels_img": "masks/atlas.nii.gz", "labels_table": "../config/masks/atlas.tsv"},
    }))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = Settings.from_json(Path("..") / "study" / "config" / "settings.json")
    assert settings.targeting.seed_mask == str(folder.resolve() / "masks" / "seed.nii.gz")
    assert settings.targeting.search_mask == str(folder / "masks" / "seed.nii.gz")  # absolute: as given
    assert settings.targeting.group_map == "loo"  # a keyword, not a file
    assert settings.networks.labels_img == str(folder.resolve() / "masks" / "atlas.nii.gz")
    assert settings.networks.labels_table == str(folder.resolve() / "masks" / "atlas.tsv")
    check_setting_files(settings)  # every file is found although none is under the working folder
    (folder / "masks" / "atlas.tsv").unlink()
    with pytest.raises(SettingsError, match="networks.labels_table .*read from the file's folder"):
        check_setting_files(settings)


def test_values_are_checked_when_built_and_when_assigned():
    with pytest.raises(SettingsError, match=r"targeting\.top_fraction = 2 .*\(0, 1\]"):
        TargetSettings(top_fraction=2)
    with pytest.raises(SettingsError, match=r"denoise\.scrub = 1 .*true or false"):
        DenoiseSettings(scrub=1)
    settings = Settings()
    with pytest.raises(SettingsError, match=r"targeting\.n_bootstrap"):
        settings.targeting.n_bootstrap = -1
    assert settings.targeting.n_bootstrap == 100  # a refused assignment leaves the old value
    with pytest.raises(SettingsError, match=r"denoise\.low_pass = 0.005"):
        settings.denoise.low_pass = 0.005
    assert settings.denoise.low_pass == 0.1
    with pytest.raises(SettingsError, match=r"targeting\.methods"):
        dataclasses.replace(settings.targeting, methods=("cluster", "cluster"))
    settings.denoise.low_pass = None  # None switches the low-pass off
    assert settings.targeting.seed_center_mm == (6.0, 16.0, -10.0)
    assert Settings.from_dict({"targeting": {"seed_center_mm": [1, 2, 3]}}).targeting.seed_center_mm == (1, 2, 3)


@pytest.mark.parametrize("key", ["search_sites", "reference_targets"])
def test_reference_site_names_are_checked_against_the_shipped_table(key):
    from trdnet.config import reference_site_names
    from trdnet.targeting.regions import reference_sites

    assert set(reference_site_names()) == set(reference_sites())  # the runs look coordinates up by these names
    with pytest.raises(SettingsError) as refused:
        Settings.from_dict({"targeting": {key: ["5cm", "nowhere"]}})
    message = str(refused.value)
    assert message.startswith(f'targeting.{key} = ["5cm", "nowhere"] is not accepted')
    assert all(repr(name) in message for name in reference_site_names())
    every = TargetSettings(**{key: reference_site_names()})  # each shipped site is accepted
    with pytest.raises(SettingsError, match=f"targeting.{key}"):
        setattr(every, key, ("moon",))
    assert getattr(every, key) == reference_site_names()
    with pytest.raises(SettingsError, match="each name once"):
        TargetSettings(**{key: ("5cm", "5cm")})


def test_network_mapping_is_checked_against_the_atlas_labels():
    from trdnet.networks.presets import preset_network_labels
    from trdnet.networks.rois import network_rois

    with pytest.raises(SettingsError, match=r"^networks\.networks = \{\} is not accepted; accepted: .*DMN"):
        Settings.from_dict({"networks": {"networks": {}}})
    labels = preset_network_labels("seitzman2018")
    with pytest.raises(SettingsError) as refused:
        Settings.from_dict({"networks": {"networks": {"DMN": ["Nope"]}}})
    message = str(refused.value)
    assert message.startswith('networks.networks.DMN = ["Nope"] is not accepted')
    assert all(repr(label) in message for label in labels)
    with pytest.raises(SettingsError, match=r"networks\.networks\.DMN = \[\]"):  # nothing would map to DMN
        NetworkSettings(networks={"DMN": []})
    # the labels are the atlas's: another preset refuses Seitzman's names and accepts its own
    with pytest.raises(SettingsError, match="'dosenbach2010'"):
        NetworkSettings(atlas="dosenbach2010", networks={"DMN": ["DefaultMode"]})
    for atlas in ("seitzman2018", "dosenbach2010", "raichle_nodes"):
        first = preset_network_labels(atlas)[0]
        rois = network_rois(NetworkSettings(atlas=atlas, networks={"DMN": [first]}))
        assert set(rois["network"]) == {"DMN"} and len(rois) > 0
    # a user atlas's labels are in its table, read before any work (trdnet.networks.atlas_check)
    assert NetworkSettings(atlas="labels", labels_img="a.nii.gz", labels_table="a.tsv",
                           networks={"DMN": ["Anything"]}).networks == {"DMN": ["Anything"]}


def test_seedmap_without_a_group_map_is_refused_before_any_work():
    from trdnet.preflight import check_group_map_given

    settings = Settings.from_dict({"targeting": {"methods": ["cluster", "seedmap"]}})  # a caller may pass the map
    with pytest.raises(SettingsError, match=r"'seedmap' needs a group sgACC map.*--group-map.*targeting\.group_map"):
        check_group_map_given(settings)
    check_group_map_given(Settings.from_dict({"targeting": {"methods": ["seedmap"], "group_map": "loo"}}))


def test_nyquist_check_names_the_file():
    denoise = DenoiseSettings(low_pass=0.2)
    denoise.check_sampling(2.0, "run.nii.gz")  # Nyquist 0.25 Hz
    with pytest.raises(SettingsError, match=r"^run\.nii\.gz: denoise\.low_pass = 0.2 Hz .*0\.1667"):
        denoise.check_sampling(3.0, "run.nii.gz")


def test_every_strategy_file_is_valid_distinct_and_named_back():
    presets = strategies()
    expected = {"simple", "simple+gsr", "scrubbing.5", "scrubbing.5+gsr", "scrubbing.2", "compcor", "default"}
    assert expected <= set(presets)
    for name in presets:
        settings = apply_strategy(Settings(), name)
        assert strategy_name(settings.denoise) == name
        assert Settings.from_dict(settings.to_dict()) == settings
    assert strategy_name(Settings().denoise) == "default"
    assert strategy_name(with_gsr(apply_strategy(Settings(), "simple"), True).denoise) == "simple+gsr"
    assert strategy_name(dataclasses.replace(Settings().denoise, fd_threshold=0.3)) is None
    # without censoring, its thresholds change nothing: still the strategy
    simple = apply_strategy(Settings(), "simple").denoise
    assert strategy_name(dataclasses.replace(simple, fd_threshold=0.3, scrub_min_segment=0)) == "simple"


def test_strategies_set_what_nilearn_is_given():
    scrub = apply_strategy(Settings(), "scrubbing.2").denoise
    arguments = confound_arguments(scrub)
    assert arguments["fd_threshold"] == 0.2 and arguments["wm_csf"] == "full"
    assert "global_signal" not in arguments["strategy"] and "scrub" in arguments["strategy"]
    compcor = confound_arguments(apply_strategy(Settings(), "compcor").denoise)
    assert compcor["compcor"] == "anat_combined" and compcor["n_compcor"] == "all"
    assert {"compcor", "high_pass"} <= set(compcor["strategy"]) and "wm_csf" not in compcor["strategy"]
    assert "compcor" not in confound_arguments(Settings().denoise)


def test_settings_file_forms_are_refused_with_the_file_named(tmp_path):
    path = tmp_path / "s.json"
    for content, words in (("[]", "got a list"), ('{"denoise": 2}', "'denoise' must be an object"),
                           ('{"denoise": {"strategy": "simple", "motion": "x"}}', "denoise.motion")):
        path.write_text(content)
        with pytest.raises(SettingsError, match=f"^{re.escape(str(path))}: .*{re.escape(words)}"):
            Settings.from_json(path)


def test_a_strategy_named_beside_values_that_make_it_another_strategy_is_refused():
    """`trdnet settings --defaults` output with only its strategy changed: the explicit values would silently win
    and the run would be the default strategy, not the one named."""
    dumped = Settings().to_dict()
    assert dumped["denoise"]["strategy"] == "default"
    dumped["denoise"]["strategy"] = "simple"
    with pytest.raises(SettingsError, match=r"names strategy 'simple', but the values beside it make it strategy "
                                            r"'default'"):
        Settings.from_dict(dumped)
    # a value that agrees with the strategy keeps it; one that changes it makes a custom setting (not refused)
    simple = strategy_values("simple")
    agreeing = Settings.from_dict({"denoise": {"strategy": "simple", "scrub": simple["scrub"]}})
    assert strategy_name(agreeing.denoise) == "simple"
    custom = Settings.from_dict({"denoise": {"strategy": "scrubbing.2", "fd_threshold": 0.3}})
    assert strategy_name(custom.denoise) is None


def test_a_run_recorded_before_the_added_rules_is_processed_again_not_resumed(tmp_path, caplog, shipped_settings):
    """A run an earlier version recorded for the default settings (no min_dof, no min_minutes_for_word) is not
    finished for this version; other settings are still refused; this version's own record resumes."""
    from pathlib import Path

    from trdnet.cohort import check_same_settings
    from trdnet.inputs.runs import Run
    from trdnet.pipeline import FinishedWithOtherSettings, is_finished
    from trdnet.records import write_completion_record

    settings = shipped_settings()
    run = Run(bold=Path("sub-01_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"),
              entities={"sub": "01", "task": "rest", "space": "MNI152NLin2009cAsym"})

    def recorded(digest):
        write_completion_record(tmp_path, run.prefix, "sub-01", digest, [], {}, False)

    recorded(settings.digest())
    assert is_finished(run, tmp_path, settings)
    recorded(EARLIER_DEFAULT_DIGEST)
    assert not is_finished(run, tmp_path, settings)
    with caplog.at_level("WARNING", logger="trdnet"):
        check_same_settings([run], tmp_path, settings, overwrite=False)
    assert "denoise.min_dof and targeting.min_minutes_for_word" in caplog.text and run.prefix in caplog.text
    recorded(NO_GSR_DIGEST)
    with pytest.raises(FinishedWithOtherSettings, match="other settings"):
        is_finished(run, tmp_path, settings)
