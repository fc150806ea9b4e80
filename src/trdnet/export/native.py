"""Bring targets to the participant's T1w, check them, project them to the
scalp and write the files a TMS team loads in its navigator."""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from .._version import __version__
from ..config import MNI_SPACE, ExportSettings
from ..entities import NAVIGATION_DESC, output_name, parse_entities, participant_session
from ..errors import ExportError, SettingsError
from ..resources import read_table
from ..templates import mni152_2mm
from . import brainsight, checks, coil, localite, scalp, writers
from ..inputs.anatomy import NativeAnatomy
from .surface import surface_targets_to_t1w
from .transforms import PointTransform, load_point_transform

log = logging.getLogger("trdnet.export")

COIL_ORIENTATIONS = coil.ORIENTATIONS
FORMATS = ("brainsight", "localite", "nifti")
REFERENCE_TARGETS = "reference_targets.tsv"
#: SourceImage of a template-space export: the space the coordinates are in, not a file trdnet wrote.
TEMPLATE_IMAGE = (
    f"{MNI_SPACE} template (ICBM152 2009c nonlinear asymmetric); not a file to load from this folder: "
    f"load the {MNI_SPACE} T1w template in the navigator, e.g. TemplateFlow's "
    f"tpl-{MNI_SPACE}_res-01_T1w.nii.gz (trdnet's own checks used nilearn's bundled 2 mm MNI152 2009 template)"
)


@dataclass
class ExportResult:
    """What :func:`export_targets` produced.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per target: source and output coordinates, voxel indices,
        check flags, scalp point, depth, nearest electrode and a note.
    files : list of Path
        Every written file.
    space : str
        Space of the output coordinates (``T1w`` or the template).
    notes : list of str
        Notes that apply to the whole export.
    """

    table: pd.DataFrame
    files: list[Path] = field(default_factory=list)
    space: str = "T1w"
    notes: list[str] = field(default_factory=list)


def export_targets(
    targets: pd.DataFrame,
    anat: NativeAnatomy | None,
    out_dir: str | Path,
    prefix: str,
    settings: ExportSettings | None = None,
    simulated: bool = False,
    desc: str = NAVIGATION_DESC,
) -> ExportResult:
    """Map targets to native T1w space, check them and write navigator files.

    Parameters
    ----------
    targets : pandas.DataFrame
        Columns ``x``, ``y``, ``z`` (world RAS mm); optional ``name`` and
        ``space`` (``MNI152NLin2009cAsym`` when absent, or ``T1w`` for targets
        already found in native space, or a cortical mesh with ``hemi`` and
        ``vertex``: see :mod:`trdnet.export.surface`); optional ``reliability``
        (the target's word) and ``reliability_note`` (what it means for the
        team), carried into every file a person reads: the coords TSV, the
        sidecars, Brainsight's comment lines, Localite's comments and marker
        fields, and the target's name in both navigators unless the word is
        ``good`` (:meth:`trdnet.export.writers.ExportMeta.display_name`).
    anat : NativeAnatomy or None
        The participant's T1w files; None keeps the template space and uses
        the template head (labelled in every output).
    out_dir : str or Path
        Folder receiving the files.
    prefix : str
        BIDS prefix (``sub-<l>[_ses-<l>]_task-...``); a ``space-`` entity in it
        is replaced by the output space.
    settings : ExportSettings, optional
    simulated : bool
        Mark every output as simulated.
    desc : str
        ``desc-`` entity of the written files (``navtargets`` for a run's
        targets, ``participantnavtargets`` for a participant-level target).

    Returns
    -------
    ExportResult

    Raises
    ------
    ExportError
        Missing T1w, missing / corrupt / other participant's transform,
        malformed target table.
    """
    settings = settings or ExportSettings()
    _validate(settings)
    # targets on a cortical mesh: fsnative vertices are T1w already, template vertices through the sphere
    targets, mesh_notes, mesh_warnings = surface_targets_to_t1w(targets, anat if settings.native else None)
    table = _normalise(targets)
    simulated = bool(simulated or (anat is not None and anat.simulated))
    if anat is not None and settings.native:
        ctx = _native_context(table, anat, settings)
    else:
        if (table["space"] == "T1w").any():
            raise ExportError(
                "targets in space T1w need the participant's anatomy; pass a NativeAnatomy "
                "(Run.anatomy, or trdnet.inputs.anatomy.find_native_anatomy)"
            )
        ctx = _template_context(settings)
    ctx["notes"] += mesh_warnings
    out = _evaluate(table, ctx, settings)
    participant = _participant(prefix, anat)
    targets_of = prefix if desc == NAVIGATION_DESC else f"{prefix} (participant)"
    if "brainsight" in settings.formats and ctx["brainsight_system"].name is None:
        ctx["notes"].append(f"no Brainsight file: {ctx['brainsight_system'].reason}")
    meta = writers.ExportMeta(
        participant=participant,
        source_image=ctx["image_name"],
        space=ctx["space"],
        simulated=simulated,
        notes=list(ctx["notes"]) + mesh_notes,
        reliability={n: w for n, w in zip(out["name"], out["reliability"]) if w},
        reliability_notes={n: t for n, t in zip(out["name"], out["reliability_note"]) if t},
        targets_of=targets_of,
    )
    # the name each target has in Brainsight and Localite, to match their rows to this table's
    out["navigator_name"] = [meta.display_name(name) for name in out["name"]]
    files = _write(out, ctx, meta, Path(out_dir), prefix, settings, desc)
    _log_problems(targets_of, ctx["notes"], out)
    return ExportResult(table=out, files=files, space=ctx["space"], notes=list(ctx["notes"]) + mesh_notes)


