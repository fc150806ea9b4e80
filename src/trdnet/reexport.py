"""``trdnet export``: rewrite a finished run's navigator files the way runs publish their outputs.

Under the run's lock (:func:`trdnet.staging.run_lock`), the navigator files
are written into the run's staging folder, then renamed into place while the
run's completion record is rewritten to list them (:meth:`RunStaging.update`):
the record never lists a navigator file that is not there, and an export that
is refused or interrupted leaves the finished run as it was. Only finished runs
(with a completion record) are exported.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .entities import parse_entities
from .errors import InputError
from .outputs import read_tsv
from .records import completion_record_path, read_completion_record
from .staging import RunStaging, run_lock

#: ``desc-`` entity of every navigator file (:mod:`trdnet.export`).
NAVIGATION_DESC = "navtargets"


def is_navigation_file(name) -> bool:
    """Whether an output (path or name) is a navigator file (``desc-navtargets``)."""
    return parse_entities(Path(name).name).get("desc") == NAVIGATION_DESC


def reexport_run(run, out_dir: Path, settings, lock_timeout: float = 0):
    """Write a run's navigator files again from its targets table.

    Parameters
    ----------
    run : trdnet.inputs.runs.Run
    out_dir : Path
        The trdnet output folder holding the run's ``<prefix>_targets.tsv``.
    settings : trdnet.config.Settings
        Its ``export`` section chooses the formats and the coil pose.
    lock_timeout : float
        Seconds to wait for another process working on the run (0: refuse at once).

    Returns
    -------
    summary : dict
        ``navigation_*`` values (also merged into the completion record's summary).
    files : list of str
        The navigator files written, relative to ``out_dir``.

    Raises
    ------
    InputError
        If the run has no completion record (it was interrupted or failed),
        no targets table, or its completion record lists other outputs that
        are missing (re-run it).
    trdnet.staging.RunBusyError
        If another process holds the run.
    ExportError
        If the participant's anatomy is refused (nothing is changed).
    """
    from .pipeline import output_dir_for, write_navigation

    out_dir = Path(out_dir)
    targets = output_dir_for(run, out_dir) / f"{run.prefix}_targets.tsv"
    with run_lock(out_dir, run.prefix, lock_timeout):
        record_path = completion_record_path(out_dir, run.prefix)
        if not record_path.is_file():
            # outputs without a record are those of an interrupted or failed run (see trdnet.records)
            raise InputError(f"{run.prefix}: the run did not finish in {out_dir} (no completion record "
                             f"{record_path.name}: interrupted or failed); re-run it with 'trdnet run' "
                             "before exporting")
        missing = [f for f in read_completion_record(record_path).missing_files(out_dir)
                   if not is_navigation_file(f)]
        if missing:
            raise InputError(f"{record_path}: lists output(s) that are missing ({', '.join(missing[:3])}); "
                             "re-run the run with 'trdnet run ... --overwrite' before exporting")
        if not targets.is_file():
            raise InputError(f"{run.prefix}: no {targets.name}; run 'trdnet run' first")
        stage = RunStaging(out_dir, run.prefix)
        stage.clear()
        try:
            summary, written = write_navigation(run, read_tsv(targets), stage.root, settings)
            return summary, stage.update(written, is_navigation_file, summary)
        finally:  # refused or interrupted: the finished run stays as it was
            shutil.rmtree(stage.root, ignore_errors=True)
