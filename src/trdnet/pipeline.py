"""Run one functional run end to end: clean once, then networks, targets,
export, each written with its sidecar. A re-run skips finished runs."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import denoise
from .cleaned import CleanedRun
from .config import LEAVE_ONE_OUT, Settings
from .entities import SEED_MAP_ENTITIES, output_path, sidecar_path
from .errors import SettingsError, TrdnetError
from .inputs.runs import Run
from .inputs.surface import SurfaceRun
from .outputs import atomic_write_bytes, write_atlas_table, write_json, write_nifti, write_tsv
from .records import completion_record_path, read_completion_record
from .sidecars import SIMULATED_NOTE, censored_rows, sidecar
from .staging import run_lock, staged_run
from .surface_pipeline import clean_surface_run, write_surface_maps
from .template_lookup import with_template_coordinates


@dataclass
class RunResult:
    """What happened to one run."""

    prefix: str
    subject: str
    status: str  # done | skipped | failed
    files: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0
    #: the run stopped because its worker process got Ctrl-C (SIGINT): the command was interrupted
    interrupted: bool = False


def output_dir_for(run: Run, out_dir: Path) -> Path:
    """Folder of a run's outputs: ``<out>/sub-<l>[/ses-<l>]/func``."""
    return Path(out_dir) / run.subject_dir


def completion_record(run: Run, out_dir: Path) -> Path:
    """Path of the record written last, when every output of a run is in place."""
    return completion_record_path(out_dir, run.prefix)


class FinishedWithOtherSettings(SettingsError):
    """A run is already finished in the output folder with other settings (refused without overwrite)."""


def is_finished(run: Run, out_dir: Path, settings: Settings, overwrite: bool = False) -> bool:
    """Whether a run is finished (see :mod:`trdnet.records`) with the same settings.

    A run whose record lists missing files, or files named by an earlier version, is not: it is processed again.
    Nor is a run recorded under :meth:`~trdnet.config.Settings.earlier_digest` (these settings before rules that
    change results at their default, such as ``denoise.min_dof``): it was not made under them.

    Raises
    ------
    FinishedWithOtherSettings
        If it is finished with other settings and ``overwrite`` is false.
    """
    record_path = completion_record(run, out_dir)
    if overwrite or not record_path.is_file():
        return False
    record = read_completion_record(record_path)
    if record.settings_digest != settings.digest():
        if record.settings_digest == settings.earlier_digest():
            return False
        from .group.digests import settings_differences
        from .records import recorded_settings
        from .sidecars import settings_block

        differences = settings_differences([recorded_settings(out_dir, record), settings_block(run, settings)])
        raise FinishedWithOtherSettings(
            f"{record_path}: {run.prefix} was processed with other settings "
            f"(digest {record.settings_digest} != {settings.digest()}: {differences}); "
            "use --overwrite or another output folder"
        )
    return record.unfinished_reason(out_dir) is None


def _skipped(run, out_dir: Path) -> RunResult:
    record = read_completion_record(completion_record(run, out_dir))
    return RunResult(run.prefix, run.subject, "skipped", record.files, record.summary)


