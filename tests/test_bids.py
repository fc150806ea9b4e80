import json

import pytest

from trdnet.errors import InputError
from trdnet.inputs.bids import find_runs, parse_entities

from conftest import write_fmriprep_run


def test_parse_entities():
    entities = parse_entities("sub-01_ses-2_task-rest_run-3_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz")
    assert entities == {"sub": "01", "ses": "2", "task": "rest", "run": "3", "space": "MNI152NLin2009cAsym",
                        "desc": "preproc"}


def test_finds_sessions_runs_and_old_confounds_name(tmp_path):
    root = tmp_path / "fmriprep"
    write_fmriprep_run(root, sub="01", ses="1", run="1")
    write_fmriprep_run(root, sub="01", ses="2", run="2", confounds_suffix="regressors")
    write_fmriprep_run(root, sub="02", task="nback")
    write_fmriprep_run(root, sub="03", space="T1w")
    runs = find_runs(root)
    assert [r.prefix for r in runs] == [
        "sub-01_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym",
        "sub-01_ses-2_task-rest_run-2_space-MNI152NLin2009cAsym",
        "sub-02_task-nback_space-MNI152NLin2009cAsym",
    ]
    assert runs[1].confounds.name.endswith("desc-confounds_regressors.tsv")
    assert all(r.tr == 2.0 and r.mask is not None for r in runs)
    assert [r.subject for r in find_runs(root, participant_labels=["sub-02"])] == ["02"]
    assert [r.entities["ses"] for r in find_runs(root, sessions=["2"])] == ["2"]
    assert [r.subject for r in find_runs(root, space="T1w")] == ["03"]
    assert [r.subject for r in find_runs(root, task="nback")] == ["02"]
    assert [r.subject for r in find_runs(root, task="task-rest")] == ["01", "01"]


def test_no_match_says_what_exists(tmp_path):
    root = tmp_path / "fmriprep"
    write_fmriprep_run(root, sub="01", space="T1w")
    with pytest.raises(InputError, match=r"space\(s\) \['T1w'\]"):
        find_runs(root)
    with pytest.raises(InputError, match="participants present: \\['01'\\]"):
        find_runs(root, participant_labels=["99"], space="T1w")


def test_missing_and_raw_folders(tmp_path):
    with pytest.raises(InputError, match="folder not found"):
        find_runs(tmp_path / "nope")
    (tmp_path / "raw").mkdir()
    with pytest.raises(InputError, match="dataset_description.json"):
        find_runs(tmp_path / "raw")
    (tmp_path / "raw" / "dataset_description.json").write_text(json.dumps({"DatasetType": "raw"}))
    with pytest.raises(InputError, match="raw BIDS dataset"):
        find_runs(tmp_path / "raw")
