"""Self-contained HTML reports built from trdnet's written outputs."""

from __future__ import annotations

from .participant import write_participant_report

__all__ = ["write_participant_report"]
