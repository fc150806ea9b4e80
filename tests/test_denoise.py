import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn import signal
from nilearn.interfaces.fmriprep import load_confounds

from trdnet.config import DenoiseSettings
from trdnet.denoise import clean_arguments, clean_run, confound_arguments
from trdnet.errors import DenoiseError, InputError
from trdnet.inputs.bids import find_runs
from trdnet.stream import read_masked_volumes

from conftest import write_fmriprep_run


def _nilearn_reference(paths, settings):
    """The plain nilearn way: load everything, clean with signal.clean."""
    img = nib.load(paths["bold"])
    mask = np.asanyarray(nib.load(paths["mask"]).dataobj) > 0
    data = img.get_fdata()[mask].T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        confounds, sample_mask = load_confounds(str(paths["bold"]), **confound_arguments(settings))
        cleaned = signal.clean(data, confounds=confounds.to_numpy(), sample_mask=sample_mask,
                               **clean_arguments(settings, 2.0))
    cleaned = (cleaned - cleaned.mean(0)) / cleaned.std(0)
    return cleaned, sample_mask


@pytest.mark.parametrize("gsr", ["basic", "none"])
def test_cleaning_matches_nilearn_signal_clean(tmp_path, gsr):
    rng = np.random.default_rng(1)
    shape, n = (8, 9, 7), 120
    t = np.arange(n)
    drift = 5 * t / n
    data = 1000 + rng.normal(0, 5, size=(*shape, n)) + drift + 3 * np.sin(2 * np.pi * 0.05 * 2 * t)
    paths = write_fmriprep_run(tmp_path / "d", shape=shape, n_volumes=n, data=data, spikes=(40, 90))
    settings = DenoiseSettings(global_signal=gsr, min_volumes=20, min_minutes=0.5)
    run = find_runs(paths["root"])[0]
    cleaned = clean_run(run, settings)
    reference, sample_mask = _nilearn_reference(paths, settings)
    assert cleaned.data.dtype == np.float32
    assert cleaned.n_timepoints == len(sample_mask) < n  # the spikes were censored
    np.testing.assert_array_equal(cleaned.retained, sample_mask)
    assert np.max(np.abs(cleaned.data - reference)) < 1e-3
    assert cleaned.qc["n_censored"] == n - len(sample_mask)
    assert cleaned.volume_qc["retained"].sum() == len(sample_mask)


def test_stream_reader_matches_nibabel_for_scaled_int16(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(0, 100, size=(6, 7, 5, 30))
    img = nib.Nifti1Image(data.astype(np.float32), np.eye(4))
    img.set_data_dtype(np.int16)
    path = tmp_path / "bold.nii.gz"
    nib.save(img, path)
    mask = rng.random((6, 7, 5)) > 0.3
    got = read_masked_volumes(path, mask, block_volumes=7)
    expected = nib.load(path).get_fdata()[mask].T
    assert nib.load(path).dataobj.slope != 1.0
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-4)


def test_stream_reader_uncompressed(tmp_path):
    data = np.arange(4 * 5 * 6 * 3, dtype=np.float32).reshape(4, 5, 6, 3)
    path = tmp_path / "bold.nii"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    mask = np.zeros((4, 5, 6), bool)
    mask[1, 2, 3] = mask[3, 0, 5] = True
    np.testing.assert_array_equal(read_masked_volumes(path, mask), data[mask].T)


def _one_run(tmp_path, **kwargs):
    paths = write_fmriprep_run(tmp_path / "d", **kwargs)
    return paths, find_runs(paths["root"])[0]


def test_3d_image_is_refused(tmp_path):
    paths, run = _one_run(tmp_path)
    img = nib.load(paths["bold"])
    nib.save(nib.Nifti1Image(img.get_fdata()[..., 0], img.affine), paths["bold"])
    with pytest.raises(InputError, match="expected a 4D BOLD image"):
        clean_run(run, DenoiseSettings(min_volumes=10, min_minutes=0.1))


def test_confounds_row_count_mismatch(tmp_path):
    paths, run = _one_run(tmp_path)
    table = pd.read_csv(paths["confounds"], sep="\t")
    table.iloc[:-3].to_csv(paths["confounds"], sep="\t", index=False, na_rep="n/a")
    with pytest.raises(InputError, match="77 rows but the BOLD image"):
        clean_run(run, DenoiseSettings(min_volumes=10, min_minutes=0.1))


