"""``trdnet run ... group``: cohort tables, group sgACC map, statistics, QC-FC.

Reads the per-run outputs of a trdnet folder and writes ``<out>/group/``:
``networks.tsv``, ``targets.tsv``, ``qc.tsv`` (every collected run, with an
``included`` column), ``exclusions.tsv``, ``statistics.tsv`` (only with a
``participants.tsv`` holding two groups), ``qcfc.tsv`` and
``desc-sgacc_stat-z_boldmap.nii.gz``, each with a JSON sidecar.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..entities import sidecar_path
from ..errors import SettingsError
from ..output_folder import check_group_folder_writable
from ..outputs import software_versions, write_json, write_nifti, write_tsv
from ..sidecars import COLUMNS, SIMULATED_NOTE
from .collect import ID_COLUMNS, QcThresholds, check_columns, collect_table, discover_runs
from .digests import select_settings_digest
from .participants import find_participants_tsv, read_groups
from .seedmap import mean_seed_map
from .stats import participant_mean_fd, participant_means, qcfc_table, two_sample_table

#: The group sgACC map's name, kept as first published (``desc-`` before ``stat-``, against the schema's order that
#: per-run maps follow) because other cohorts' settings point to it with ``--group-map``.
GROUP_MAP_NAME = "desc-sgacc_stat-z_boldmap.nii.gz"

log = logging.getLogger("trdnet.group")

_ID_DOCS = {
    "participant_id": "Participant (sub-<label>)",
    "session": "Session label (n/a without sessions)",
    "run": "Run name: the BIDS prefix of the per-run outputs",
    "included": "True if the run passed the QC thresholds and is used in group statistics and the group map",
}

_PAIR_DOCS = {"network_a": COLUMNS["networks"]["network_a"], "network_b": COLUMNS["networks"]["network_b"]}

STATISTICS_COLUMNS = {
    **_PAIR_DOCS,
    "group_a": "Label of group a (differences, t and g are a - b)",
    "group_b": "Label of group b",
    "n_a": "Participants in group a with a value",
    "n_b": "Participants in group b with a value",
    "mean_a": "Mean over group a of the participants' mean Fisher z",
    "mean_b": "Mean over group b of the participants' mean Fisher z",
    "sd_a": "Standard deviation (ddof 1) in group a",
    "sd_b": "Standard deviation (ddof 1) in group b",
    "t": "Two-sample t statistic (see Test)",
    "p": "Two-sided p-value of t",
    "hedges_g": "Hedges' g (pooled-SD Cohen's d times 1 - 3 / (4 (n_a + n_b - 2) - 1))",
    "p_fdr": "Benjamini-Hochberg FDR-adjusted p over the network pairs (scipy.stats.false_discovery_control)",
}

QCFC_COLUMNS = {
    **_PAIR_DOCS,
    "r": "Pearson r across participants between the participant's mean Fisher z and mean FD",
    "p": "Two-sided p-value of r",
    "p_fdr": "Benjamini-Hochberg FDR-adjusted p over the network pairs",
    "n": "Participants in the correlation",
}

EXCLUSION_COLUMNS = {
    "participant_id": "Participant (sub-<label>)",
    "run": "Run name (BIDS prefix), or 'all' for the whole participant",
    "reason": "Why it was left out",
    "applies_to": "'all' (every group output) or 'statistics' (only the group comparison)",
}

PER_PARTICIPANT_NOTE = (
    "With several runs per participant, a participant's value is the mean over their included runs "
    "(connectivity averaged as Fisher z), so each participant counts once."
)


@dataclass
class GroupResult:
    """What the group step wrote.

    Attributes
    ----------
    group_dir : Path
        ``<out>/group``.
    files : dict
        Output name (``networks``, ``targets``, ``qc``, ``exclusions``,
        ``statistics``, ``qcfc``, ``seedmap``) -> path of the data file.
    n_runs, n_runs_included, n_participants_included : int
    notes : list of str
        What was skipped and why (e.g. no participants.tsv: no statistics),
        each also logged as a warning on the ``trdnet`` logger when added
        (:meth:`note`) and written to ``group/notes.json``.
    exclusions : pandas.DataFrame
    """

    group_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    n_runs: int = 0
    n_runs_included: int = 0
    n_participants_included: int = 0
    notes: list[str] = field(default_factory=list)
    exclusions: pd.DataFrame | None = None

    def note(self, text: str) -> None:
        """Record what was skipped and why, and say it as the command's other messages are said."""
        self.notes.append(text)
        log.warning("group: %s", text)


