"""The command line as a user meets it: refusals before any work, settings, strategies, BIDS-App options."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from trdnet.cli import main
from trdnet.config import DenoiseSettings, Settings


from conftest import write_fmriprep_run, write_mni_run

FAST = ["--n-bootstrap", "5", "--no-report"]


@pytest.fixture(scope="module")
def small_derivatives(tmp_path_factory):
    """Two participants, participant 01 with two sessions; TR 2 s; no CompCor columns. Read only."""
    root = tmp_path_factory.mktemp("small") / "fmriprep"
    write_fmriprep_run(root, sub="01", ses="a", seed=1)
    write_fmriprep_run(root, sub="01", ses="b", seed=2)
    write_fmriprep_run(root, sub="02", seed=3)
    return root


def refused(capsys, argv, out_dir=None):
    """Run the command, check it was refused with one line and no output folder, return the line."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("trdnet: error:") and "\n" not in err, err
    assert "Traceback" not in err
    if out_dir is not None:
        assert not Path(out_dir).exists(), "work started before the refusal"
    return err


# -- the settings file ------------------------------------------------------------------------------------

SETTINGS_FILE_PROBLEMS = [
    ("[1, 2]", ["must be a JSON object", "a list"]),
    ('{"targeting": 3}', ["'targeting'", "must be an object", "a number"]),
    ('{"targeting": {"top_fractoin": 0.1}}', ["top_fractoin", "accepted", "top_fraction"]),
    ('{"denoising": {}}', ["'denoising'", "accepted"]),
    ('{"targeting": {', ["not valid JSON", "line 1"]),
    ('{"targeting": {"top_fraction": 2}}', ["targeting.top_fraction = 2", "(0, 1]"]),
    ('{"targeting": {"top_fraction": -0.1}}', ["targeting.top_fraction = -0.1", "(0, 1]"]),
    ('{"targeting": {"top_fraction": "0.1"}}', ["targeting.top_fraction", "a number"]),
    ('{"targeting": {"n_bootstrap": 1000000000}}', ["targeting.n_bootstrap = 1000000000", "10000"]),
    ('{"targeting": {"n_bootstrap": 2.5}}', ["targeting.n_bootstrap = 2.5", "an integer"]),
    ('{"targeting": {"methods": []}}', ["targeting.methods", "at least one"]),
    ('{"targeting": {"methods": ["cluster", "clusters"]}}', ["targeting.methods", "'hierarchical'"]),
    ('{"targeting": {"seed_center_mm": [6, 16]}}', ["targeting.seed_center_mm", "3 numbers"]),
    ('{"targeting": {"hierarchical_linkage": "ward"}}', ["targeting.hierarchical_linkage", "'average'"]),
    ('{"targeting": {"fair_r95_mm": 2}}', ["targeting.fair_r95_mm = 2", "good_r95_mm"]),
    ('{"targeting": {"reliability": "yes"}}', ["targeting.reliability", "true or false"]),
    ('{"denoise": {"motion": "fulll"}}', ['denoise.motion = "fulll"', "'power2'", "'full'"]),
    ('{"denoise": {"wm_csf": "all"}}', ["denoise.wm_csf", "'none'"]),
    ('{"denoise": {"global_signal": "yes"}}', ["denoise.global_signal", "'basic'"]),
    ('{"denoise": {"fd_threshold": 0}}', ["denoise.fd_threshold = 0", "> 0"]),
    ('{"denoise": {"std_dvars_threshold": -1}}', ["denoise.std_dvars_threshold = -1", "> 0"]),
    ('{"denoise": {"high_pass": 0}}', ["denoise.high_pass = 0", "> 0, or null"]),
    ('{"denoise": {"high_pass": 0.2}}', ["denoise.high_pass = 0.2", "denoise.low_pass = 0.1"]),
    ('{"denoise": {"butterworth_order": 0}}', ["denoise.butterworth_order = 0", "[1, 10]"]),
    ('{"denoise": {"filter": "cosine"}}', ["denoise.filter", "'butterworth'"]),
    ('{"denoise": {"n_compcor": "half"}}', ["denoise.n_compcor", "'all'"]),
    ('{"denoise": {"strategy": "scrubbing.7"}}', ["scrubbing.7", "scrubbing.5+gsr"]),
    ('{"networks": {"graph_density": 0}}', ["networks.graph_density = 0", "(0, 1]"]),
    ('{"networks": {"atlas": "yeo"}}', ["networks.atlas", "'seitzman2018'"]),
    ('{"networks": {"atlas": "labels"}}', ["networks.labels_img", "networks.labels_table"]),
    ('{"networks": {"networks": {}}}', ["networks.networks = {}", "DMN"]),
    ('{"networks": {"networks": {"DMN": ["Nope"]}}}', ['networks.networks.DMN = ["Nope"]', "'DefaultMode'"]),
    ('{"targeting": {"search_sites": ["5cm", "nowhere"]}}', ['targeting.search_sites = ["5cm", "nowhere"]',
                                                             "'f3_beam'"]),
    ('{"targeting": {"reference_targets": ["moon"]}}', ['targeting.reference_targets = ["moon"]', "'ba46'"]),
    ('{"export": {"coil_orientation": "tangential"}}', ["export.coil_orientation", "'scalp_normal'"]),
    ('{"export": {"formats": ["brainsight", "neurosight"]}}', ["export.formats", "'localite'"]),
    ('{"random_state": -1}', ["random_state = -1", "an integer"]),
    ('{"denoise": {"already_cleaned": true}}', ["denoise.already_cleaned", "--already-cleaned", "remove it"]),
    ('{"space": "MNI152NLin2009cAsym:res2"}', ["space", "BIDS space label", "MNI152NLin2009cAsym:res-2"]),
    ('{"targeting": {"n_bootstrap": 5, "n_bootstrap": 50}}', ["key 'n_bootstrap' appears twice"]),
    ('{"denoise": {}, "denoise": {"gsr": false}}', ["key 'denoise' appears twice"]),
]


