"""Publish a run's outputs together with its completion record, one process per run.

A run is processed under a lock (``filelock``, released by the kernel if the
process dies) and written into a hidden staging folder inside the output tree,
``<out>/.trdnet/staging/<prefix>/``, laid out like the output folder. When
every output is written, the old completion record (if any) is already gone,
the files are renamed into place (same file system, so each rename is atomic),
and the new completion record is written last. A run that fails or is
interrupted leaves no outputs: the staging folder is removed, the outputs of
the record it replaced are removed, and a failure record says why. Staging
folders left by a killed process are cleared by the next run of the same
prefix and reported by the group step.
"""

from __future__ import annotations

import logging
import os
import shutil
import traceback
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import Terminated, TrdnetError
from .records import (WORK_DIR, completion_record_path, participant_report_path, read_completion_record,
                      remove_failure_record, write_completion_record, write_failure_record)

logger = logging.getLogger("trdnet")


class RunBusyError(TrdnetError):
    """Another process holds the lock of a run."""


def work_dir(out_dir: Path) -> Path:
    """``<out>/.trdnet``: locks and staging folders."""
    return Path(out_dir) / WORK_DIR


def staging_dir(out_dir: Path, prefix: str) -> Path:
    """``<out>/.trdnet/staging/<prefix>``."""
    return work_dir(out_dir) / "staging" / prefix


def staged_runs(out_dir: Path) -> list[str]:
    """Prefixes with a staging folder: runs in progress, or interrupted without cleanup."""
    folder = work_dir(out_dir) / "staging"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def lock_path(out_dir: Path, prefix: str) -> Path:
    """``<out>/.trdnet/locks/<prefix>.lock``."""
    return work_dir(out_dir) / "locks" / f"{prefix}.lock"


@contextmanager
def run_lock(out_dir: Path, prefix: str, timeout: float = 0):
    """Hold the lock of one run of an output folder.

    Parameters
    ----------
    out_dir : Path
    prefix : str
    timeout : float
        Seconds to wait for another process to release it (0: refuse at once;
        a negative value waits for ever).

    Raises
    ------
    RunBusyError
        If another process holds the lock after ``timeout`` seconds.
    """
    path = lock_path(out_dir, prefix)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        waited = f"still after waiting {timeout:g} s" if timeout > 0 else "--lock-timeout SECONDS waits for it"
        raise RunBusyError(f"{prefix}: another trdnet process is processing this run in {out_dir} "
                           f"(lock {path}); left to it ({waited})") from None
    try:
        yield
    finally:
        lock.release()


def failure_reason(exc: BaseException) -> str:
    """One line saying why a run failed: the message of a user-caused error, else the exception."""
    if isinstance(exc, TrdnetError):
        return str(exc)
    if isinstance(exc, Terminated):
        return "terminated by SIGTERM (no outputs published); re-run to resume"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (no outputs published); re-run to resume"
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return f"internal error: {last}"


