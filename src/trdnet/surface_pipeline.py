"""The per-run core for cortical-surface runs: read once, clean with the volume operator.

A surface run (:class:`~trdnet.inputs.surface.SurfaceRun`) is cleaned exactly
as a volume run (:func:`trdnet.denoise.clean_columns`: the same T x T
operator), its columns being the mesh vertices with signal
(:class:`~trdnet.geometry.MeshGeometry`). Networks use the same ROI tables
(spheres around the Seitzman coordinates catch the vertices within their
radius, looked up at the vertices' MNI152 coordinates), and so does targeting
(:mod:`trdnet.targeting` works on any :class:`~trdnet.geometry.Geometry`);
this module writes the per-vertex maps as GIFTI or CIFTI files.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .cleaned import CleanedRun
from .entities import SEED_MAP_ENTITIES
from .config import DenoiseSettings
from .errors import InputError
from .inputs.repetition import RepetitionTime, check_plausible, resolve_tr_values
from .inputs.surface import MNI305_NOTE, SurfaceRun, cifti_tr, load_surface_run

log = logging.getLogger(__name__)


def clean_surface_run(run: SurfaceRun, settings: DenoiseSettings) -> CleanedRun:
    """Read a surface run's vertices with signal and clean them.

    Parameters
    ----------
    run : SurfaceRun
    settings : DenoiseSettings

    Returns
    -------
    CleanedRun
        ``space`` is the run's :class:`~trdnet.geometry.MeshGeometry`; ``qc``
        also counts the vertices left out (``n_vertices_excluded``) and, for
        fsaverage, says how MNI152 coordinates were obtained.

    Raises
    ------
    InputError
        No repetition time (a ``.func.gii`` carries none: it must be in the
        JSON sidecar), or the problems of :func:`~trdnet.inputs.surface.load_surface_run`.
    """
    from .denoise import clean_columns

    tr = surface_repetition_time(run)
    data, geometry = load_surface_run(run)
    cleaned = clean_columns(run, settings, geometry, tr, int(data.shape[0]), lambda: data)
    cleaned.qc["n_vertices_excluded"] = int(sum(geometry.n_excluded.values()))
    cleaned.qc["surface"] = geometry.surface
    if run.space.startswith("fsaverage"):
        cleaned.qc["template_coordinates"] = MNI305_NOTE
    return cleaned


def surface_repetition_time(run: SurfaceRun) -> RepetitionTime:
    """A surface run's TR: the JSON sidecar's, checked against a CIFTI file's series step.

    A ``.func.gii`` carries no TR, so its sidecar's is used alone. A CIFTI
    file's ``SeriesStep`` is compared with the sidecar as a NIfTI header is for
    volume runs (:func:`~trdnet.inputs.repetition.resolve_tr_values`): the
    sidecar wins on disagreement, which is logged once and kept in the QC.

    Raises
    ------
    InputError
        No TR at all, or one outside the plausible range (with its likely unit).
    """
    source = run.tr_source or "JSON sidecar RepetitionTime"
    if run.kind == "cifti":
        repetition = resolve_tr_values(run.bold, run.tr, cifti_tr(run.bold), source, "CIFTI header SeriesStep")
        if repetition.note:
            log.warning("%s: %s", run.bold, repetition.note)
        return repetition
    if run.tr is None:
        raise InputError(f"{run.bold}: no RepetitionTime in its JSON sidecar (a GIFTI file carries no TR)")
    return RepetitionTime(check_plausible(run.tr, run.bold), source)


def write_surface_maps(run: SurfaceRun, geometry, out_dir: Path, settings, maps, extra: dict) -> list[Path]:
    """Write per-column maps of a surface run: one GIFTI per hemisphere over the whole mesh, or one CIFTI file.

    Parameters
    ----------
    run : SurfaceRun
    geometry : trdnet.geometry.MeshGeometry
    out_dir : Path
        Root of the outputs (the run's folder is below it).
    settings : trdnet.config.Settings
    maps : sequence of (dict, str, numpy.ndarray, str, str)
        ``(entities, suffix, values, sidecar kind, description)`` per map: the
        entities added to the run's prefix (e.g. ``{"desc": "sgacc", "stat":
        "r"}``), the BIDS suffix (``boldmap``, ``mask``), one value per
        column, and the sidecar's kind and description. Masks (suffix
        ``mask``) are written as ``.label.gii`` (0 outside, 1 inside), maps
        as ``.func.gii``; CIFTI runs get ``.dscalar.nii`` files with the
        input's brain models. Vertices that are not columns (medial wall, no
        signal) get NaN in maps and 0 in masks.
    extra : dict
        Added to every sidecar.

    Returns
    -------
    list of Path
    """
    from .entities import sidecar_path
    from .outputs import atomic_write_bytes, write_json
    from .sidecars import sidecar

    folder = Path(out_dir) / run.subject_dir
    files = []
    for entities, suffix, values, kind, description in maps:
        paths = map_paths(folder, run.prefix, entities, suffix, run.kind)
        is_mask = suffix == "mask"
        if run.kind == "cifti":
            image = cifti_scalar_map(run.bold, geometry, np.asarray(values, dtype=np.float32),
                                     entities.get("desc", suffix), fill=0.0 if is_mask else np.nan)
            written = {"": atomic_write_bytes(paths[""], image.to_bytes())}
        else:
            written = {}
            for hemi in ("L", "R"):
                if hemi not in geometry.n_mesh_vertices:
                    continue
                full = geometry.hemisphere_values(values, hemi, fill=0.0 if is_mask else np.nan)
                written[hemi] = atomic_write_bytes(paths[hemi], _gifti(full, is_mask).to_bytes())
        for hemi, path in written.items():
            files.append(path)
            where = "brain-model column (cortex vertex or subcortical voxel)" if not hemi else \
                f"{hemi} vertex of the {geometry.space} mesh"
            files.append(write_json(sidecar_path(path), sidecar(kind, description.format(where), run, settings,
                                                                 extra=extra)))
    return files


def _gifti(values: np.ndarray, is_mask: bool):
    import nibabel as nib

    if not is_mask:
        return nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(
            values.astype(np.float32), intent="NIFTI_INTENT_CORREL", datatype="NIFTI_TYPE_FLOAT32")])
    labels = nib.gifti.GiftiLabelTable()
    for key, name in ((0, "outside"), (1, "inside")):
        label = nib.gifti.GiftiLabel(key=key)
        label.label = name
        labels.labels.append(label)
    return nib.gifti.GiftiImage(labeltable=labels, darrays=[nib.gifti.GiftiDataArray(
        values.astype(np.int32), intent="NIFTI_INTENT_LABEL", datatype="NIFTI_TYPE_INT32")])


def cifti_scalar_map(source, geometry, values, name: str, fill: float = np.nan):
    """A CIFTI-2 dense scalar image (``.dscalar.nii``) with the brain models of ``source``.

    Parameters
    ----------
    source : str or Path
        The run's ``.dtseries.nii`` (its brain-model axis is reused).
    geometry : MeshGeometry
        With ``source_columns`` (see :func:`trdnet.inputs.surface.load_cifti_run`).
    values : numpy.ndarray, shape (V,)
        One value per geometry column; other brain-model columns get NaN.
    name : str
        Name of the map (the scalar axis).
    fill : float
        Value of the brain-model columns that are not geometry columns (no signal).

    Returns
    -------
    nibabel.Cifti2Image
    """
    import nibabel as nib

    brain = nib.load(source).header.get_axis(1)
    full = np.full((1, brain.size), fill, dtype=np.float32)
    full[0, geometry.source_columns] = values
    return nib.Cifti2Image(full, header=(nib.cifti2.ScalarAxis([name]), brain))


def map_paths(folder: Path, prefix: str, entities: dict, suffix: str, kind: str = "gifti") -> dict:
    """Where a surface run's map is written (see :func:`write_surface_maps`).

    Parameters
    ----------
    folder : Path
        The run's output folder.
    prefix : str
        The run's output prefix (``sub-<l>_task-<l>_space-<mesh>``, ``den-`` kept for CIFTI).
    entities : dict
        Entities added to the prefix's (``desc``, ``stat``).
    suffix : str
        ``boldmap`` or ``mask``.
    kind : str
        ``gifti`` (one file per hemisphere) or ``cifti`` (one dense scalar file).

    Returns
    -------
    dict
        ``{"L": path, "R": path}`` or ``{"": path}``.
    """
    from .entities import output_name

    if kind == "cifti":
        return {"": Path(folder) / output_name(prefix, suffix, ".dscalar.nii", **entities)}
    extension = ".label.gii" if suffix == "mask" else ".func.gii"
    return {hemi: Path(folder) / output_name(prefix, suffix, extension, **entities, hemi=hemi) for hemi in ("L", "R")}


def seed_map_paths(folder: Path, prefix: str, kind: str = "gifti") -> dict:
    """Where a surface run's sgACC seed map is written (see :func:`map_paths`)."""
    return map_paths(folder, prefix, SEED_MAP_ENTITIES, "boldmap", kind)
