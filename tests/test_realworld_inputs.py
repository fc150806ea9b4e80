"""fMRIPrep outputs as they come: each quirk reported in public trackers, built here from the simulator.

Every test starts from one small SIMULATED fMRIPrep folder, changes one thing the
way real derivatives differ, and checks the value trdnet uses or the one line it
refuses with.
"""

import dataclasses
import gzip
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from trdnet.cleaned import CleanedRun
from trdnet.cli import main
from trdnet.config import DenoiseSettings, Settings
from trdnet.denoise import check_template_grid, clean_run, cleaning_operator
from trdnet.grid import VoxelSpace
from trdnet.errors import DenoiseError, InputError, SettingsError, TargetingError
from trdnet.inputs.bids import find_runs
from trdnet.inputs.runs import Run, check_distinct_outputs
from trdnet.inputs.simulate import simulate_cohort
from trdnet.targeting import compute_targets

N_VOLUMES = 80
SEED_MNI = np.array([6.0, 16.0, -10.0])


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """One SIMULATED participant in fMRIPrep's layout (4 mm MNI152NLin2009cAsym grid, TR 2 s)."""
    out = tmp_path_factory.mktemp("base")
    return simulate_cohort(out, n_subjects=1, n_volumes=N_VOLUMES, tr=2.0, resolution_mm=4, random_state=0,
                           anatomy=False).fmriprep_dir


@pytest.fixture
def case(base, tmp_path):
    """A fresh copy of the base and its functional files."""
    root = tmp_path / "fmriprep"
    shutil.copytree(base, root)
    func = root / "sub-01" / "func"
    files = {
        "root": root,
        "func": func,
        "bold": next(func.glob("*_desc-preproc_bold.nii.gz")),
        "bold_json": next(func.glob("*_desc-preproc_bold.json")),
        "mask": next(func.glob("*_desc-brain_mask.nii.gz")),
        "mask_json": next(func.glob("*_desc-brain_mask.json")),
        "conf": next(func.glob("*_desc-confounds_timeseries.tsv")),
        "conf_json": next(func.glob("*_desc-confounds_timeseries.json")),
    }
    return files


def _rename(path: Path, old: str, new: str) -> Path:
    target = path.with_name(path.name.replace(old, new))
    path.rename(target)
    return target


def _rewrite_bold(path: Path, data=None, header_tr=None, xyzt=None) -> None:
    img = nib.load(path)
    header = img.header.copy()
    values = np.asanyarray(img.dataobj) if data is None else data
    if header_tr is not None:
        header.set_zooms((*header.get_zooms()[:3], header_tr))
    if xyzt is not None:
        header.set_xyzt_units(*xyzt)
    new = nib.Nifti1Image(values, img.affine, header)
    if data is None:
        new.header.set_slope_inter(img.dataobj.slope, img.dataobj.inter)
    nib.save(new, path)


def _set_json_tr(case, value) -> None:
    meta = json.loads(case["bold_json"].read_text())
    meta["RepetitionTime"] = value
    case["bold_json"].write_text(json.dumps(meta))


def _only_run(root, **kwargs) -> Run:
    runs = find_runs(root, **kwargs)
    assert len(runs) == 1
    return runs[0]


QUICK = DenoiseSettings(min_volumes=10, min_minutes=0.2)


# --- repetition time ---------------------------------------------------------------------------------------------


def test_tr_in_milliseconds_in_json_is_refused_with_both_values(case):
    _set_json_tr(case, 2000)
    run = _only_run(case["root"])
    with pytest.raises(InputError) as info:
        clean_run(run, QUICK)
    message = str(info.value)
    assert "\n" not in message
    assert str(case["bold"]) in message
    assert "RepetitionTime 2000" in message and "likely milliseconds, i.e. 2 s" in message
    assert "header says 2 s" in message


def test_tr_in_milliseconds_fails_the_run_with_its_unit_through_the_command_line(case, tmp_path):
    _set_json_tr(case, 2000)
    out = tmp_path / "out"
    assert main(["run", str(case["root"]), str(out), "participant", "--no-report"]) == 1
    reason = pd.read_csv(out / "failures.tsv", sep="\t")["reason"].iloc[0]
    assert "RepetitionTime 2000" in reason and "likely milliseconds" in reason
    assert not list(out.glob("sub-01/**/*.tsv"))


def test_header_tr_wrong_json_right_uses_json_and_records_the_disagreement(case):
    _rewrite_bold(case["bold"], header_tr=1.0)
    cleaned = clean_run(_only_run(case["root"]), QUICK)
    assert cleaned.tr == 2.0
    assert cleaned.qc["tr"] == 2.0
    assert cleaned.qc["tr_source"] == f"{case['bold_json'].name} RepetitionTime"
    assert "header pixdim[4] says 1 s" in cleaned.qc["tr_note"]