def _log_problems(files: str, notes: list[str], out: pd.DataFrame) -> None:
    """One warning per problem of the export, and one per target not ok (through logging).

    ``files`` names the navigator files the warnings are about: the run's
    BIDS prefix (several runs of a participant each have their own files and
    warnings), with ``(participant)`` for a participant-level target's.
    """
    for note in dict.fromkeys(notes):
        log.warning("%s: %s", files, note)
    for name, note in zip(out.loc[~out["ok"], "name"], out.loc[~out["ok"], "note"]):
        log.warning("%s: target %s not ok: %s", files, name, note or "see the header notes")


def _validate(settings: ExportSettings) -> None:
    if settings.coil_orientation not in COIL_ORIENTATIONS:
        raise SettingsError(
            f"export.coil_orientation={settings.coil_orientation!r}; accepted: {COIL_ORIENTATIONS}"
        )
    unknown = set(settings.formats) - set(FORMATS)
    if unknown:
        raise SettingsError(f"export.formats {sorted(unknown)} unknown; accepted: {FORMATS}")


def _normalise(targets: pd.DataFrame) -> pd.DataFrame:
    missing = {"x", "y", "z"} - set(targets.columns)
    if missing:
        raise ExportError(
            f"target table lacks columns {sorted(missing)}; needs x, y, z (world RAS mm) "
            "and optionally name, space"
        )
    table = pd.DataFrame(
        {
            "name": targets["name"].astype(str).to_numpy()
            if "name" in targets
            else [f"target{n + 1}" for n in range(len(targets))],
            "source_space": targets["space"].astype(str).to_numpy()
            if "space" in targets
            else MNI_SPACE,
            "source_x": targets["x"].astype(float).to_numpy(),
            "source_y": targets["y"].astype(float).to_numpy(),
            "source_z": targets["z"].astype(float).to_numpy(),
        }
    )
    for column in ("reliability", "reliability_note"):
        table[column] = targets[column].fillna("").astype(str).to_numpy() if column in targets else ""
    table["space"] = table["source_space"]
    bad = set(table["source_space"]) - {MNI_SPACE, "T1w"}
    if bad:
        raise ExportError(f"target space(s) {sorted(bad)} not supported; accepted: {MNI_SPACE}, T1w")
    return table


