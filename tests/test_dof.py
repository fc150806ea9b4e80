"""Temporal degrees of freedom left after cleaning, and the refusal of runs left with too few."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SHIPPED_MIN_DOF, confounds_table, write_fmriprep_run

from trdnet.config import DenoiseSettings
from trdnet.denoise import clean_run
from trdnet.dof import band_fraction, temporal_dof
from trdnet.errors import DenoiseError, SettingsError
from trdnet.inputs.bids import find_runs
from trdnet.inputs.timeseries import RoiTimeseriesRun
from trdnet.preflight import check_denoise_fits
from trdnet.roi_denoise import check_roi_runs, clean_roi_run


def _run(tmp_path, n_volumes):
    root = write_fmriprep_run(tmp_path / "fmriprep", n_volumes=n_volumes)["root"]
    (run,) = find_runs(root, space="MNI152NLin2009cAsym")
    return run


def test_hand_worked_dof():
    # 100 kept volumes at TR 2 s (Nyquist 0.25 Hz), band 0.01-0.1 Hz keeps 0.09 / 0.25 = 36% of the spectrum:
    # 36 DoF; 8 confounds (the two cosines lie below the high-pass and are not counted) and 2 trend terms.
    columns = [f"c{i}" for i in range(8)] + ["cosine00", "cosine01"]
    dof = temporal_dof(100, columns, 2.0, DenoiseSettings())
    assert dof == {"dof_remaining": 26.0, "dof_n_regressors": 10, "dof_band_fraction": 0.36}
    # without a high-pass the cosines count, and the band is 0-0.1 Hz: 100 x 0.4 - 12 = 28
    assert temporal_dof(100, columns, 2.0, DenoiseSettings(high_pass=None))["dof_remaining"] == 28.0
    # no filter and no detrending: every kept volume but one per regressor
    assert temporal_dof(100, columns[:8], 2.0, DenoiseSettings(high_pass=None, low_pass=None,
                                                                detrend=False))["dof_remaining"] == 92.0
    assert band_fraction(0.5, 0.01, 0.1) == pytest.approx(0.09)  # Nyquist 1 Hz


def test_shipped_minimum_refuses_short_runs_not_ten_minutes():
    settings = DenoiseSettings(min_dof=SHIPPED_MIN_DOF)
    default_regressors = [f"r{i}" for i in range(27)]  # 24 motion terms, WM, CSF, global signal
    for kept in (71, 75, 80, 120):  # 2.5 min, 75 and 80 volumes, 4 min at TR 2 s
        assert temporal_dof(kept, default_regressors, 2.0, settings)["dof_remaining"] < settings.min_dof
    for kept in (240, 300):  # 8 and 10 min
        assert temporal_dof(kept, default_regressors, 2.0, settings)["dof_remaining"] > settings.min_dof


def test_clean_run_refuses_before_reading_the_bold(tmp_path):
    run = _run(tmp_path, 80)

    def reader(*_):
        raise AssertionError("the BOLD data were read")

    with pytest.raises(DenoiseError) as caught:
        clean_run(run, DenoiseSettings(min_dof=20), reader=reader)
    message = str(caught.value)
    assert "\n" not in message and str(run.bold) in message
    n_kept = int(message.split(": ")[1].split(" volumes kept")[0])
    expected = round(n_kept * 0.36 - 29, 1)
    for part in (f"{n_kept} volumes kept", "29 regressors", "band 0.01-0.1 Hz", f"{expected:g} temporal degrees",
                 "denoise.min_dof = 20"):
        assert part in message, message


def test_preflight_refuses_from_header_and_confounds(tmp_path):
    run = _run(tmp_path, 80)
    with pytest.raises(SettingsError) as caught:
        check_denoise_fits(DenoiseSettings(min_dof=20), [run])
    message = str(caught.value)
    assert str(run.confounds) in message and "29 regressors" in message and "denoise.min_dof = 20" in message
    check_denoise_fits(DenoiseSettings(min_dof=0), [run])  # 0: no minimum


def test_run_above_minimum_is_cleaned_and_reports_dof(tmp_path, caplog):
    run = _run(tmp_path, 240)
    cleaned = clean_run(run, DenoiseSettings(min_dof=20))
    kept = cleaned.qc["n_retained"]
    assert cleaned.qc["dof_remaining"] == round(kept * 0.36 - 29, 1) > 20 * 1.5
    assert cleaned.qc["dof_n_regressors"] == 29 and cleaned.qc["dof_band_fraction"] == 0.36
    assert not [r for r in caplog.records if "min_dof" in r.getMessage()]
    # just above the minimum: analysed, with one warning line for the run (the check before any work and the
    # run's own check see the same numbers: only the run's says it, naming the BOLD run)
    settings = DenoiseSettings(min_dof=cleaned.qc["dof_remaining"] - 1)
    check_denoise_fits(settings, [run])
    clean_run(run, settings)
    warned = [r.getMessage() for r in caplog.records if "just above denoise.min_dof" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith(f"{run.bold}: "), warned


def _roi_run(tmp_path, n_volumes):
    rng = np.random.default_rng(0)
    path = tmp_path / "sub-01_task-rest_timeseries.tsv"
    pd.DataFrame(rng.standard_normal((n_volumes, 3)), columns=["PCC", "dACC", "lDLPFC"]).to_csv(
        path, sep="\t", index=False)
    confounds = tmp_path / "sub-01_task-rest_desc-confounds_timeseries.tsv"
    confounds_table(n_volumes, rng).to_csv(confounds, sep="\t", index=False, na_rep="n/a")
    labels = pd.DataFrame({"roi": ["PCC", "dACC", "lDLPFC"], "network": ["DMN", "SN", "ECN"]})
    return RoiTimeseriesRun(path=path, labels=labels, tr=2.0, entities={"sub": "01", "task": "rest"},
                            confounds=confounds)


def test_roi_runs_refused_too(tmp_path):
    run = _roi_run(tmp_path, 80)
    with pytest.raises(SettingsError, match=r"timeseries\.tsv: 8\d volumes kept, 29 regressors"):
        check_roi_runs(DenoiseSettings(min_dof=20), [run])
    with pytest.raises(DenoiseError, match="denoise.min_dof = 20"):
        clean_roi_run(run, DenoiseSettings(min_dof=20))


def test_roi_run_just_above_the_minimum_is_warned_about_once(tmp_path, caplog):
    run = _roi_run(tmp_path, 240)
    remaining = clean_roi_run(run, DenoiseSettings(min_dof=20)).qc["dof_remaining"]
    caplog.clear()
    settings = DenoiseSettings(min_dof=remaining - 1)
    check_roi_runs(settings, [run])
    clean_roi_run(run, settings)
    warned = [r.getMessage() for r in caplog.records if "just above denoise.min_dof" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith(f"{run.path}: "), warned