def run_group(
    out_dir: Path,
    participants_tsv: Path | None = None,
    group_column: str = "group",
    exclude: QcThresholds | None = None,
    contrast: tuple[str, str] | None = None,
    equal_var: bool = False,
    participant_labels=None,
    settings_digest: str | None = None,
) -> GroupResult:
    """Collect a trdnet output folder into cohort tables and statistics.

    Parameters
    ----------
    out_dir : Path
        Root of a trdnet derivatives folder (after the participant step).
    participants_tsv : Path, optional
        BIDS ``participants.tsv``; default: searched beside the outputs and in
        the raw BIDS root of the fMRIPrep input (see
        :func:`~trdnet.group.participants.find_participants_tsv`). Without
        one, no group statistics are computed (a note says so).
    group_column : str
        Column of ``participants.tsv`` holding the group labels.
    exclude : QcThresholds, optional
        Leave out runs breaking these thresholds (recorded in
        ``exclusions.tsv`` and every sidecar). None: keep every finished run.
    contrast : (str, str), optional
        Group labels a and b to compare (a - b). Default: the two labels
        present, in sorted order; required with more than two labels.
    equal_var : bool
        False (default): Welch's t-test; True: Student's t-test.
    participant_labels : list of str, optional
        Only these participants; each one without a finished run is listed in
        ``exclusions.tsv`` with the reason (failed, interrupted, never processed).
    settings_digest : str, optional
        Keep only the runs processed with these settings (their digest); the
        others are listed in ``exclusions.tsv``. Without it, runs of different
        settings are refused (:func:`~trdnet.group.digests.select_settings_digest`).

    Returns
    -------
    GroupResult
    """
    out_dir = Path(out_dir)
    group_dir = out_dir / "group"
    records, problems = discover_runs(out_dir, participant_labels)
    check_group_folder_writable(out_dir)
    records, other_settings = select_settings_digest(records, out_dir, settings_digest)
    problems += other_settings
    simulated = any(r.simulated for r in records)
    result = GroupResult(group_dir, n_runs=len(records))
    context = _Context(out_dir, simulated, exclude)

    networks = collect_table(records, "networks")
    targets = collect_table(records, "targets")
    qc = collect_table(records, "qc")
    check_columns(networks, ["network_a", "network_b", "mean_z"], "networks tables")
    if len(qc):
        check_columns(qc, ["mean_fd", "minutes_retained"], "qc tables")
    else:
        qc = qc.reindex(columns=[*ID_COLUMNS, "mean_fd", "minutes_retained"])
    without_qc = [r.prefix for r in records if "qc" not in r.files]
    if without_qc and exclude is not None:
        result.note(f"{len(without_qc)} run(s) have no QC table (ROI time series): the QC thresholds "
                    "were not applied to them")
    without_targets = [r.prefix for r in records if "targets" not in r.files]
    if without_targets:
        result.note(f"{len(without_targets)} run(s) have no targets table (ROI time series or surface runs: "
                    "targeting needs voxel-wise data); targets.tsv lists only the others")
    if problems:
        result.note(f"{len(problems)} run(s) or participant(s) without a usable result: see exclusions.tsv")

    reasons = exclude.reasons(qc) if exclude is not None else pd.Series("", index=qc.index)
    excluded_runs = set(qc.loc[reasons != "", "run"])
    qc["excluded_reason"] = reasons.replace("", None)
    for table in (networks, targets, qc):
        table.insert(len(ID_COLUMNS), "included", ~table["run"].isin(excluded_runs))
    kept = [r for r in records if r.prefix not in excluded_runs]
    result.n_runs_included = len(kept)
    if not kept:
        result.note(f"every run broke the QC thresholds {exclude.to_dict()}: no statistics, no group map")
    exclusions = [dict(p, applies_to="all") for p in problems]
    exclusions += [{"participant_id": row.participant_id, "run": row.run, "reason": f"QC: {row.excluded_reason}",
                    "applies_to": "all"} for row in qc[~qc["included"]].itertuples()]

    write = context.writer(group_dir, result)
    inputs = {kind: [r.files[kind] for r in records if kind in r.files] for kind in ("networks", "targets", "qc")}
    write("networks", networks, "Within- and between-network connectivity of every collected run (one row per "
          "run x network pair)", {**_ID_DOCS, **COLUMNS["networks"]}, inputs["networks"])
    write("targets", targets, "TMS targets of every collected run", {**_ID_DOCS, **COLUMNS["targets"]},
          inputs["targets"])
    write("qc", qc, "Run-level quality control of every collected run",
          {**_ID_DOCS, **COLUMNS["qc"], "excluded_reason": "Why the run broke the QC thresholds (n/a if it passed)"},
          inputs["qc"])

    wide = participant_means(networks[networks["included"]])
    mean_fd = participant_mean_fd(qc[qc["included"]])
    result.n_participants_included = int(wide.shape[0])
    if wide.shape[0] < 3:
        result.note(f"QC-FC needs at least 3 participants; {wide.shape[0]} included: r and p are n/a")
    write("qcfc", qcfc_table(wide, mean_fd),
          "QC-FC motion check: correlation across participants of each network connectivity value with mean "
          "framewise displacement. " + PER_PARTICIPANT_NOTE, QCFC_COLUMNS, inputs["networks"] + inputs["qc"],
          {"Measure": "mean_z (Fisher z)", "Correlation": "Pearson (scipy.stats.pearsonr)"})

    stats_table, stats_extra, stats_exclusions = _statistics(
        out_dir, records, wide, participants_tsv, group_column, contrast, equal_var, result.note)
    exclusions += stats_exclusions
    if stats_table is None:
        context.remove(group_dir / "statistics.tsv")
    else:
        write("statistics", stats_table, "Two-sample group comparison of network connectivity per network pair. "
              + PER_PARTICIPANT_NOTE, STATISTICS_COLUMNS, inputs["networks"] + [stats_extra["ParticipantsFile"]],
              stats_extra)

    exclusion_table = pd.DataFrame(exclusions, columns=list(EXCLUSION_COLUMNS))
    result.exclusions = exclusion_table
    write("exclusions", exclusion_table, "Runs and participants left out of the group outputs, and why",
          EXCLUSION_COLUMNS, inputs["qc"])

    _write_seed_map(context, kept, group_dir, result)
    if result.notes:
        write_json(group_dir / "notes.json", {"Notes": result.notes})
    else:
        context.remove(group_dir / "notes.json")
    return result


