"""Progress lines: one INFO line on the ``trdnet`` logger per finished item, in the order items end.

Used for the runs of a cohort (serial, joblib or Dask alike), the participant
step and the HTML reports, so ``-q`` silences all of them at once.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("trdnet")


class Progress:
    """Count finished items and log ``[<step> k/N] <name>: <status>`` for each.

    Parameters
    ----------
    total : int
        Items expected.
    enabled : bool
        False: count without logging.
    step : str
        Name of the step in the line (``"participant"``, ``"report"``); empty
        for the runs, whose lines read ``[k/N]``.
    """

    def __init__(self, total: int, enabled: bool = True, step: str = ""):
        self.total, self.count, self.enabled, self.step = total, 0, enabled, step

    def __call__(self, result) -> None:
        """One finished run or participant (a :class:`trdnet.pipeline.RunResult`)."""
        self.advance(result.prefix, f"{result.status}: {result.error}" if result.error else result.status)

    def advance(self, name: str, status: str) -> None:
        """One finished item named ``name``."""
        self.count += 1
        if self.enabled:
            logger.info("[%s%d/%d] %s: %s", f"{self.step} " if self.step else "", self.count, self.total, name,
                        status)
