"""Small HTML building blocks: escaped text, numbers tests can read, tables,
embedded images and the page skeleton (``templates/page.html``)."""

from __future__ import annotations

import html
import math
from importlib import resources
from string import Template

import pandas as pd

SIMULATED_BANNER = (
    "SIMULATED DATA: these results come from trdnet's built-in simulated cohort, "
    "not from a real scan. Not for clinical use."
)


def esc(value) -> str:
    """HTML-escape any value's text."""
    return html.escape(str(value), quote=True)


def fmt(value, digits: int = 2) -> str:
    """Format a number for display (``n/a`` for missing values)."""
    if value is None:
        return "n/a"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "n/a"
    return f"{number:.{digits}f}"


def number(value, name: str, digits: int = 2, run: str | None = None) -> str:
    """A displayed number with its exact value in ``data-value`` for tests.

    Parameters
    ----------
    value : float or str
        The value as read from the output tables.
    name : str
        What it is (``data-name``), e.g. ``minutes_retained``.
    digits : int
        Decimals shown.
    run : str, optional
        Run prefix the value belongs to (``data-run``).
    """
    run_attr = f' data-run="{esc(run)}"' if run else ""
    exact = "n/a" if fmt(value) == "n/a" else repr(float(value))
    return (f'<span class="num" data-name="{esc(name)}" data-value="{esc(exact)}"{run_attr}>'
            f"{esc(fmt(value, digits))}</span>")


def image(data_uri: str, alt: str, css_class: str = "fig") -> str:
    """An embedded image (data URI), with alt text."""
    return f'<img class="{esc(css_class)}" src="{data_uri}" alt="{esc(alt)}">'


def figure(data_uri: str, caption: str, css_class: str = "fig") -> str:
    """An embedded image with a caption."""
    return f"<figure>{image(data_uri, caption, css_class)}<figcaption>{esc(caption)}</figcaption></figure>"


def table(frame: pd.DataFrame, digits: int = 2, css_class: str = "tbl", name: str | None = None,
          numeric_names: bool = False) -> str:
    """Render a table; numeric cells become readable :func:`number` spans.

    Parameters
    ----------
    frame : pandas.DataFrame
    digits : int
        Decimals of float cells.
    css_class : str
    name : str, optional
        ``data-table`` attribute of the table.
    numeric_names : bool
        Tag numeric cells with ``data-name`` = their column name.
    """
    table_attr = f' data-table="{esc(name)}"' if name else ""
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    kinds = [frame[c].dtype.kind for c in frame.columns]
    rows = []
    for values in frame.itertuples(index=False, name=None):
        cells = []
        for column, kind, value in zip(frame.columns, kinds, values):
            if kind == "f":
                text = number(value, str(column), digits) if numeric_names else esc(fmt(value, digits))
                cells.append(f'<td class="r">{text}</td>')
            elif kind in "iu":
                cells.append(f'<td class="r">{esc(value)}</td>')
            else:
                missing = value is None or (isinstance(value, float) and math.isnan(value))
                cells.append(f"<td>{esc('n/a' if missing else value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="{esc(css_class)}"{table_attr}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def section(anchor: str, title: str, body: str, level: int = 2) -> str:
    """A titled page section with an anchor id."""
    return f'<section id="{esc(anchor)}"><h{level}>{esc(title)}</h{level}>{body}</section>'


def note(text: str, kind: str = "note") -> str:
    """A highlighted paragraph (kind: note, warn)."""
    return f'<p class="{esc(kind)}">{esc(text)}</p>'


def page(title: str, body: str, simulated: bool, nav: list[tuple[str, str]] | None = None) -> str:
    """The complete self-contained page.

    Parameters
    ----------
    title : str
    body : str
        HTML of the sections.
    simulated : bool
        Show the SIMULATED DATA banner.
    nav : list of (anchor, label), optional
        Links shown at the top.
    """
    template = Template(resources.files("trdnet.report").joinpath("templates/page.html").read_text("utf-8"))
    banner = f'<div class="banner" id="simulated-banner">{esc(SIMULATED_BANNER)}</div>' if simulated else ""
    links = " ".join(f'<a href="#{esc(a)}">{esc(label)}</a>' for a, label in (nav or []))
    return template.substitute(title=esc(title), banner=banner, nav=links, body=body)
