"""JSON sidecar content: what each output column means, and the provenance
block (settings, software, inputs, QC) that every sidecar carries."""

from __future__ import annotations

from .config import Settings
from .inputs.runs import Run
from .outputs import software_versions

SIMULATED_NOTE = (
    "SIMULATED DATA: produced from trdnet's built-in simulated cohort, not from a real scan. "
    "Not for clinical use."
)

COORDINATE_CONVENTION = "RAS world coordinates in millimetres of the named space"

COLUMNS = {
    "networks": {
        "network_a": "First network (DMN default mode, SN salience, ECN executive control / fronto-parietal)",
        "network_b": "Second network; equal to network_a for within-network rows",
        "mean_z": "Mean Fisher z (arctanh of Pearson r) over ROI pairs",
        "mean_r": "Mean Pearson r over ROI pairs",
        "n_pairs": "Number of ROI pairs averaged",
    },
    "qc": {
        "n_volumes": "Volumes in the input run",
        "n_retained": "Volumes kept after censoring (high motion, non-steady-state)",
        "n_censored": "Volumes removed by censoring",
        "minutes_total": "Scan length in minutes",
        "minutes_retained": "Minutes of data analysed",
        "mean_fd": "Mean framewise displacement (mm, Power 2012), all volumes",
        "max_fd": "Maximum framewise displacement (mm)",
        "median_tsnr": "Median temporal SNR of in-mask voxels before cleaning",
        "n_voxels": "In-mask voxels analysed",
        "tr": "Repetition time (s)",
        "n_confounds": "Confound regressors used",
        "dof_n_regressors": "Regressors spending a temporal degree of freedom each (confounds, trend terms)",
        "dof_band_fraction": "Fraction of the spectrum kept by the band-pass, as an ideal filter",
        "dof_remaining": "Temporal degrees of freedom left after censoring, regression and band-pass",
    },
    "censoring": {
        "volume": "Volume index (0-based)",
        "framewise_displacement": "Framewise displacement (mm) from the confounds file",
        "std_dvars": "Standardised DVARS from the confounds file",
        "retained": "1 if the volume was analysed, 0 if censored",
    },
    "targets": {
        "target": "Target name: personalised (primary method), personalised_<method>, or a reference site",
        "method": "How the coordinate was obtained (a targeting method, or 'reference' for literature sites)",
        "primary": "True for the target a TMS team should use",
        "space": "Space of x, y, z",
        "x": "x (mm, RAS world coordinates of the named space)",
        "y": "y (mm, RAS)",
        "z": "z (mm, RAS)",
        "r_sgacc": "Pearson r between the sgACC seed and the target (voxel or 5 mm sphere)",
        "split_half_mm": "Distance between targets from the first and second half of the data (mm)",
        "bootstrap_median_mm": "Median distance of block-bootstrap targets to this target (mm)",
        "bootstrap_r95_mm": "Radius holding 95% of block-bootstrap targets (mm)",
        "minutes_retained": "Minutes of data behind the target",
        "reliability": "good / fair / poor from documented thresholds on the reliability columns",
        "note": "Anything the user must know about this row",
        "n_candidates": "Candidate clusters the method weighed (see desc-candidates_targets.tsv)",
        "runner_up_mean_r": "Mean value (of the clustered map) of the best cluster not chosen",
        "runner_up_n_voxels": "Voxels in that runner-up cluster",
        "n_sites": "Bootstrap sites: the target's own plus every other holding at least max_competing_share",
        "competing_share": "Largest share of bootstrap resamples landing in a site other than the target's",
        "other_gsr_x": "With --gsr both: x of the target computed with GSR switched the other way (mm, RAS)",
        "other_gsr_y": "With --gsr both: y of that target",
        "other_gsr_z": "With --gsr both: z of that target",
        "gsr_distance_mm": "With --gsr both: distance between the targets with and without GSR (mm)",
        "other_gsr": "With --gsr both: whether the comparison target used GSR (on) or not (off)",
    },
    "candidates": {
        "method": "Targeting method",
        "rank": "Rank of the cluster by the method's score (1 = best)",
        "x": "x of the cluster centre (mm, RAS world coordinates of the run's space)",
        "y": "y (mm, RAS)",
        "z": "z (mm, RAS)",
        "n_voxels": "Voxels in the cluster",
        "volume_mm3": "Cluster volume (mm3)",
        "mean_r": "Mean value of the clustered (smoothed) map over the cluster",
        "peak_r": "Most negative value of the clustered map in the cluster",
        "score": "The ranking score (targeting.cluster_rank: size, summed or mean anticorrelation)",
        "chosen": "True for the cluster the target came from",
    },
    "sites": {
        "method": "Targeting method",
        "site": "Site number, largest share first",
        "x": "x of the mean of the site's bootstrap targets (mm, RAS)",
        "y": "y (mm, RAS)",
        "z": "z (mm, RAS)",
        "n_resamples": "Bootstrap resamples whose target fell in this site",
        "share": "n_resamples over the resamples that found a target",
        "holds_target": "True for the site of the target from all the data",
    },
    "participantretest": {
        "method": "Targeting method",
        "kind": "session (targets of separate sessions) or leave-one-run-out (a run against the others)",
        "held_out": "The held-out run, or the two sessions compared",
        "x": "x of the held-out data's target (mm, RAS)",
        "y": "y (mm, RAS)",
        "z": "z (mm, RAS)",
        "other_x": "x of the other data's target (mm, RAS)",
        "other_y": "y (mm, RAS)",
        "other_z": "z (mm, RAS)",
        "distance_mm": "Distance between the two targets (mm)",
    },
    "participantsufficiency": {
        "method": "Targeting method",
        "minutes": "Length of each of the two disjoint stretches (minutes of retained data)",
        "n_pairs": "Stretch pairs that both found a target",
        "median_distance_mm": "Median distance between the two stretches' targets (mm)",
    },
    "bootstrap": {
        "method": "Targeting method resampled",
        "resample": "Resample number (0-based; the bootstrap is seeded, see Targeting.random_state)",
        "x": "x of the resample's target (mm, RAS world coordinates of the run's space); n/a if none was found",
        "y": "y (mm, RAS)",
        "z": "z (mm, RAS)",
    },
    "splithalf": {
        "method": "Targeting method",
        "half": "first or second half of the retained volumes (in time order)",
        "first_volume": "Index of the half's first volume among the retained volumes (0-based)",
        "n_volumes": "Retained volumes in the half",
        "x": "x of the half's target (mm, RAS world coordinates of the run's space); n/a if none was found",
        "y": "y (mm, RAS)",
        "z": "z (mm, RAS)",
    },
}