def _statistics(out_dir, records, wide, participants_tsv, group_column, contrast, equal_var, note):
    """Group comparison table, its sidecar extras and statistics-only exclusions; (None, None, []) if skipped."""
    path = Path(participants_tsv) if participants_tsv is not None else find_participants_tsv(out_dir, records)
    if path is None:
        note("no participants.tsv found beside the outputs or in the input's raw BIDS root: group statistics not "
             "computed (give one with --participants-tsv; participants_tsv= of run_group)")
        return None, None, []
    groups = read_groups(path, group_column)
    exclusions = [{"participant_id": pid, "run": "all", "applies_to": "statistics",
                   "reason": f"no {group_column!r} label in {path.name}"}
                  for pid in wide.index if pid not in groups.index]
    levels = sorted(set(groups.reindex(wide.index).dropna()))
    if contrast is not None:
        contrast = tuple(str(c) for c in contrast)
        if len(contrast) != 2 or contrast[0] == contrast[1] or not set(contrast) <= set(levels):
            raise SettingsError(f"contrast={contrast!r}; accepted: two different labels of column "
                                f"{group_column!r} among included participants: {levels}")
    elif len(levels) == 2:
        contrast = tuple(levels)
    else:
        note(f"{path}: column {group_column!r} has {len(levels)} label(s) {levels} among included participants; "
             "a two-sample comparison needs two (another column with --group-column, or two labels with "
             "contrast= of run_group): statistics not computed")
        return None, None, exclusions
    test = "Student's t-test (pooled variance)" if equal_var else "Welch's t-test (unequal variances)"
    extra = {"ParticipantsFile": path, "GroupColumn": group_column, "Contrast": list(contrast),
             "Test": f"{test}, two-sided, scipy.stats.ttest_ind", "EffectSize": "Hedges' g",
             "MultipleComparisons": "Benjamini-Hochberg FDR over network pairs", "Measure": "mean_z (Fisher z)"}
    return two_sample_table(wide, groups, contrast, equal_var), extra, exclusions