def process_run(run: Run, out_dir: Path, settings: Settings, overwrite: bool = False, group_map=None,
                reader=None, lock_timeout: float = 0) -> RunResult:
    """Process one run and write all its outputs.

    Parameters
    ----------
    run : Run
    out_dir : Path
        Root of the trdnet derivatives folder.
    settings : Settings
    overwrite : bool
        Recompute even when finished outputs exist.
    group_map : str, Path or numpy.ndarray, optional
        Group sgACC map for the ``seedmap`` targeting method (default:
        ``settings.targeting.group_map``; ``"loo"`` for the leave-one-out
        mean of the other participants already in ``out_dir``).
    reader : callable, optional
        Reads the run's in-mask voxels (see :func:`trdnet.denoise.clean_run`).
    lock_timeout : float
        Seconds to wait for another process working on this run (0: refuse at once).

    Returns
    -------
    RunResult

    Raises
    ------
    trdnet.staging.RunBusyError
        If another process still holds the run after ``lock_timeout`` seconds.
    FinishedWithOtherSettings
        If it is finished with other settings and ``overwrite`` is false.
    """
    out_dir = Path(out_dir)
    start = time.perf_counter()
    with run_lock(out_dir, run.prefix, lock_timeout):
        if is_finished(run, out_dir, settings, overwrite):
            return _skipped(run, out_dir)
        if group_map is None and settings.targeting.group_map == LEAVE_ONE_OUT:
            group_map = LEAVE_ONE_OUT
        with staged_run(out_dir, run.prefix, f"sub-{run.subject}", settings.digest(), begin=False) as stage:
            if isinstance(group_map, str) and group_map == LEAVE_ONE_OUT and "seedmap" in settings.targeting.methods:
                group_map = leave_one_out_group_map(out_dir, run.subject)  # before this run's own record goes
            stage.begin()
            cleaned = clean(run, settings.denoise, reader=reader)
            from .targeting.regions import usable_regions

            # a seed or search region without signal stops the run before any output
            usable_regions(cleaned, settings.targeting)
            written = []
            written += write_qc(run, cleaned, stage.root, settings)
            written += write_networks(run, cleaned, stage.root, settings)
            targets_summary, target_files, targets_table = write_targets(run, cleaned, stage.root, settings,
                                                                         group_map)
            written += target_files
            navigation_summary, navigation_files = write_navigation(run, targets_table, stage.root, settings)
            targets_summary.update(navigation_summary)
            written += navigation_files
            summary = {"minutes_retained": cleaned.qc["minutes_retained"], "mean_fd": cleaned.qc["mean_fd"],
                       **targets_summary}
            files = stage.commit(written, f"sub-{run.subject}", settings.digest(), summary, run.simulated)
    return RunResult(run.prefix, run.subject, "done", files, summary, seconds=time.perf_counter() - start)


def clean(run: Run, denoise_settings, reader=None) -> CleanedRun:
    """Clean a run; for a T1w-space run, also find its voxels' MNI positions (see :mod:`trdnet.template_lookup`).

    The transform used is recorded as ``qc["template_transform"]`` (in every sidecar's QC).
    """
    if isinstance(run, SurfaceRun):
        return clean_surface_run(run, denoise_settings)
    cleaned = denoise.clean_run(run, denoise_settings, reader=reader)
    cleaned, transform = with_template_coordinates(cleaned, run.anatomy)
    if transform is not None:
        cleaned.qc["template_transform"] = str(transform)
    return cleaned




def leave_one_out_group_map(out_dir: Path, subject: str):
    """Mean Fisher-z sgACC map of every other participant already in ``out_dir``.

    Raises
    ------
    SettingsError
        If no other participant's map exists yet (run the cohort once first).
    """
    from .group import group_seed_map

    try:
        return group_seed_map(out_dir, exclude_subject=subject)
    except TrdnetError as exc:
        raise SettingsError(
            f"{out_dir}: no leave-one-out group sgACC map for sub-{subject} ({exc}); process the cohort once "
            "with any other method first, then re-run with --target-method seedmap --group-map loo --overwrite"
        ) from None


def _paths(run: Run, out_dir: Path, suffix: str, extension: str, **extra) -> tuple[Path, Path]:
    """An output of ``run`` (see :func:`trdnet.entities.output_path`) and its JSON sidecar."""
    data = output_path(out_dir, run.prefix, suffix, extension, **extra)
    return data, sidecar_path(data)


