"""The one BIDS name parser and output-name builder."""

import pytest

from trdnet.entities import (
    ENTITY_ORDER,
    build_name,
    output_name,
    output_path,
    output_prefix,
    parse_bids_name,
    participant_output_path,
    sidecar_path,
    parse_entities,
    replace_entities,
    subject_folder,
)


def test_parse_fmriprep_bold_with_every_kind_of_entity():
    name = ("sub-01_ses-2_task-rest_acq-mb4_ce-gd_rec-norm_dir-PA_run-3_echo-2_part-mag_"
            "space-MNI152NLin2009cAsym_res-2_den-91k_desc-preproc_bold.nii.gz")
    parsed = parse_bids_name(name)
    assert parsed.entities == {
        "sub": "01", "ses": "2", "task": "rest", "acq": "mb4", "ce": "gd", "rec": "norm", "dir": "PA",
        "run": "3", "echo": "2", "part": "mag", "space": "MNI152NLin2009cAsym", "res": "2", "den": "91k",
        "desc": "preproc",
    }
    assert parsed.suffix == "bold"
    assert parsed.extension == ".nii.gz"


@pytest.mark.parametrize("name, suffix, extension", [
    ("sub-01_hemi-L_space-fsaverage5_bold.func.gii", "bold", ".func.gii"),
    ("sub-01_task-rest_space-fsLR_den-91k_bold.dtseries.nii", "bold", ".dtseries.nii"),
    ("sub-01_from-T1w_to-MNI152NLin6Asym_mode-image_xfm.h5", "xfm", ".h5"),
    ("sub-01_task-rest_space-MNI152NLin2009cAsym", "", ""),
])
def test_parse_suffix_and_multi_dot_extension(name, suffix, extension):
    parsed = parse_bids_name(name)
    assert (parsed.suffix, parsed.extension) == (suffix, extension)
    assert parsed.entities["sub"] == "01"


def test_parse_reads_only_the_last_path_component():
    assert parse_entities("/data/sub-02/ses-x/func/sub-02_task-rest_bold.nii.gz") == {"sub": "02", "task": "rest"}


def test_parse_ignores_parts_that_are_not_entities_and_keeps_the_first_of_a_repeated_key():
    entities = parse_entities("sub-01_task-rest_copy_task-other_space-MNI_x-a+b_bold.nii.gz")
    assert entities == {"sub": "01", "task": "rest", "space": "MNI"}


def test_template_cohort_is_an_entity():
    entities = parse_entities("sub-01_task-rest_space-MNIPediatricAsym_cohort-1_res-2_desc-preproc_bold.nii.gz")
    assert entities["space"] == "MNIPediatricAsym"
    assert entities["cohort"] == "1"


def test_build_orders_entities_as_the_specification():
    name = build_name({"desc": "preproc", "space": "T1w", "part": "mag", "echo": "1", "task": "rest", "sub": "01",
                       "res": "2", "ses": "a"}, "bold", ".nii.gz")
    assert name == "sub-01_ses-a_task-rest_echo-1_part-mag_space-T1w_res-2_desc-preproc_bold.nii.gz"


def test_build_puts_unknown_keys_before_desc_and_skips_empty_labels():
    name = build_name({"sub": "01", "desc": "x", "foo": "bar", "run": None, "ses": ""}, "coords", ".tsv")
    assert name == "sub-01_foo-bar_desc-x_coords.tsv"


def test_build_refuses_labels_that_would_not_parse_back():
    with pytest.raises(ValueError, match="task-rest_1"):
        build_name({"sub": "01", "task": "rest_1"})


def test_build_and_parse_round_trip():
    entities = {key: f"v{i}" for i, key in enumerate(ENTITY_ORDER)}
    name = build_name(entities, "bold", ".nii.gz")
    parsed = parse_bids_name(name)
    assert parsed.entities == entities
    assert list(parsed.entities) == list(ENTITY_ORDER)


def test_output_prefix_drops_desc_and_keeps_order():
    entities = parse_entities("sub-01_task-rest_run-2_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz")
    assert output_prefix(entities) == "sub-01_task-rest_run-2_space-MNI152NLin2009cAsym"
    assert output_prefix(entities, keep=("sub", "space")) == "sub-01_space-MNI152NLin2009cAsym"


def test_replace_entities_changes_adds_and_removes():
    name = "sub-01_task-rest_space-T1w_desc-target_coords.tsv"
    assert replace_entities(name, space="MNI152NLin2009cAsym") == \
        "sub-01_task-rest_space-MNI152NLin2009cAsym_desc-target_coords.tsv"
    assert replace_entities(name, desc=None, run="1") == "sub-01_task-rest_run-1_space-T1w_coords.tsv"