def _write_seed_map(context, kept, group_dir: Path, result: GroupResult) -> None:
    path = group_dir / GROUP_MAP_NAME
    if not any("boldmap" in r.files for r in kept):
        result.note("no included run has an sgACC map: group sgACC map not written")
        context.remove(path)
        return
    img, used = mean_seed_map(kept)
    result.files["seedmap"] = write_nifti(path, img)
    inputs = [r.files["boldmap"] for r in kept if "boldmap" in r.files]
    write_json(sidecar_path(path), context.sidecar(
        "Group sgACC seed map: mean Fisher z (arctanh r) of the participants' sgACC r maps; a participant's runs "
        "are averaged first so each participant counts once; a voxel outside a participant's mask does not count "
        "for them; 0 where no participant has data. For the 'seedmap' targeting method.",
        None, inputs, {"Participants": sorted(used), "Runs": used, "NParticipants": len(used)}))


class _Context:
    """Shared sidecar content and writing of the group outputs."""

    def __init__(self, out_dir: Path, simulated: bool, exclude: QcThresholds | None):
        self.out_dir, self.simulated, self.exclude = out_dir, simulated, exclude

    def _relative(self, path) -> str:
        path = Path(path)
        try:
            return str(path.relative_to(self.out_dir))
        except ValueError:
            return str(path)

    def sidecar(self, description: str, columns: dict | None, inputs, extra: dict | None = None) -> dict:
        content = {"Description": description}
        if columns:
            content["Columns"] = columns
        content.update({
            "Inputs": [self._relative(p) for p in inputs],
            "QcThresholds": self.exclude.to_dict() if self.exclude is not None else None,
            "Simulated": self.simulated,
            "Software": software_versions(),
        })
        if self.simulated:
            content["Note"] = SIMULATED_NOTE
        if extra:
            content.update({k: (self._relative(v) if isinstance(v, Path) else v) for k, v in extra.items()})
        return content

    def writer(self, group_dir: Path, result: GroupResult):
        def write(name, table, description, columns, inputs, extra=None):
            path = write_tsv(group_dir / f"{name}.tsv", table)
            write_json(group_dir / f"{name}.json", self.sidecar(description, columns, inputs, extra))
            result.files[name] = path
            return path
        return write

    @staticmethod
    def remove(path: Path) -> None:
        """Remove a stale output (and its sidecar) that this run does not produce."""
        path.unlink(missing_ok=True)
        sidecar_path(path).unlink(missing_ok=True)
