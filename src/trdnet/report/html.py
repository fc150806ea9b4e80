"""Small HTML building blocks: escaped text, numbers tests can read, tables,
embedded images and the page skeleton, rendered from the jinja2 templates in
``templates/`` (``page.html``, macros in ``blocks.html``) with autoescaping."""

from __future__ import annotations

import html
import math
from functools import lru_cache

import jinja2
import pandas as pd
from markupsafe import Markup

SIMULATED_BANNER = (
    "SIMULATED DATA: these results come from trdnet's built-in simulated cohort, "
    "not from a real scan. Not for clinical use."
)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The report's jinja2 environment: package templates, autoescaping, undefined names are errors."""
    return jinja2.Environment(loader=jinja2.PackageLoader("trdnet.report", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _blocks():
    return environment().get_template("blocks.html").module


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
    exact = "n/a" if fmt(value) == "n/a" else repr(float(value))
    return str(_blocks().number(exact, fmt(value, digits), name, run))


def image(data_uri: str, alt: str, css_class: str = "fig") -> str:
    """An embedded image (data URI), with alt text."""
    return str(_blocks().image(data_uri, alt, css_class))


def figure(data_uri: str, caption: str, css_class: str = "fig") -> str:
    """An embedded image with a caption."""
    return str(_blocks().figure(data_uri, caption, css_class))


def table(frame: pd.DataFrame, digits: int = 2, css_class: str = "tbl", name: str | None = None,
          numeric_names: bool = False, run: str | None = None) -> str:
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
    run : str, optional
        ``data-run`` of the table and of its tagged cells (the run or participant prefix the values belong to).
    """
    kinds = [frame[c].dtype.kind for c in frame.columns]
    rows = []
    for values in frame.itertuples(index=False, name=None):
        cells = []
        for column, kind, value in zip(frame.columns, kinds, values):
            if kind == "f":
                cells.append((True, Markup(number(value, str(column), digits, run)) if numeric_names
                              else fmt(value, digits)))
            elif kind in "iu":
                cells.append((True, value))
            else:
                missing = value is None or (isinstance(value, float) and math.isnan(value))
                cells.append((False, "n/a" if missing else value))
        rows.append(cells)
    return str(_blocks().table([str(c) for c in frame.columns], rows, css_class, name, run))


def section(anchor: str, title: str, body: str, level: int = 2) -> str:
    """A titled page section with an anchor id."""
    return str(_blocks().section(anchor, title, Markup(body), int(level)))


def note(text: str, kind: str = "note") -> str:
    """A highlighted paragraph (kind: note, warn)."""
    return str(_blocks().note(text, kind))


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
    return environment().get_template("page.html").render(
        title=title, banner=SIMULATED_BANNER if simulated else "", nav=list(nav or []), body=Markup(body))
