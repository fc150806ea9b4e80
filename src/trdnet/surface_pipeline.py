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

import numpy as np

from .cleaned import CleanedRun
from .config import DenoiseSettings
from .errors import InputError
from .inputs.surface import MNI305_NOTE, SurfaceRun, cifti_tr, load_surface_run

#: What a surface run's summary and report say about targeting, for now.
SURFACE_TARGETING = ("target selection is not implemented for surface runs yet: networks, QC and the "
                     "sgACC seed map are written, no target (use a volume run for targeting)")


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

    tr = run.tr if run.tr and run.tr > 0 else (cifti_tr(run.bold) if run.kind == "cifti" else None)
    if tr is None:
        raise InputError(f"{run.bold}: no RepetitionTime in its JSON sidecar (a GIFTI file carries no TR)")
    data, geometry = load_surface_run(run, root)
    cleaned = clean_columns(run, settings, geometry, float(tr), int(data.shape[0]), lambda: data)
    cleaned.qc["n_vertices_excluded"] = int(sum(geometry.n_excluded.values()))
    cleaned.qc["surface"] = geometry.surface
    if run.space.startswith("fsaverage"):
        cleaned.qc["template_coordinates"] = MNI305_NOTE
    return cleaned


#: Fewest sgACC seed vertices with signal accepted (trdnet's choice, not from the literature: a 10 mm
#: seed on fsaverage5 holds a few dozen vertices, about 40% of them on the medial wall, which has no data).
MIN_SEED_VERTICES = 5


def surface_seed_columns(geometry, settings, min_vertices: int = MIN_SEED_VERTICES):
    """The sgACC seed on the cortex: the vertices with signal inside the seed sphere(s).

    The seed point (Fox 2012: MNI152 (6, 16, -10), 10 mm) sits at the edge of
    the medial wall; only the vertices that carry signal count.

    Parameters
    ----------
    geometry : trdnet.geometry.MeshGeometry
    settings : trdnet.config.TargetSettings
    min_vertices : int
        Refuse a seed with fewer usable vertices.

    Returns
    -------
    numpy.ndarray of int
        Sorted columns.

    Raises
    ------
    TargetingError
        Too few usable vertices (the message gives the count and the sphere).
    """
    from .errors import TargetingError
    from .targeting.regions import seed_columns

    try:
        columns = seed_columns(geometry, settings)
    except TargetingError:
        columns = np.empty(0, dtype=np.int64)
    if columns.size < min_vertices:
        raise TargetingError(
            f"sgACC seed at MNI152 {tuple(settings.seed_center_mm)} (r={settings.seed_radius_mm} mm): only "
            f"{columns.size} cortical vertices with signal on the {geometry.space} mesh (at least {min_vertices} "
            "needed); the medial wall carries no data"
        )
    return columns


def surface_search_columns(geometry, settings) -> np.ndarray:
    """DLPFC search region on the cortex: left-hemisphere vertices within the search radius of the sites.

    Raises
    ------
    TargetingError
        No vertex qualifies.
    """
    from .errors import TargetingError
    from .targeting.regions import site_coordinates

    sites = site_coordinates(settings.search_sites)
    near = [geometry.template_sphere_columns(c, settings.search_radius_mm) for c in sites.values()]
    columns = np.intersect1d(np.unique(np.concatenate(near)), geometry.hemisphere_columns("L"))
    if columns.size == 0:
        raise TargetingError(
            f"DLPFC search region (sites {list(settings.search_sites)}, r={settings.search_radius_mm} mm) "
            f"has no left-hemisphere vertex with signal on the {geometry.space} mesh"
        )
    return columns


def surface_seed_and_search(geometry, settings) -> tuple[np.ndarray, np.ndarray]:
    """The sgACC seed and DLPFC search region of a surface run (see the two functions above).

    Raises
    ------
    TargetingError
        Too few seed vertices, or no search-region vertex, with signal.
    """
    return surface_seed_columns(geometry, settings), surface_search_columns(geometry, settings)