def write_qc(run: Run, cleaned: CleanedRun, out_dir: Path, settings: Settings) -> list[Path]:
    """Write ``<prefix>_qc.tsv`` and the per-volume censoring table."""
    qc_keys = ["n_volumes", "n_retained", "n_censored", "minutes_total", "minutes_retained", "mean_fd", "max_fd",
               "median_tsnr", "n_voxels", "n_flat_voxels", "n_zero_voxels", "tr", "n_confounds",
               "dof_n_regressors", "dof_band_fraction", "dof_remaining"]
    table = pd.DataFrame([{"participant_id": f"sub-{run.subject}", **{k: cleaned.qc.get(k) for k in qc_keys}}])
    qc_tsv, qc_json = _paths(run, out_dir, "qc", ".tsv")
    files = [write_tsv(qc_tsv, table)]
    extra = {"Denoising": getattr(cleaned, "denoising", None) or denoise.describe(settings.denoise, cleaned.tr),
             **denoise.qc_provenance(cleaned.qc)}
    files.append(write_json(qc_json, sidecar("qc", "Run-level quality control", run, settings, extra=extra)))
    if cleaned.volume_qc is not None:
        cen_tsv, cen_json = _paths(run, out_dir, "timeseries", ".tsv", desc="censoring")
        files.append(write_tsv(cen_tsv, cleaned.volume_qc))
        files.append(write_json(cen_json, sidecar("censoring", "Per-volume motion and censoring", run, settings,
                                                  extra={"RepetitionTime": cleaned.tr})))
    if cleaned.carpet is not None:
        carpet_path, carpet_json = _paths(run, out_dir, "samples", ".npz", desc="carpet")
        buffer = io.BytesIO()
        unit = cleaned.carpet.get("unit", "voxel")
        named = {} if unit == "voxel" else {"unit": np.array(unit)}
        # not compressed: noise-like float32 signals barely shrink, and compressing was most of the write
        np.savez(buffer, columns=cleaned.carpet["columns"], raw=cleaned.carpet["raw"],
                 clean=cleaned.carpet["clean"], retained=cleaned.retained, **named)
        files.append(atomic_write_bytes(carpet_path, buffer.getvalue()))
        columns = "the sampled in-mask voxel numbers" if unit == "voxel" else "the ROI column numbers"
        files.append(write_json(carpet_json, sidecar(
            "carpet", f"{unit.capitalize()} sample for carpet plots (numpy .npz): 'raw' T x K signals before "
            f"cleaning, 'clean' retained-volumes x K after cleaning, 'columns' {columns}, 'retained' the "
            "retained volume indices", run, settings)))
    return files


SEG_LABELS = {"seitzman2018": "Seitzman2018", "dosenbach2010": "Dosenbach2010", "raichle_nodes": "RaichleNodes",
              "labels": "UserAtlas"}


def write_networks(run: Run, cleaned: CleanedRun, out_dir: Path, settings: Settings) -> list[Path]:
    """Network stage: ROI time series, ROI-by-ROI matrix, within/between table, graph measures."""
    from . import networks

    result = networks.analyse_networks(cleaned, settings.networks)
    seg = SEG_LABELS.get(settings.networks.atlas, settings.networks.atlas)
    return write_network_tables(run, result, seg, cleaned.tr, out_dir, settings, cleaned.qc, cleaned.retained)


def write_network_tables(run, result, seg: str, tr, out_dir: Path, settings: Settings,
                         qc: dict | None = None, retained=None) -> list[Path]:
    """Write the four network tables of one run from its :class:`~trdnet.networks.NetworkResult`.

    ``retained`` (the volume index of each time-series row) marks a censored run's time series as such
    (:func:`trdnet.sidecars.censored_rows`)."""
    from . import networks

    net = settings.networks
    kept, dropped = result.rois, result.dropped
    per_run = [c for c in ("n_voxels", "reason") if c in kept.columns or c in dropped.columns]
    atlas = pd.concat([kept, dropped]).sort_index().drop(columns=per_run)
    if "labels_img" in atlas:  # a surface parcel's position is its run's (the relmat sidecar), not the atlas's
        atlas.loc[atlas["labels_img"].map(networks.is_surface_atlas), ["x", "y", "z"]] = np.nan
    atlas_table = write_atlas_table(out_dir, seg, atlas, f"Every ROI of the {seg} network definition; the runs' "
                                    "sidecars list the ROIs each run kept (ROIs) or dropped (DroppedROIs)")
    extra = {
        "Atlas": seg,
        "AtlasTable": atlas_table.name,
        "DroppedROIs": dropped.to_dict(orient="records"),
        "RepetitionTime": tr,
    }
    outputs = [
        ("timeseries", {"seg": seg}, result.timeseries_frame(), "timeseries",
         "Mean cleaned signal of each network ROI over the retained volumes (columns = ROIs; the ROIs are "
         "described in AtlasTable and listed with this run's voxel counts in the relmat sidecar)"),
        ("relmat", {"seg": seg, "meas": net.connectivity}, result.relmat_frame(), "relmat",
         "ROI-by-ROI Pearson correlation; rows are in the same order as the columns"),
        ("networks", {}, result.table, "networks",
         "Within- (network_a == network_b) and between-network connectivity"),
        ("graph", {}, result.graph_frame(), "graph",
         f"Graph measures of the ROI graph keeping the strongest {net.graph_density:.0%} of positive edges "
         "(level roi: per ROI; level run: whole graph); networkx"),
    ]
    files = []
    for suffix, entities, table, kind, description in outputs:
        tsv, json_path = _paths(run, out_dir, suffix, ".tsv", **entities)
        files.append(write_tsv(tsv, table))
        # the node table (with this run's voxel counts) once per run, beside the matrix it orders
        own = {"ROIs": kept.to_dict(orient="list")} if kind == "relmat" else {}
        if kind == "timeseries" and retained is not None and qc:
            own = censored_rows(retained, qc["n_volumes"], _paths(run, out_dir, "timeseries", ".tsv",
                                                                  desc="censoring")[0].name)
            if own:
                description += "; rows are the retained volumes SampleMask lists, not evenly spaced in time"
        files.append(write_json(json_path, sidecar(kind, description, run, settings, qc=qc, extra={**extra, **own})))
    return files