COLUMNS["participanttargets"] = {
    **COLUMNS["targets"],
    "minutes_retained": "Minutes of data behind the target (all runs joined)",
    "n_runs": "Runs joined (each cleaned on its own)",
    "retest_kind": "session (separate sessions compared) or leave-one-run-out",
    "retest_mm": "Median distance between targets of disjoint parts of the data (mm; a direct retest)",
    "minutes_for_5mm": "Minutes of data at which two independent scans would agree within 5 mm "
                       "(power law fitted to target stability against data length; inf: not converging; n/a: "
                       "not estimable, or the retest already exceeds 5 mm)",
    "sufficiency_note": "Whether the participant has enough data, in words",
}


#: BEP017 (connectivity derivatives) metadata of a ROI-by-ROI matrix, by measure (``NetworkSettings.connectivity``).
RELMAT_METADATA = {
    "PearsonCorrelation": {
        "Measure": "Pearson correlation",
        "MeasureDescription": "Pearson correlation coefficient between the mean cleaned signals of two ROIs",
        "Weighted": True,
        "Directed": False,
        "ValidDiagonal": False,  # r of a signal with itself is 1 by definition
        "StorageFormat": "Full",
        "NonNegative": False,
    },
}


#: Sidecar kinds of ``_timeseries.tsv`` tables (one row per volume), which carry ``SamplingFrequency``.
TIME_SERIES = ("timeseries", "censoring")


def bep017_metadata(kind: str, settings: Settings, tr: float | None = None, sample_mask=None) -> dict:
    """BEP017 fields of a network output's sidecar.

    Parameters
    ----------
    kind : str
        ``"relmat"`` (ROI-by-ROI matrix) or one of :data:`TIME_SERIES`
        (ROI signals, the per-volume censoring table); other kinds have none.
    settings : Settings
        The measure is ``settings.networks.connectivity``.
    tr : float, optional
        Repetition time (s); a time series gets ``SamplingFrequency = 1 / tr`` (Hz).
    sample_mask : sequence of int, optional
        The run's volumes the rows are, when they are not all of them (see
        :func:`censored_rows`): the rows are then not evenly spaced in time
        and no ``SamplingFrequency`` is given.

    Returns
    -------
    dict
        Empty for other kinds.

    Raises
    ------
    NotImplementedError
        A relmat of a measure trdnet has no BEP017 description for.
    """
    if kind == "relmat":
        measure = settings.networks.connectivity
        if measure not in RELMAT_METADATA:
            raise NotImplementedError(f"no BEP017 description of the connectivity measure {measure!r}; "
                                      f"known: {sorted(RELMAT_METADATA)}")
        return dict(RELMAT_METADATA[measure])
    if kind in TIME_SERIES and tr and sample_mask is None:
        return {"SamplingFrequency": 1.0 / float(tr)}
    return {}