def test_header_tr_in_msec_units_without_json_is_converted(case):
    case["bold_json"].unlink()
    _rewrite_bold(case["bold"], header_tr=2000.0, xyzt=("mm", "msec"))
    cleaned = clean_run(_only_run(case["root"]), QUICK)
    assert cleaned.tr == pytest.approx(2.0)
    assert cleaned.qc["tr_source"] == "NIfTI header pixdim[4]"


def test_header_tr_of_2000_seconds_without_json_is_refused(case):
    case["bold_json"].unlink()
    _rewrite_bold(case["bold"], header_tr=2000.0)
    with pytest.raises(InputError, match=r"header repetition time 2000 s .*likely milliseconds"):
        clean_run(_only_run(case["root"]), QUICK)


def test_header_tr_zero_without_json_is_refused(case):
    case["bold_json"].unlink()
    _rewrite_bold(case["bold"], header_tr=0.0)
    with pytest.raises(InputError, match="no repetition time"):
        clean_run(_only_run(case["root"]), QUICK)


def test_json_tr_that_is_not_a_number_is_refused(case):
    _set_json_tr(case, "2 s")
    with pytest.raises(InputError, match=r"RepetitionTime '2 s' is not a number"):
        find_runs(case["root"])


def test_a_tr_read_elsewhere_in_milliseconds_is_refused_before_the_data_are_read(tmp_path):
    from trdnet.denoise import clean_columns

    run = Run(bold=tmp_path / "sub-01_task-rest_hemi-L_space-fsaverage5_bold.func.gii", entities={"sub": "01"})

    def read():
        raise AssertionError("the data must not be read")

    with pytest.raises(InputError, match=r"repetition time 1500 s .*likely milliseconds, i.e. 1.5 s"):
        clean_columns(run, QUICK, None, 1500.0, 100, read)


def test_filter_above_nyquist_is_an_error_not_unfiltered_signals(case):
    # TR 6 s: Nyquist 0.083 Hz, below the 0.1 Hz low-pass; nilearn would lower it and warn.
    _set_json_tr(case, 6.0)
    _rewrite_bold(case["bold"], header_tr=6.0)
    with pytest.raises(SettingsError, match=r"low_pass = 0.1 Hz is not below the Nyquist frequency 0.08333 Hz"):
        clean_run(_only_run(case["root"]), QUICK)


def test_cleaning_operator_refuses_nilearn_returning_signals_unfiltered():
    settings = DenoiseSettings(high_pass=0.3, low_pass=0.4)  # both above Nyquist at TR 2 s: one critical frequency
    with pytest.raises(DenoiseError, match="band-pass filter could not be applied"):
        cleaning_operator(40, 2.0, None, np.arange(40), settings)


# --- BIDS entities ---------------------------------------------------------------------------------------------


def test_part_mag_dir_run_entities_find_the_confounds_and_stay_in_the_output_names(case):
    for key in ("bold", "bold_json", "mask", "mask_json", "conf", "conf_json"):
        _rename(case[key], "_task-rest_", "_task-rest_dir-AP_run-1_part-mag_")
    run = _only_run(case["root"])
    assert run.confounds.name == "sub-01_task-rest_dir-AP_run-1_part-mag_desc-confounds_timeseries.tsv"
    assert run.mask.name.startswith("sub-01_task-rest_dir-AP_run-1_part-mag_space-")
    assert run.prefix == "sub-01_task-rest_dir-AP_run-1_part-mag_space-MNI152NLin2009cAsym"


def test_echo_wise_bold_files_share_the_run_confounds_table(case):
    for echo in ("1", "2"):
        for key in ("bold", "bold_json"):
            src = case[key]
            shutil.copy(src, src.with_name(src.name.replace("_task-rest_", f"_task-rest_echo-{echo}_")))
    case["bold"].unlink()
    case["bold_json"].unlink()
    runs = find_runs(case["root"])
    assert [r.entities["echo"] for r in runs] == ["1", "2"]
    assert {r.confounds for r in runs} == {case["conf"]}
    assert {r.mask for r in runs} == {case["mask"]}
    assert len({r.prefix for r in runs}) == 2


def test_two_resolutions_give_two_runs_with_distinct_outputs_and_their_own_masks(case):
    for key in ("bold", "bold_json", "mask", "mask_json"):
        p = case[key]
        shutil.copy(p, p.with_name(p.name.replace("_space-MNI152NLin2009cAsym_", "_space-MNI152NLin2009cAsym_res-1_")))
        _rename(p, "_space-MNI152NLin2009cAsym_", "_space-MNI152NLin2009cAsym_res-2_")
    runs = find_runs(case["root"])
    assert [r.prefix for r in runs] == [
        "sub-01_task-rest_space-MNI152NLin2009cAsym_res-1",
        "sub-01_task-rest_space-MNI152NLin2009cAsym_res-2",
    ]
    assert [r.mask.name.split("_")[3] for r in runs] == ["res-1", "res-2"]
    assert all(r.confounds == case["conf"] for r in runs)