def process_roi_run(run, out_dir: Path, settings: Settings, overwrite: bool = False,
                    lock_timeout: float = 0) -> RunResult:
    """Cleaning (as for voxel runs, see :mod:`trdnet.roi_denoise`), QC and the network stage, for a run
    given as ROI time series (no images).

    Targeting needs voxel data, so it is skipped; the completion record says why. Locking and
    ``lock_timeout`` as in :func:`process_run`.
    """
    from . import networks
    from .roi_denoise import clean_roi_run

    out_dir = Path(out_dir)
    start = time.perf_counter()
    with run_lock(out_dir, run.prefix, lock_timeout):
        if is_finished(run, out_dir, settings, overwrite):
            return _skipped(run, out_dir)
        with staged_run(out_dir, run.prefix, f"sub-{run.subject}", settings.digest()) as stage:
            cleaned = clean_roi_run(run, settings.denoise)
            dropped = cleaned.dropped
            seg = run.entities.get("seg", "UserROIs")
            written = write_qc(run, cleaned, stage.root, settings)
            result = networks.network_result(cleaned.signals, cleaned.rois, dropped, settings.networks)
            written += write_network_tables(run, result, seg, cleaned.tr, stage.root, settings, cleaned.qc,
                                            cleaned.retained)
            if settings.targeting.compare_gsr and not run.already_cleaned:
                written += write_other_gsr_networks(run, cleaned.rois, stage.root, settings)
            summary = {"targeting": TARGETING_SKIPPED_ROI, "minutes_retained": cleaned.qc["minutes_retained"],
                       "mean_fd": cleaned.qc["mean_fd"], "already_cleaned": run.already_cleaned}
            files = stage.commit(written, f"sub-{run.subject}", settings.digest(), summary, run.simulated)
    return RunResult(run.prefix, run.subject, "done", files, summary, seconds=time.perf_counter() - start)


TARGETING_SKIPPED_ROI = "skipped: the input is ROI time series, and targeting needs voxel-wise data"


def write_other_gsr_networks(run, rois, out_dir: Path, settings: Settings) -> list[Path]:
    """``--gsr both`` for an ROI run (which has no target to compare): the network table with global signal
    regression switched the other way, as ``<prefix>_desc-gsroff_networks.tsv`` (or ``desc-gsron``)."""
    from . import networks
    from .config import with_gsr
    from .roi_denoise import clean_roi_run

    other = with_gsr(settings, not settings.denoise.gsr)
    cleaned = clean_roi_run(run, other.denoise)
    label = "gsron" if other.denoise.gsr else "gsroff"
    table = networks.network_table(networks.connectivity_matrix(cleaned.signals), rois["network"])
    tsv, json_path = _paths(run, out_dir, "networks", ".tsv", desc=label)
    description = (f"Within- and between-network connectivity with global signal regression "
                   f"{'on' if other.denoise.gsr else 'off'} (--gsr both; the main table has it "
                   f"{'on' if settings.denoise.gsr else 'off'})")
    extra = {"Denoising": cleaned.denoising}
    return [write_tsv(tsv, table), write_json(json_path, sidecar("networks", description, run, settings,
                                                                 qc=cleaned.qc, extra=extra))]