def test_subject_folder():
    assert subject_folder({"sub": "01", "ses": "b", "task": "rest"}) == "sub-01/ses-b/func"
    assert subject_folder({"sub": "01"}) == "sub-01/func"


def test_entity_order_follows_the_bids_schema():
    # BIDS 1.11.2 (bidsschematools 2.0.1, rules.entities), written out here so a change of the table is seen
    schema = ["sub", "tpl", "ses", "cohort", "sample", "task", "tracksys", "acq", "nuc", "voi", "ce", "trc", "stain",
              "rec", "dir", "run", "mod", "echo", "flip", "inv", "mt", "part", "proc", "hemi", "space", "split",
              "recording", "chunk", "atlas", "seg", "scale", "res", "den", "label", "desc"]
    # cohort is the one deliberate exception: after space, as fMRIPrep names its outputs
    ours = [key for key in ENTITY_ORDER if key in schema and key != "cohort"]
    assert ours == [key for key in schema if key != "cohort"]
    assert ENTITY_ORDER.index("cohort") == ENTITY_ORDER.index("space") + 1
    assert ENTITY_ORDER[-1] == "desc"  # derivative entities the schema does not define come before desc
    name = build_name({"desc": "sgacc", "stat": "r", "hemi": "L", "space": "fsaverage5", "sub": "01",
                       "task": "rest", "den": "10k", "tpl": "x", "scale": "100", "seg": "7n", "atlas": "a"},
                      "boldmap", ".func.gii")
    assert name == ("sub-01_tpl-x_task-rest_hemi-L_space-fsaverage5_atlas-a_seg-7n_scale-100_den-10k_stat-r_desc-sgacc"
                    "_boldmap.func.gii")


def test_output_name_puts_the_outputs_entities_in_schema_order_after_the_runs():
    run = {"sub": "01", "ses": "2", "task": "rest", "run": "1", "space": "MNI152NLin2009cAsym", "res": "2",
           "desc": "preproc"}
    name = output_name(run, "boldmap", ".nii.gz", desc="sgacc", stat="r", seg="Seitzman2018")
    assert name == ("sub-01_ses-2_task-rest_run-1_space-MNI152NLin2009cAsym_seg-Seitzman2018_res-2_stat-r_desc-sgacc"
                    "_boldmap.nii.gz")
    parsed = parse_bids_name(name)
    assert parsed.entities == {k: v for k, v in run.items() if k != "desc"} | {
        "seg": "Seitzman2018", "stat": "r", "desc": "sgacc"}
    assert (parsed.suffix, parsed.extension) == ("boldmap", ".nii.gz")
    # a run prefix gives the same name as the run's entities
    assert output_name(output_prefix(run), "boldmap", ".nii.gz", stat="r", desc="sgacc",
                       seg="Seitzman2018") == name


def test_output_name_replaces_and_removes_run_entities():
    prefix = "sub-01_task-rest_run-1_space-MNI152NLin2009cAsym"
    assert output_name(prefix, "coords", ".tsv", space="T1w", run=None, desc="navtargets") == \
        "sub-01_task-rest_space-T1w_desc-navtargets_coords.tsv"


@pytest.mark.parametrize("suffix, extension", [("bold_map", ".nii"), ("", ".tsv"), ("targets", "tsv"),
                                               ("targets", "._x.tsv")])
def test_output_name_refuses_names_that_would_not_parse_back(suffix, extension):
    with pytest.raises(ValueError):
        output_name("sub-01_task-rest", suffix, extension)


def test_output_path_folder_follows_subject_and_session():
    assert output_path("out", {"sub": "01", "ses": "b", "task": "rest"}, "qc", ".tsv").as_posix() == \
        "out/sub-01/ses-b/func/sub-01_ses-b_task-rest_qc.tsv"
    assert output_path("out", "sub-01_task-rest", "qc", ".tsv").as_posix() == "out/sub-01/func/sub-01_task-rest_qc.tsv"


def test_participant_output_path_joins_sessions_and_runs():
    path = participant_output_path("out", "sub-01_ses-2_task-rest_acq-mb_run-3_echo-1_space-T1w", "targets", ".tsv",
                                   desc="participant")
    assert path.as_posix() == "out/sub-01/func/sub-01_task-rest_acq-mb_space-T1w_desc-participant_targets.tsv"


def test_sidecar_path_swaps_the_whole_extension():
    assert sidecar_path("a/sub-01_desc-x_mask.label.gii") == sidecar_path("a/sub-01_desc-x_mask.nii.gz")
    assert sidecar_path("a/sub-01_desc-x_mask.nii.gz").as_posix() == "a/sub-01_desc-x_mask.json"
