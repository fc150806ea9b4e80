"""Write benchmark tables: a TSV with every number and a short markdown table."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd


def write_tables(table: pd.DataFrame, tsv: Path, markdown: Path, title: str, notes: list[str]) -> None:
    """Write ``table`` to ``tsv`` and a markdown version with ``notes`` under it."""
    tsv.parent.mkdir(parents=True, exist_ok=True)
    tmp = tsv.with_name(tsv.name + ".tmp")
    table.to_csv(tmp, sep="\t", index=False, float_format="%.4g")
    os.replace(tmp, tsv)
    lines = [f"# {title}", "", _markdown(table), ""] + [f"- {n}" for n in notes] + [""]
    tmp = markdown.with_name(markdown.name + ".tmp")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, markdown)


def load_average() -> float:
    """The machine's 1-minute load average (NaN where the system has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def machine_note() -> str:
    """Note on the machine: core count and the load average now (call it at the end)."""
    return f"Machine: {os.cpu_count()} cores; 1-min load average at the end {load_average():.1f}."


def _markdown(table: pd.DataFrame) -> str:
    def fmt(value):
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
        return str(value)

    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows])