def _native_context(table: pd.DataFrame, anat: NativeAnatomy, settings: ExportSettings) -> dict:
    if anat.t1w is None or not Path(anat.t1w).is_file():
        raise ExportError(f"{anat.t1w}: the participant's desc-preproc_T1w is missing")
    t1w = checks.load_image(anat.t1w, "T1w")
    system = brainsight.coordinate_system(t1w, settings.brainsight_version, Path(anat.t1w).name)
    if system.name is None:
        # nibabel would still give an affine (a fallback frame no navigator shares): refuse every file
        raise ExportError(f"{anat.t1w}: {system.reason}; navigator export refused, the coordinates' frame "
                          "is undefined")
    notes: list[str] = []
    header = checks.header_checks(t1w, settings.shear_tolerance, settings.qform_sform_tolerance_mm)
    notes += header["notes"]
    needs_xfm = (table["source_space"] != "T1w").any()
    xfm = None
    if anat.xfm_t1w_to_template is not None:
        xfm = load_point_transform(anat.xfm_t1w_to_template, anat.template, "T1w", anat.subject)
    elif needs_xfm:
        raise ExportError(
            f"sub-{anat.subject}: transform from-T1w_to-{anat.template}_mode-image_xfm is missing; "
            "it is needed to map template targets to T1w"
        )
    mask = checks.load_image(anat.brain_mask, "brain mask") if anat.brain_mask else None
    gm, gm_kind = None, None
    if anat.gm_probseg:
        gm, gm_kind = checks.load_image(anat.gm_probseg, "GM probseg"), "probseg"
    elif anat.dseg:
        gm, gm_kind = checks.load_image(anat.dseg, "dseg"), "dseg"
    for img, what in ((mask, "brain mask"), (gm, "GM map")):
        if img is not None and (img.shape[:3] != t1w.shape[:3] or not np.allclose(img.affine, t1w.affine, atol=1e-3)):
            raise ExportError(f"{what} is not on the T1w grid of {Path(anat.t1w).name}")
    if mask is None:
        notes.append("no desc-brain_mask found: brain-mask check not done")
    if gm is None:
        notes.append("no label-GM_probseg or dseg found: grey-matter check not done")
    head = _native_head(t1w, anat.t1w, mask, xfm, settings, notes)
    return {
        "space": "T1w",
        "image": t1w,
        "image_name": Path(anat.t1w).name,
        "brainsight_system": system,
        "header": header,
        "xfm": xfm,
        "mask": mask,
        "gm": gm,
        "gm_kind": gm_kind,
        "head": head,
        "notes": notes,
    }


def _native_head(t1w, t1w_path, mask, xfm: PointTransform | None, settings, notes) -> dict:
    head = t1w_head(t1w, t1w_path)
    voxel = abs(np.linalg.det(t1w.affine[:3, :3]))
    brain_volume = None
    if mask is not None:
        brain_volume = float((np.asanyarray(mask.dataobj) > settings.brain_mask_threshold).sum() * voxel)
    head_volume = float(head["mask"].sum() * voxel)
    if brain_volume and head_volume < settings.min_head_to_brain_ratio * brain_volume:
        if xfm is None:
            notes.append("T1w looks skull-stripped and no transform: scalp projection not done")
            return {"surface": None, "center": None, "source": "none"}
        surface, center = scalp.template_scalp(settings.template_scalp_offset_mm)
        label = scalp.TEMPLATE_HEAD.format(offset=settings.template_scalp_offset_mm)
        notes.append(f"T1w looks skull-stripped: scalp from the {label}, mapped to T1w")
        mapped, _ = xfm.map(np.vstack([surface, center]))
        return {"surface": mapped[:-1], "center": mapped[-1], "source": "template"}
    return {**head, "source": "T1w", "affine": t1w.affine}


#: Heads found in T1w files, by file (see :func:`t1w_head`); the newest last.
_HEADS: OrderedDict = OrderedDict()
#: T1w files whose head is kept: a participant's runs and their participant target share one.
HEADS_KEPT = 2


