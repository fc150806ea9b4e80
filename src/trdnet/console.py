"""What a command tells its user when the work is done: one line per run, and where the reports are.

Used by the command line and by the demo; the work itself is done elsewhere.
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

from .errors import TrdnetError

log = logging.getLogger("trdnet.console")

#: Exit code of a command whose every run finished (or was already finished).
EXIT_OK = 0
#: Exit code when at least one run failed (recorded in failures.tsv) or nothing could be exported.
EXIT_RUN_FAILED = 1
#: Exit code when the request was refused before any work (bad option, settings, input or output folder).
EXIT_REFUSED = 2
#: Exit code after Ctrl-C / SIGINT; finished runs are kept.
EXIT_INTERRUPTED = 130
#: Exit code after SIGTERM (128 + 15, as a shell reports it); handled like Ctrl-C.
EXIT_TERMINATED = 143

#: Run statuses of runs left to another process (not failures: no failure record).
NOT_PROCESSED = ("busy", "other settings")


def report_results(results, output_dir: Path) -> int:
    """Print one line per run and return the exit code.

    Parameters
    ----------
    results : list of trdnet.pipeline.RunResult
    output_dir : Path
        The trdnet output folder (named in the last line).

    Returns
    -------
    int
        :data:`EXIT_RUN_FAILED` if any run failed, else :data:`EXIT_OK`.
    """
    failed = [r for r in results if r.status == "failed"]
    left = [r for r in results if r.status in NOT_PROCESSED]
    for r in results:
        if r.status in NOT_PROCESSED:  # another process holds or finished the run: not a failure of the run
            print(f"{r.prefix}: NOT PROCESSED: {r.error}")
        elif r.status == "failed":
            print(f"{r.prefix}: FAILED: {r.error}")
        elif r.status == "kept":  # a participant step that would have used only some of the person's runs
            print(f"{r.prefix}: {r.error}")
        else:
            s = r.summary
            if "target_x" not in s:
                print(f"{r.prefix}: {r.status}; no target ({s.get('targeting', 'targeting skipped')})")
                continue
            print(f"{r.prefix}: {r.status}; target ({s.get('target_x', float('nan')):.1f}, "
                  f"{s.get('target_y', float('nan')):.1f}, {s.get('target_z', float('nan')):.1f}) mm "
                  f"{s.get('target_space', '')}"
                  + (f" (vertex {s['target_vertex']}, hemi-{s['target_hemi']})" if "target_vertex" in s else "")
                  + f", r_sgacc {s.get('r_sgacc', float('nan')):.2f}, "
                  f"reliability {s.get('reliability', '?')}"
                  + (f", retest {s['retest_mm']:.1f} mm" if math.isfinite(s.get("retest_mm", math.nan)) else "")
                  + (f"; {s['sufficiency_note']}" if s.get("sufficiency_note") else ""))
            if r.error:  # a participant step's note on the runs it joined
                print(f"    {r.error}")
            if s.get("navigation_space") and s.get("navigation_space") != s.get("target_space"):
                print(f"    for navigation: ({s['navigation_x']:.1f}, {s['navigation_y']:.1f}, "
                      f"{s['navigation_z']:.1f}) mm {s['navigation_space']}"
                      + (" (world RAS of the participant's T1w)" if s["navigation_space"] == "T1w" else "")
                      + (f" (approximate: the mesh's MNI152 is FSL's, MNI152NLin6Asym, used as {s['navigation_space']})"
                         if "target_vertex" in s and s["navigation_space"] != "T1w" else ""))
    print(f"outputs: {output_dir}")
    if failed:
        from .records import FAILURES_TABLE  # here: the command line imports this module without pandas

        table = Path(output_dir) / FAILURES_TABLE
        where = f"see {table}" if table.is_file() else "reasons above"
        print(f"{len(failed)} of {len(results)} runs failed; {where}", file=sys.stderr)
    if left:
        print(f"{len(left)} of {len(results)} runs not processed: another trdnet process is working on them or "
              "finished them with other settings (NOT PROCESSED above)", file=sys.stderr)
    return EXIT_RUN_FAILED if failed or left else EXIT_OK


def write_html_reports(output_dir: Path, subjects, n_jobs: int | None = None) -> None:
    """Write participant and cohort HTML reports and say where they are.

    Reports use every available core by default: they need little memory,
    unlike the runs, whose worker count ``--n-jobs`` bounds. A report that
    cannot be written is a warning: it never fails a finished analysis.
    """
    from .report import write_reports

    if not subjects:
        return
    try:
        paths = write_reports(output_dir, subjects, n_jobs=n_jobs)
    except TrdnetError as exc:
        log.warning("reports not written (%s); retry with 'trdnet report'", exc)
        return
    print(f"reports: {len(paths) - 1} participant report(s) and {paths[-1]}")