@pytest.mark.parametrize("content, words", SETTINGS_FILE_PROBLEMS, ids=[c for c, _ in SETTINGS_FILE_PROBLEMS])
def test_settings_file_problem_is_one_line_before_any_work(small_derivatives, tmp_path, capsys, content, words):
    settings_file = tmp_path / "my settings.json"
    settings_file.write_text(content, encoding="utf-8")
    out = tmp_path / "out"
    err = refused(capsys, ["run", small_derivatives, out, "participant", "--settings", settings_file], out)
    assert str(settings_file) in err
    for word in words:
        assert word in err, (word, err)


def test_settings_file_not_utf8_or_missing(small_derivatives, tmp_path, capsys):
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{"networks": {"atlas": "d\u00e9faut"}}'.encode("latin-1"))
    err = refused(capsys, ["run", small_derivatives, tmp_path / "out", "participant", "--settings", latin1])
    assert str(latin1) in err and "not UTF-8" in err
    missing = tmp_path / "missing.json"
    err = refused(capsys, ["run", small_derivatives, tmp_path / "out", "participant", "--settings", missing])
    assert str(missing) in err and "cannot read" in err


def test_command_line_values_are_checked_like_settings(small_derivatives, tmp_path, capsys):
    out = tmp_path / "out"
    err = refused(capsys, ["run", small_derivatives, out, "participant", "--n-bootstrap", "1000000000"], out)
    assert "targeting.n_bootstrap = 1000000000" in err
    err = refused(capsys, ["run", small_derivatives, out, "participant", "--random-state", "-3"], out)
    assert "random_state = -3" in err
    err = refused(capsys, ["run", small_derivatives, out, "participant", "--space", "MNI152NLin2009cAsym_res-2"], out)
    assert "space" in err


def test_space_of_the_settings_file_is_used_unless_space_is_given(small_derivatives, tmp_path, capsys):
    settings_file = tmp_path / "s.json"
    settings_file.write_text(json.dumps({"space": "T1w"}))
    out = tmp_path / "out"
    err = refused(capsys, ["run", small_derivatives, out, "participant", "--settings", settings_file], out)
    assert "space 'T1w'" in err and "MNI152NLin2009cAsym" in err
    err = refused(capsys, ["run", small_derivatives, out, "participant", "--settings", settings_file,
                           "--space", "MNI152NLin6Asym"], out)
    assert "space 'MNI152NLin6Asym'" in err