def t1w_head(t1w, path) -> dict:
    """The head in a T1w (:func:`trdnet.export.scalp.head_mask`), found once per file and process.

    Every run of a participant and the participant target are exported on
    the same ``desc-preproc_T1w``; the head (Otsu's threshold, filled mask,
    scalp voxels) is found at the first and kept for the next ones while the
    file is unchanged (same path, size, modification time and inode).

    Parameters
    ----------
    t1w : nibabel image
        The T1w, loaded from ``path``.
    path : str or Path

    Returns
    -------
    dict
        ``intensity`` (float32 array, read-only), ``threshold`` (float),
        ``mask`` (bool array, read-only), ``surface`` (S x 3 scalp points,
        RAS mm) and ``center`` (3,): shared, not to be modified.
    """
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key in _HEADS:
        _HEADS.move_to_end(key)
        return _HEADS[key]
    data = np.asarray(t1w.dataobj, dtype=np.float32)
    threshold = scalp.otsu_threshold(data)
    mask = scalp.head_mask(t1w, data, threshold)
    center = nib.affines.apply_affine(t1w.affine, np.argwhere(mask).mean(axis=0))
    surface = scalp.surface_points(t1w, mask)
    for array in (data, mask, surface, center):
        array.setflags(write=False)
    _HEADS[key] = {"intensity": data, "threshold": threshold, "mask": mask, "surface": surface, "center": center}
    while len(_HEADS) > HEADS_KEPT:
        _HEADS.popitem(last=False)
    return _HEADS[key]


def _template_context(settings: ExportSettings) -> dict:
    template = mni152_2mm("T1w")
    surface, center, mask, affine = scalp.template_head(settings.template_scalp_offset_mm)
    notes = [
        f"no native anatomy: coordinates stay in {MNI_SPACE}; load the template in the navigator "
        "or map them to the participant before use",
        "scalp from the " + scalp.TEMPLATE_HEAD.format(offset=settings.template_scalp_offset_mm),
    ]
    return {
        "space": MNI_SPACE,
        "image": template,
        "image_name": TEMPLATE_IMAGE,
        # the navigator loads an MNI152 template (sform code 4), whatever file it is
        "brainsight_system": brainsight.CoordinateSystem(
            brainsight.coordinate_system_name(4, "S", settings.brainsight_version), settings.brainsight_version),
        "header": {"shear": False, "qform_sform_mismatch": False},
        "xfm": None,
        "mask": mni152_2mm("brain_mask"),
        "gm": mni152_2mm("GM"),
        "gm_kind": "probseg",
        "head": {"surface": surface, "center": center, "source": "template", "mask": mask, "affine": affine},
        "notes": notes,
    }


def _evaluate(table: pd.DataFrame, ctx: dict, settings: ExportSettings) -> pd.DataFrame:
    out = table.copy()
    n = len(out)
    src = out[["source_x", "source_y", "source_z"]].to_numpy()
    xyz = src.copy()
    covered = np.ones(n, dtype=bool)
    row_notes: list[list[str]] = [[] for _ in range(n)]
    to_map = (out["source_space"] != ctx["space"]).to_numpy()
    if to_map.any():
        xyz[to_map], covered[to_map] = ctx["xfm"].map(src[to_map])
    for i in np.flatnonzero(~covered):
        row_notes[i].append("outside the transform's displacement field: nonlinear part not applied")
    out["space"] = ctx["space"]
    out[["x", "y", "z"]] = xyz
    img = ctx["image"]
    ijk, in_fov = checks.world_to_voxel(img, xyz)
    out[["i", "j", "k"]] = np.rint(ijk).astype(int)
    out["image"] = ctx["image_name"]
    out["in_fov"] = in_fov
    out["in_transform_field"] = covered
    for i in np.flatnonzero(~in_fov):
        row_notes[i].append(f"outside the field of view of {ctx['image_name']}")

    if ctx["mask"] is not None:
        inside = checks.values_at(ctx["mask"], xyz) > settings.brain_mask_threshold
        out["in_brain_mask"] = inside
        for i in np.flatnonzero(in_fov & ~inside):
            row_notes[i].append("outside the brain mask")
    else:
        out["in_brain_mask"] = pd.NA
    _grey_matter(out, ctx, settings, xyz, in_fov, row_notes)

    out["header_shear"] = bool(ctx["header"]["shear"])
    out["qform_sform_mismatch"] = bool(ctx["header"]["qform_sform_mismatch"])
    _scalp(out, ctx, settings, xyz, in_fov, row_notes)
    _electrodes(out, ctx, settings, row_notes)
    flags = ["in_fov", "in_transform_field", "in_brain_mask", "in_grey_matter", "scalp_in_fov"]
    out["ok"] = (
        out[flags].fillna(True).astype(bool).all(axis=1)
        & ~out["header_shear"]
        & ~out["qform_sform_mismatch"]
    )
    out["note"] = ["; ".join(notes) for notes in row_notes]
    return out