def test_space_with_fmriprep_res_modifier_keeps_that_resolution_only(case, tmp_path):
    for key in ("bold", "bold_json", "mask", "mask_json"):
        p = case[key]
        shutil.copy(p, p.with_name(p.name.replace("_space-MNI152NLin2009cAsym_", "_space-MNI152NLin2009cAsym_res-1_")))
        _rename(p, "_space-MNI152NLin2009cAsym_", "_space-MNI152NLin2009cAsym_res-2_")
    run = _only_run(case["root"], space="MNI152NLin2009cAsym:res-2")
    assert run.entities["res"] == "2" and run.space == "MNI152NLin2009cAsym"
    out = tmp_path / "out"
    assert main(["run", str(case["root"]), str(out), "participant", "--no-report", "--space",
                 "MNI152NLin2009cAsym:res-2", "--n-bootstrap", "5"]) == 0
    assert list(out.rglob("*_res-2_*")) and not list(out.rglob("*_res-1_*"))
    with pytest.raises(InputError, match=r"space 'MNI152NLin2009cAsym:res-3'.*MNI152NLin2009cAsym:res-1"):
        find_runs(case["root"], space="MNI152NLin2009cAsym:res-3")
    with pytest.raises(InputError, match=r"'res2' is not a key-label modifier"):
        find_runs(case["root"], space="MNI152NLin2009cAsym:res2")


@pytest.mark.parametrize("entity", ["rec-norm", "ce-gd", "acq-mb4", "den-91k"])
def test_inputs_differing_in_one_entity_get_distinct_prefixes(case, entity):
    for key in ("bold", "bold_json", "mask", "mask_json"):
        p = case[key]
        key_, label = entity.split("-")
        from trdnet.entities import parse_bids_name, build_name

        parsed = parse_bids_name(p.name)
        shutil.copy(p, p.with_name(build_name({**parsed.entities, key_: label}, parsed.suffix, parsed.extension)))
    runs = find_runs(case["root"])
    assert len(runs) == 2
    assert len({r.prefix for r in runs}) == 2
    assert sum(entity in r.prefix for r in runs) == 1


@pytest.mark.parametrize("entity", ["acq-mb4", "ce-gd", "rec-norm", "dir-PA"])
def test_run_with_one_more_entity_beside_one_without_cleans_with_its_own_confounds(case, entity):
    from trdnet.entities import build_name, parse_bids_name

    key_, label = entity.split("-")
    for key in ("bold", "bold_json", "mask", "mask_json", "conf", "conf_json"):
        p = case[key]
        parsed = parse_bids_name(p.name)
        shutil.copy(p, p.with_name(build_name({**parsed.entities, key_: label}, parsed.suffix, parsed.extension)))
    extra = next(case["func"].glob(f"*_{entity}_desc-confounds_timeseries.tsv"))
    table = pd.read_csv(extra, sep="\t")
    table.loc[5, "framewise_displacement"] = 9.0  # only this run's table censors volume 5
    table.to_csv(extra, sep="\t", index=False, na_rep="n/a")
    runs = find_runs(case["root"])
    assert len(runs) == 2
    by_entity = {key_ in r.entities: clean_run(r, QUICK) for r in runs}
    assert 5 not in by_entity[True].retained
    assert 5 in by_entity[False].retained


def test_two_reconstructions_share_a_confounds_table_without_rec(case):
    for key in ("bold", "bold_json", "mask", "mask_json"):
        p = case[key]
        shutil.copy(p, p.with_name(p.name.replace("_task-rest_", "_task-rest_rec-a_")))
        _rename(p, "_task-rest_", "_task-rest_rec-b_")
    runs = find_runs(case["root"])
    assert [r.entities["rec"] for r in runs] == ["a", "b"]
    assert all(r.confounds == case["conf"] for r in runs)
    assert clean_run(runs[0], QUICK).n_volumes == N_VOLUMES


def test_empty_confounds_table_is_one_line_naming_it_before_any_work(case, tmp_path, capsys):
    case["conf"].write_bytes(b"")
    out = tmp_path / "out"
    code = main(["run", str(case["root"]), str(out), "participant", "--no-report"])
    err = capsys.readouterr().err
    assert code != 0
    assert f"{case['conf']}: the confounds table is empty" in err
    assert "internal error" not in err and "Traceback" not in err
    assert not list(out.rglob("*.tsv"))


def test_confounds_json_that_is_not_json_is_named(case):
    case["conf_json"].write_text("{not json")
    with pytest.raises(InputError, match=r"desc-confounds_timeseries\.json: not valid JSON"):
        clean_run(_only_run(case["root"]), QUICK)


