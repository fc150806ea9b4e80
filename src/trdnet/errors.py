"""Exception families raised by trdnet.

Every error a user can cause derives from :class:`TrdnetError`; the command
line turns these into one line on stderr and a non-zero exit. Messages name
the offending file or value and what would be accepted.
"""

from __future__ import annotations

import os


class TrdnetError(Exception):
    """Base class of every error caused by input or settings, not by a bug."""


class InputError(TrdnetError):
    """An input folder, image, confounds file or sidecar is missing or invalid."""


class SettingsError(TrdnetError):
    """A setting has a value outside the accepted ones."""


class DenoiseError(TrdnetError):
    """A run cannot be cleaned (e.g. every volume censored, too few left)."""


class TargetingError(TrdnetError):
    """A target cannot be computed (e.g. empty search region)."""


class ExportError(TrdnetError):
    """A target cannot be exported (missing T1w, wrong transform, ...)."""


class DatasetError(TrdnetError):
    """A public dataset cannot be fetched or read."""


class NotImplementedFeatureError(TrdnetError):
    """A documented option that this version of trdnet does not implement yet."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a cluster's job end) received; handled like Ctrl-C.

    Raised from the signal handler the command line installs, so a run in
    progress cleans its staging folder and writes its failure record.
    """


def _raise_terminated(signum, frame):
    raise Terminated


def handle_sigterm():
    """Turn SIGTERM into :class:`Terminated` in this process (main thread only).

    Returns
    -------
    handler or None
        The previous handler (to restore), or None outside the main thread,
        where Python cannot install one.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


def _leave_quietly(signum, frame):
    # an idle pool worker holds no run to record, and a KeyboardInterrupt raised in loky's own loop is printed
    # as a traceback; the parent, interrupted too, records and reports what was in progress
    os._exit(128 + signum)


def worker_sigint(running: bool) -> None:
    """Set how a pool worker's main thread takes Ctrl-C: raise in a run, leave quietly between runs.

    Parameters
    ----------
    running : bool
        True as a run starts (SIGINT raises :class:`KeyboardInterrupt`, and
        the run records its interruption), False when it ends (SIGINT ends
        the idle worker with exit status 130 and no output).

    Notes
    -----
    Nothing is changed in the command's own process (joblib runs a pool of
    one there), outside the main thread (Dask's worker threads), or when
    SIGINT is ignored, as in a process started in the background by a shell.
    """
    import multiprocessing
    import signal
    import threading

    if multiprocessing.current_process().name == "MainProcess":
        return
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None):
        return
    signal.signal(signal.SIGINT, signal.default_int_handler if running else _leave_quietly)


def restore_sigterm(previous) -> None:
    """Put back the SIGTERM handler :func:`handle_sigterm` replaced (nothing for None)."""
    import signal

    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