def test_a_setting_naming_a_missing_file_is_refused(small_derivatives, tmp_path, capsys):
    settings_file = tmp_path / "s.json"
    out = tmp_path / "out"
    for section, key in (("targeting", "seed_mask"), ("networks", "labels_table")):
        values = {section: {key: str(tmp_path / "nowhere.nii.gz")}}
        if section == "networks":
            values["networks"].update(atlas="labels", labels_img=str(settings_file))
        settings_file.write_text(json.dumps(values))
        err = refused(capsys, ["run", small_derivatives, out, "participant", "--settings", settings_file], out)
        assert f"{section}.{key} = " in err and "nowhere.nii.gz" in err and "no such file" in err
    err = refused(capsys, ["run", small_derivatives, out, "participant", "--target-method", "seedmap",
                           "--group-map", tmp_path / "group.nii.gz"], out)
    assert "targeting.group_map" in err and "group.nii.gz" in err


def test_seedmap_without_a_group_map_is_refused_naming_the_option(small_derivatives, tmp_path, capsys):
    out = tmp_path / "out"
    err = refused(capsys, ["run", small_derivatives, out, "participant", "--target-method", "cluster", "seedmap"], out)
    assert "'seedmap' needs a group sgACC map" in err and "--group-map" in err and "targeting.group_map" in err


