"""Refusing, before any work, a user atlas that cannot label the runs it is given.

The one place that knows both halves: the atlas and labels table as read by
:mod:`trdnet.networks.rois`, and the surface atlases' meshes of
:mod:`trdnet.networks.surface_atlas`.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib

from ..geometry import HEMISPHERES
from ..errors import InputError
from ..inputs.surface import _CIFTI_CORTEX, FSAVERAGE_VERTICES, FSLR_VERTICES, SurfaceRun
from .rois import network_rois
from .surface_atlas import check_atlas_mesh, is_surface_atlas, read_surface_labels


def check_atlas_fits(settings, runs) -> None:
    """Refuse, before any work, a user atlas that cannot label the runs.

    The atlas and its labels table are read (label values missing from the
    atlas, networks without a parcel), then each run is checked: a surface
    atlas needs a surface run on a mesh with its vertex counts (known from
    the space name for fsaverage and fsLR, from the header for CIFTI; fsnative
    meshes are checked when the run is read), a 3D labels image a volume run.

    Parameters
    ----------
    settings : trdnet.config.NetworkSettings
    runs : list of trdnet.inputs.runs.Run

    Raises
    ------
    InputError, SettingsError
        Naming the atlas or the labels table and the problem.
    """
    if settings.atlas != "labels" or not settings.labels_img:
        return
    network_rois(settings)
    surface = is_surface_atlas(settings.labels_img)
    labels = read_surface_labels(settings.labels_img) if surface else None
    for run in runs:
        if not hasattr(run, "bold"):
            continue  # ROI time-series runs carry their own labels
        if isinstance(run, SurfaceRun) != surface:
            kind = "a surface atlas" if surface else "a volume labels image"
            raise InputError(f"{settings.labels_img}: {kind} cannot label run {Path(str(run.bold)).name} "
                             f"(space {run.space!r}); give {'a 3D labels image' if surface else 'a surface atlas'}")
        if not surface:
            continue
        if run.kind == "cifti":
            sizes = _cifti_mesh_sizes(run.bold)
        elif run.space in FSAVERAGE_VERTICES:
            sizes = dict.fromkeys(HEMISPHERES, FSAVERAGE_VERTICES[run.space])
        elif run.space == "fsLR":
            sizes = dict.fromkeys(HEMISPHERES, FSLR_VERTICES)
        else:
            continue  # fsnative: the participant's mesh is read with the run
        check_atlas_mesh(labels, sizes, run.space)


def _cifti_mesh_sizes(path) -> dict:
    try:
        brain = nib.load(path).header.get_axis(1)
    except Exception:  # noqa: BLE001 - an unreadable file fails its own run with its own message
        return {}
    return {_CIFTI_CORTEX[name]: int(n) for name, n in brain.nvertices.items() if name in _CIFTI_CORTEX}