@pytest.mark.parametrize("change", ["drop-fd", "comma"])
def test_confounds_without_fd_or_comma_separated_say_what_is_wrong(case, change):
    table = pd.read_csv(case["conf"], sep="\t")
    if change == "drop-fd":
        table.drop(columns=["framewise_displacement"]).to_csv(case["conf"], sep="\t", index=False, na_rep="n/a")
        expected = r"scrubbing needs framewise_displacement.*scrub=false works without"
    else:
        table.to_csv(case["conf"], sep=",", index=False, na_rep="n/a")
        expected = r"comma-separated"
    settings = dataclasses.replace(QUICK, scrub=True)
    with pytest.raises(InputError, match=expected):
        clean_run(_only_run(case["root"]), settings)


def test_parcellated_series_differing_only_in_res_get_distinct_outputs_and_in_seg_are_refused(case, tmp_path):
    from trdnet.inputs.timeseries import find_roi_timeseries_runs

    labels = pd.DataFrame({"roi": ["a", "b", "c"], "network": ["DMN", "SN", "ECN"]})
    values = pd.DataFrame(np.random.default_rng(0).normal(size=(N_VOLUMES, 3)), columns=["a", "b", "c"])
    folder = case["func"]

    def write(name):
        values.to_csv(folder / f"{name}.tsv", sep="\t", index=False)
        (folder / f"{name}.json").write_text(json.dumps({"RepetitionTime": 2.0}))

    for res in ("1", "2"):
        write(f"sub-01_task-rest_space-MNI152NLin2009cAsym_seg-Toy_res-{res}_timeseries")
    runs = find_roi_timeseries_runs(folder, labels, pattern="*_seg-*_timeseries.tsv")
    assert [r.prefix for r in runs] == ["sub-01_task-rest_space-MNI152NLin2009cAsym_res-1",
                                        "sub-01_task-rest_space-MNI152NLin2009cAsym_res-2"]
    assert all(r.confounds == case["conf"] for r in runs)  # the run's one confounds table, matched as for BOLD
    write("sub-01_task-rest_space-MNI152NLin2009cAsym_seg-Other_res-1_timeseries")
    with pytest.raises(InputError) as info:
        find_roi_timeseries_runs(folder, labels, pattern="*_seg-*_timeseries.tsv")
    assert "_seg-Other_res-1_timeseries.tsv" in str(info.value) and "_seg-Toy_res-1_timeseries.tsv" in str(info.value)


def test_output_name_clash_is_refused_naming_both_files(tmp_path):
    a = Run(bold=tmp_path / "sub-01_task-rest_space-T1w_desc-preproc_bold.nii.gz",
            entities={"sub": "01", "task": "rest", "space": "T1w", "desc": "preproc"})
    b = dataclasses.replace(a, bold=tmp_path / "sub-01_task-rest_space-T1w_desc-smoothAROMA_bold.nii.gz",
                            entities={**a.entities, "desc": "smoothAROMA"})
    with pytest.raises(InputError) as info:
        check_distinct_outputs([a, b])
    assert a.bold.name in str(info.value) and b.bold.name in str(info.value)


def test_two_equally_good_confounds_tables_are_refused_by_name(case):
    bold = _rename(case["bold"], "_task-rest_", "_task-rest_echo-1_part-mag_")
    _rename(case["bold_json"], "_task-rest_", "_task-rest_echo-1_part-mag_")
    shutil.copy(case["conf"], case["func"] / "sub-01_task-rest_echo-1_desc-confounds_timeseries.tsv")
    _rename(case["conf"], "_task-rest_", "_task-rest_part-mag_")
    with pytest.raises(InputError) as info:
        find_runs(case["root"])
    assert str(bold) in str(info.value)
    assert "echo-1_desc-confounds" in str(info.value) and "part-mag_desc-confounds" in str(info.value)


# --- template space ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("space", ["MNI152NLin6Asym", "MNIPediatricAsym", "MNI305", "MNIColin27"])
def test_other_template_spaces_are_refused_before_any_work(case, tmp_path, space, capsys):
    for key in ("bold", "bold_json", "mask", "mask_json"):
        _rename(case[key], "space-MNI152NLin2009cAsym", f"space-{space}")
    with pytest.raises(InputError, match=r"accepted: MNI152NLin2009cAsym, T1w"):
        find_runs(case["root"], space=space)
    out = tmp_path / "out"
    code = main(["run", str(case["root"]), str(out), "participant", "--space", space, "--no-report"])
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and f"space '{space}' is not supported" in err
    assert not list(out.rglob("*.tsv")) and not list(out.rglob("*.nii.gz"))


def test_image_named_mni_but_lying_elsewhere_is_refused(case):
    for key in ("bold", "mask"):
        img = nib.load(case[key])
        affine = img.affine.copy()
        affine[:3, 3] += (0.0, 90.0, 120.0)  # scanner coordinates of a head far from the MNI origin
        new = nib.Nifti1Image(np.asanyarray(img.dataobj), affine, img.header)
        new.header.set_slope_inter(img.dataobj.slope, img.dataobj.inter)
        nib.save(new, case[key])
    with pytest.raises(InputError, match=r"of the brain mask lies inside the MNI152NLin2009cAsym brain"):
        clean_run(_only_run(case["root"]), QUICK)