@pytest.mark.parametrize("values, words", [
    ({"targeting": {"search_sites": ["5cm", "nowhere"]}}, ["targeting.search_sites", "nowhere", "'ba9'"]),
    ({"networks": {"networks": {"DMN": ["Nope"]}}}, ["networks.networks.DMN", "Nope", "'Salience'"]),
])
def test_settings_command_refuses_unknown_names_in_the_file(tmp_path, capsys, values, words):
    settings_file = tmp_path / "s.json"
    settings_file.write_text(json.dumps(values))
    code = main(["settings", "--settings", str(settings_file)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(f"trdnet: error: {settings_file}: ") and "\n" not in err, err
    for word in words:
        assert word in err, (word, err)


def _compcor_run(root, sidecar):
    """One fMRIPrep run whose confounds table has a_comp_cor_00..04 and the given JSON sidecar (None: removed)."""
    import pandas as pd

    paths = write_fmriprep_run(root, sub="04")
    table = pd.read_csv(paths["confounds"], sep="\t")
    for i in range(5):
        table[f"a_comp_cor_{i:02d}"] = [((i + 1) * v) % 7 - 3.0 for v in range(len(table))]
    table.to_csv(paths["confounds"], sep="\t", index=False, na_rep="n/a")
    json_path = paths["confounds"].with_suffix(".json")
    if sidecar is None:
        json_path.unlink()
    else:
        json_path.write_text(json.dumps(sidecar))
    return paths


COMPCOR_SIDECARS = [
    (None, "no confounds JSON sidecar"),
    ({}, "describes no a_comp_cor_* component with Mask 'combined'"),
    ({f"a_comp_cor_{i:02d}": {"Mask": "CSF"} for i in range(5)}, "with Mask 'combined'"),
    ({f"a_comp_cor_{i:02d}": {"Method": "aCompCor"} for i in range(5)}, "no usable 'Mask'"),
    ({f"a_comp_cor_{i:02d}": {"Mask": "combined"} for i in range(7)}, "absent from"),
]


@pytest.mark.parametrize("sidecar, words", COMPCOR_SIDECARS, ids=[w for _, w in COMPCOR_SIDECARS])
def test_compcor_needs_a_sidecar_describing_the_components(tmp_path, capsys, sidecar, words):
    paths = _compcor_run(tmp_path / "fmriprep", sidecar)
    out = tmp_path / "out"
    err = refused(capsys, ["run", paths["root"], out, "participant", "--denoise-strategy", "compcor"], out)
    assert str(paths["confounds"].with_suffix(".json")) in err and words in err, err


def test_compcor_sidecar_accepted_by_the_check_is_one_nilearn_selects_from(tmp_path):
    from trdnet.confounds import load_run_confounds
    from trdnet.inputs.bids import find_runs
    from trdnet.preflight import check_denoise_fits
    from trdnet.strategies import apply_strategy

    sidecar = {f"a_comp_cor_{i:02d}": {"Mask": "combined" if i < 3 else "CSF"} for i in range(5)}
    paths = _compcor_run(tmp_path / "fmriprep", sidecar)
    denoise = apply_strategy(Settings(), "compcor").denoise
    runs = find_runs(paths["root"])
    check_denoise_fits(denoise, runs)
    confounds, _, _ = load_run_confounds(runs[0], 80, denoise)
    assert [c for c in confounds.columns if "comp_cor" in c] == ["a_comp_cor_00", "a_comp_cor_01", "a_comp_cor_02"]


def test_band_pass_above_the_runs_nyquist_frequency_is_refused(small_derivatives, tmp_path, capsys):
    # TR 2 s: Nyquist 0.25 Hz; nilearn would silently lower a 0.3 Hz low-pass
    settings_file = tmp_path / "s.json"
    settings_file.write_text(json.dumps({"denoise": {"low_pass": 0.3}}))
    out = tmp_path / "out"
    err = refused(capsys, ["run", small_derivatives, out, "participant", "--settings", settings_file], out)
    assert "desc-preproc_bold.nii.gz" in err and "denoise.low_pass = 0.3" in err and "0.25" in err
    # the TR of a run without a JSON sidecar comes from the image header (TR 3 s: Nyquist 0.1667 Hz)
    header_only = tmp_path / "header_only"
    write_fmriprep_run(header_only, sub="03", tr=3.0, write_tr_json=False)
    settings_file.write_text(json.dumps({"denoise": {"low_pass": 0.2}}))
    err = refused(capsys, ["run", header_only, out, "participant", "--settings", settings_file], out)
    assert "sub-03_task-rest" in err and "denoise.low_pass = 0.2" in err and "0.1667" in err


# -- denoising strategies ---------------------------------------------------------------------------------

def test_unknown_strategy_lists_the_accepted_ones(small_derivatives, tmp_path, capsys):
    out = tmp_path / "out"
    err = refused(capsys, ["run", small_derivatives, out, "participant", "--denoise-strategy", "scrubbing"], out)
    for name in ("simple", "simple+gsr", "scrubbing.5", "scrubbing.5+gsr", "scrubbing.2", "compcor"):
        assert name in err


@pytest.mark.parametrize("argv, words", [
    (["--denoise-strategy", "simple", "--gsr", "on"], ["--gsr on", "simple"]),
    (["--denoise-strategy", "simple+gsr", "--no-gsr"], ["--gsr off", "simple+gsr"]),
    (["--denoise-strategy", "scrubbing.5+gsr", "--gsr", "off"], ["--gsr off", "scrubbing.5+gsr"]),
    (["--no-gsr", "--gsr", "both"], ["--no-gsr", "--gsr both"]),
])
def test_contradictory_gsr_requests_are_refused(small_derivatives, tmp_path, capsys, argv, words):
    out = tmp_path / "out"
    err = refused(capsys, ["run", small_derivatives, out, "participant", *argv], out)
    for word in words:
        assert word in err


def test_strategy_and_a_settings_file_setting_the_same_keys_are_refused(small_derivatives, tmp_path, capsys):
    settings_file = tmp_path / "s.json"
    settings_file.write_text(json.dumps({"denoise": {"fd_threshold": 0.3}, "targeting": {"n_bootstrap": 5}}))
    out = tmp_path / "out"
    err = refused(capsys, ["run", small_derivatives, out, "participant", "--settings", settings_file,
                           "--denoise-strategy", "scrubbing.5"], out)
    assert "denoise.fd_threshold" in err and "scrubbing.5" in err and '"strategy"' in err


def test_compcor_without_compcor_columns_is_refused(small_derivatives, tmp_path, capsys):
    out = tmp_path / "out"
    err = refused(capsys, ["run", small_derivatives, out, "participant", "--denoise-strategy", "compcor"], out)
    assert "desc-confounds_timeseries.tsv" in err and "a_comp_cor_*" in err


def test_strategy_does_not_apply_to_already_cleaned_roi_time_series(tmp_path, capsys):
    out = tmp_path / "out"
    err = refused(capsys, ["run", "--roi-timeseries", tmp_path / "rois", "--labels", tmp_path / "labels.tsv",
                           out, "participant", "--denoise-strategy", "simple", "--already-cleaned"], out)
    assert "--roi-timeseries" in err and "--denoise-strategy" in err


def test_settings_defaults_prints_a_complete_settings_file(capsys):
    assert main(["settings", "--defaults"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert Settings.from_dict(printed) == Settings()
    assert Settings.from_dict(printed).digest() == Settings().digest()
    assert printed == Settings().to_dict()
    assert printed["denoise"]["strategy"] == "default"


def test_settings_strategy_prints_the_strategy_and_a_file_can_name_it(tmp_path, capsys):
    assert main(["settings", "--strategy", "scrubbing.2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["denoise"]["strategy"] == "scrubbing.2"
    assert printed["denoise"]["fd_threshold"] == 0.2 and printed["denoise"]["wm_csf"] == "full"
    assert printed["denoise"]["global_signal"] == "none"
    # a settings file may name the strategy and change one of its values; the name then no longer applies
    settings_file = tmp_path / "s.json"
    settings_file.write_text(json.dumps({"denoise": {"strategy": "scrubbing.2", "fd_threshold": 0.3}}))
    assert main(["settings", "--settings", str(settings_file)]) == 0
    custom = json.loads(capsys.readouterr().out)
    assert custom["denoise"]["fd_threshold"] == 0.3 and custom["denoise"]["wm_csf"] == "full"
    assert "strategy" not in custom["denoise"]
    assert main(["settings", "--strategies"]) == 0
    listing = capsys.readouterr().out
    assert "scrubbing.5+gsr:" in listing and "source:" in listing


# -- BIDS-App conventions ---------------------------------------------------------------------------------

def test_underscore_spellings_select_like_the_hyphenated_ones(small_derivatives, tmp_path, capsys):
    err = refused(capsys, ["run", small_derivatives, tmp_path / "out", "participant", "--participant_label", "01",
                           "--session_label", "c"])
    assert "participants ['01']" in err and "sessions ['c']" in err


def test_participants_and_sessions_asked_for_but_absent_are_refused(small_derivatives, tmp_path, capsys):
    out = tmp_path / "out"
    err = refused(capsys, ["run", small_derivatives, out, "participant", "--participant-label", "01", "sub-99"], out)
    assert "--participant-label 99" in err and "present: 01 02" in err
    err = refused(capsys, ["run", small_derivatives, out, "participant", "--session-label", "a", "z"], out)
    assert "--session-label z" in err and "present: a" in err
    err = refused(capsys, ["report", out, "--participant-label", "*"])
    assert "'*' is not a BIDS label" in err
    err = refused(capsys, ["run", small_derivatives, out, "participant", "--participant_label", "sub-01_ses-a"], out)
    assert "not a BIDS label" in err


def test_bids_filter_file_problems_are_one_line(small_derivatives, tmp_path, capsys):
    out = tmp_path / "out"
    cases = [
        ('["bold"]', "JSON object of queries"),
        ('{"bold": {"sesion": "a"}}', "unknown entity 'sesion'"),
        ('{"bold": {"session": {"a": 1}}}', "bold.session"),
        ('{"bold": {"suffix": "T1w"}}', "excludes preprocessed BOLD"),
        ('{"bold": {"extension": ".tsv"}}', "no BOLD file trdnet reads has extension .tsv"),
        ('{"bold": {"session": "a", "regex_search": true}}', "not implemented"),
        ('{"bold": {"session": "z"}}', "no BOLD run passes"),
    ]
    for content, words in cases:
        filter_file = tmp_path / "filter.json"
        filter_file.write_text(content)
        err = refused(capsys, ["run", small_derivatives, out, "participant", "--bids-filter-file", filter_file], out)
        assert str(filter_file) in err and words in err, (content, err)


def test_dataset_names_come_from_one_module_the_command_line_imports_cheaply(capsys):
    """``fetch`` lists trdnet.inputs.datasets.DATASETS, and reading them imports neither nilearn nor pandas."""
    from trdnet.inputs.datasets import DATASETS

    with pytest.raises(SystemExit):
        main(["fetch", "--help"])
    assert "{" + ",".join(DATASETS) + "}" in capsys.readouterr().out
    loaded = subprocess.run([sys.executable, "-c", "import sys, trdnet.cli; "
                             "print(sorted(m for m in ('nilearn', 'pandas', 'requests') if m in sys.modules))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_the_command_line_and_its_help_load_no_scientific_library():
    """``import trdnet.cli``, ``trdnet --help`` and a command's help import neither nilearn, scipy, matplotlib,
    scikit-learn nor pandas: each costs seconds in every process that starts the command line (tests start many)."""
    heavy = ("nilearn", "scipy", "matplotlib", "sklearn", "pandas")
    code = ("import contextlib, io, sys\nfrom trdnet.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(sys.argv[1:])\n    except SystemExit:\n        pass\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    for argv in (["--version"], ["--help"], ["run", "--help"], ["export", "--help"]):
        loaded = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                                check=True).stdout.strip()
        assert loaded == "[]", (argv, loaded)


def test_each_commands_help_lists_only_the_exit_codes_it_returns(capsys):
    def listed(argv):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        return text[text.index("exit codes: "):]

    top = listed(["--help"])
    assert "each command's --help lists the codes it returns" in top
    assert all(f" {code} " in top for code in (0, 1, 2, 130, 143)), top
    for command in ("run", "demo"):
        text = listed([command, "--help"])
        assert "1 at least one run failed" in text and "2 the request was refused before any work" in text
        assert "130 interrupted (Ctrl-C), 143 terminated (SIGTERM)" in text
    export = listed(["export", "--help"])
    assert "1 a run could not be exported" in export and "run failed" not in export
    for command in ("report", "fetch"):
        text = listed([command, "--help"])
        assert " 1 " not in text and "failures.tsv" not in text and " 2 " in text and "130 interrupted" in text
    settings = listed(["settings", "--help"])
    assert settings.startswith("exit codes: 0 the settings were printed; 2 the request was refused")
    assert all(f" {code} " not in settings for code in (1, 130, 143)), settings


def test_verbosity_flags_set_what_is_logged(small_derivatives, tmp_path, capsys):
    filter_file = tmp_path / "filter.json"
    filter_file.write_text(json.dumps({"t1w": {"session": "a"}, "bold": {"session": "z"}}))
    argv = ["run", str(small_derivatives), str(tmp_path / "out"), "participant", "--bids-filter-file", str(filter_file)]
    assert main(argv) == 2
    assert "trdnet: info:" in capsys.readouterr().err
    assert main(["-q", *argv]) == 2
    err = capsys.readouterr().err
    assert "trdnet: info:" not in err and "trdnet: error:" in err
    assert main([*argv, "-q"]) == 2
    assert "trdnet: info:" not in capsys.readouterr().err
    assert main(["-v", *argv]) == 2
    assert "trdnet: debug: settings file (defaults)" in capsys.readouterr().err


@pytest.mark.slow  # a whole run through the command line
def test_filter_file_strategy_and_labels_select_and_record(tmp_path, capsys):
    root = tmp_path / "fmriprep"
    write_mni_run(root, "01", ses="a", seed=1)
    write_mni_run(root, "01", ses="b", seed=2)
    write_mni_run(root, "02", seed=3)
    filter_file = tmp_path / "filter.json"
    filter_file.write_text(json.dumps({"bold": {"session": ["b"], "datatype": "func"}, "fmap": {"session": "a"}}))
    out = tmp_path / "out"
    code = main(["run", str(root), str(out), "participant", "--participant_label", "01", "--bids-filter-file",
                 str(filter_file), "--denoise-strategy", "scrubbing.5+gsr", "-q", *FAST])
    assert code == 0, capsys.readouterr().err
    records = sorted(p.name for p in (out / "logs").glob("*_done.json"))
    assert records == ["sub-01_ses-b_task-rest_space-MNI152NLin2009cAsym_done.json"]
    sidecar = json.loads(next(out.glob("sub-01/ses-b/func/*_targets.json")).read_text())
    assert sidecar["Settings"]["denoise"]["strategy"] == "scrubbing.5+gsr"
    assert sidecar["Settings"]["denoise"]["wm_csf"] == "full"
    described = [json.loads(p.read_text()).get("Denoising") for p in out.glob("sub-01/ses-b/func/*.json")]
    described = next(d for d in described if d)
    assert set(described["settings"]) == {f.name for f in dataclasses.fields(DenoiseSettings)}
    assert described["load_confounds_arguments"]["wm_csf"] == "full"
    assert sidecar["SettingsDigest"] == Settings.from_dict({"denoise": {"strategy": "scrubbing.5+gsr"},
                                                            "targeting": {"n_bootstrap": 5}}).digest()


def test_an_unreachable_dask_scheduler_is_given_a_short_configurable_time(small_derivatives, tmp_path, capsys,
                                                                          monkeypatch):
    """distributed's own connect timeout (30 s) is not what a mistyped address waits: --dask-timeout, default 10 s,
    reaches the Client, and the refusal comes before anything is written."""
    import dask.distributed

    asked = []

    def unreachable(address, timeout=None, **kwargs):
        asked.append(timeout)
        raise OSError(f"Timed out trying to connect to {address} after {timeout} s")

    monkeypatch.setattr(dask.distributed, "Client", unreachable)
    out = tmp_path / "out"
    for options, seconds in (([], 10), (["--dask-timeout", "1.5"], 1.5)):
        err = refused(capsys, ["run", small_derivatives, out, "participant", *FAST, "--dask", "tcp://127.0.0.1:9",
                               *options])
        assert f"--dask tcp://127.0.0.1:9: cannot reach a Dask scheduler there within {seconds:g} s" in err
        assert "--dask-timeout SECONDS waits longer" in err
        assert asked.pop() == seconds
        assert not any(out.rglob("*")), "written before the scheduler answered"
    for value in ("0", "-3"):
        with pytest.raises(SystemExit):
            main(["run", str(small_derivatives), str(out), "participant", "--dask-timeout", value])
        assert "argument --dask-timeout" in capsys.readouterr().err


@pytest.mark.parametrize(("options", "settings", "words"), [
    (["--dask", "tcp://127.0.0.1:9", "--dask-timeout", "0.5"], None,
     "--dask tcp://127.0.0.1:9: cannot reach a Dask scheduler there within 0.5 s"),
    (["--dask", "local:abc"], None, "--dask local:abc: the number of local workers must be a whole number"),
    (["--n-volumes", "40"], None, "--n-volumes 40 (simulated runs, TR 2 s): 40 volumes (1.3 min) before any "
                                  "censoring; at least"),
    ([], {"denoise": {"low_pass": 0.3}}, "--n-volumes 300 (simulated runs, TR 2 s): denoise.low_pass = 0.3 Hz is "
                                         "not below the Nyquist frequency"),
    ([], {"networks": {"atlas": "labels", "labels_img": "missing.nii.gz", "labels_table": "missing.tsv"}},
     "networks.labels_img"),
    (["--target-method", "seedmap"], None, "'seedmap' needs a group sgACC map"),
])
def test_demo_refuses_what_the_run_would_refuse_before_simulating_anything(tmp_path, capsys, monkeypatch, options,
                                                                           settings, words):
    import dask.distributed

    from trdnet.inputs import simulate

    def unreachable(address, timeout=None, **kwargs):
        raise OSError(f"Timed out trying to connect to {address} after {timeout} s")

    def must_not_simulate(*args, **kwargs):
        raise AssertionError("the cohort was simulated before the request was checked")

    monkeypatch.setattr(dask.distributed, "Client", unreachable)
    monkeypatch.setattr(simulate, "simulate_cohort", must_not_simulate)
    if settings is not None:
        path = tmp_path / "settings.json"
        path.write_text(json.dumps(settings))
        options = [*options, "--settings", path]
    out = tmp_path / "demo"
    err = refused(capsys, ["demo", out, "--n-subjects", "1", *options], out)
    assert words in err, err


def test_a_scheduler_that_answers_passes_the_check_and_local_clusters_are_not_contacted(monkeypatch):
    import dask.distributed
    from dask.distributed import LocalCluster

    from trdnet.cohort import check_scheduler

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        check_scheduler(cluster.scheduler_address, 5)
    contacted = []
    monkeypatch.setattr(dask.distributed, "Client", lambda *a, **k: contacted.append(a))
    check_scheduler("local:2")
    check_scheduler("local")
    assert not contacted


def test_report_on_a_folder_without_a_finished_run_refuses_before_removing_anything(tmp_path, capsys):
    """No finished run: nothing to report, so the refusal comes first and every report is left as it was."""
    from trdnet.records import write_failure_record

    out = tmp_path / "out"
    write_failure_record(out, "sub-01_task-rest_space-MNI152NLin2009cAsym", "sub-01", "a reason")
    reports = {out / "sub-01.html": "<html>an earlier report</html>", out / "group.html": "<html>cohort</html>"}
    for path, text in reports.items():
        path.write_text(text)
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"trdnet: error: {out}: no finished run (logs/*_done.json), so no report to write; run "
                   "'trdnet run' first"]
    assert {path: path.read_text() for path in reports} == reports


def test_ctrl_c_with_n_jobs_records_the_runs_a_stopped_worker_left(small_derivatives, tmp_path, monkeypatch):
    """The pool stops its workers after Ctrl-C; a run stopped mid-way (its staging folder left, no failure record)
    gets its failure record from the command; a run never started is left as it was."""
    import joblib

    from trdnet.cohort import run_cohort
    from trdnet.inputs.bids import find_runs
    from trdnet.outputs import read_tsv
    from trdnet.pipeline import RunResult
    from trdnet.staging import staging_dir

    runs = find_runs(small_derivatives)
    out = tmp_path / "out"
    settings = Settings.from_dict({"denoise": {"min_volumes": 20, "min_minutes": 0.5}})

    class StoppedPool:
        """What joblib's pool does on Ctrl-C: the first run came back, a worker was killed in the second."""

        def __init__(self, **kwargs):
            pass

        def __call__(self, tasks):
            list(tasks)
            yield 0, RunResult(runs[0].prefix, runs[0].subject, "done")
            (staging_dir(out, runs[1].prefix) / "sub-01" / "ses-b" / "func").mkdir(parents=True)
            raise KeyboardInterrupt

    monkeypatch.setattr(joblib, "Parallel", StoppedPool)
    with pytest.raises(KeyboardInterrupt):
        run_cohort(runs, out, settings, n_jobs=2)
    recorded = json.loads((out / "logs" / f"{runs[1].prefix}_failed.json").read_text())
    assert recorded["Reason"].startswith("interrupted") and recorded["SettingsDigest"] == settings.digest()
    assert recorded["Interrupted"] is True
    assert not (out / "logs" / f"{runs[2].prefix}_failed.json").exists()
    assert list(read_tsv(out / "failures.tsv")["run"]) == [runs[1].prefix]


def test_repeated_label_options_add_up(small_derivatives, tmp_path, capsys):
    err = refused(capsys, ["run", small_derivatives, tmp_path / "out", "participant", "--participant-label", "01",
                           "--participant_label", "98", "--participant-label", "99"])
    assert "--participant-label 98 99" in err  # 01 is kept, and both later ones are checked
    err = refused(capsys, ["run", small_derivatives, tmp_path / "out", "participant", "--session-label", "a",
                           "--session_label", "z"])
    assert "--session-label z" in err


def test_a_session_label_no_run_has_is_refused_with_the_sessions_present(small_derivatives, tmp_path, capsys):
    err = refused(capsys, ["run", small_derivatives, tmp_path / "out", "participant", "--session-label", "xyz"])
    assert "sessions present: ['a', 'b']" in err
    err = refused(capsys, ["run", small_derivatives, tmp_path / "out", "participant", "--participant-label", "02",
                           "--session-label", "xyz"])
    assert "sessions present: none" in err


def test_a_reader_that_stops_reading_ends_the_command_quietly():
    command = subprocess.Popen([sys.executable, "-m", "trdnet", "settings", "--defaults"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    command.stdout.close()  # as `| head -1` does once it has its line
    err = command.stderr.read().decode()
    assert command.wait() == 141 and err == ""


def test_workers_log_at_the_parents_level_and_in_its_form():
    # a fresh interpreter has no handler for the trdnet loggers, as a loky or Dask worker has none
    code = ("import logging, sys\nfrom trdnet.logging_setup import configure_worker_logging\n"
            "configure_worker_logging(int(sys.argv[1]))\nlog = logging.getLogger('trdnet.pipeline')\n"
            "log.warning('careful'); log.error('broken')")
    for level, expected in ((40, "trdnet: error: broken"), (30, "trdnet: warning: careful\ntrdnet: error: broken")):
        err = subprocess.run([sys.executable, "-c", code, str(level)], capture_output=True, text=True,
                             check=True).stderr.strip()
        assert err == expected


@pytest.mark.parametrize("command", ["run", "report"])
def test_n_jobs_zero_or_less_is_every_core_and_the_help_says_so(command, capsys, monkeypatch):
    import trdnet.parallel

    monkeypatch.setattr(trdnet.parallel, "available_cores", lambda: 3)
    assert [trdnet.parallel.worker_count(n, 100) for n in (0, -1, 2, 64)] == [3, 3, 2, 64]  # 64: capped later
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "0 or less" in " ".join(capsys.readouterr().out.split())
