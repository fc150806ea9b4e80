"""Where the ``trdnet`` loggers' messages go: stderr, one line each (``trdnet: warning: ...``), at the level
``-v``/``-q`` ask for, in the command's process and in its worker processes.

Library modules only log; the command line alone calls :func:`configure_logging`.
"""

from __future__ import annotations

import logging
import sys


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is at the time of the message."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


class _OneLine(logging.Formatter):
    """``trdnet: warning: message``, the form of the command's error lines."""

    def format(self, record: logging.LogRecord) -> str:
        return f"trdnet: {record.levelname.lower()}: {record.getMessage()}"


def configure_logging(verbose: int = 0, quiet: int = 0) -> None:
    """Send the ``trdnet`` loggers to stderr at the level ``-v``/``-q`` ask for.

    Library modules only log (``logging.getLogger("trdnet...")``); the
    command line alone decides where messages go. Default level INFO;
    ``-v`` DEBUG; ``-q`` WARNING; ``-qq`` ERROR.
    """
    level = logging.INFO + 10 * (quiet - verbose)
    logger = logging.getLogger("trdnet")
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(_OneLine())
    logger.addHandler(handler)
    logger.setLevel(min(max(level, logging.DEBUG), logging.CRITICAL))
    logger.propagate = False


def logging_level() -> int | None:
    """The ``trdnet`` logger's level when the command line set it up (:func:`configure_logging`), else None.

    Handed to worker processes (:func:`configure_worker_logging`), which do
    not inherit the parent's logging setup.
    """
    logger = logging.getLogger("trdnet")
    return logger.level if any(isinstance(h, _StderrHandler) for h in logger.handlers) else None


def configure_worker_logging(level: int | None) -> None:
    """In a worker process, send the ``trdnet`` loggers where the parent's go, at the parent's level.

    Without it a loky or Dask worker has no handler for them: Python's last
    resort handler prints warnings without the ``trdnet: warning:`` prefix
    and whatever ``-q`` asked for. ``None`` (a library caller's own logging
    setup) leaves the worker as it is.
    """
    if level is None:
        return
    logger = logging.getLogger("trdnet")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_OneLine())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
