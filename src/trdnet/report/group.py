"""Cohort report ``<output>/group.html``: connectivity and target distributions,
QC and exclusions, and the group statistics when the group step wrote them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..outputs import atomic_write_text, read_tsv
from . import figures_brain, figures_group
from .collect import RunOutputs, failures, find_runs
from .html import esc, figure, note, number, page, section, table
from .methods_text import roi_summary, write_citation_files
from .participant import methods_section
from .plotting import RELIABILITY_COLORS, UNKNOWN_COLOR, to_data_uri

#: Tables of ``<output>/group/`` shown as cohort tables rather than statistics.
_COHORT_TABLES = ("networks.tsv", "targets.tsv", "qc.tsv")


def write_group_report(out_dir) -> Path:
    """Write ``<out_dir>/group.html`` from every run's outputs (and ``group/`` if present), and the
    methods paragraph as ``logs/CITATION.md`` and ``logs/CITATION.bib``.

    Parameters
    ----------
    out_dir : str or Path
        Root of the trdnet derivatives.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    InputError
        If no processed run is found.
    """
    out_dir = Path(out_dir)
    runs = find_runs(out_dir)
    if not runs:
        raise InputError(f"{out_dir}: no finished run (no completion record in logs/); run 'trdnet run' first")
    provenance = runs[0].provenance
    write_citation_files(out_dir / "logs", provenance.get("Settings", {}), provenance.get("Software", {}),
                         runs[0].simulated, runs[0].qc.get("tr"), roi=roi_summary(runs[0]))
    return atomic_write_text(out_dir / "group.html", group_html(out_dir, runs))


def cohort_tables(runs: list[RunOutputs]) -> dict[str, pd.DataFrame]:
    """Per-run tables stacked: ``qc``, ``networks`` and ``targets`` (primary target per run)."""
    qc, nets, targets = [], [], []
    for run in runs:
        base = {"participant_id": f"sub-{run.subject}", "run": run.prefix}
        if run.qc:
            qc.append({**base, **{k: v for k, v in run.qc.items() if k != "participant_id"}})
        table_ = run.table("networks.tsv")
        if table_ is not None:
            nets.append(table_.assign(**base))
        primary = run.primary
        if primary is not None:
            targets.append({**base, **{k: primary.get(k) for k in
                                       ("method", "space", "x", "y", "z", "r_sgacc", "bootstrap_r95_mm",
                                        "split_half_mm", "reliability")}})
    return {"qc": pd.DataFrame(qc), "networks": pd.concat(nets, ignore_index=True) if nets else pd.DataFrame(),
            "targets": pd.DataFrame(targets)}


def group_html(out_dir: Path, runs: list[RunOutputs]) -> str:
    """The cohort page."""
    tables = cohort_tables(runs)
    failed = failures(out_dir)
    simulated = any(r.simulated for r in runs)
    settings = runs[0].provenance.get("Settings", {})
    body = [summary(runs, tables, failed), connectivity(tables["networks"]), targets(tables["targets"], out_dir),
            quality(tables["qc"], failed, settings), statistics(out_dir), methods_section(runs[0])]
    nav = [("summary", "Summary"), ("connectivity", "Connectivity"), ("targets", "Targets"), ("qc", "QC"),
           ("statistics", "Statistics"), ("methods", "Methods")]
    return page("trdnet cohort report", "".join(body), simulated, nav)


def summary(runs, tables, failed) -> str:
    """Counts at the top of the page."""
    qc = tables["qc"]
    participants = sorted({r.subject for r in runs})
    cells = [
        ("Participants", number(len(participants), "n_participants", 0)),
        ("Runs processed", number(len(runs), "n_runs", 0)),
        ("Runs failed", number(len(failed), "n_failed", 0)),
        ("Data", '<span data-name="data">SIMULATED</span>' if any(r.simulated for r in runs)
         else '<span data-name="data">real</span>'),
        ("Median minutes retained", number(qc["minutes_retained"].median() if len(qc) else None,
                                           "median_minutes_retained", 2)),
        ("Median mean FD (mm)", number(qc["mean_fd"].median() if len(qc) else None, "median_mean_fd", 3)),
    ]
    boxes = "".join(f'<div><div class="k">{k}</div><div class="v">{v}</div></div>' for k, v in cells)
    links = " ".join(f'<a href="sub-{esc(p)}.html">sub-{esc(p)}</a>' for p in participants)
    return section("summary", "Summary", f'<div class="summary">{boxes}</div>'
                   + f'<p class="note">Participant reports: {links}</p>')


def connectivity(nets: pd.DataFrame) -> str:
    """Distributions of within/between connectivity and the cohort means."""
    if not len(nets):
        return section("connectivity", "Connectivity", note("No network outputs found."))
    body = figure(to_data_uri(figures_group.connectivity_distributions(nets)),
                  "Mean Fisher z of each network pair, one point per run.")
    means = (nets.groupby(["network_a", "network_b"], sort=False)["mean_z"]
             .agg(["mean", "std", "count"]).reset_index()
             .rename(columns={"mean": "mean_z_mean", "std": "mean_z_sd", "count": "n_runs"}))
    body += table(means, digits=3, name="connectivity_summary", numeric_names=True)
    return section("connectivity", "Connectivity", body)


def targets(tab: pd.DataFrame, out_dir: Path) -> str:
    """All personalised targets on one brain, coloured by reliability, and their table."""
    if not len(tab):
        return section("targets", "Targets", note("No targets found."))
    words = tab["reliability"].fillna("").astype(str)
    colors = [RELIABILITY_COLORS.get(w, UNKNOWN_COLOR) for w in words]
    legend = {w: RELIABILITY_COLORS.get(w, UNKNOWN_COLOR) for w in
              [w for w in RELIABILITY_COLORS if w in set(words)] + sorted(set(words) - set(RELIABILITY_COLORS))}
    legend = {(k or "n/a"): v for k, v in legend.items()}
    spaces = sorted(set(tab["space"].astype(str)))
    body = ""
    if any(not s.upper().startswith("MNI") for s in spaces):
        body += note(f"Targets are in several or non-template spaces ({', '.join(spaces)}); only MNI targets are "
                     "comparable on one brain.", "warn")
    mni = tab["space"].astype(str).str.upper().str.startswith("MNI").to_numpy()
    body += figure(figures_brain.cohort_targets(tab.loc[mni, ["x", "y", "z"]].to_numpy(float),
                                                [c for c, m in zip(colors, mni) if m], legend),
                   f"Personalised (primary) targets of every run, {', '.join(spaces)}, coloured by reliability.")
    body += table(tab.drop(columns=["run"]), digits=2, name="group_targets", numeric_names=True)
    return section("targets", "Targets", body)


def quality(qc: pd.DataFrame, failed: pd.DataFrame, settings: dict) -> str:
    """QC distributions, the QC table and the exclusions."""
    if not len(qc):
        return section("qc", "Quality control", note("No QC tables found."))
    den = settings.get("denoise", {})
    body = figure(to_data_uri(figures_group.qc_distributions(qc, den.get("min_minutes"), den.get("fd_threshold"))),
                  "Minutes retained after censoring and mean framewise displacement per run.")
    keep = [c for c in ("participant_id", "n_volumes", "n_retained", "minutes_retained", "mean_fd", "max_fd",
                        "median_tsnr") if c in qc]
    body += table(qc[keep], digits=3, name="group_qc", numeric_names=True)
    body += "<h3>Exclusions</h3>"
    if len(failed):
        body += table(failed, name="exclusions")
    else:
        body += '<p data-name="exclusions">No run was excluded.</p>'
    return section("qc", "Quality control", body)


def statistics(out_dir: Path) -> str:
    """Tables the group step wrote in ``<output>/group/`` (none: a note)."""
    folder = out_dir / "group"
    tables = sorted(folder.glob("*.tsv")) if folder.is_dir() else []
    if not tables:
        return section("statistics", "Group statistics",
                       note("No group statistics were written (the group step did not run)."))
    body = ""
    for path in tables:
        frame = read_tsv(path)
        kind = "cohort table" if path.name in _COHORT_TABLES else "statistics"
        sidecar = path.with_suffix(".json")
        description = ""
        if sidecar.is_file():
            description = json.loads(sidecar.read_text()).get("Description", "")
        body += f"<h3>{esc(path.name)} <small>({kind})</small></h3>"
        if description:
            body += note(description)
        body += table(frame.head(200), digits=3, name=f"group/{path.name}")
        if len(frame) > 200:
            body += note(f"First 200 of {len(frame)} rows; see group/{path.name}.")
    return section("statistics", "Group statistics", body)