def _grey_matter(out, ctx, settings, xyz, in_fov, row_notes) -> None:
    gm_img = ctx["gm"]
    cols = ["nearest_gm_x", "nearest_gm_y", "nearest_gm_z"]
    if gm_img is None:
        out["gm_probability"] = np.nan
        out["in_grey_matter"] = pd.NA
        out[cols] = np.nan
        out["nearest_gm_distance_mm"] = np.nan
        return
    data = np.asanyarray(gm_img.dataobj)
    if ctx["gm_kind"] == "probseg":
        prob = checks.values_at(gm_img, xyz)
        gm_mask = data >= settings.grey_matter_threshold
        out["gm_probability"] = prob
        in_gm = prob >= settings.grey_matter_threshold
    else:
        labels = checks.values_at(gm_img, xyz)
        gm_mask = data == settings.dseg_grey_matter_label
        out["gm_probability"] = np.nan
        in_gm = labels == settings.dseg_grey_matter_label
    out["in_grey_matter"] = in_gm
    nearest = np.full((len(out), 3), np.nan)
    dist = np.zeros(len(out))
    off = np.flatnonzero(~in_gm)
    if off.size:
        nearest[off], dist[off] = checks.nearest_in_mask(gm_img, gm_mask, xyz[off])
    nearest[in_gm] = xyz[in_gm]
    out[cols] = nearest
    out["nearest_gm_distance_mm"] = dist
    for i in off:
        if in_fov[i]:
            row_notes[i].append(
                f"not in grey matter; nearest grey matter {dist[i]:.1f} mm away at "
                f"({nearest[i, 0]:.1f}, {nearest[i, 1]:.1f}, {nearest[i, 2]:.1f})"
            )


def _scalp(out, ctx, settings, xyz, in_fov, row_notes) -> None:
    head = ctx["head"]
    entry = np.full(xyz.shape, np.nan)
    normal = np.full(xyz.shape, np.nan)
    depth = np.full(len(xyz), np.nan)
    if head["surface"] is not None and in_fov.any():
        entry[in_fov], normal[in_fov], depth[in_fov] = scalp.scalp_entries(
            xyz[in_fov], head["surface"], head["center"], head.get("mask"), head.get("affine"),
            head.get("intensity"), head.get("threshold"),
        )
    cut = np.zeros(len(xyz), dtype=bool)
    if head.get("mask") is not None:
        # a field of view that cuts through the head puts the "scalp" on the image's cut face
        cut = scalp.reaches_image_border(entry, head["mask"], head["affine"])
        # not checked (NA) where the target itself is outside the image
        out["scalp_in_fov"] = pd.Series(~cut, index=out.index, dtype="boolean").where(in_fov, pd.NA)
        for i in np.flatnonzero(cut):
            row_notes[i].append(
                f"the line from the target along the scalp normal reaches the edge of {ctx['image_name']} "
                "(its field of view cuts through the head) before the scalp: no scalp entry or coil pose, "
                "left out of the Brainsight and Localite files")
        entry[cut], normal[cut], depth[cut] = np.nan, np.nan, np.nan
    else:
        out["scalp_in_fov"] = pd.NA
    out[["scalp_x", "scalp_y", "scalp_z"]] = entry
    out["scalp_depth_mm"] = depth
    out["head_source"] = {"T1w": "T1w", "template": "template head", "none": "none"}[head["source"]]
    posterior, right = _head_axes(out, ctx)
    if settings.coil_orientation == "identity":
        ctx["notes"].append("coil orientation identity (Brainsight axes along the image's R, A, S), as "
                            "requested: not a coil placement, the coil normal points straight down and its "
                            "axis through the coil centre does not pass through the target")
    poses: list[coil.CoilPose | None] = []
    for i, (name, target) in enumerate(zip(out["name"], xyz)):
        if not np.all(np.isfinite(entry[i])):
            poses.append(None)
            if in_fov[i] and not cut[i]:
                row_notes[i].append("no scalp point above the target: no coil pose, left out of the "
                                    "Brainsight and Localite files")
            continue
        if settings.coil_orientation == "identity":
            pose = coil.identity_pose(name, target, entry[i], normal[i], settings.coil_scalp_distance_mm)
        else:
            side = _side(out.iloc[i], target, head["center"], right[i])
            pose = coil.scalp_normal_pose(name, target, entry[i], normal[i], posterior[i], side * right[i],
                                          settings.coil_handle_angle_deg, settings.coil_scalp_distance_mm)
        coil.check_frame(pose)
        poses.append(pose)
    nan3 = np.full(3, np.nan)
    out[["coil_x", "coil_y", "coil_z"]] = [p.centre if p else nan3 for p in poses]
    out[["coil_normal_x", "coil_normal_y", "coil_normal_z"]] = [p.normal if p else nan3 for p in poses]
    out[["coil_handle_x", "coil_handle_y", "coil_handle_z"]] = [p.handle if p else nan3 for p in poses]
    ctx["poses"] = poses