def write_surface_seed_map(run: SurfaceRun, cleaned: CleanedRun, out_dir: Path, settings,
                           regions: tuple | None = None) -> tuple[dict, list]:
    """Write the sgACC seed map per hemisphere (``..._hemi-L_..._desc-sgacc_stat-r_boldmap.func.gii``).

    ``regions`` are the run's ``(seed, search)`` columns when already found
    (:func:`surface_seed_and_search`).

    Returns
    -------
    summary : dict
        ``targeting`` (what is not done yet), ``sgacc_seed_vertices``,
        ``search_vertices``.
    files : list of Path
    """
    import nibabel as nib

    from .outputs import atomic_write_bytes, write_json
    from .sidecars import SIMULATED_NOTE, sidecar
    from .targeting.seedmap import seed_map

    geometry = cleaned.space
    seed, search = regions if regions is not None else surface_seed_and_search(geometry, settings.targeting)
    r = seed_map(cleaned, seed)
    counts = {"sgacc_seed_vertices": int(seed.size), "search_vertices": int(search.size)}
    extra = {"Targeting": {**counts, "status": SURFACE_TARGETING,
                           "seed_center_mm": list(settings.targeting.seed_center_mm),
                           "seed_radius_mm": settings.targeting.seed_radius_mm,
                           "search_sites": list(settings.targeting.search_sites),
                           "search_radius_mm": settings.targeting.search_radius_mm,
                           "search_hemisphere": "L"},
             "Surface": geometry.surface, "VerticesExcluded": geometry.n_excluded, "QC": cleaned.qc}
    if cleaned.simulated:
        extra["Note"] = SIMULATED_NOTE
    folder = Path(out_dir) / run.subject_dir
    paths = seed_map_paths(folder, run.prefix, run.kind)
    description = ("Pearson r of every {} with the mean sgACC seed signal (NaN: medial wall or no signal)")
    if run.kind == "cifti":
        path = paths[""]
        files = [atomic_write_bytes(path, cifti_scalar_map(run.bold, geometry, r, "sgacc_r").to_bytes()),
                 write_json(_sidecar_path(path), sidecar(
                     "boldmap", description.format("brain-model column (cortex vertex or subcortical voxel)"),
                     run, settings, extra=extra))]
        return {"targeting": SURFACE_TARGETING, **counts}, files
    files = []
    for hemi in ("L", "R"):
        values = geometry.hemisphere_values(r, hemi)
        gifti = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(
            values, intent="NIFTI_INTENT_CORREL", datatype="NIFTI_TYPE_FLOAT32")])
        files.append(atomic_write_bytes(paths[hemi], gifti.to_bytes()))
        files.append(write_json(_sidecar_path(paths[hemi]), sidecar(
            "boldmap", description.format(f"{hemi} vertex of the {geometry.space} mesh"), run, settings,
            extra=extra)))
    return {"targeting": SURFACE_TARGETING, **counts}, files


def cifti_scalar_map(source, geometry, values, name: str):
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

    Returns
    -------
    nibabel.Cifti2Image
    """
    import nibabel as nib

    brain = nib.load(source).header.get_axis(1)
    full = np.full((1, brain.size), np.nan, dtype=np.float32)
    full[0, geometry.source_columns] = values
    return nib.Cifti2Image(full, header=(nib.cifti2.ScalarAxis([name]), brain))


def seed_map_paths(folder: Path, prefix: str, kind: str = "gifti") -> dict:
    """Where a surface run's sgACC seed map is written.

    Parameters
    ----------
    folder : Path
        The run's output folder.
    prefix : str
        The run's output prefix (``sub-<l>_task-<l>_space-<mesh>``, ``den-`` kept for CIFTI).
    kind : str
        ``gifti`` (one file per hemisphere) or ``cifti`` (one dense scalar file).

    Returns
    -------
    dict
        ``{"L": path, "R": path}`` or ``{"": path}``.
    """
    from .entities import build_name, parse_entities

    entities = parse_entities(prefix) | {"stat": "r", "desc": "sgacc"}
    if kind == "cifti":
        return {"": Path(folder) / build_name(entities, "boldmap", ".dscalar.nii")}
    return {hemi: Path(folder) / build_name(entities | {"hemi": hemi}, "boldmap", ".func.gii") for hemi in ("L", "R")}


def _sidecar_path(path: Path) -> Path:
    from .entities import build_name, parse_bids_name

    parsed = parse_bids_name(path.name)
    return path.with_name(build_name(parsed.entities, parsed.suffix, ".json"))