def _move_affines(case, move: np.ndarray) -> None:
    """Give the BOLD image and its mask the affine ``move @ affine`` (data unchanged): a mislabelled image."""
    for key in ("bold", "mask"):
        img = nib.load(case[key])
        new = nib.Nifti1Image(np.asanyarray(img.dataobj), move @ img.affine, img.header)
        new.header.set_slope_inter(img.dataobj.slope, img.dataobj.inter)
        nib.save(new, case[key])


def _rotation_x(degrees: float) -> np.ndarray:
    angle = np.deg2rad(degrees)
    rotation = np.eye(4)
    rotation[1:3, 1:3] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    return rotation


@pytest.mark.parametrize("move", [
    nib.affines.from_matvec(np.eye(3), (6.4, 6.4, 6.4)),  # ~11 mm
    nib.affines.from_matvec(np.eye(3), (0.0, 0.0, 25.0)),
    nib.affines.from_matvec(np.eye(3), (0.0, -25.0, 0.0)),
    nib.affines.from_matvec(np.eye(3), (0.0, 20.0, 0.0)) @ _rotation_x(10.0),
], ids=["shift-11mm", "shift-25mm-z", "shift-25mm-y", "rotate-10deg-shift-20mm"])
def test_image_named_mni_but_shifted_a_few_mm_is_refused(case, move):
    _move_affines(case, move)
    with pytest.raises(InputError, match=r"brain_mask.nii.gz: .*(shifted from|lies inside) the MNI152NLin2009cAsym"):
        clean_run(_only_run(case["root"]), QUICK)


def test_mask_moved_with_the_same_shape_names_the_affine_difference(case):
    img = nib.load(case["mask"])
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), nib.affines.from_matvec(np.eye(3), (8, 0, 0)) @ img.affine,
                             img.header), case["mask"])
    with pytest.raises(InputError, match=r"brain_mask.nii.gz: .*another affine \(origin moved by \+8.0, \+0.0, \+0.0 mm"):
        clean_run(_only_run(case["root"]), QUICK)


def test_template_fit_is_recorded_in_the_qc_sidecar(case, tmp_path):
    out = tmp_path / "out"
    assert main(["run", str(case["root"]), str(out), "participant", "--no-report", "--n-bootstrap", "5"]) == 0
    fit = json.loads(next(out.glob("sub-01/func/*_qc.json")).read_text())["TemplateFit"]
    assert fit["template_overlap"] > 0.95
    assert 0 <= fit["template_shift_mm"] <= 4


def _template_mask_on(affine: np.ndarray, shape) -> VoxelSpace:
    from nilearn.image import resample_img

    from trdnet.templates import mni152_2mm

    mask = resample_img(mni152_2mm("brain_mask"), target_affine=affine, target_shape=shape,
                        interpolation="nearest", force_resample=True, copy_header=True)
    return VoxelSpace(mask=np.asanyarray(mask.dataobj) > 0, affine=affine, space="MNI152NLin2009cAsym")


@pytest.mark.parametrize("affine, shape", [
    (nib.affines.from_matvec(np.diag([2.0, 2, 2]), (-96, -132, -78)), (97, 115, 97)),  # fMRIPrep res-2
    (nib.affines.from_matvec(np.diag([3.0, 3, 3]), (-96, -132, -78)), (65, 77, 65)),
    (nib.affines.from_matvec(np.diag([-4.0, 4, 4]), (96, -132, -78)), (49, 58, 49)),  # LAS-stored
], ids=["res-2", "3mm", "4mm-LAS"])
def test_template_grids_and_a_partial_field_of_view_pass_the_template_check(affine, shape):
    space = _template_mask_on(affine, shape)
    fit = check_template_grid(Run(bold=Path("bold.nii.gz"), entities={"sub": "01"}), space)
    assert fit["template_overlap"] > 0.95 and fit["template_shift_mm"] <= 2.5
    # A field of view that stops above the cerebellum (bottom 25 mm of the brain missing) is not a shift.
    z = space.xyz[:, 2]
    cropped = space.mask.copy()
    cropped[tuple(np.argwhere(space.mask)[z < z.min() + 25].T)] = False
    fit = check_template_grid(Run(bold=Path("bold.nii.gz"), entities={"sub": "01"}),
                              VoxelSpace(mask=cropped, affine=affine, space="MNI152NLin2009cAsym"))
    assert fit["template_shift_mm"] <= 2.5


# --- flat signal ------------------------------------------------------------------------------------------------