def censored_rows(retained, n_volumes: int, censoring_table: str) -> dict:
    """Sidecar fields of a time series whose rows are only the retained volumes of a censored run.

    BIDS gives a ``_timeseries.tsv`` a ``SamplingFrequency``: row ``i`` at
    ``i / SamplingFrequency`` s. Once censored volumes are dropped that is no
    longer true, so the sidecar says which volume each row is instead
    (XCP-D's censored series point to the per-volume outliers table the same
    way).

    Parameters
    ----------
    retained : array of int
        0-based indices of the retained volumes in the run, one per row.
    n_volumes : int
        Volumes in the run.
    censoring_table : str
        File name of the run's per-volume censoring table (``desc-censoring_timeseries.tsv``).

    Returns
    -------
    dict
        Empty when every volume was kept (the rows are the run, evenly
        spaced); else ``SampleMask`` (each row's volume index, nilearn's
        ``sample_mask``), ``NumberOfVolumes`` and ``CensoringTable``.
    """
    retained = [int(v) for v in retained]
    if retained == list(range(n_volumes)):
        return {}
    return {"SampleMask": retained, "NumberOfVolumes": int(n_volumes), "CensoringTable": censoring_table}


def anatomy_files(anatomy) -> dict:
    """The participant's native anatomy files a run was found with, as recorded in its sidecars.

    Parameters
    ----------
    anatomy : NativeAnatomy
        ``Run.anatomy``.

    Returns
    -------
    dict
        ``T1w`` and, where found, ``BrainMask``, ``GMProbseg``, ``Dseg`` and the
        transforms ``T1wToTemplate`` / ``TemplateToT1w`` (fMRIPrep's file names
        ``from-T1w_to-<template>`` / ``from-<template>_to-T1w``), as paths.
    """
    files = {"T1w": anatomy.t1w, "BrainMask": anatomy.brain_mask, "GMProbseg": anatomy.gm_probseg,
             "Dseg": anatomy.dseg, "T1wToTemplate": anatomy.xfm_t1w_to_template,
             "TemplateToT1w": anatomy.xfm_template_to_t1w}
    return {key: str(path) for key, path in files.items() if path is not None}


def settings_block(run: Run, settings: Settings) -> dict:
    """The ``Settings`` block a sidecar of this run records: the settings as they apply to its input."""
    values = settings.to_dict()
    if hasattr(run, "labels"):
        # ROI time series: the networks come from the input's parcellation and labels table, not an atlas setting
        values["networks"]["atlas"] = getattr(run, "atlas", "") or "labels table"
        values["space"] = _space(run) or "unknown (not stated by the input)"
    if getattr(run, "already_cleaned", False):
        # nothing of the denoise section was applied: the sidecar must not read as if it had been
        values["denoise"] = {"already_cleaned": True, "applied": "none"}
    return values


def _space(run: Run) -> str:
    return getattr(run, "space", run.entities.get("space", ""))


def provenance(run: Run, settings: Settings, qc: dict | None = None, extra: dict | None = None) -> dict:
    """The provenance block common to every sidecar of one run."""
    block = {
        "Simulated": run.simulated,
        "Sources": [str(p) for p in (getattr(run, k, None) for k in ("bold", "path", "mask", "confounds"))
                    if p is not None],
        "Space": _space(run),
        "InputSource": run.source,
        "CoordinateConvention": COORDINATE_CONVENTION,
        "Settings": settings_block(run, settings),
        "SettingsDigest": settings.digest(),
        "Software": software_versions(),
    }
    if getattr(run, "notes", ()):
        block["InputNotes"] = list(run.notes)
    if getattr(run, "anatomy", None) is not None:
        block["Anatomy"] = anatomy_files(run.anatomy)
    if run.simulated:
        block["Note"] = SIMULATED_NOTE
    if qc:
        block["QC"] = qc
    if extra:
        block.update(extra)
    return block


def sidecar(kind: str, description: str, run: Run, settings: Settings, qc=None, extra=None) -> dict:
    """A full sidecar: description, column meanings (when known) and provenance."""
    content = {"Description": description}
    if kind in COLUMNS:
        content["Columns"] = COLUMNS[kind]
    content.update(bep017_metadata(kind, settings, (extra or {}).get("RepetitionTime"),
                                   (extra or {}).get("SampleMask")))
    content.update(provenance(run, settings, qc, extra))
    return content
