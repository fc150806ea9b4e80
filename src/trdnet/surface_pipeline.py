"""The per-run core for cortical-surface runs: read once, clean with the volume operator.

A surface run (:class:`~trdnet.inputs.surface.SurfaceRun`) is cleaned exactly
as a volume run (:func:`trdnet.denoise.clean_columns`: the same T x T
operator), its columns being the mesh vertices with signal
(:class:`~trdnet.geometry.MeshGeometry`). Networks use the same ROI tables
(spheres around the Seitzman coordinates catch the vertices within their
radius, looked up at the vertices' MNI152 coordinates).
"""

from __future__ import annotations

from pathlib import Path

from .cleaned import CleanedRun
from .config import DenoiseSettings
from .errors import InputError
from .inputs.surface import MNI305_NOTE, SurfaceRun, load_surface_run

#: What a surface run's summary and report say about targeting, for now.
SURFACE_TARGETING = ("not implemented for surface runs yet: networks and QC are written, "
                     "no sgACC map or target (use a volume run for targeting)")


def clean_surface_run(run: SurfaceRun, settings: DenoiseSettings, root: Path | None = None) -> CleanedRun:
    """Read a surface run's vertices with signal and clean them.

    Parameters
    ----------
    run : SurfaceRun
    settings : DenoiseSettings
    root : Path, optional
        The derivatives folder (fsnative surfaces are read from its ``anat/``).

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

    if run.tr is None or run.tr <= 0:
        raise InputError(f"{run.bold}: no RepetitionTime in its JSON sidecar (a GIFTI file carries no TR)")
    data, geometry = load_surface_run(run, root)
    cleaned = clean_columns(run, settings, geometry, float(run.tr), int(data.shape[0]), lambda: data)
    cleaned.qc["n_vertices_excluded"] = int(sum(geometry.n_excluded.values()))
    cleaned.qc["surface"] = geometry.surface
    if run.space.startswith("fsaverage"):
        cleaned.qc["template_coordinates"] = MNI305_NOTE
    return cleaned