def _zero_near_seed(case, radius_mm: float) -> int:
    img = nib.load(case["bold"])
    data = np.asanyarray(img.dataobj).copy()
    mask = np.asanyarray(nib.load(case["mask"]).dataobj) > 0
    ijk = np.indices(data.shape[:3]).reshape(3, -1).T
    near = np.linalg.norm(nib.affines.apply_affine(img.affine, ijk) - SEED_MNI, axis=1) <= radius_mm
    i, j, k = ijk[near].T
    data[i, j, k, :] = 0
    new = nib.Nifti1Image(data, img.affine, img.header)
    new.header.set_slope_inter(img.dataobj.slope, img.dataobj.inter)
    nib.save(new, case["bold"])
    return int((near.reshape(mask.shape) & mask).sum())


def _targeting_settings():
    return dataclasses.replace(Settings().targeting, reliability=False)


def test_all_zero_sgacc_seed_is_counted_and_stops_the_run_naming_the_seed(case):
    n_zeroed = _zero_near_seed(case, 14.0)
    cleaned = clean_run(_only_run(case["root"]), QUICK)
    assert cleaned.qc["n_zero_voxels"] == n_zeroed
    assert cleaned.qc["n_flat_voxels"] == n_zeroed
    with pytest.raises(InputError) as info:
        compute_targets(cleaned, _targeting_settings())
    message = str(info.value)
    seed = cleaned.space.template_sphere_columns(SEED_MNI, 10.0)
    assert f"sgACC seed: only 0 of its {seed.size} in-mask voxels carry signal" in message
    assert str(case["bold"]) in message


def test_flat_seed_stops_the_run_before_any_output_is_written(case, tmp_path, capsys):
    _zero_near_seed(case, 14.0)
    out = tmp_path / "out"
    code = main(["run", str(case["root"]), str(out), "participant", "--no-report", "--n-bootstrap", "5"])
    assert code == 1
    reason = pd.read_csv(out / "failures.tsv", sep="\t")["reason"].iloc[0]
    assert "sgACC seed: only 0 of its" in reason
    assert not list(out.glob("sub-01/**/*_networks.tsv")) and not list(out.glob("sub-01/**/*_qc.tsv"))


def _zero_near(case, centre, radius_mm: float) -> None:
    img = nib.load(case["bold"])
    data = np.asanyarray(img.dataobj).copy()
    ijk = np.indices(data.shape[:3]).reshape(3, -1).T
    near = np.linalg.norm(nib.affines.apply_affine(img.affine, ijk) - np.asarray(centre), axis=1) <= radius_mm
    data[tuple(ijk[near].T)] = 0
    new = nib.Nifti1Image(data, img.affine, img.header)
    new.header.set_slope_inter(img.dataobj.slope, img.dataobj.inter)
    nib.save(new, case["bold"])


def _nothing_like_a_result(out) -> None:
    assert out.joinpath("failures.tsv").is_file()
    assert not [p for p in out.glob("sub-*/**/func/*") if p.is_file()]


def test_run_failing_at_a_flat_network_roi_leaves_nothing_in_func(case, tmp_path):
    from trdnet.networks import network_rois

    roi = network_rois(Settings().networks).query("network == 'DMN'").iloc[0]
    _zero_near(case, (roi["x"], roi["y"], roi["z"]), roi["radius_mm"] + 6)
    out = tmp_path / "out"
    assert main(["run", str(case["root"]), str(out), "participant", "--no-report", "--n-bootstrap", "5"]) == 1
    reason = pd.read_csv(out / "failures.tsv", sep="\t")["reason"].iloc[0]
    assert f"network ROI {roi['roi']}: only 0 of its" in reason
    _nothing_like_a_result(out)


def test_run_failing_at_the_dlpfc_search_leaves_nothing_in_func(case, tmp_path):
    # One strong signal shared by every voxel and left in (no global signal regression): no voxel anticorrelates.
    img = nib.load(case["bold"])
    data = np.asanyarray(img.dataobj).astype(np.float32)
    shared = np.random.default_rng(1).normal(size=data.shape[3]).astype(np.float32)
    data += 50 * data.std(axis=3, keepdims=True) * shared
    nib.save(nib.Nifti1Image(data, img.affine, img.header), case["bold"])
    out = tmp_path / "out"
    assert main(["run", str(case["root"]), str(out), "participant", "--no-report", "--n-bootstrap", "5",
                 "--no-gsr"]) == 1
    reason = pd.read_csv(out / "failures.tsv", sep="\t")["reason"].iloc[0]
    assert "no negative correlation in the DLPFC search region" in reason
    _nothing_like_a_result(out)


def test_partly_flat_seed_uses_only_its_usable_voxels_and_says_so(case):
    _zero_near_seed(case, 4.0)
    cleaned = clean_run(_only_run(case["root"]), QUICK)
    seed = cleaned.space.template_sphere_columns(SEED_MNI, 10.0)
    flat_in_seed = int((~cleaned.usable[seed]).sum())
    assert 0 < flat_in_seed < seed.size / 2
    out = compute_targets(cleaned, _targeting_settings())
    seed_counts = out.details["flat_voxels_left_out"][0]
    assert seed_counts == {"region": "sgACC seed", "n_voxels": int(seed.size),
                           "n_usable": int(seed.size - flat_in_seed), "n_flat": flat_in_seed}
    assert np.isin(out.seed_columns, np.flatnonzero(cleaned.usable)).all()


