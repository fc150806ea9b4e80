"""The simulator's noise-free reference: the planted patch must be what the data can at best show."""

from __future__ import annotations

import numpy as np
import pytest

from trdnet.cleaned import correlate_with
from trdnet.config import Settings
from trdnet.denoise import clean_run
from trdnet.inputs.bids import find_runs
from trdnet.inputs.simulate import PRESETS, preset_parameters, simulate_cohort
from trdnet.inputs.simulate.anatomy import _load_anatomy, _participant
from trdnet.inputs.simulate.expected import band_noise_fraction, expected_seed_map

#: Every preset's planted patch is more anticorrelated than any site beyond its radius by at least this (r).
STATED_MARGIN_R = 0.03
N_PEOPLE = 16


def _margins(preset: str, **overrides) -> np.ndarray:
    params = preset_parameters(preset, **overrides)
    anat = _load_anatomy(4, params)
    margins = []
    for seed in np.random.SeedSequence(404).spawn(N_PEOPLE):
        person = _participant(anat, params, np.random.default_rng(seed))
        margins.append(expected_seed_map(anat, params, person).margin_r)
    return np.array(margins)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_planted_patch_is_the_strongest_site_of_the_noise_free_map(preset):
    margins = _margins(preset)
    assert margins.min() >= STATED_MARGIN_R, (preset, np.round(np.sort(margins), 3))


def test_the_margin_check_sees_a_patch_weaker_than_its_background():
    # The realistic preset before its strengths were set: patch 0.5 against background 0.25 and shared 0.3.
    margins = _margins("realistic", effect_size=0.5, background_coupling=0.25, shared_weight=0.3,
                       noise=1.5, noise_fwhm_mm=6.0)
    assert margins.min() < 0 and (margins < STATED_MARGIN_R).mean() > 0.5


def test_shared_region_is_broad_and_weaker_than_the_patch():
    params = preset_parameters("realistic")
    anat = _load_anatomy(4, params)
    for seed in np.random.SeedSequence(5).spawn(6):
        person = _participant(anat, params, np.random.default_rng(seed))
        ref = expected_seed_map(anat, params, person)
        assert ref.shared_r < 0
        assert ref.patch_min_r < ref.shared_r - 0.1
    # Width at half of the peak loading: the shared Gaussian's FWHM against the patch's raised cosine.
    patch_half_width = 2 * params.patch_radius_mm * (params.patch_plateau + (1 - params.patch_plateau) / 2)
    assert params.shared_fwhm_mm > patch_half_width


def test_band_noise_fraction():
    # White noise: the band's share of the frequencies up to Nyquist (0.25 Hz at TR 2 s).
    assert band_noise_fraction(0.0, 2.0, (0.01, 0.1)) == pytest.approx(0.09 / 0.25, abs=0.005)
    # Positive autocorrelation moves power to low frequencies.
    assert band_noise_fraction(0.5, 2.0, (0.01, 0.1)) > band_noise_fraction(0.0, 2.0, (0.01, 0.1))
    assert band_noise_fraction(0.3, 2.0, (None, None)) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    cohort = simulate_cohort(tmp_path_factory.mktemp("long"), n_subjects=1, n_volumes=1500,
                             resolution_mm=4, random_state=8, anatomy=False)
    return cohort, clean_run(find_runs(cohort.fmriprep_dir)[0], Settings().denoise)


@pytest.mark.slow
def test_truth_table_carries_the_reference_and_the_data_approach_it(long_run):
    cohort, cleaned = long_run
    row = cohort.truth_table.iloc[0]
    planted = row[["x", "y", "z"]].to_numpy(float)
    peak = row[["expected_peak_x", "expected_peak_y", "expected_peak_z"]].to_numpy(float)
    params = preset_parameters("realistic")
    assert row["expected_margin_r"] >= STATED_MARGIN_R
    assert np.linalg.norm(peak - planted) <= params.patch_radius_mm

    # 50 minutes of simulated data: the sample seed map over the search region follows the analytic one.
    anat = _load_anatomy(4, params)
    rng = np.random.default_rng(np.random.SeedSequence(8).spawn(1)[0].spawn(2)[0])
    person = _participant(anat, params, rng)
    np.testing.assert_allclose(person["centre"], planted, atol=0.01)
    ref = expected_seed_map(anat, params, person)
    space = cleaned.space
    seed = space.sphere_columns(Settings().targeting.seed_center_mm, Settings().targeting.seed_radius_mm)
    sample = correlate_with(cleaned.data, cleaned.data[:, seed].mean(axis=1, dtype=np.float64))
    # The cleaned run's columns are the simulator's in-mask voxels in the same order.
    np.testing.assert_allclose(space.xyz, anat.xyz)
    cols = anat.search_cols
    assert np.corrcoef(sample[cols], ref.r[cols])[0, 1] > 0.8
    assert abs(float(np.mean(sample[cols] - ref.r[cols]))) < 0.05
