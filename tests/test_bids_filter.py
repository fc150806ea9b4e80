"""fMRIPrep's --bids-filter-file form: the entities a bold query may name, matched against the preprocessed images."""

import json

import pytest

from trdnet.errors import InputError
from trdnet.inputs.bids import find_runs
from trdnet.inputs.bids_filter import read_bids_filter, select_runs

from conftest import write_fmriprep_run


@pytest.fixture(scope="module")
def derivatives(tmp_path_factory):
    root = tmp_path_factory.mktemp("filter") / "fmriprep"
    write_fmriprep_run(root, sub="01", seed=1, n_volumes=40)
    write_fmriprep_run(root, sub="02", seed=2, n_volumes=40)
    return root


def selected(tmp_path, derivatives, query):
    path = tmp_path / "filter.json"
    path.write_text(json.dumps({"bold": query}))
    return [run.prefix for run in select_runs(find_runs(derivatives), read_bids_filter(path), path)]


def test_desc_is_matched_against_the_preprocessed_images_name(derivatives, tmp_path):
    everything = [run.prefix for run in find_runs(derivatives)]
    assert selected(tmp_path, derivatives, {"desc": "preproc"}) == everything
    assert selected(tmp_path, derivatives, {"desc": ["preproc"], "subject": "02"}) == everything[1:]
    for query in ({"desc": "smoothAROMAnonaggr"}, {"desc": None}):  # null: no desc, i.e. surface runs only
        with pytest.raises(InputError, match="no BOLD run passes the filter"):
            selected(tmp_path, derivatives, query)


def test_other_pybids_entities_of_bold_files_are_accepted(tmp_path):
    path = tmp_path / "filter.json"
    path.write_text(json.dumps({"bold": {"part": "mag", "ceagent": None, "density": "91k", "echo": 1}}))
    assert read_bids_filter(path) == {"part": ["mag"], "ce": None, "den": ["91k"], "echo": ["1"]}
