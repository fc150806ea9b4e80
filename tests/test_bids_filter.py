"""fMRIPrep's --bids-filter-file form: the entities a bold query may name, matched against the preprocessed images."""

import json

import nibabel as nib
import pytest

from trdnet.errors import InputError
from trdnet.inputs.bids import find_runs
from trdnet.inputs.bids_filter import read_bids_filter, select_runs

from conftest import write_fmriprep_run
from test_surface import write_surface_run


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


def decompress(bold_gz):
    """Write the uncompressed copy (``_bold.nii``) of a ``_bold.nii.gz`` run (they share the JSON sidecar)."""
    bold = bold_gz.with_name(bold_gz.name.removesuffix(".gz"))
    nib.save(nib.load(bold_gz), bold)
    return bold


@pytest.fixture(scope="module")
def mixed_extensions(tmp_path_factory):
    """sub-01 compressed, sub-02 uncompressed only, sub-03 in both forms."""
    root = tmp_path_factory.mktemp("extensions") / "fmriprep"
    for sub in ("01", "02", "03"):
        paths = write_fmriprep_run(root, sub=sub, seed=int(sub), n_volumes=20, tr=1.5)
        if sub != "01":
            decompress(paths["bold"])
        if sub == "02":
            paths["bold"].unlink()
    return root


def test_extension_selects_runs_by_their_real_extension(mixed_extensions, tmp_path):
    path = tmp_path / "filter.json"

    def names(extension):
        path.write_text(json.dumps({"bold": {"extension": extension}}))
        return sorted(run.bold.name for run in find_runs(mixed_extensions, bids_filter=path))

    compressed = ["sub-01_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz",
                  "sub-03_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"]
    uncompressed = ["sub-02_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii",
                    "sub-03_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii"]
    assert names(".nii.gz") == names("nii.gz") == compressed  # PyBIDS: with or without the dot
    assert names(".nii") == names("nii") == uncompressed
    path.write_text(json.dumps({"bold": {"extension": [".nii", ".nii.gz"], "subject": ["01", "02"]}}))
    assert sorted(run.subject for run in find_runs(mixed_extensions, bids_filter=path)) == ["01", "02"]


def test_an_uncompressed_run_reads_its_own_sidecar_and_mask(mixed_extensions, tmp_path):
    path = tmp_path / "filter.json"
    path.write_text(json.dumps({"bold": {"extension": ".nii", "subject": "02"}}))
    (run,) = find_runs(mixed_extensions, bids_filter=path)
    assert run.tr == 1.5 and run.tr_source.endswith("desc-preproc_bold.json RepetitionTime")
    assert run.mask is not None and run.mask.name.endswith("desc-brain_mask.nii.gz")


def test_both_forms_of_one_run_are_refused_unless_the_filter_chooses(mixed_extensions):
    with pytest.raises(InputError, match=r"sub-03.*bids-filter-file"):
        find_runs(mixed_extensions)


def test_an_extension_no_bold_run_has_is_refused_in_one_line(tmp_path):
    path = tmp_path / "filter.json"
    for value in (".tsv", [".nii.gz", "json"], 3, []):
        path.write_text(json.dumps({"bold": {"extension": value}}))
        with pytest.raises(InputError) as error:
            read_bids_filter(path)
        message = str(error.value)
        assert "\n" not in message and str(path) in message and json.dumps(value) in message, message
        assert "accepted: ['.nii.gz', '.nii', '.func.gii', '.dtseries.nii']" in message, message


def test_surface_runs_are_selected_by_their_extension(tmp_path):
    root = tmp_path / "fmriprep"
    write_surface_run(root, sub="01", n_volumes=10, n_vertices=30)
    path = tmp_path / "filter.json"
    path.write_text(json.dumps({"bold": {"extension": ".func.gii"}}))
    (run,) = find_runs(root, space="fsaverage5", bids_filter=path)
    assert run.bold.name == "sub-01_task-rest_hemi-L_space-fsaverage5_bold.func.gii"
    for other in (".dtseries.nii", ".nii"):  # .nii is not the extension of a CIFTI or GIFTI file
        path.write_text(json.dumps({"bold": {"extension": other}}))
        with pytest.raises(InputError, match="no BOLD run passes the filter"):
            find_runs(root, space="fsaverage5", bids_filter=path)