class RunStaging:
    """The staging folder of one run; see :func:`staged_run`.

    Attributes
    ----------
    root : Path
        Write the run's outputs here, as if it were the output folder.
    """

    def __init__(self, out_dir: Path, prefix: str, participant_id: str | None = None):
        self.out_dir = Path(out_dir)
        self.prefix = prefix
        self.participant_id = participant_id
        self.root = staging_dir(out_dir, prefix)
        self.previous: list[str] = []

    def begin(self) -> None:
        """Clear a leftover staging folder and forget the run's old completion record first.

        The participant's HTML report goes with the record: it describes the
        outputs about to be replaced, and a run that never finishes must not
        leave it behind (the run writes it again once it is published).
        """
        self.clear()
        record = completion_record_path(self.out_dir, self.prefix)
        if record.is_file():
            try:
                old = read_completion_record(record)
                previous, participant = old.files, old.participant_id
            except TrdnetError:
                previous, participant = [], self.participant_id
            if participant:
                participant_report_path(self.out_dir, participant).unlink(missing_ok=True)
            record.unlink()
            # only now may the outputs it described go (abandon and commit remove them)
            self.previous = previous

    def relative(self, written) -> list[str]:
        """Paths of staged files relative to the staging folder (= their place in the output folder)."""
        return sorted(str(Path(p).relative_to(self.root)) for p in written)

    def commit(self, written, participant_id: str, settings_digest: str, summary: dict,
               simulated: bool) -> list[str]:
        """Rename the staged files into place, then write the completion record.

        Every staged file is published; the record lists the run's own files
        (``written``). Files runs share (an atlas's ROI table) are published
        but not claimed, so removing one run's outputs never removes them.

        Returns
        -------
        list of str
            The run's files relative to the output folder, as recorded.
        """
        relative = self.relative(written)
        self._remove_outputs(set(self.previous) - set(relative))
        self.move_staged()
        write_completion_record(self.out_dir, self.prefix, participant_id, settings_digest, relative, summary,
                                simulated)
        remove_failure_record(self.out_dir, self.prefix)
        return relative

    def update(self, written, replaces, summary: dict) -> list[str]:
        """Publish staged files into a finished run, replacing the part of it ``replaces`` selects.

        The run's completion record is removed first and written again last,
        listing its other files and the new ones, with ``summary`` merged into
        its summary; an interruption in between leaves the run without a
        record (recomputed by the next run), never with a record of missing
        files. Without a completion record, the files are only published.

        Parameters
        ----------
        written : list of Path
            Staged files (under :attr:`root`).
        replaces : callable
            ``replaces(name)`` is true for the recorded files (relative names)
            the new ones stand for; those not written again are removed.
        summary : dict

        Returns
        -------
        list of str
            The new files relative to the output folder.
        """
        new = self.relative(written)
        path = completion_record_path(self.out_dir, self.prefix)
        record = read_completion_record(path) if path.is_file() else None
        if record is not None:
            path.unlink()
            self._remove_outputs({f for f in record.files if replaces(f)} - set(new))
        self.move_staged()
        if record is not None:
            files = sorted({f for f in record.files if not replaces(f)} | set(new))
            write_completion_record(self.out_dir, self.prefix, record.participant_id, record.settings_digest, files,
                                    {**record.summary, **summary}, record.simulated)
        return new

    def move_staged(self) -> None:
        """Rename every staged file into place (same file system: each rename is atomic)."""
        for name in self.relative(p for p in self.root.rglob("*") if p.is_file()):
            target = self.out_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.root / name, target)
        shutil.rmtree(self.root, ignore_errors=True)

    def clear(self) -> None:
        """An empty staging folder (a leftover of a killed process is removed)."""
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)

    def abandon(self) -> None:
        """Remove everything of a failed run: staged files and the outputs of the record it replaced."""
        shutil.rmtree(self.root, ignore_errors=True)
        self._remove_outputs(self.previous)

    def _remove_outputs(self, names) -> None:
        root = self.out_dir.resolve()
        for name in names:
            path = (self.out_dir / name).resolve()
            if path.is_relative_to(root) and path != root:  # a record never reaches outside its folder
                path.unlink(missing_ok=True)


@contextmanager
def staged_run(out_dir: Path, prefix: str, participant_id: str, settings_digest: str | None = None,
               begin: bool = True):
    """Write one run's outputs into its staging folder; on any error leave nothing but a failure record.

    Use under :func:`run_lock`; call :meth:`RunStaging.commit` at the end of
    the block. An exception (a user-caused error, a bug, Ctrl-C) removes the
    staged files (and, once :meth:`RunStaging.begin` ran, the outputs of the
    record it replaced), writes ``logs/<prefix>_failed.json`` and propagates.

    Parameters
    ----------
    begin : bool
        Call :meth:`RunStaging.begin` on entry; False when the block must
        first read the folder as it is (it then calls ``begin`` itself).

    Yields
    ------
    RunStaging
    """
    stage = RunStaging(out_dir, prefix, participant_id)
    if begin:
        stage.begin()
    try:
        yield stage
    except BaseException as exc:
        # the record first: a worker stopped during the clean-up (Ctrl-C with --n-jobs) still leaves it
        try:
            write_failure_record(out_dir, prefix, participant_id, failure_reason(exc), settings_digest,
                                 interrupted=isinstance(exc, KeyboardInterrupt))
        except OSError as record_error:  # keep the run's own error, which says what went wrong first
            logger.error("%s: its failure record could not be written (%s)", prefix, record_error)
        stage.abandon()
        raise