def test_flat_network_roi_stops_the_run_and_partly_flat_roi_reports_its_flat_voxels():
    from trdnet.geometry import VoxelGeometry
    from trdnet.networks.signals import roi_signals

    mask = np.ones((6, 6, 6), bool)
    space = VoxelGeometry(mask=mask, affine=np.diag([4.0, 4.0, 4.0, 1.0]), space="MNI152NLin2009cAsym")
    data = np.random.default_rng(0).normal(size=(50, mask.sum())).astype(np.float32)
    usable = np.ones(mask.sum(), bool)
    roi = pd.DataFrame({"roi": ["a", "b"], "network": ["DMN", "SN"], "x": [4.0, 16.0], "y": [4.0, 16.0],
                        "z": [4.0, 16.0], "radius_mm": [4.5, 4.5]})
    cols_a = space.template_sphere_columns((4.0, 4.0, 4.0), 4.5)
    usable[cols_a[:1]] = False
    cleaned = CleanedRun(data=data, space=space, tr=2.0, retained=np.arange(50), n_volumes=50, usable=usable,
                         source="bold.nii.gz")
    result = roi_signals(cleaned, roi)
    assert result.rois.set_index("roi").loc["a", "n_flat"] == 1
    np.testing.assert_allclose(result.signals[:, 0], data[:, cols_a[1:]].mean(axis=1), rtol=1e-5)
    usable[cols_a] = False
    with pytest.raises(InputError, match=rf"network ROI a: only 0 of its {cols_a.size} in-mask voxels"):
        roi_signals(cleaned, roi)


# --- QC over the retained volumes -------------------------------------------------------------------------------


def nilearn_confounds_table(name: str) -> pd.DataFrame:
    """A real fMRIPrep confounds table shipped with nilearn."""
    import nilearn.interfaces.fmriprep as fmriprep_interface

    return pd.read_csv(Path(fmriprep_interface.__file__).parent / "data" / name, sep="\t")


def _median_tsnr(data4d: np.ndarray, mask: np.ndarray) -> float:
    series = data4d[mask].astype(np.float64)
    return float(np.median(series.mean(axis=1) / series.std(axis=1)))


def test_tsnr_over_retained_volumes_with_real_fmriprep_non_steady_state_columns(case):
    real = nilearn_confounds_table("test-v21_desc-confounds_timeseries.tsv")
    flagged = [c for c in real if c.startswith("non_steady_state_outlier")]
    assert len(flagged) == 3
    n = len(real)
    img = nib.load(case["bold"])
    mask = np.asanyarray(nib.load(case["mask"]).dataobj) > 0
    clean = np.asanyarray(img.dataobj)[..., :n].astype(np.float32) * np.float32(img.dataobj.slope)
    data = clean.copy()
    dummies = np.flatnonzero(real[flagged].to_numpy().sum(axis=1) > 0)
    for volume, gain in zip(dummies, (1.6, 1.3, 1.1)):  # T1 saturation of the first volumes
        data[..., volume] *= gain
    nib.save(nib.Nifti1Image(data, img.affine), case["bold"])
    real.to_csv(case["conf"], sep="\t", index=False, na_rep="n/a")
    settings = dataclasses.replace(QUICK, min_volumes=5, min_minutes=0.1, scrub=False, high_pass=None, low_pass=None)
    cleaned = clean_run(_only_run(case["root"]), settings)
    assert cleaned.qc["n_retained"] == n - len(dummies)
    assert cleaned.qc["tsnr_volumes"] == "retained"
    clean_tsnr = _median_tsnr(clean, mask)
    assert _median_tsnr(data, mask) < 0.8 * clean_tsnr  # what every volume would have given
    assert cleaned.qc["median_tsnr"] == pytest.approx(clean_tsnr, rel=0.1)


# --- confounds tables and orientation as real fMRIPrep versions write them -------------------------------------


