"""Per-participant HTML report ``<output>/sub-<l>.html``: every run of the
participant on one self-contained page, built only from written outputs."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from markupsafe import Markup

from ..entities import parse_entities, participant_output_path
from ..errors import InputError
from ..inputs.surface import is_surface_space
from ..outputs import atomic_write_text, read_tsv
from ..parallel import worker_count
from ..progress import Progress
from ..records import participant_report_path
from . import figures_brain, figures_qc
from .collect import RunOutputs, find_runs, participant_target_tables, withdrawn_participant_targets
from .html import esc, figure, fmt, note, number, page, section, table
from .methods_text import methods_paragraph, references_html, roi_summary, software_html
from .plotting import to_data_uri

log = logging.getLogger("trdnet.report")


def write_participant_report(out_dir, subject: str) -> Path:
    """Write ``<out_dir>/sub-<label>.html`` from the participant's outputs.

    Parameters
    ----------
    out_dir : str or Path
        Root of the trdnet derivatives (the folder ``trdnet run`` wrote).
    subject : str
        Participant label, with or without ``sub-``.

    Returns
    -------
    pathlib.Path
        The written report.

    Raises
    ------
    InputError
        If the participant has no processed run in ``out_dir``.
    """
    out_dir = Path(out_dir)
    label = subject[4:] if subject.startswith("sub-") else subject
    runs = find_runs(out_dir, label)
    if not runs:
        raise InputError(f"{out_dir}: no finished run of sub-{label} (no completion record in logs/); "
                         "run 'trdnet run' first or give a processed participant")
    html = participant_html(runs, label, out_dir)
    return atomic_write_text(participant_report_path(out_dir, label), html)


def write_participant_reports(out_dir, subjects=None, n_jobs: int | None = None) -> list[Path]:
    """Write the report of several participants, optionally in parallel (joblib).

    Parameters
    ----------
    out_dir : str or Path
        Root of the trdnet derivatives.
    subjects : sequence of str, optional
        Participant labels; default: every processed participant.
    n_jobs : int, optional
        Worker processes; default (``None``, or below 1): every available core,
        never more than there are participants.

    Returns
    -------
    list of pathlib.Path
        In the order of ``subjects``; one INFO line on the ``trdnet`` logger
        per report written (``[report k/N] sub-<l>.html: written``).

    Raises
    ------
    InputError
        The folder holds no finished run: refused before any report is removed.
    """
    from joblib import Parallel, delayed

    out_dir = Path(out_dir)
    finished = sorted({run.subject for run in find_runs(out_dir)})
    if not finished:  # nothing to report on: keep every file as it is
        raise InputError(f"{out_dir}: no finished run (logs/*_done.json), so no report to write; "
                         "run 'trdnet run' first")
    remove_stale_reports(out_dir, finished)
    if subjects is None:
        subjects = finished
    workers = worker_count(n_jobs, len(subjects))
    log.info("writing %d participant report(s)", len(subjects))
    progress = Progress(len(subjects), step="report")
    if workers == 1:
        paths = (write_participant_report(out_dir, s) for s in subjects)
    else:
        paths = Parallel(n_jobs=workers, backend="loky", return_as="generator")(
            delayed(write_participant_report)(out_dir, s) for s in subjects)
    written = []
    for path in paths:
        written.append(path)
        progress.advance(path.name, "written")
    return written


def cloud_caption(n_resamples: int, split_halves: bool) -> str:
    """Caption of the figure of a target's bootstrap resamples and split halves (no bootstrap: says so)."""
    if not n_resamples:
        return ("Targets of the two split halves around the personalised target; no bootstrap was run, so its "
                "reliability was not estimated.")
    return (f"Targets of {n_resamples} block-bootstrap resamples"
            + (" and of the two split halves" if split_halves else "") + " around the personalised target.")


