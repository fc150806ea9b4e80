"""The README's measured numbers are the ones in ``readme_numbers.json`` (which the tests that measure
them compare with), and the checker notices a README that disagrees."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import readme_numbers  # noqa: E402


def test_readme_shows_every_number_of_the_numbers_file():
    numbers = readme_numbers.load()
    assert numbers, "readme_numbers.json is empty"
    assert readme_numbers.problems((ROOT / "README.md").read_text(encoding="utf-8"), numbers) == []


def test_every_number_names_its_source_and_evidence():
    for number in readme_numbers.load().values():
        assert number.source and number.evidence, number.name
        assert number.tolerance >= 0, number.name
        evidence_file = number.evidence.split("::")[0].split(" ")[0]
        assert (ROOT / evidence_file).is_file(), f"{number.name}: {evidence_file} does not exist"


def test_numbers_match_their_committed_results_tables():
    """Benchmark numbers: the README's value is the one the committed results table holds."""
    numbers = [n for n in readme_numbers.load().values() if n.table]
    assert len(numbers) >= 20
    drifted = {n.name: (n.value, readme_numbers.table_value(n)) for n in numbers
               if not n.matches(readme_numbers.table_value(n))}
    assert not drifted, f"readme_numbers.json vs results tables: {drifted}"


def cited_tests(text: str) -> list[tuple[str, str]]:
    """``(file, test)`` pairs a text cites as ``test_x.py::test_y``; a bare ``::test_z`` continues the last file."""
    pairs, current = [], None
    for match in re.finditer(r"(?:(?:tests/)?(test_\w+\.py))?::(test_\w+)", text):
        current = match[1] or current
        pairs.append((current, match[2]))
    return pairs


def test_every_test_the_readme_cites_exists():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    cited = cited_tests(readme)
    assert len(cited) >= 40, "the README's Evidence section cites fewer tests than expected"
    missing = [f"{name}::{test}" for name, test in cited
               if name is None or not re.search(rf"^def {test}\(", (ROOT / "tests" / name).read_text()
                                                 if (ROOT / "tests" / name).is_file() else "", re.MULTILINE)]
    assert not missing, f"the README cites tests that do not exist: {missing}"
    for path in re.findall(r"`((?:benchmarks|tools|validation)/[\w/]+\.py)`", readme):
        assert (ROOT / path).is_file(), path


def test_checker_finds_an_edited_missing_or_unknown_number():
    numbers = {"a": readme_numbers.Number("a", 0.84, ".1f", 0.06, "run", "tests/test_demo.py"),
               "b": readme_numbers.Number("b", -0.47, "+.2f", 0.006, "run", "tests/test_demo.py")}
    good = "median <!--n:a-->0.8<!--/n--> mm, z <!--n:b-->-0.47<!--/n-->"
    assert readme_numbers.problems(good, numbers) == []
    edited = good.replace(">0.8<", ">0.9<")
    assert readme_numbers.problems(edited, numbers) == ["README shows a as '0.9'; readme_numbers.json says '0.8'"]
    assert readme_numbers.problems("median <!--n:a-->0.8<!--/n-->", numbers) == [
        "readme_numbers.json defines 'b', which the README does not show"]
    assert readme_numbers.problems(good + " <!--n:c-->1<!--/n-->", numbers) == [
        "README marks 'c', which readme_numbers.json does not define"]
    assert readme_numbers.render(edited, numbers) == good
    assert numbers["a"].matches(0.85) and not numbers["a"].matches(0.95)


def test_denoising_defaults_are_the_ones_the_readme_states(tmp_path):
    """README, Methods: 24 motion parameters, WM + CSF, global signal, FD > 0.5 mm or std DVARS > 1.5 censored,
    retained segments under 5 volumes dropped, 0.01-0.1 Hz Butterworth band-pass after detrending."""
    from nilearn.interfaces.fmriprep import load_confounds

    from trdnet.config import DenoiseSettings
    from trdnet.denoise import clean_arguments, confound_arguments

    from conftest import write_fmriprep_run

    arguments = confound_arguments(DenoiseSettings())
    assert arguments == {"strategy": ("motion", "wm_csf", "global_signal", "scrub"), "motion": "full",
                         "wm_csf": "basic", "global_signal": "basic", "scrub": 5, "fd_threshold": 0.5,
                         "std_dvars_threshold": 1.5, "demean": True}
    clean = clean_arguments(DenoiseSettings(), tr=2.0)
    assert (clean["detrend"], clean["filter"], clean["high_pass"], clean["low_pass"]) == (
        True, "butterworth", 0.01, 0.1)
    # what these arguments select in nilearn: 24 motion columns, WM, CSF and the global signal
    paths = write_fmriprep_run(tmp_path / "fmriprep", n_volumes=80, spikes=(40,))
    confounds, sample_mask = load_confounds(str(paths["bold"]), **arguments)
    motion = [c for c in confounds.columns if c.startswith(("trans_", "rot_"))]
    assert len(motion) == 24
    assert set(confounds.columns) - set(motion) == {"white_matter", "csf", "global_signal"}
    assert 40 not in sample_mask and len(sample_mask) < 80  # the 2.4 mm FD spike is censored


#: The decisions the README's "Where things are" section must place, one line each.
WHERE_DECISIONS = ("Naming", "Settings", "Discovery", "Finished runs", "Progress", "Geometry", "Targeting", "Exports")


def where_things_are(text: str) -> dict[str, list[str]]:
    """The README section "Where things are": decision -> the repository paths its line names."""
    section = text.split("\n## Where things are\n", 1)[1].split("\n## ", 1)[0]
    lines = re.findall(r"^- \*\*(.+?)\*\*:(.*)$", section, flags=re.MULTILINE)
    return {name: re.findall(r"`((?:src|data|tests|tools|examples|benchmarks)/[^`]*)`", rest) for name, rest in lines}


def test_where_things_are_names_one_existing_module_per_decision():
    places = where_things_are((ROOT / "README.md").read_text(encoding="utf-8"))
    assert tuple(places) == WHERE_DECISIONS
    for name, paths in places.items():
        assert paths, f"{name}: the line names no module"
        missing = [p for p in paths if not (ROOT / p).exists()]
        assert not missing, f"{name}: {missing} do not exist"


def test_where_things_are_check_notices_a_wrong_path():
    text = "\n## Where things are\n\n- **Naming**: in `src/trdnet/naming.py`.\n\n## Next\n"
    (path,) = where_things_are(text)["Naming"]
    assert not (ROOT / path).exists()


def test_the_readme_names_every_verbosity_level_the_help_offers():
    """``-v``, ``-q`` and ``-qq`` as ``--help`` lists them, each with what it shows, where the options are described."""
    import argparse

    from trdnet.cli import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = " ".join(a.help or "" for a in commands.choices["run"]._actions if a.dest in ("verbose", "quiet"))
    levels = sorted(set(re.findall(r"-v+\b|-q+\b", helps)))
    assert levels == ["-q", "-qq", "-v"], helps
    # the paragraph describing the options of 'trdnet run'
    (options,) = [p for p in (ROOT / "README.md").read_text(encoding="utf-8").split("\n\n")
                  if p.startswith("`trdnet run FMRIPREP_DIR OUTPUT_DIR participant` follows")]
    for level in levels:
        assert re.search(rf"`{level}` [a-z]", options), f"{level} is not described with the options"