def _head_axes(out, ctx) -> tuple[np.ndarray, np.ndarray]:
    """The head's posterior and right directions at each target, in the output space.

    In MNI they are the template axes; in T1w they are the MNI axes carried
    through the transform (central differences over +-5 mm), so an oblique or
    tilted head gets its own midline. Without a transform the T1w's world axes
    stand in, and the notes say so.
    """
    n = len(out)
    posterior = np.tile([0.0, -1.0, 0.0], (n, 1))
    right = np.tile([1.0, 0.0, 0.0], (n, 1))
    if ctx["space"] == MNI_SPACE:
        return posterior, right
    if ctx["xfm"] is None:
        ctx["notes"].append("no transform to MNI: the coil handle angle is measured from the T1w's "
                            "world y axis, not from the head's midline")
        return posterior, right
    mni = out[["source_x", "source_y", "source_z"]].to_numpy(float).copy()
    mni[(out["source_space"] != MNI_SPACE).to_numpy()] = 0.0  # the head's axes at the MNI origin
    step = 5.0
    for axis, sign, dest in ((1, -1.0, posterior), (0, 1.0, right)):
        delta = np.zeros(3)
        delta[axis] = sign * step
        plus, _ = ctx["xfm"].map(mni + delta)
        minus, _ = ctx["xfm"].map(mni - delta)
        diff = plus - minus
        dest[:] = diff / np.linalg.norm(diff, axis=1, keepdims=True)
    return posterior, right


def _side(row, target, center, right) -> float:
    """+1 for a target right of the midline, -1 otherwise (MNI x when known)."""
    if row["source_space"] == MNI_SPACE:
        return 1.0 if row["source_x"] > 0 else -1.0
    return 1.0 if (np.asarray(target) - np.asarray(center)) @ right > 0 else -1.0


def _electrodes(out, ctx, settings, row_notes) -> None:
    table = scalp.electrode_table(settings.electrode_kind)
    positions = table[["x", "y", "z"]].to_numpy(float)
    if ctx["space"] != MNI_SPACE:
        if ctx["xfm"] is None:
            out["nearest_electrode"] = ""
            out["electrode_distance_mm"] = np.nan
            for notes in row_notes:
                notes.append("no transform: nearest 10-20 electrode not computed")
            return
        positions, _ = ctx["xfm"].map(positions)
    # cortical projections are compared with the target, scalp positions with the scalp point
    if settings.electrode_kind == "scalp":
        ref = out[["scalp_x", "scalp_y", "scalp_z"]].to_numpy(float)
    else:
        ref = out[["x", "y", "z"]].to_numpy(float)
    names, dist = scalp.nearest_electrode(ref, positions, list(table["label"]))
    out["nearest_electrode"] = names
    out["electrode_distance_mm"] = dist
    out["electrode_kind"] = settings.electrode_kind
    out["electrode_verified"] = [
        str(table.loc[table["label"] == name, "verified"].iloc[0]) if name else ""
        for name in names
    ]