def test_las_voxel_order_gives_the_same_cleaned_signals(case, base):
    for key in ("bold", "mask"):
        img = nib.load(case[key])
        flip = np.array([[-1, 0, 0, img.shape[0] - 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
        affine = img.affine @ flip
        stored = img.dataobj.get_unscaled() if key == "bold" else np.asanyarray(img.dataobj)
        new = nib.Nifti1Image(np.ascontiguousarray(stored[::-1]), affine, img.header)
        new.set_sform(affine, int(img.header["sform_code"]))
        new.set_qform(affine, int(img.header["qform_code"]))
        if key == "bold":
            new.header.set_slope_inter(img.dataobj.slope, img.dataobj.inter)
        nib.save(new, case[key])
    assert nib.aff2axcodes(nib.load(case["bold"]).affine) == ("L", "A", "S")
    flipped = clean_run(_only_run(case["root"]), QUICK)
    original = clean_run(_only_run(base), QUICK)
    # Same voxels at the same world positions, same signals.
    order_f = np.lexsort(flipped.space.xyz.T)
    order_o = np.lexsort(original.space.xyz.T)
    np.testing.assert_allclose(flipped.space.xyz[order_f], original.space.xyz[order_o])
    np.testing.assert_allclose(flipped.data[:, order_f], original.data[:, order_o], atol=1e-4)


def test_fmriprep_1_1_camel_case_confounds_are_refused_naming_the_table(case):
    conf = pd.read_csv(case["conf"], sep="\t")
    old = pd.DataFrame({"CSF": conf["csf"], "WhiteMatter": conf["white_matter"],
                        "GlobalSignal": conf["global_signal"], "FramewiseDisplacement": conf["framewise_displacement"],
                        "X": conf["trans_x"], "Y": conf["trans_y"], "Z": conf["trans_z"],
                        "RotX": conf["rot_x"], "RotY": conf["rot_y"], "RotZ": conf["rot_z"]})
    case["conf"].unlink()
    case["conf_json"].unlink()
    table = case["func"] / case["conf"].name.replace("_timeseries", "_regressors")
    old.to_csv(table, sep="\t", index=False, na_rep="n/a")
    with pytest.raises(InputError) as info:
        clean_run(_only_run(case["root"]), QUICK)
    assert str(info.value).startswith(f"{table}: column names in fMRIPrep's camel case")
    assert "\n" not in str(info.value)


def test_na_in_the_first_row_of_derivative_columns_changes_nothing(case, base):
    conf = pd.read_csv(case["conf"], sep="\t")
    columns = [c for c in conf if "derivative1" in c or c in ("framewise_displacement", "dvars", "std_dvars")]
    conf = conf.astype(object)
    conf.loc[0, columns] = "n/a"
    conf.to_csv(case["conf"], sep="\t", index=False)
    changed = clean_run(_only_run(case["root"]), QUICK)
    original = clean_run(_only_run(base), QUICK)
    np.testing.assert_allclose(changed.data, original.data, atol=1e-4)


# --- errors from the libraries that read a user's files ---------------------------------------------------------


def test_single_volume_4d_is_refused_before_the_confounds_are_read(case):
    img = nib.load(case["bold"])
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj)[..., :1], img.affine, img.header), case["bold"])
    # A broken confounds table proves it was never read: the volume count is checked first.
    case["conf"].write_text("not\ta\nconfounds table\n")
    with pytest.raises(InputError, match=r"holds 1 volume\(s\)") as info:
        clean_run(_only_run(case["root"]), QUICK)
    assert str(case["bold"]) in str(info.value)


def test_truncated_nii_gz_is_one_line_naming_the_file(case):
    raw = case["bold"].read_bytes()
    case["bold"].write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError) as info:
        clean_run(_only_run(case["root"]), QUICK)
    message = str(info.value)
    assert message.startswith(str(case["bold"])) and "truncated or corrupt" in message
    assert "\n" not in message


def test_unreadable_brain_mask_names_the_mask(case):
    case["mask"].write_bytes(gzip.compress(b"not a nifti"))
    with pytest.raises(InputError, match="cannot read the brain mask") as info:
        clean_run(_only_run(case["root"]), QUICK)
    assert str(case["mask"]) in str(info.value)


# --- seen on the way -------------------------------------------------------------------------------------------


def test_labels_table_with_roi_id_column_is_accepted(tmp_path):
    from trdnet.inputs.timeseries import read_labels_table

    path = tmp_path / "labels.tsv"
    pd.DataFrame({"roi_id": ["r1", "r2"], "network": ["DMN", "SN"]}).to_csv(path, sep="\t", index=False)
    assert read_labels_table(path)["roi"].tolist() == ["r1", "r2"]


def test_failed_run_line_ends_with_a_newline_on_a_terminal(capsys):
    from trdnet.cli import configure_logging
    from trdnet.progress import Progress
    from trdnet.pipeline import RunResult

    configure_logging()
    Progress(3)(RunResult("sub-01_task-rest", "01", "failed", error="x.nii.gz: bad " + "y" * 120))
    err = capsys.readouterr().err
    assert err.endswith("\n")
    assert "y" * 120 in err


def test_messages_print_plain_numbers_not_numpy_reprs():
    from trdnet.geometry import VoxelGeometry
    from trdnet.targeting.regions import seed_columns

    far = np.diag([4.0, 4.0, 4.0, 1.0])
    far[:3, 3] = 60.0  # a small grid nowhere near the sgACC
    space = VoxelGeometry(mask=np.ones((3, 3, 3), bool), affine=far, space="MNI152NLin2009cAsym")
    with pytest.raises(TargetingError) as info:
        seed_columns(space, _targeting_settings())
    assert "sphere at (6.0, 16.0, -10.0)" in str(info.value) and "np.float64" not in str(info.value)
