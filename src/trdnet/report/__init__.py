"""Self-contained HTML reports built from trdnet's written outputs.

``write_participant_report(out_dir, subject)`` writes ``<out_dir>/sub-<l>.html``;
``write_group_report(out_dir)`` writes ``<out_dir>/group.html``. Both read only
the tables, sidecars and maps a run already wrote.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .group import write_group_report
from .participant import write_participant_report, write_participant_reports

log = logging.getLogger("trdnet.report")

__all__ = ["write_group_report", "write_participant_report", "write_participant_reports", "write_reports"]


def write_reports(out_dir, subjects=None, n_jobs: int | None = None, group: bool = True) -> list[Path]:
    """Write the participant reports and (optionally) the cohort report.

    Parameters
    ----------
    out_dir : str or Path
        Root of the trdnet derivatives.
    subjects : sequence of str, optional
        Participant labels; default: every processed participant.
    n_jobs : int, optional
        Worker processes for the participant reports (default: every
        available core, at most one per participant).
    group : bool
        Also write ``group.html``.

    Returns
    -------
    list of pathlib.Path
        Participant reports, then the cohort report.
    """
    paths = write_participant_reports(out_dir, subjects, n_jobs)
    if group:
        log.info("writing the cohort report (group.html)")
        paths.append(write_group_report(out_dir))
    return paths