def target_names(names) -> dict[str, str]:
    """What each target name stands for: the shipped reference sites' sources, the personalised targets.

    Parameters
    ----------
    names : iterable of str

    Returns
    -------
    dict
        Name -> description, for the names trdnet knows.
    """
    reference = read_table(REFERENCE_TARGETS).set_index("name")
    out = {}
    for name in dict.fromkeys(map(str, names)):
        if name in reference.index:
            row = reference.loc[name]
            out[name] = (f"non-personalised reference DLPFC site at MNI ({row['x']:g}, {row['y']:g}, {row['z']:g}) "
                         f"mm, the same for every participant: {row['source']}"
                         + ("" if str(row["verified"]) == "yes" else " (coordinates not verified against the paper)"))
        elif name.startswith("personalised"):
            out[name] = ("personalised target: the participant's DLPFC point most anticorrelated with the sgACC"
                         + (f" (method {name.removeprefix('personalised_')})" if "_" in name else ""))
    return out


def _participant(prefix: str, anat: NativeAnatomy | None) -> str:
    if anat is not None:
        return f"sub-{anat.subject}" + (f"_ses-{anat.session}" if anat.session else "")
    ents = parse_entities(prefix)
    if "sub" not in ents:
        return "unknown participant"
    return participant_session(ents)


def _write(out, ctx, meta, out_dir: Path, prefix: str, settings, desc: str) -> list[Path]:
    def path(suffix: str, extension: str) -> Path:
        return out_dir / output_name(prefix, suffix, extension, space=ctx["space"], desc=desc)

    names = list(out["name"])
    xyz = out[["x", "y", "z"]].to_numpy(float)
    system = ctx["brainsight_system"]
    # targets outside the image or without a scalp point have no pose and are left out
    poses = [pose for pose, inside in zip(ctx["poses"], out["in_fov"]) if pose is not None and inside]
    navigator = {
        "CoilOrientation": settings.coil_orientation,
        "CoilHandleAngleDeg": settings.coil_handle_angle_deg,
        "CoilHandleAngleMeaning": coil.HANDLE_ANGLE_MEANING,
        "CoilHandleAngleSource": coil.HANDLE_ANGLE_SOURCE,
        "CoilScalpDistanceMM": settings.coil_scalp_distance_mm,
        "BrainsightCoordinateSystem": system.name,
        "TargetNames": target_names(names),
    }
    # every written target keeps its checks: a target flagged (outside the brain mask, not in grey
    # matter...) is still written, for the team to judge, with the flag and its reason beside it
    navigator_files = {**navigator, "Targets": {
        pose.name: {"Ok": bool(ok), "Note": str(note), "Reliability": str(word), "ReliabilityNote": str(why),
                    "NavigatorName": meta.display_name(pose.name)}
        for pose, inside, ok, note, word, why in zip(ctx["poses"], out["in_fov"], out["ok"], out["note"],
                                                     out["reliability"], out["reliability_note"])
        if pose is not None and inside}}
    files = list(
        writers.write_table(
            path("coords", ".tsv"),
            out,
            meta,
            {
                **navigator,
                "CoilFrame": coil.FRAME,
                "ElectrodeTable": scalp.ELECTRODES_TABLE,
                "ElectrodeKind": settings.electrode_kind,
                "TransformFile": str(Path(ctx["xfm"].path).name) if ctx["xfm"] else None,
                "Header": {k: v for k, v in ctx["header"].items() if k != "notes"},
                "ExportSettings": vars(settings),
                "TrdnetVersion": __version__,
            },
        )
    )
    if poses and "brainsight" in settings.formats:
        if system.name is not None:
            files += brainsight.write_brainsight(path("brainsight", ".txt"), poses, meta, system,
                                                 navigator_files)
    if poses and "localite" in settings.formats:
        files += localite.write_entry_targets(path(*localite.ENTRY_TARGET_NAME), poses,
                                              meta, navigator_files)
        files += localite.write_instrument_markers(path(*localite.INSTRUMENT_MARKER_NAME),
                                                   poses, meta, navigator_files)
    if "nifti" in settings.formats:
        files += writers.write_sphere_nifti(
            path("dseg", ".nii.gz"), names, xyz, ctx["image"], settings.sphere_radius_mm, meta
        )
    return files