def test_missing_tr_is_refused(tmp_path):
    paths, run = _one_run(tmp_path, write_tr_json=False)
    img = nib.load(paths["bold"])
    img.header["pixdim"][4] = 0
    nib.save(img, paths["bold"])
    with pytest.raises(InputError, match="no repetition time"):
        clean_run(run, DenoiseSettings(min_volumes=10, min_minutes=0.1))


def test_tr_falls_back_to_header(tmp_path):
    paths, run = _one_run(tmp_path, write_tr_json=False, tr=1.5)
    assert run.tr is None
    cleaned = clean_run(run, DenoiseSettings(min_volumes=10, min_minutes=0.1))
    assert cleaned.tr == 1.5


def test_too_few_volumes_after_censoring(tmp_path):
    paths, run = _one_run(tmp_path)
    with pytest.raises(DenoiseError, match="at least 200 volumes"):
        clean_run(run, DenoiseSettings(min_volumes=200))
    table = pd.read_csv(paths["confounds"], sep="\t")
    table["framewise_displacement"] = 5.0
    table.to_csv(paths["confounds"], sep="\t", index=False, na_rep="n/a")
    with pytest.raises(DenoiseError, match=r"only 0 of 80 volumes \(0\.0 min\) left after censoring \(FD > 0\.5 mm"):
        clean_run(run, DenoiseSettings(min_volumes=10, min_minutes=0.1))


def test_nans_in_image_are_refused(tmp_path):
    data = 1000 + np.random.default_rng(0).normal(size=(10, 12, 10, 80))
    data[5, 5, 5, 3] = np.nan
    paths, run = _one_run(tmp_path, data=data)
    with pytest.raises(InputError, match="NaN"):
        clean_run(run, DenoiseSettings(min_volumes=10, min_minutes=0.1))


def test_inputs_are_not_modified(tmp_path):
    paths, run = _one_run(tmp_path)
    before = {k: paths[k].read_bytes() for k in ("bold", "mask", "confounds")}
    clean_run(run, DenoiseSettings(min_volumes=10, min_minutes=0.1))
    assert all(paths[k].read_bytes() == v for k, v in before.items())


def test_butterworth_order_setting_reaches_the_filter():
    from trdnet.denoise import cleaning_operator

    n = 100
    impulses_order5 = cleaning_operator(n, 2.0, None, np.arange(n), DenoiseSettings())
    impulses_order2 = cleaning_operator(n, 2.0, None, np.arange(n), DenoiseSettings(butterworth_order=2))
    assert np.max(np.abs(impulses_order5 - impulses_order2)) > 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = signal.clean(np.eye(n), detrend=True, standardize=False, filter="butterworth",
                                low_pass=0.1, high_pass=0.01, t_r=2.0, butterworth__order=2)
    np.testing.assert_allclose(impulses_order2, expected, atol=1e-10)


