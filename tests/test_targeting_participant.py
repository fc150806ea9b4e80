"""Participant-level targets from several cleaned runs: joining, retest, data sufficiency."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from trdnet.cleaned import CleanedRun, zscore_columns
from trdnet.config import TargetSettings
from trdnet.errors import InputError
from trdnet.grid import VoxelSpace
from trdnet.targeting import combine_runs, compute_targets, participant_targets
from trdnet.targeting.participant import minutes_to_reach, sufficiency_statement
from trdnet.targeting.reliability import too_little_data

SPACE = VoxelSpace(np.ones((14, 14, 14), bool), np.diag([3.0, 3.0, 3.0, 1.0]), "synthetic")
INDEX = SPACE.column_index()
SEEDS = np.sort(INDEX[:3, :3, :3].ravel())
SEARCH = np.sort(INDEX[4:, 4:, 4:].ravel())


def run_with_block(t, lo, seed, effect=0.5):
    """A run whose seed signal is anticorrelated with a 3-voxel cube starting at ``lo``."""
    rng = np.random.default_rng(seed)
    s = rng.standard_normal(t)
    data = rng.standard_normal((t, SPACE.n_voxels)).astype(np.float32)
    data[:, SEEDS] += 2 * s[:, None]
    data[:, INDEX[lo[0]:lo[0] + 3, lo[1]:lo[1] + 3, lo[2]:lo[2] + 3].ravel()] -= effect * s[:, None]
    return CleanedRun(zscore_columns(data), SPACE, 2.0, np.arange(t), t, simulated=True)


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    from nibabel import Nifti1Image

    folder = tmp_path_factory.mktemp("masks")
    paths = {}
    for name, columns in (("seed", SEEDS), ("search", SEARCH)):
        volume = np.zeros(SPACE.shape, np.uint8)
        volume[tuple(SPACE.ijk[columns].T)] = 1
        paths[name] = str(folder / f"{name}.nii.gz")
        Nifti1Image(volume, SPACE.affine).to_filename(paths[name])
    return TargetSettings(seed_mask=paths["seed"], search_mask=paths["search"], reference_targets=(),
                          n_bootstrap=10, min_half_volumes=20)


def test_combine_runs_joins_in_time_and_refuses_other_grids():
    a, b = run_with_block(100, (6, 6, 6), 0), run_with_block(80, (6, 6, 6), 1)
    b = dataclasses.replace(b, retained=np.arange(2, 82), n_volumes=90)
    joined = combine_runs([a, b])
    assert joined.data.shape == (180, SPACE.n_voxels)
    np.testing.assert_allclose(joined.data.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(joined.data.std(axis=0), 1, atol=1e-4)
    np.testing.assert_array_equal(joined.retained, np.concatenate([np.arange(100), np.arange(2, 82) + 100]))
    assert joined.n_volumes == 190 and joined.qc["run_volumes"] == [100, 80]
    assert joined.minutes == pytest.approx(180 * 2.0 / 60)
    other = VoxelSpace(np.ones((14, 14, 14), bool), np.diag([2.0, 2.0, 2.0, 1.0]), "synthetic")
    with pytest.raises(InputError, match="another grid"):
        combine_runs([a, dataclasses.replace(b, space=other)])
    with pytest.raises(InputError, match="TR"):
        combine_runs([a, dataclasses.replace(b, tr=1.0)])


def test_leave_one_run_out_compares_each_run_with_the_others(settings):
    runs = [run_with_block(150, (6, 6, 6), seed) for seed in range(3)]
    result = participant_targets(runs, settings, 0, run_labels=["run-1", "run-2", "run-3"])
    retest = result.retest
    assert list(retest["held_out"]) == ["run-1", "run-2", "run-3"]
    assert set(retest["kind"]) == {"leave-one-run-out"}
    # Independent route: each held-out run targeted on its own by compute_targets.
    quick = dataclasses.replace(settings, reliability=False)
    for i, row in retest.iterrows():
        alone = compute_targets(runs[i], quick).table.iloc[0][["x", "y", "z"]].to_numpy(float)
        rest = combine_runs([r for j, r in enumerate(runs) if j != i])
        other = compute_targets(rest, quick).table.iloc[0][["x", "y", "z"]].to_numpy(float)
        np.testing.assert_allclose(row[["x", "y", "z"]].to_numpy(float), alone, atol=1e-3)
        np.testing.assert_allclose(row[["other_x", "other_y", "other_z"]].to_numpy(float), other, atol=1e-3)
        assert row["distance_mm"] == pytest.approx(np.linalg.norm(alone - other), abs=1e-3)
    top = result.output.table.iloc[0]
    assert top["n_runs"] == 3 and top["retest_kind"] == "leave-one-run-out"
    assert top["retest_mm"] == pytest.approx(retest["distance_mm"].median())
    # Three runs of the same planted block agree: the word may be good.
    planted = np.array([21.0, 21.0, 21.0])  # centre of the cube at voxel 7 of a 3 mm grid
    assert np.linalg.norm(top[["x", "y", "z"]].to_numpy(float) - planted) <= 1.5


def test_sessions_are_compared_with_each_other_and_disagreement_is_never_good(settings):
    # Session 1 plants the block at one place and session 2 at another, 15 mm away.
    runs = [run_with_block(150, (5, 5, 5), 0, effect=0.8), run_with_block(150, (5, 5, 5), 1, effect=0.8),
            run_with_block(150, (10, 5, 5), 2, effect=0.8), run_with_block(150, (10, 5, 5), 3, effect=0.8)]
    # Radius, split-half and site limits opened wide: only the retest can keep the word from good.
    lenient = dataclasses.replace(settings, good_r95_mm=50.0, fair_r95_mm=60.0, good_split_half_mm=50.0,
                                  max_competing_share=1.0)
    result = participant_targets(runs, lenient, 0, sessions=["1", "1", "2", "2"])
    retest = result.retest
    assert len(retest) == 1 and retest.loc[0, "kind"] == "session"
    assert retest.loc[0, "held_out"] == "ses-1 vs ses-2"
    assert retest.loc[0, "distance_mm"] == pytest.approx(15.0, abs=1.5)
    top = result.output.table.iloc[0]
    assert top["retest_mm"] == pytest.approx(retest.loc[0, "distance_mm"])
    assert top["reliability"] == "fair"
    assert "runs disagree" in result.output.details["methods"]["cluster"]["reliability"]["participant_reason"]


def test_minutes_to_reach_solves_the_fitted_power_law():
    # Distances 20 / sqrt(minutes): 5 mm is reached at 16 minutes.
    curve = pd.DataFrame({"minutes": [1.0, 2.0, 4.0], "median_distance_mm": [20.0, 20 / np.sqrt(2), 10.0]})
    minutes, note = minutes_to_reach(curve, 5.0, minutes_available=8.0)
    assert minutes == pytest.approx(16.0, rel=1e-6)
    assert "only 8.0 min available" in note and "scan again" in note
    minutes, note = minutes_to_reach(curve, 5.0, minutes_available=20.0)
    assert "20.0 min available" in note and "scan again" not in note
    flat = pd.DataFrame({"minutes": [1.0, 2.0, 4.0], "median_distance_mm": [10.0, 12.0, 15.0]})
    minutes, note = minutes_to_reach(flat, 5.0, minutes_available=8.0)
    assert minutes == np.inf and "do not use this target" in note
    one = pd.DataFrame({"minutes": [1.0], "median_distance_mm": [3.0]})
    assert np.isnan(minutes_to_reach(one, 5.0, 8.0)[0])


def test_sufficiency_note_gives_no_number_the_data_cannot_support():
    # Distances that rise and fall (noise, not convergence): a falling power law fits them, but no number is given.
    bumpy = pd.DataFrame({"minutes": [2.9, 5.9, 11.8], "median_distance_mm": [17.9, 30.2, 3.3]})
    minutes, note = minutes_to_reach(bumpy, 5.0, minutes_available=23.5)
    assert np.isnan(minutes) and "cannot be estimated from these data" in note
    # A slow fall that would need far more than 10x the data available.
    slow = pd.DataFrame({"minutes": [1.0, 2.0, 4.0], "median_distance_mm": [20.0, 19.0, 18.0]})
    minutes, note = minutes_to_reach(slow, 5.0, minutes_available=8.0)
    assert np.isnan(minutes) and "cannot be estimated from these data" in note and "min needed" not in note


def test_sufficiency_note_never_says_enough_when_the_retest_disagrees():
    curve = pd.DataFrame({"minutes": [1.0, 2.0, 4.0], "median_distance_mm": [20.0, 20 / np.sqrt(2), 10.0]})
    minutes, note = minutes_to_reach(curve, 5.0, minutes_available=20.0, retest_mm=41.8)
    assert np.isnan(minutes) and "41.8 mm" in note and "do not suffice" in note and "available do not" in note
    close = pd.DataFrame({"minutes": [1.0, 2.0], "median_distance_mm": [2.0, 1.0]})
    minutes, note = minutes_to_reach(close, 5.0, minutes_available=20.0, retest_mm=12.0)
    assert np.isnan(minutes) and "already agree" not in note and "do not suffice" in note
    # A retest within the goal leaves the estimate as it was.
    assert minutes_to_reach(curve, 5.0, 20.0, retest_mm=3.0)[0] == pytest.approx(16.0, rel=1e-6)


def test_retest_beyond_the_fair_limit_makes_the_word_poor(settings):
    # Session 1 has three times the data of session 2, so the joined map (and its bootstrap) sits firmly on
    # session 1's block while session 2 alone finds its own block 21 mm away: a narrow radius, a wide retest.
    runs = [run_with_block(300, (5, 5, 5), 0, effect=0.8), run_with_block(300, (5, 5, 5), 1, effect=0.8),
            run_with_block(100, (10, 10, 5), 2, effect=0.8), run_with_block(100, (10, 10, 5), 3, effect=0.8)]
    limits = dataclasses.replace(settings, good_r95_mm=5.0, fair_r95_mm=10.0, good_split_half_mm=50.0,
                                 max_competing_share=1.0)
    result = participant_targets(runs, limits, 0, sessions=["1", "1", "2", "2"], sufficiency=False)
    top = result.output.table.iloc[0]
    assert top["bootstrap_r95_mm"] <= limits.fair_r95_mm < top["retest_mm"]
    assert top["reliability"] == "poor"
    assert "retest" in result.output.details["methods"]["cluster"]["reliability"]["participant_reason"]


@pytest.mark.slow  # a simulated cohort processed end to end
def test_cohort_writes_a_participant_target_for_people_with_several_runs(tmp_path):
    from trdnet.cohort import run_cohort
    from trdnet.config import Settings
    from trdnet.inputs.bids import find_runs
    from trdnet.inputs.simulate import simulate_cohort
    from trdnet.outputs import read_tsv

    sim = simulate_cohort(tmp_path / "sim", n_subjects=1, n_volumes=100, resolution_mm=4, sessions=["1", "2"],
                          random_state=4, anatomy=False)
    settings = Settings()
    settings.targeting = dataclasses.replace(settings.targeting, n_bootstrap=5, min_half_volumes=20)
    out = tmp_path / "out"
    runs = find_runs(sim.fmriprep_dir, space=settings.space)
    results = run_cohort(runs, out, settings)
    assert [r.status for r in results] == ["done", "done", "done"], [r.error for r in results]
    prefix = "sub-01_task-rest_space-MNI152NLin2009cAsym"
    assert results[-1].prefix == prefix and results[-1].summary["n_runs"] == 2
    # What the console line prints for the participant: space, r, retest and the sufficiency note.
    summary = results[-1].summary
    assert summary["target_space"] == "MNI152NLin2009cAsym" and np.isfinite(summary["r_sgacc"])
    assert np.isfinite(summary["retest_mm"]) and summary["sufficiency_note"]
    folder = out / "sub-01" / "func"
    table = read_tsv(folder / f"{prefix}_desc-participant_targets.tsv")
    top = table.iloc[0]
    assert top["participant_id"] == "sub-01" and bool(top["primary"]) and top["n_runs"] == 2
    assert top["retest_kind"] == "session"
    retest = read_tsv(folder / f"{prefix}_desc-participantretest_targets.tsv")
    assert retest.loc[0, "held_out"] == "ses-1 vs ses-2"
    assert top["retest_mm"] == pytest.approx(retest.loc[0, "distance_mm"], abs=0.01)
    # The session targets are the per-run targets (one run per session, same settings, no bootstrap needed).
    per_run = [read_tsv(p).iloc[0][["x", "y", "z"]].to_numpy(float)
               for p in sorted(out.glob("sub-01/ses-*/func/*_targets.tsv")) if "desc-" not in p.name]
    np.testing.assert_allclose(retest.loc[0, ["x", "y", "z"]].to_numpy(float), per_run[0], atol=0.01)
    np.testing.assert_allclose(retest.loc[0, ["other_x", "other_y", "other_z"]].to_numpy(float), per_run[1],
                               atol=0.01)
    assert top["minutes_retained"] == pytest.approx(
        sum(read_tsv(p).iloc[0]["minutes_retained"] for p in sorted(out.glob("sub-01/ses-*/func/*_qc.tsv"))),
        abs=0.01)
    for name in ("participantsufficiency", "participantcandidates", "participantsites"):
        assert (folder / f"{prefix}_desc-{name}_targets.tsv").is_file()
        assert (folder / f"{prefix}_desc-{name}_targets.json").is_file()
    candidates = read_tsv(next(out.glob("sub-01/ses-1/func/*_desc-candidates_targets.tsv")))
    assert candidates["chosen"].sum() == 1
    again = run_cohort(runs, out, settings)
    assert [r.status for r in again] == ["skipped", "skipped", "skipped"]

    from trdnet.report.participant import write_participant_report

    page = write_participant_report(out, "sub-01").read_text()
    assert '<section id="participant"' in page and "Target from all runs" in page
    assert page.count("<h4>Competing sites</h4>") == 2  # one per run
    assert f"{top['retest_mm']:.2f}" in page


def test_a_participant_with_little_data_in_all_is_poor_and_says_why(settings):
    # Three runs of the same strong planted block: they agree, so only the amount of data limits the word.
    runs = [run_with_block(100, (6, 6, 6), seed, effect=1.0) for seed in range(3)]  # 3 x 100 volumes: 10 min
    lenient = dataclasses.replace(settings, good_r95_mm=50.0, fair_r95_mm=60.0, good_split_half_mm=50.0,
                                  max_competing_share=1.0, bootstrap_block_s=20.0)
    enough = participant_targets(runs, dataclasses.replace(lenient, min_minutes_for_word=5.0), 0, sufficiency=False)
    assert enough.output.table.iloc[0]["reliability"] in ("good", "fair")
    short = participant_targets(runs, lenient, 0, sufficiency=False)  # default: 15 min needed
    top = short.output.table.iloc[0]
    assert top["reliability"] == "poor"
    reason = short.output.details["methods"]["cluster"]["reliability"]["participant_reason"]
    assert reason.startswith("too little data: 10.0 min retained, 15 min needed for a word better than poor")
    assert "Too little data (10.0 min retained" in top["note"]


def test_a_short_participant_whose_stretches_agree_is_still_told_not_to_use_the_target(settings):
    # A strong planted block: stretches of the 10 minutes agree within 5 mm, but 15 minutes are needed for a
    # word better than poor. The note may report the agreement, never as if the target were usable.
    runs = [run_with_block(100, (6, 6, 6), seed, effect=1.0) for seed in range(3)]
    lenient = dataclasses.replace(settings, good_r95_mm=50.0, fair_r95_mm=60.0, good_split_half_mm=50.0,
                                  max_competing_share=1.0, bootstrap_block_s=20.0)
    table = participant_targets(runs, lenient, 0).output.table
    personal = table[table["target"].astype(str).str.startswith("personalised")]
    assert len(personal) and (personal["reliability"] == "poor").all()
    for _, row in personal.iterrows():
        note = row["sufficiency_note"]
        assert note.startswith("Too little data (10.0 min retained"), note
        assert "do not use this target yet" in note.split(".")[0] + note.split(".")[1], note
        assert "already agree within 5 mm" in note  # what the curve found is still reported, after the verdict
        assert "do not use this target yet" in row["note"]  # the targets table's own note agrees
    # With enough data by the rule, the curve's note stands alone.
    enough = participant_targets(runs, dataclasses.replace(lenient, min_minutes_for_word=5.0), 0).output.table
    assert enough.iloc[0]["sufficiency_note"].startswith("Stretches of")


def assert_sentences(text: str) -> None:
    """Whole sentences: each opens with a capital, ends with a full stop, and holds at most one colon."""
    assert text and text == text.strip(), repr(text)
    assert text.endswith(".") and not text.endswith(".."), text
    # a full stop followed by a space ends a sentence (decimals such as 8.0 have no space after the stop)
    for sentence in re.split(r"(?<=\.) ", text):
        assert sentence[0].isupper(), (sentence, text)
        assert sentence.count(":") <= 1, (sentence, text)
        assert "; ;" not in sentence and ";." not in sentence and ":." not in sentence, (sentence, text)


#: One stability curve per branch of minutes_to_reach (5 mm goal), and the minutes available.
SUFFICIENCY_BRANCHES = {
    "one point": (pd.DataFrame({"minutes": [1.0], "median_distance_mm": [3.0]}), 8.0),
    "already agree": (pd.DataFrame({"minutes": [1.0, 2.0], "median_distance_mm": [2.0, 1.0]}), 8.0),
    "no convergence": (pd.DataFrame({"minutes": [1.0, 2.0, 4.0], "median_distance_mm": [10.0, 12.0, 15.0]}), 8.0),
    "bumpy": (pd.DataFrame({"minutes": [2.9, 5.9, 11.8], "median_distance_mm": [17.9, 30.2, 3.3]}), 23.5),
    "beyond 10x": (pd.DataFrame({"minutes": [1.0, 2.0, 4.0], "median_distance_mm": [20.0, 19.0, 18.0]}), 8.0),
    "enough": (pd.DataFrame({"minutes": [1.0, 2.0, 4.0], "median_distance_mm": [20.0, 20 / np.sqrt(2), 10.0]}), 20.0),
    "not enough": (pd.DataFrame({"minutes": [1.0, 2.0, 4.0], "median_distance_mm": [20.0, 20 / np.sqrt(2), 10.0]}),
                   8.0),
}


@pytest.mark.parametrize("branch", sorted(SUFFICIENCY_BRANCHES))
@pytest.mark.parametrize("retest_mm", [np.nan, 3.0, 39.3])
@pytest.mark.parametrize("minutes_retained", [8.0, 20.0])
def test_every_sufficiency_note_reads_as_sentences(settings, branch, retest_mm, minutes_retained):
    curve, available = SUFFICIENCY_BRANCHES[branch]
    _, note = minutes_to_reach(curve, 5.0, minutes_available=available, retest_mm=retest_mm)
    # the data rule (15 min by default; with and without a shortened bootstrap block) opens the note
    for too_little in (too_little_data(minutes_retained, settings),
                       too_little_data(minutes_retained, settings, block_volumes=50, intended_block_volumes=60,
                                       tr=2.0)):
        statement = sufficiency_statement(note, too_little)
        assert_sentences(statement)
        assert note in statement
        if too_little:
            assert statement.startswith("Too little data (") and "do not use this target yet" in statement, statement
            assert "too little data:" not in statement, statement  # the reason is not stated twice
        else:
            assert statement == note
