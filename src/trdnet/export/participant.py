"""Navigator files of a participant-level target (one target from all of a person's runs).

The participant-level target is what a TMS team would stimulate, so it gets
the files a run's target gets (TSV with checks, Brainsight, Localite, NIfTI
spheres, each with its sidecar), written by the one export path
(:func:`trdnet.pipeline.write_navigation` -> :func:`trdnet.export.export_targets`)
under ``desc-participantnavtargets`` in the participant's folder:
``sub-<l>/func/sub-<l>_task-<l>_space-<T1w or template>_desc-participantnavtargets_<suffix>``.

Which T1w: the anatomy found with the runs (:attr:`trdnet.inputs.runs.Run.anatomy`).
fMRIPrep usually writes one T1w per participant (its longitudinal template
across sessions), and then every run carries the same one. When sessions
carry T1w images of their own, a target in template space is exported once
on each of them, in that session's folder with its ``ses-`` entity
(``sub-<l>/ses-<l>/func/sub-<l>_ses-<l>_task-...``): the team loads the
files that match the image in its navigator. A target found in T1w space
from runs of different T1w images is refused (its coordinates belong to
no single image).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from ..errors import ExportError

#: ``desc-`` entity of the participant-level navigator files.
PARTICIPANT_NAVIGATION_DESC = "participantnavtargets"


def anatomy_groups(runs) -> list[tuple[object, list]]:
    """The participant's runs grouped by the T1w image they carry (in run order).

    Parameters
    ----------
    runs : sequence of trdnet.inputs.runs.Run

    Returns
    -------
    list of (NativeAnatomy or None, list of Run)
        One entry per distinct ``anatomy.t1w`` (runs without anatomy share the entry ``None``).
    """
    groups: dict[object, tuple[object, list]] = {}
    for run in runs:
        key = None if run.anatomy is None else Path(run.anatomy.t1w)
        groups.setdefault(key, (run.anatomy, []))[1].append(run)
    return list(groups.values())


def export_participant_target(runs, targets: pd.DataFrame, entities: dict, out_dir: Path,
                              settings) -> tuple[dict, list[Path]]:
    """Write the navigator files of a participant-level target.

    Parameters
    ----------
    runs : sequence of trdnet.inputs.runs.Run
        The runs the target was made from (their anatomy and provenance).
    targets : pandas.DataFrame
        The participant-level targets table (``target``, ``x``, ``y``, ``z``,
        ``space``; ``hemi``/``vertex`` for cortical meshes), as written to
        ``desc-participant_targets.tsv``.
    entities : dict
        The participant's entities (``sub``, ``task``, ``acq``, ``space``: no session or run).
    out_dir : Path
        Root of the trdnet outputs; files go to the participant's folder (or
        each session's, see the module notes).
    settings : trdnet.config.Settings
        Its ``export`` section chooses the formats and the coil pose.

    Returns
    -------
    summary : dict
        ``navigation_*`` values of the export (see :func:`trdnet.pipeline.write_navigation`), with
        ``navigation_t1w`` naming the T1w image(s) used.
    files : list of Path
        Every file written.

    Raises
    ------
    ExportError
        Targets in T1w space from runs of different T1w images, or what
        :func:`trdnet.export.export_targets` refuses.
    """
    from ..pipeline import write_navigation

    groups = anatomy_groups(runs)
    if len(groups) > 1 and (targets["space"].astype(str) == "T1w").any():
        images = ", ".join(str(anat.t1w.name) if anat is not None else "none" for anat, _ in groups)
        raise ExportError(f"sub-{entities['sub']}: the participant target is in T1w space but its runs come "
                          f"with different T1w images ({images}); its coordinates belong to no single image, "
                          "so no navigator file was written (process each session's runs on their own)")
    summary: dict = {}
    files: list[Path] = []
    for anat, members in groups:
        own = dict(entities)
        if len(groups) > 1 and anat is not None and anat.session:
            own["ses"] = anat.session
        participant = dataclasses.replace(members[0], entities=own, anatomy=anat)
        part_summary, written = write_navigation(participant, targets, out_dir, settings,
                                                 desc=PARTICIPANT_NAVIGATION_DESC)
        files += written
        if not summary:
            summary = dict(part_summary)
        if anat is not None:
            summary.setdefault("navigation_t1w", [])
            summary["navigation_t1w"].append(anat.t1w.name)
    return summary, files