def test_no_standardization_is_asked_in_the_form_nilearn_keeps_and_gives_the_same_operator():
    """``standardize=None`` (nilearn's replacement for the deprecated ``False``) cleans exactly as ``False`` did."""
    from trdnet.denoise import cleaning_operator

    n = 100
    retained = np.r_[np.arange(3, 50), np.arange(52, n)]
    confounds = np.random.default_rng(0).normal(size=(n, 3))
    settings = DenoiseSettings()
    operator = cleaning_operator(n, 2.0, confounds, retained, settings)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the deprecated form raises here
        signal.clean(np.eye(n), confounds=confounds, sample_mask=retained, **clean_arguments(settings, 2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old_form = signal.clean(np.eye(n), confounds=confounds, sample_mask=retained, butterworth__copy=True,
                                **{**clean_arguments(settings, 2.0), "standardize": False})
    np.testing.assert_array_equal(operator, old_form)


def test_censored_volumes_at_the_run_ends_follow_nilearns_default_not_extrapolated():
    """Non-steady-state volumes censored at a run's start are left out of the band-pass (nilearn >= 0.13's
    default), not extrapolated by spline: extrapolation beyond the data changed edge volumes by several z."""
    import inspect

    from trdnet.denoise import cleaning_operator

    n = 120
    retained = np.r_[np.arange(4, 60), np.arange(63, n)]  # 4 dummy volumes at the start, a censored spike
    operator = cleaning_operator(n, 2.0, None, retained, DenoiseSettings())
    assert inspect.signature(signal.clean).parameters["extrapolate"].default is False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nilearn_default = signal.clean(np.eye(n), detrend=True, standardize=False, filter="butterworth",
                                       low_pass=0.1, high_pass=0.01, t_r=2.0, sample_mask=retained)
        extrapolated = signal.clean(np.eye(n), detrend=True, standardize=False, filter="butterworth",
                                    low_pass=0.1, high_pass=0.01, t_r=2.0, sample_mask=retained, extrapolate=True)
    assert np.max(np.abs(nilearn_default - extrapolated)) > 1e-2  # the choice matters on this run
    np.testing.assert_allclose(operator, nilearn_default, atol=1e-10)


def test_median_tsnr_matches_float64_over_the_retained_rows(tmp_path):
    from trdnet.denoise import column_statistics, usable_columns

    rng = np.random.default_rng(3)
    data = (1000 + rng.normal(size=(200, 3000)) * rng.uniform(1, 40, 3000)).astype(np.float32)
    data[:, 7] = 5.0  # a constant column is left out
    data[:, 8] = 0.0  # so is an all-zero one
    data[:3] *= 1.5  # saturated first volumes, not retained
    rows = np.arange(3, 200)
    as64 = np.delete(data[rows].astype(np.float64), [7, 8], axis=1)
    expected = np.median(as64.mean(axis=0) / as64.std(axis=0))
    mean, std = column_statistics(data, rows, block_columns=128)
    usable, n_zero = usable_columns(mean, std)
    assert (np.flatnonzero(~usable).tolist(), n_zero) == ([7, 8], 1)
    assert abs(np.median(mean[usable] / std[usable]) - expected) < 1e-4 * expected


def test_median_tsnr_of_data_without_baseline_is_not_available():
    from trdnet.denoise import temporal_snr

    rng = np.random.default_rng(5)
    raw = 800 + rng.normal(size=(150, 400)) * rng.uniform(5, 30, 400)
    usable = np.ones(400, dtype=bool)
    tsnr, note = temporal_snr(raw.mean(axis=0), raw.std(axis=0), usable)
    assert tsnr == pytest.approx(np.median(raw.mean(axis=0) / raw.std(axis=0))) and note == ""
    demeaned = raw - raw.mean(axis=0)  # as a provider's already-cleaned release
    tsnr, note = temporal_snr(demeaned.mean(axis=0), demeaned.std(axis=0), usable)
    assert np.isnan(tsnr) and "no baseline intensity" in note


def test_stream_reader_truncated_and_late_nan(tmp_path):
    rng = np.random.default_rng(4)
    data = rng.normal(size=(5, 6, 4, 20)).astype(np.float32)
    data[2, 3, 1, 17] = np.nan  # in the last block of volumes
    path = tmp_path / "bold.nii"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    mask = np.ones((5, 6, 4), bool)
    with pytest.raises(InputError, match="1 in-mask voxels hold NaN"):
        read_masked_volumes(path, mask, block_volumes=6)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 3 * 5 * 6 * 4 * 4])
    with pytest.raises(InputError, match="truncated"):
        read_masked_volumes(path, mask, block_volumes=6)


def test_template_brain_is_dilated_once_per_process_and_equals_scipys(monkeypatch):
    from pathlib import Path

    from scipy import ndimage

    from trdnet import templates
    from trdnet.denoise import TEMPLATE_DILATION_VOXELS, check_template_grid
    from trdnet.grid import VoxelSpace
    from trdnet.inputs.runs import Run

    template = templates.mni152_2mm("brain_mask")
    mask = np.asanyarray(template.dataobj) > 0
    expected = ndimage.binary_dilation(mask, iterations=TEMPLATE_DILATION_VOXELS)
    calls = []
    dilate = ndimage.binary_dilation
    monkeypatch.setattr(ndimage, "binary_dilation", lambda *a, **k: calls.append(1) or dilate(*a, **k))
    templates.dilated_brain_mask.cache_clear()
    space = VoxelSpace(mask=mask, affine=template.affine, space="MNI152NLin2009cAsym")
    run = Run(bold=Path("bold.nii.gz"), entities={"sub": "01"})
    fits = [check_template_grid(run, space) for _ in range(3)]
    assert len(calls) == 1
    assert fits[0] == fits[2] == {"template_overlap": 1.0, "template_shift_mm": 0.0}
    dilated, affine, brain_xyz = templates.dilated_brain_mask(TEMPLATE_DILATION_VOXELS)
    np.testing.assert_array_equal(dilated, expected)
    np.testing.assert_array_equal(brain_xyz, nib.affines.apply_affine(template.affine, np.argwhere(mask)))
    assert not dilated.flags.writeable
