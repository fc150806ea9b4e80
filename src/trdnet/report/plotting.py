"""Shared figure plumbing: the Agg backend, PNG data URIs, colours."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

#: Resolution of embedded figures; modest so a 20-participant cohort stays fast.
DPI = 72

NETWORK_COLORS = {"DMN": "#d62728", "SN": "#2ca02c", "ECN": "#1f77b4"}
RELIABILITY_COLORS = {"good": "#1b7f3b", "fair": "#e08a00", "poor": "#b3261e"}
#: Colour used for a reliability word outside good/fair/poor (e.g. missing).
UNKNOWN_COLOR = "#7f7f7f"
#: Marker colours of reference sites, in the order they appear.
SITE_COLORS = ("#17becf", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f", "#1f77b4", "#ff7f0e",
               "#2ca02c", "#d62728")
TARGET_COLOR = "#ffd700"
#: Competing sites: bootstrap sites and candidate clusters.
COMPETING_SITE_COLOR = "#ff8c00"
CANDIDATE_COLOR = "#ffffff"


def to_data_uri(fig, dpi: int = DPI, close: bool = True) -> str:
    """Render a matplotlib figure to a PNG data URI (and close it, unless ``close`` is False)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor=fig.get_facecolor())
    if close:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def new_figure(width: float, height: float):
    """A new figure (inches); :func:`to_data_uri` closes it."""
    return plt.figure(figsize=(width, height))