def write_targets(run: Run, cleaned: CleanedRun, out_dir: Path, settings: Settings, group_map=None):
    """Targeting stage: sgACC seed map, targets with reliability, bootstrap cloud."""
    from . import targeting

    result = targeting.compute_targets(cleaned, settings.targeting, settings.random_state, group_map=group_map,
                                       high_pass_hz=settings.denoise.high_pass)
    files = []
    extra = {"Targeting": result.details, "QC": cleaned.qc}
    if isinstance(run, SurfaceRun):
        extra |= {"Surface": cleaned.space.surface, "VerticesExcluded": cleaned.space.n_excluded}
    if cleaned.simulated:
        extra["Note"] = SIMULATED_NOTE

    masks = []
    for desc, columns, description in (("searchregion", result.search_columns, "DLPFC search region (1 inside)"),
                                       ("sgacc", result.seed_columns, "sgACC seed region (1 inside)")):
        indicator = np.zeros(cleaned.space.n_points, dtype=np.uint8)
        indicator[columns] = 1
        masks.append((desc, indicator, description))
    if isinstance(run, SurfaceRun):
        files += write_surface_maps(run, cleaned.space, out_dir, settings, [
            (SEED_MAP_ENTITIES, "boldmap", result.seed_map, "boldmap",
             "Pearson r of every {} with the mean sgACC seed signal (NaN: medial wall or no signal)"),
            *[({"desc": desc}, "mask", indicator, "mask", description + ", per {}")
              for desc, indicator, description in masks]], extra)
    else:
        map_path, map_json = _paths(run, out_dir, "boldmap", ".nii.gz", **SEED_MAP_ENTITIES)
        files.append(write_nifti(map_path, cleaned.space.to_img(result.seed_map)))
        files.append(write_json(map_json, sidecar(
            "boldmap", "Pearson r of every in-mask voxel with the mean sgACC seed signal", run, settings,
            extra=extra)))
        for desc, indicator, description in masks:
            mask_path, mask_json = _paths(run, out_dir, "mask", ".nii.gz", desc=desc)
            files.append(write_nifti(mask_path, cleaned.space.to_img(indicator, dtype=np.uint8)))
            files.append(write_json(mask_json, sidecar("mask", description, run, settings, extra=extra)))

    tgt_tsv, tgt_json = _paths(run, out_dir, "targets", ".tsv")
    table = result.table.copy()
    if settings.targeting.compare_gsr:
        table = add_gsr_comparison(run, table, settings, group_map)
    table.insert(0, "participant_id", f"sub-{run.subject}")
    files.append(write_tsv(tgt_tsv, table))
    files.append(write_json(tgt_json, sidecar(
        "targets", "Personalised and reference DLPFC TMS targets with their sgACC correlation and reliability",
        run, settings, extra=extra)))

    for desc, kind, values, description in (
        ("bootstrap", "bootstrap", result.bootstrap_cloud,
         "Targets from circular block-bootstrap resamples of the retained volumes"),
        ("splithalf", "splithalf", result.split_half_targets,
         "Targets from the first and the second half of the retained volumes"),
        ("candidates", "candidates", result.candidates,
         "Every candidate cluster of each cluster-based method (centre, size, mean and peak value)"),
        ("sites", "sites", result.sites,
         "Bootstrap targets grouped into sites, with each site's share of the resamples"),
    ):
        if values is not None and len(values):
            values_tsv, values_json = _paths(run, out_dir, "targets", ".tsv", desc=desc)
            files.append(write_tsv(values_tsv, values))
            files.append(write_json(values_json, sidecar(kind, description, run, settings, extra=extra)))

    primary = table[table["primary"].astype(bool)].iloc[0] if "primary" in table else table.iloc[0]
    summary = {
        "target_space": str(primary["space"]),
        "target_x": float(primary["x"]),
        "target_y": float(primary["y"]),
        "target_z": float(primary["z"]),
        "r_sgacc": float(primary["r_sgacc"]),
        "reliability": str(primary.get("reliability", "")),
    }
    if isinstance(run, SurfaceRun):
        summary |= {"target_hemi": str(primary["hemi"]), "target_vertex": int(primary["vertex"]),
                    "sgacc_seed_vertices": int(result.seed_columns.size),
                    "search_vertices": int(result.search_columns.size)}
    return summary, files, table


