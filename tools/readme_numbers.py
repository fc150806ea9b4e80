"""The README's measured numbers live in ``readme_numbers.json``; the README shows them.

In ``README.md`` a measured number is written between two HTML comments that
name it, ``<!--n:demo_median_mm-->0.8<!--/n-->`` (invisible once rendered).
``readme_numbers.json`` holds, for every name, the value, how it is printed,
where it comes from and how far a re-measurement may drift from it. Tests
compare what the code produces with the file, never with the README's prose;
this script writes the file's values into the README (``--write``) or checks
that the README shows them (``--check``, the default).

Usage: ``python tools/readme_numbers.py [--write]``
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NUMBERS = ROOT / "readme_numbers.json"
SPAN = re.compile(r"<!--n:(?P<name>[A-Za-z0-9_.]+)-->(?P<text>.*?)<!--/n-->", flags=re.DOTALL)


@dataclass(frozen=True)
class Number:
    """One measured number the README states.

    Attributes
    ----------
    name : str
        Key in ``readme_numbers.json`` and in the README's marker.
    value : float
        The measured value.
    format : str
        Python format spec of the printed text (``".1f"``).
    tolerance : float
        Largest difference a re-measurement may show and still match the
        README (rounding of the printed digits plus BLAS-level drift).
    source : str
        Command or file that measures it.
    evidence : str
        Test or benchmark that checks it.
    table : dict, optional
        Where a committed results table holds the number: ``{"file": TSV path
        relative to the repository, "where": {column: value, ...} selecting one
        row, "column": column}``; tests check the file's value against the table.
    """

    name: str
    value: float
    format: str
    tolerance: float
    source: str
    evidence: str
    table: dict | None = None

    @property
    def text(self) -> str:
        """The number as the README prints it."""
        return format(self.value, self.format)

    def matches(self, measured: float) -> bool:
        """Whether a re-measured value agrees with this number within its tolerance."""
        return abs(float(measured) - self.value) <= self.tolerance


def table_value(number: Number, root: Path = ROOT) -> float:
    """The value a number's committed results table holds (see :attr:`Number.table`).

    Raises
    ------
    LookupError
        No table named, or the selection does not match exactly one row.
    """
    import pandas as pd

    if not number.table:
        raise LookupError(f"{number.name}: no results table named")
    frame = pd.read_csv(root / number.table["file"], sep="\t", dtype=str, keep_default_na=False)
    rows = frame
    for column, wanted in number.table.get("where", {}).items():
        rows = rows[rows[column] == str(wanted)]
    if len(rows) != 1:
        raise LookupError(f"{number.name}: {len(rows)} rows of {number.table['file']} match {number.table['where']}")
    return float(rows.iloc[0][number.table["column"]])


def load(path: Path = NUMBERS) -> dict[str, Number]:
    """Every number of ``readme_numbers.json``, by name."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return {name: Number(name=name, **entry) for name, entry in raw.items()}


def shown(text: str) -> dict[str, list[str]]:
    """Marked numbers in a README text: name -> every text shown under that name."""
    found: dict[str, list[str]] = {}
    for match in SPAN.finditer(text):
        found.setdefault(match["name"], []).append(match["text"])
    return found


def problems(text: str, numbers: dict[str, Number]) -> list[str]:
    """Disagreements between a README text and the numbers file (empty when they agree)."""
    found = shown(text)
    issues = [f"README marks {name!r}, which readme_numbers.json does not define"
              for name in sorted(set(found) - set(numbers))]
    issues += [f"readme_numbers.json defines {name!r}, which the README does not show"
               for name in sorted(set(numbers) - set(found))]
    for name in sorted(set(found) & set(numbers)):
        for text_shown in found[name]:
            if text_shown != numbers[name].text:
                issues.append(f"README shows {name} as {text_shown!r}; readme_numbers.json says "
                              f"{numbers[name].text!r}")
    return issues


def render(text: str, numbers: dict[str, Number]) -> str:
    """The README text with every marked number replaced by its value from the file."""
    def replace(match: re.Match) -> str:
        number = numbers.get(match["name"])
        body = number.text if number is not None else match["text"]
        return f"<!--n:{match['name']}-->{body}<!--/n-->"

    return SPAN.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the file's values into README.md")
    args = parser.parse_args(argv)
    numbers = load()
    text = README.read_text(encoding="utf-8")
    if args.write:
        updated = render(text, numbers)
        if updated != text:
            README.write_text(updated, encoding="utf-8")
        text = updated
    issues = problems(text, numbers)
    for issue in issues:
        print(issue, file=sys.stderr)
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main())