def remove_stale_reports(out_dir: Path, finished: list[str]) -> list[Path]:
    """Remove the reports of participants without a finished run (an interrupted ``--overwrite``), one log line each.

    Parameters
    ----------
    out_dir : Path
        Root of the trdnet derivatives.
    finished : list of str
        Labels (without ``sub-``) of the participants with a finished run.

    Returns
    -------
    list of pathlib.Path
        The reports removed.
    """
    stale = [path for path in sorted(Path(out_dir).glob("sub-*.html"))
             if parse_entities(path.stem).get("sub") not in finished and path.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
        log.info("%s removed: %s has no finished run in %s (its report described outputs that are gone)",
                 path.name, path.stem, out_dir)
    return stale


def participant_html(runs: list[RunOutputs], label: str, out_dir=None) -> str:
    """The page of one participant (all runs, and the target from all runs when ``out_dir`` holds one)."""
    simulated = any(r.simulated for r in runs)
    body = [summary_box(runs, label, simulated)]
    nav = [("summary", "Summary")]
    joined = participant_block(out_dir, label) if out_dir is not None else ""
    if joined:
        body.append(joined)
        nav.append(("participant", "Target from all runs"))
    for index, run in enumerate(runs, 1):
        anchor = f"run{index}"
        nav.append((anchor, run_title(run)))
        body.append(run_section(run, anchor))
    body.append(methods_section(runs[0]))
    nav.append(("methods", "Methods"))
    return page(f"trdnet report: sub-{label}", "".join(body), simulated, nav)


def run_title(run: RunOutputs) -> str:
    """Short name of a run (its entities other than sub and space)."""
    parts = [f"{k}-{v}" for k, v in run.entities.items() if k not in ("sub", "space")]
    return " ".join(parts) or run.prefix


def summary_box(runs: list[RunOutputs], label: str, simulated: bool) -> str:
    """The summary at the top: participant and data once, then one row of boxes per run."""
    data = ('<span data-name="data">SIMULATED</span>' if simulated else '<span data-name="data">real</span>')
    head = _boxes([("Participant", esc(f"sub-{label}")), ("Data", data), ("Runs", number(len(runs), "n_runs", 0))])
    rows = [head]
    for run in runs:
        qc = run.qc
        primary = run.primary or {}
        space = primary.get("space", "")
        word = str(primary.get("reliability", "") or "n/a")
        if word == "nan":
            word = "n/a"
        native = native_target(run, primary)
        mni = (f"({number(primary.get('x'), 'target_x', 1, run.prefix)}, "
               f"{number(primary.get('y'), 'target_y', 1, run.prefix)}, "
               f"{number(primary.get('z'), 'target_z', 1, run.prefix)}) mm" if primary else "not computed")
        t1w = (f"({fmt(native[0], 1)}, {fmt(native[1], 1)}, {fmt(native[2], 1)}) mm" if native is not None
               else "not exported")
        other = sorted({export_space(p) for p in run.export_files()} - {"see file"})
        if native is None and other:
            t1w += f" (navigator files: {', '.join(s.split(' ')[0][:3] for s in other)} only)"
        cells = [
            ("Minutes retained", number(qc.get("minutes_retained"), "minutes_retained", 2, run.prefix)),
            ("Mean FD (mm)", number(qc.get("mean_fd"), "mean_fd", 3, run.prefix)),
            (f"Target, {esc(space)}", mni),
            ("Target, T1w", f'<span data-name="target_t1w" data-run="{esc(run.prefix)}">{t1w}</span>'),
            ("r with sgACC", number(primary.get("r_sgacc"), "r_sgacc", 2, run.prefix)),
            ("Reliability", f'<span class="{esc(word)}" data-name="reliability" '
                            f'data-run="{esc(run.prefix)}">{esc(word)}</span>'),
        ]
        rows.append(f'<h3>{esc(run_title(run))}</h3>' + _boxes(cells, run.prefix))
    return section("summary", "Summary", "".join(rows)
                   + note("Coordinates are RAS world millimetres of the named space. Reliability: good / fair / "
                          "poor from the bootstrap and split-half spread of the target (see Methods)."))


def _boxes(cells, run: str | None = None) -> str:
    attr = f' data-run="{esc(run)}"' if run else ""
    boxes = "".join(f'<div><div class="k">{k}</div><div class="v">{v}</div></div>' for k, v in cells)
    return f'<div class="summary"{attr}>{boxes}</div>'


def native_target(run: RunOutputs, primary: dict) -> np.ndarray | None:
    """The primary target in T1w from the export table, if one was written."""
    for path in run.export_files():
        if "space-T1w" in path.name and path.name.endswith("_coords.tsv"):
            coords = read_tsv(path)
            key = "name" if "name" in coords else "target" if "target" in coords else None
            if key is None or not len(coords):
                continue
            hit = coords[coords[key].astype(str) == str(primary.get("target", "personalised"))]
            row = hit.iloc[0] if len(hit) else coords.iloc[0]
            return row[["x", "y", "z"]].to_numpy(float)
    return None


def run_section(run: RunOutputs, anchor: str) -> str:
    """All sections of one run."""
    parts = [input_notes_block(run), qc_block(run), networks_block(run), target_block(run), export_block(run)]
    return section(anchor, f"Run: {run_title(run)}", "".join(parts))


def input_notes_block(run: RunOutputs) -> str:
    """What is known about the input and was not done by trdnet (provider notes, an already-cleaned statement)."""
    notes = run.provenance.get("InputNotes") or []
    if not notes:
        return ""
    items = "".join(f"<li>{esc(n)}</li>" for n in notes)
    return ('<h3>About the input</h3>' + f'<ul data-name="input_notes" data-run="{esc(run.prefix)}">{items}</ul>')


def qc_block(run: RunOutputs) -> str:
    """FD trace, carpet plots and the QC table."""
    settings = run.provenance.get("Settings", {})
    denoise = settings.get("denoise", {})
    tr = _finite_or_none(run.qc.get("tr"))
    cleaned_here = not denoise.get("already_cleaned")
    out = ["<h3>Quality control</h3>"]
    if tr is None:
        out.append(note("The repetition time is unknown (no RepetitionTime in the input's sidecar): time axes "
                        "count volumes, and durations in minutes are n/a."))
    censoring = run.table("desc-censoring_timeseries.tsv")
    if censoring is not None and "framewise_displacement" in censoring:  # no FD: a provider's or declared-clean run
        scrubbed = cleaned_here and denoise.get("scrub", False)
        threshold = float(denoise.get("fd_threshold", np.nan)) if scrubbed else np.nan
        caption = ("Framewise displacement; dashed line: censoring threshold; red: censored volumes." if scrubbed
                   else "Framewise displacement (no volume was censored: scrubbing was off).")
        out.append(figure(to_data_uri(figures_qc.fd_trace(censoring, threshold, tr)), caption))
    samples = run.carpet()
    if samples is not None:
        what = ("ROI signals" if str(samples.get("unit", "voxel")) == "ROI" else "sampled in-mask voxels")
        when = ("before and after cleaning" if cleaned_here
                else "as given and as analysed (declared already cleaned: trdnet changed nothing but the scale)")
        out.append(figure(to_data_uri(figures_qc.carpet(samples, tr)),
                          f"Carpet plot of {samples['raw'].shape[1]} {what} (each z-scored) {when}."))
    qc = run.table("qc.tsv")
    if qc is not None:
        out.append(table(qc.drop(columns=["participant_id"], errors="ignore"), digits=3, name="qc",
                         numeric_names=True))
    return "".join(out)


def _finite_or_none(value):
    """A number read from a sidecar, or None when it is absent, n/a or NaN (e.g. an unknown TR)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def networks_block(run: RunOutputs) -> str:
    """3 x 3 network matrix, ROI matrix and connectome."""
    out = ["<h3>Networks</h3>"]
    nets = run.table("networks.tsv")
    if nets is None:
        return "".join(out) + note("No network outputs were written for this run.")
    out.append(figure(to_data_uri(figures_qc.network_matrix(nets)),
                      "Mean within- (diagonal) and between-network connectivity, Fisher z.", "half"))
    relmat_path = run.find("*_relmat.tsv")
    if relmat_path is not None:
        matrix = read_tsv(relmat_path)
        rois = run.sidecar("*_relmat.json").get("ROIs", {})
        names = list(matrix.columns)
        networks = rois.get("network") or [n.split("_")[0] for n in names]
        out.append(figure(to_data_uri(figures_qc.roi_matrix(matrix.to_numpy(np.float32), networks)),
                          "ROI-by-ROI correlations ordered by network.", "half"))
        # ROI-run centres are in the atlas's space: drawn on the MNI glass brain only when that space is MNI
        template = not run.roi_input or str(run.provenance.get("Space", "")).upper().startswith("MNI")
        if {"x", "y", "z"} <= set(rois) and template:
            coords = np.column_stack([rois["x"], rois["y"], rois["z"]]).astype(float)
            out.append(figure(figures_brain.connectome(matrix.to_numpy(np.float32), coords, networks),
                              "Glass-brain connectome: ROIs coloured by network, the strongest 2% of edges "
                              "(red positive, blue negative)."))
    out.append(table(nets, digits=3, name="networks", numeric_names=True))
    return "".join(out)


def target_block(run: RunOutputs) -> str:
    """Seed map through the target, DLPFC zoom, bootstrap cloud and the target table."""
    out = ["<h3>TMS target</h3>"]
    targets = run.targets
    primary = run.primary
    map_path = run.find("stat-r_desc-sgacc_boldmap.nii.gz")
    if run.roi_input:
        return "".join(out) + note("Not computed: the input is ROI time series, and a personalised target needs "
                                   "voxel-wise data (an sgACC seed map over the DLPFC).")
    if is_surface_space(run.entities.get("space")):
        return "".join(out) + surface_target_block(run)
    if targets is None or primary is None or map_path is None:
        return "".join(out) + note("No targeting outputs were written for this run.")
    space = str(primary.get("space", ""))
    seed_img = nib.load(map_path)
    search_img = search_region(run)
    # Only points in the map's space can be drawn on it or measured against the target.
    in_space = (targets["space"].astype(str) == space).to_numpy()
    names = targets.loc[in_space, "target"].astype(str).tolist()
    xyz_all = targets[["x", "y", "z"]].to_numpy(float)
    xyz = xyz_all[in_space]
    center = np.array([primary["x"], primary["y"], primary["z"]], dtype=float)
    background = "template"
    if not space.upper().startswith("MNI"):
        background = native_background(run) if space == "T1w" else None
        under = (f"on the participant's T1w ({Path(background).name})" if background
                 else "without an anatomical image underneath")
        out.append(note(f"Targets are in {space}: the map is drawn {under}, and "
                        "sites given in another space are listed but not drawn.", "warn"))
    method = str(primary.get("method", ""))
    sites = method_rows(run.table("desc-sites_targets.tsv"), method)
    candidates = method_rows(run.table("desc-candidates_targets.tsv"), method)
    competing = figures_brain.competing_styles(sites, shown_candidates(candidates))
    out.append(figure(to_data_uri(figures_brain.seed_map_slices(
        seed_img, search_img, names, xyz, center, "sgACC seed map (r)", background=background,
        competing=competing)),
        f"Correlation with the sgACC seed on slices through the personalised target ({space}); green outline: "
        "DLPFC search region; gold star: personalised target; circles: reference sites" + COMPETING_CAPTION))
    out.append(figure(to_data_uri(figures_brain.dlpfc_zoom(seed_img, search_img, names, xyz, center,
                                                           background=background, competing=competing)),
                      "Zoomed DLPFC view (sites within the zoom are labelled; the zoom widens to hold every "
                      "competing site)."))
    cloud = run.table("desc-bootstrap_targets.tsv")
    split = split_half_targets(run, method)
    if cloud is not None and len(cloud) or split is not None:
        points = np.empty((0, 3))
        if cloud is not None:
            rows = cloud[cloud["method"].astype(str) == method] if "method" in cloud else cloud
            points = rows[["x", "y", "z"]].to_numpy(float)
        out.append(figure(to_data_uri(figures_brain.bootstrap_cloud(points, center, split)),
                          cloud_caption(len(points), split is not None)))
    shown = targets.copy()
    distance = np.where(in_space, np.linalg.norm(xyz_all - center, axis=1), np.nan)
    shown.insert(shown.columns.get_loc("x"), "distance_mm", distance)
    keep = [c for c in ("target", "method", "space", "x", "y", "z", "r_sgacc", "distance_mm", "split_half_mm",
                        "bootstrap_r95_mm", "n_sites", "competing_share", "reliability", "note") if c in shown]
    out.append(table(shown[keep], digits=2, name="targets", numeric_names=True))
    out.append(note("distance_mm: distance to the personalised target (n/a across spaces). Reference sites are literature "
                    "coordinates (see trdnet's reference table for sources and which are unverified)."))
    out.append(competing_sites_block(candidates, sites, method, space,
                                     run.provenance.get("Settings", {}).get("targeting", {}), run.prefix))
    return "".join(out)


#: Caption of the competing sites drawn over a target figure.
COMPETING_CAPTION = ("; orange circles: sites of the bootstrap targets (labelled with their share of the resamples, "
                     "area growing with it); white squares: the five best-ranked candidate clusters of the map "
                     "(labelled with their rank). Markers are projected onto every slice, so a site away from the "
                     "cut is drawn too.")


#: Best-ranked candidate clusters drawn and listed (every cluster is in the ``desc-candidates`` table).
SHOWN_CANDIDATES = 5


def shown_candidates(candidates: pd.DataFrame | None) -> pd.DataFrame | None:
    """The candidate clusters the report draws and lists: the best-ranked :data:`SHOWN_CANDIDATES`."""
    return None if candidates is None else candidates.head(SHOWN_CANDIDATES)


def method_rows(frame: pd.DataFrame | None, method: str) -> pd.DataFrame | None:
    """The rows of one method in a table with a ``method`` column (the whole table without one)."""
    if frame is None or not len(frame):
        return None
    rows = frame[frame["method"].astype(str) == method] if "method" in frame else frame
    return rows.drop(columns="method", errors="ignore").reset_index(drop=True) if len(rows) else None


def site_table(sites: pd.DataFrame | None, candidates: pd.DataFrame | None, space: str,
               separation_mm: float) -> pd.DataFrame | None:
    """Bootstrap sites with their space and the mean r of the candidate cluster at each.

    Parameters
    ----------
    sites : pandas.DataFrame or None
        One method's sites (:data:`trdnet.targeting.sites.SITE_COLUMNS`).
    candidates : pandas.DataFrame or None
        The same method's candidate clusters (:data:`trdnet.targeting.sites.CANDIDATE_COLUMNS`).
    space : str
        Space of the centres.
    separation_mm : float
        A cluster centre within this distance of a site's centre is the site's cluster
        (``targeting.site_separation_mm``: the distance that joins bootstrap targets into a site).

    Returns
    -------
    pandas.DataFrame or None
        ``site``, ``space``, ``x``, ``y``, ``z``, ``share``, ``n_resamples``, ``holds_target``,
        ``cluster`` (rank of the nearest candidate cluster, 0 when none is within ``separation_mm``),
        ``cluster_distance_mm`` and ``mean_r`` (that cluster's mean r; NaN without one).
    """
    if sites is None or not len(sites):
        return None
    out = sites[["site", "x", "y", "z", "share", "n_resamples", "holds_target"]].copy()
    out.insert(1, "space", space)
    out["cluster"] = 0
    out["cluster_distance_mm"] = np.nan
    out["mean_r"] = np.nan
    if candidates is not None and len(candidates):
        centres = candidates[["x", "y", "z"]].to_numpy(float)
        for i, point in enumerate(out[["x", "y", "z"]].to_numpy(float)):
            dist = np.linalg.norm(centres - point, axis=1)
            best = int(np.argmin(dist))
            out.loc[i, "cluster_distance_mm"] = float(dist[best])
            if dist[best] <= separation_mm:
                out.loc[i, "cluster"] = int(candidates["rank"].iloc[best])
                out.loc[i, "mean_r"] = float(candidates["mean_r"].iloc[best])
    return out


def surface_target_block(run: RunOutputs) -> str:
    """A surface run's target: the seed map on the cortex with the target vertex, the target table, competing sites."""
    targets, primary = run.targets, run.primary
    if targets is None or primary is None:
        return note("No targeting outputs were written for this run.") + surface_seed_map(run)
    method = str(primary.get("method", ""))
    out = [surface_seed_map(run, primary, method_rows(run.table("desc-sites_targets.tsv"), method),
                            method_rows(run.table("desc-candidates_targets.tsv"), method))]
    keep = [c for c in ("target", "method", "hemi", "vertex", "space", "x", "y", "z", "mni152_x", "mni152_y",
                        "mni152_z", "r_sgacc", "split_half_mm", "bootstrap_r95_mm", "n_sites", "competing_share",
                        "reliability", "note") if c in targets]
    out.append(table(targets[keep], digits=2, name="targets", numeric_names=True))
    out.append(note(f"x, y, z: the target vertex on the {primary.get('mesh', 'mesh')} in {primary.get('space')}; "
                    f"mni152_x/y/z: the same point in MNI152 ({primary.get('mni152_mapping', '')}). Reference sites "
                    "are literature MNI152 coordinates."))
    method = str(primary.get("method", ""))
    out.append(competing_sites_block(method_rows(run.table("desc-candidates_targets.tsv"), method),
                                     method_rows(run.table("desc-sites_targets.tsv"), method), method,
                                     str(primary.get("space", "")),
                                     run.provenance.get("Settings", {}).get("targeting", {}), run.prefix))
    return "".join(out)


def surface_seed_map(run: RunOutputs, primary: dict | None = None, sites=None, candidates=None) -> str:
    """The sgACC seed map of a surface run drawn on the cortex, with the target vertex and the competing sites
    (fsaverage5 runs; a note otherwise)."""
    from ..surface_pipeline import seed_map_paths
    from .figures_surface import DRAWABLE_SPACES

    paths = seed_map_paths(run.folder, run.prefix)
    if run.entities.get("space") not in DRAWABLE_SPACES or not all(p.is_file() for p in paths.values()):
        return note("The sgACC seed map is drawn for fsaverage5 runs only; it is in the run's folder.")
    values = {hemi: nib.load(path).darrays[0].data for hemi, path in paths.items()}
    return cortex_figure(values, primary, sites, candidates,
                         "Correlation with the sgACC seed on the inflated fsaverage5 cortex (left and right, lateral "
                         "and medial); grey: medial wall or no signal")


def cortex_figure(values: dict, primary, sites, candidates, caption: str, threshold=None, colorbar=True) -> str:
    """A map on the inflated fsaverage5 with the target vertex (gold) and competing sites outlined."""
    from .figures_surface import seed_map_on_cortex, site_vertices
    from .plotting import CANDIDATE_COLOR, COMPETING_SITE_COLOR

    marks = {}
    if primary is not None and str(primary.get("hemi")) in values:
        marks = {str(primary["hemi"]): [int(primary["vertex"])]}
    competing: dict = {}
    for frame, color in ((sites, COMPETING_SITE_COLOR), (shown_candidates(candidates), CANDIDATE_COLOR)):
        if frame is not None and len(frame):
            for hemi, vertex, _ in site_vertices(frame[["x", "y", "z"]].to_numpy(float)):
                competing.setdefault(hemi, []).append((vertex, color))
    text = caption + ("; gold patch: the personalised target vertex and its nearest neighbours" if marks else "")
    if competing:
        text += ("; orange outlines: sites of the bootstrap targets, white outlines: candidate clusters (each at "
                 "the vertex nearest its centre; shares and values in the table below)")
    return figure(to_data_uri(seed_map_on_cortex(values, marks=marks, competing=competing, threshold=threshold,
                                                 colorbar=colorbar)),
                  text + ".")


def competing_sites_block(candidates: pd.DataFrame | None, sites: pd.DataFrame | None, method: str,
                          space: str = "", targeting: dict | None = None, data_run: str | None = None,
                          heading: str = "Competing sites") -> str:
    """The primary method's candidate clusters and bootstrap sites (one method's rows), when written.

    ``targeting`` is the recorded targeting settings (its ``site_separation_mm``
    decides which candidate cluster is a site's); ``data_run`` tags the tables
    (``data-run``) when several targets share a page; ``heading`` titles the block.
    """
    from ..config import TargetSettings

    out = []
    if candidates is not None and len(candidates):
        rows = shown_candidates(candidates)
        out.append(f"<h4>{esc(heading)}</h4>")
        out.append(table(rows, digits=2, name="candidates", numeric_names=True, run=data_run))
        where = space or "the target's space"
        out.append(note(f"The {len(rows)} best-ranked candidate clusters of {method} (centre in {where}, size, mean "
                        "and peak of the smoothed map); chosen: the cluster the target came from."))
    separation = float((targeting or {}).get("site_separation_mm", TargetSettings().site_separation_mm))
    shown = site_table(sites, candidates, space, separation)
    if shown is not None:
        if not out:
            out.append(f"<h4>{esc(heading)}</h4>")
        out.append(table(shown, digits=2, name="sites", numeric_names=True, run=data_run))
        competing = (~shown["holds_target"].astype(str).isin(["True", "true", "1"])
                     & (shown["share"].astype(float) > 0.1)).any()
        out.append(note("Bootstrap targets grouped into sites with their share of the resamples (centre: the mean "
                        f"of the site's resampled targets, {space or 'target space'} mm); mean_r: mean r of the "
                        f"candidate cluster whose centre is within {separation:g} mm of the site's (cluster: its "
                        "rank; 0 and n/a when none is). A site other than the target's holding a real share means "
                        "the data do not settle between them: the reliability word is then at most fair.",
                        "warn" if competing else "note"))
    return "".join(out)



#: ``desc-`` of the participant-level targets table (:mod:`trdnet.participants`).
PARTICIPANT_TARGETS = "_desc-participant_targets.tsv"


def participant_block(out_dir: Path, label: str) -> str:
    """The participant-level target from all runs, when the participant step wrote one.

    For each participant prefix (task, space): the target's space, coordinates,
    r, retest distance, reliability word and sufficiency note as readable
    spans (``data-run`` = the participant prefix), a figure of the target with
    its competing sites, the targets, candidate-cluster and site tables, and
    the navigator files written for it.
    """
    tables = {path.name[: -len(PARTICIPANT_TARGETS)]: path for path in participant_target_tables(out_dir, label)}
    withdrawn = withdrawn_participant_targets(out_dir, label)
    if not tables and not withdrawn:
        return ""
    out = []
    for prefix in sorted(set(tables) | set(withdrawn)):
        if prefix in tables:
            out.append(participant_target_block(Path(out_dir), prefix, read_tsv(tables[prefix])))
        else:
            out.append(withdrawn_block(prefix, withdrawn[prefix]))
    out.append(note("One target from all of the participant's runs, each run cleaned on its own and then joined: "
                    "the target a TMS team would stimulate. retest_mm compares targets from disjoint data (the "
                    "sessions, or each run against the others); minutes_for_5mm is the data length at which two "
                    "independent scans would agree within 5 mm."))
    return section("participant", "Target from all runs", "".join(out))


def withdrawn_block(prefix: str, reason: str) -> str:
    """Where a withdrawn participant target would be: that it was withdrawn, and why (from its record)."""
    return (f"<h3>{esc(prefix)}</h3>"
            + note(Markup(f'Participant target withdrawn: <span data-name="participant_withdrawn" '
                          f'data-run="{esc(prefix)}">{esc(reason)}</span>'), "warn"))


def participant_target_block(out_dir: Path, prefix: str, frame: pd.DataFrame) -> str:
    """One participant-level target (one task and space): summary spans, figure, tables and navigator files."""
    import json

    personal = frame[frame["target"].astype(str).str.startswith("personalised")]
    if not len(personal):
        return note(f"{prefix}: no personalised participant-level target was written.", "warn")
    marked = personal[personal["primary"].astype(str).isin(["True", "true", "1"])] if "primary" in personal else ()
    primary = (marked if len(marked) else personal).iloc[0].to_dict()
    space, method = str(primary.get("space", "")), str(primary.get("method", ""))
    word = str(primary.get("reliability", "") or "n/a")
    word = "n/a" if word == "nan" else word
    sufficiency = str(primary.get("sufficiency_note", ""))
    sufficiency = "" if sufficiency == "nan" else sufficiency
    cells = [
        ("Space", f'<span data-name="target_space" data-run="{esc(prefix)}">{esc(space)}</span>'),
        (f"Target, {esc(space)}", f"({number(primary.get('x'), 'target_x', 1, prefix)}, "
                                  f"{number(primary.get('y'), 'target_y', 1, prefix)}, "
                                  f"{number(primary.get('z'), 'target_z', 1, prefix)}) mm"),
        ("r with sgACC", number(primary.get("r_sgacc"), "r_sgacc", 2, prefix)),
        ("Runs joined", number(primary.get("n_runs"), "n_runs", 0, prefix)),
        ("Retest distance (mm)", number(primary.get("retest_mm"), "retest_mm", 1, prefix)
         + f' ({esc(primary.get("retest_kind", ""))})'),
        ("Reliability", f'<span class="{esc(word)}" data-name="reliability" data-run="{esc(prefix)}">'
                        f'{esc(word)}</span>'),
    ]
    navigation = participant_navigation_files(out_dir, prefix)
    cells.insert(2, ("Target, T1w", f'<span data-name="target_t1w" data-run="{esc(prefix)}">'
                                    f'{esc(navigation_t1w(navigation, primary))}</span>'))
    out = [f"<h3>{esc(prefix)}</h3>", _boxes(cells, prefix),
           f'<p class="note">Data sufficiency: <span data-name="sufficiency_note" data-run="{esc(prefix)}">'
           f'{esc(sufficiency or "n/a")}</span></p>']
    sites = method_rows(read_optional(participant_output_path(out_dir, prefix, "targets", ".tsv",
                                                              desc="participantsites")), method)
    candidates = method_rows(read_optional(participant_output_path(out_dir, prefix, "targets", ".tsv",
                                                                   desc="participantcandidates")), method)
    sidecar = participant_output_path(out_dir, prefix, "targets", ".json", desc="participant")
    provenance = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    out.append(participant_figure(primary, sites, candidates, provenance, prefix))
    keep = [c for c in ("target", "method", "space", "hemi", "vertex", "x", "y", "z", "r_sgacc", "n_runs",
                        "minutes_retained", "retest_kind", "retest_mm", "bootstrap_r95_mm", "n_sites",
                        "competing_share", "minutes_for_5mm", "reliability", "sufficiency_note") if c in frame]
    out.append(table(personal[keep], digits=2, name="participant_targets", numeric_names=True, run=prefix))
    out.append(competing_sites_block(candidates, sites, method, space,
                                     provenance.get("Settings", {}).get("targeting", {}), prefix,
                                     "Competing sites of the target from all runs"))
    out.append(participant_export_block(out_dir, navigation, prefix))
    return "".join(out)


def navigation_t1w(files: list[Path], primary: dict) -> str:
    """The target's T1w coordinates from its navigator tables (one per T1w image; several name their session)."""
    shown = []
    for path in files:
        if not (path.name.endswith("_coords.tsv") and parse_entities(path.name).get("space") == "T1w"):
            continue
        coords = read_tsv(path)
        hit = coords[coords["name"].astype(str) == str(primary.get("target"))]
        if len(hit):
            x, y, z = hit.iloc[0][["x", "y", "z"]].to_numpy(float)
            ses = parse_entities(path.name).get("ses")
            shown.append(f"({x:.1f}, {y:.1f}, {z:.1f}) mm" + (f" on the ses-{ses} T1w" if ses else ""))
    return "; ".join(shown) or "not exported"


def read_optional(path: Path) -> pd.DataFrame | None:
    """A written table, or None when it is not there."""
    return read_tsv(path) if path.is_file() else None


def participant_figure(primary: dict, sites, candidates, provenance: dict, prefix: str) -> str:
    """The participant-level target and its competing sites: slices of the anatomy, or the fsaverage5 cortex.

    The participant step writes no seed map of its own (it joins the runs'
    data), so the target is drawn on the anatomy of its space.
    """
    from .figures_surface import DRAWABLE_SPACES

    space = str(primary.get("space", ""))
    mesh = parse_entities(prefix).get("space", "")
    if "hemi" in primary and str(primary.get("hemi")) in ("L", "R"):
        if mesh not in DRAWABLE_SPACES:
            return note(f"The participant target on {mesh} is not drawn (the report draws fsaverage5 only); its "
                        "vertex and competing sites are in the tables below.")
        blank = {hemi: np.full(10242, np.nan) for hemi in ("L", "R")}
        return cortex_figure(blank, primary, sites, candidates,
                             "The participant-level target on the inflated fsaverage5 cortex (left and right, "
                             "lateral and medial; no map: the participant step writes none)", threshold=1e-6,
                             colorbar=False)
    center = [float(primary[c]) for c in ("x", "y", "z")]
    background = "template"
    if not space.upper().startswith("MNI"):
        t1w = provenance.get("Anatomy", {}).get("T1w")
        if space != "T1w" or not (t1w and Path(t1w).is_file()):
            return note(f"The participant target in {space} is not drawn (no image of that space is at hand); its "
                        "competing sites are in the tables below.")
        background = t1w
    competing = figures_brain.competing_styles(sites, shown_candidates(candidates))
    return figure(to_data_uri(figures_brain.competing_sites_figure(center, competing, background,
                                                                   "participant-level target")),
                  f"The participant-level target (gold star) on slices of the "
                  f"{'MNI template' if background == 'template' else 'participant T1w'} ({space})" + COMPETING_CAPTION)


def participant_navigation_files(out_dir: Path, prefix: str) -> list[Path]:
    """The navigator files written for a participant-level target (every session folder included; no sidecars)."""
    from ..export.participant import PARTICIPANT_NAVIGATION_DESC

    ents = parse_entities(prefix)
    return sorted(p for p in Path(out_dir).glob(f"sub-{ents['sub']}/**/*_desc-{PARTICIPANT_NAVIGATION_DESC}_*")
                  if p.is_file() and not p.name.endswith(".json")
                  and all(parse_entities(p.name).get(k) == v for k, v in ents.items() if k != "space"))


def participant_export_block(out_dir: Path, files: list[Path], prefix: str) -> str:
    """The table of a participant-level target's navigator files, and in which coordinates."""
    out = ["<h4>Export for neuronavigation</h4>"]
    if not files:
        return "".join(out) + f'<p data-name="export" data-run="{esc(prefix)}">none written</p>'
    rows = pd.DataFrame({"file": [str(p.relative_to(out_dir)) for p in files],
                         "format": [export_format(p) for p in files],
                         "coordinates": [export_space(p) for p in files]})
    out.append(table(rows, name="export", run=prefix))
    return "".join(out)


def native_background(run: RunOutputs) -> str | None:
    """The participant's fMRIPrep ``desc-preproc_T1w`` recorded with a T1w-space run, when the file is still there."""
    t1w = run.provenance.get("Anatomy", {}).get("T1w")
    return t1w if t1w and Path(t1w).is_file() else None


def search_region(run: RunOutputs):
    """The DLPFC search-region mask the run wrote beside its seed map (``desc-searchregion_mask``), or None.

    The report draws what the analysis used; it never recomputes the region
    from the settings (a later trdnet could define it differently).
    """
    path = run.find("desc-searchregion_mask.nii.gz")
    return None if path is None else nib.load(path)


def split_half_targets(run: RunOutputs, method: str) -> np.ndarray | None:
    """Targets of the two split halves (2 x 3) for ``method``, when the pipeline found both."""
    halves = run.table("desc-splithalf_targets.tsv")
    if halves is None or not len(halves):
        return None
    if "method" in halves:
        halves = halves[halves["method"].astype(str) == method]
    points = halves[["x", "y", "z"]].to_numpy(float)
    return points if len(points) == 2 and np.isfinite(points).all() else None


def export_block(run: RunOutputs) -> str:
    """Which files were written for the navigator, and in which coordinates."""
    files = run.export_files()
    out = ["<h3>Export for neuronavigation</h3>"]
    if not files:
        return "".join(out) + '<p data-name="export">none written</p>'
    rows = pd.DataFrame({"file": [p.name for p in files], "format": [export_format(p) for p in files],
                         "coordinates": [export_space(p) for p in files]})
    out.append(table(rows, name="export"))
    out.append(note("Load the navigator file with the image it names; coordinates are RAS world mm of "
                    "that image (Brainsight: the coordinate system named in the file's header)."))
    return "".join(out)


def export_format(path: Path) -> str:
    """Navigator format of an export file."""
    name = path.name
    for suffix, kind in (("_brainsight.txt", "Brainsight"), ("_localite.xml", "Localite"),
                         ("_localiteEntryTarget.xml", "Localite entry/target"),
                         ("_localiteInstrumentMarker.xml", "Localite coil pose"),
                         ("_coords.tsv", "TSV table"), (".nii.gz", "NIfTI spheres")):
        if name.endswith(suffix):
            return kind
    return path.suffix.lstrip(".") or "file"


def export_space(path: Path) -> str:
    """Space of an export file from its ``space-`` entity."""
    space = parse_entities(path).get("space")
    return f"{space} (RAS mm)" if space else "see file"


def methods_section(run: RunOutputs) -> str:
    """Methods paragraph, references and software versions."""
    prov = run.provenance
    paragraph, cited = methods_paragraph(prov.get("Settings", {}), prov.get("Software", {}), run.simulated,
                                         run.qc.get("tr"), roi=roi_summary(run))
    body = (f'<p class="methods">{paragraph}</p>' + references_html(cited) + software_html(prov.get("Software", {}))
            + note(f"Settings digest {prov.get('SettingsDigest', 'n/a')}; the full settings are in every "
                   "output's JSON sidecar."))
    return section("methods", "Methods", body)