def add_gsr_comparison(run: Run, table: pd.DataFrame, settings: Settings, group_map=None) -> pd.DataFrame:
    """Recompute the personalised targets with GSR switched the other way; add their distance.

    Global signal regression changes anticorrelations (and so targets); the
    columns ``other_gsr_x/y/z`` hold the target of the other choice and
    ``gsr_distance_mm`` how far it is (personalised rows only).
    """
    import dataclasses

    from . import targeting
    from .config import with_gsr

    other = with_gsr(settings, not settings.denoise.gsr)
    cleaned = clean(run, other.denoise)
    quick = dataclasses.replace(settings.targeting, reliability=False, compare_gsr=False)
    other_table = targeting.compute_targets(cleaned, quick, settings.random_state, group_map=group_map,
                                            high_pass_hz=settings.denoise.high_pass).table.set_index("target")
    table = table.copy()
    for axis in ("x", "y", "z"):
        table[f"other_gsr_{axis}"] = table["target"].map(
            lambda name: other_table[axis].get(name, np.nan) if name.startswith("personalised") else np.nan)
    delta = table[["x", "y", "z"]].to_numpy(float) - table[["other_gsr_x", "other_gsr_y", "other_gsr_z"]].to_numpy(float)
    table["gsr_distance_mm"] = np.linalg.norm(delta, axis=1)
    table["other_gsr"] = "off" if settings.denoise.gsr else "on"
    return table


def fmriprep_root(run: Run) -> Path:
    """The derivatives folder a run was found in (``<root>/sub-<l>[/ses-<l>]/func/<file>``)."""
    from .inputs.bids import derivatives_root

    return derivatives_root(run.bold)


def reliability_notes(targets: pd.DataFrame) -> list[str]:
    """What each target's reliability means for the team, from its ``note`` and ``sufficiency_note``.

    Parameters
    ----------
    targets : pandas.DataFrame
        A targets table (run-level: ``note``; participant-level: also ``sufficiency_note``).

    Returns
    -------
    list of str
        One text per row, the notes joined (empty when neither says anything).
    """
    columns = [c for c in ("note", "sufficiency_note") if c in targets]
    out = []
    for _, row in targets.iterrows():
        texts = [row[c].strip() for c in columns if isinstance(row[c], str) and row[c].strip()]
        # a clause the participant's sufficiency note repeats (the data rule) is said once
        parts = []
        for i, text in enumerate(texts):
            later = " ".join(texts[i + 1:])
            kept = "; ".join(p for p in text.split("; ") if p.strip(" .") not in later)
            if kept.strip(" ;."):
                parts.append(_as_sentence(kept))
        out.append(" ".join(parts))
    return out


def _as_sentence(text: str) -> str:
    text = text.strip()
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def write_navigation(run: Run, targets: pd.DataFrame, out_dir: Path, settings: Settings, desc: str = "navtargets"):
    """Export the targets for neuronavigation, in the participant's T1w space when possible.

    Without the participant's T1w and fMRIPrep transforms the files stay in
    the template space, and every file says so. Targets of a T1w-space run
    without the T1w image get no navigator files (the summary says why).
    ``desc`` is the files' ``desc-`` entity (see :func:`trdnet.export.export_targets`).
    """
    from .export import export_targets

    if not settings.export.formats:
        return {}, []
    anat = run.anatomy if settings.export.native else None
    if anat is None and (targets["space"] == "T1w").any():
        # Targets found in a T1w-space run are already native coordinates (in _targets.tsv); the
        # navigator files need the T1w image itself for voxel indices and the scalp.
        return {"navigation_note": f"no navigator files: the targets are in T1w space and "
                                   f"{fmriprep_root(run)} has no sub-{run.subject} desc-preproc_T1w"}, []
    # surface rows keep their vertex: the export follows it to T1w (trdnet.export.surface)
    from .export.surface import MESH_COLUMNS

    table = targets.rename(columns={"target": "name"})
    table["reliability_note"] = reliability_notes(table)
    table = table[["name", "x", "y", "z", "space", *[c for c in MESH_COLUMNS if c in table],
                   *[c for c in ("reliability", "reliability_note") if c in table]]]
    result = export_targets(table, anat, output_dir_for(run, out_dir), run.prefix, settings.export,
                            simulated=run.simulated, desc=desc)
    first = result.table.iloc[0]
    summary = {"navigation_space": result.space, "navigation_x": float(first["x"]),
               "navigation_y": float(first["y"]), "navigation_z": float(first["z"]),
               "navigation_ok": bool(first["ok"])}
    return summary, list(result.files)
