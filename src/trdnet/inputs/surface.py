"""Cortical-surface runs from fMRIPrep: GIFTI per hemisphere and CIFTI-2 dense time series.

fMRIPrep writes, beside the volumes,

- ``sub-<l>[_ses-<l>]_task-<l>[_run-<l>]_hemi-{L,R}_space-{fsaverage,fsaverage5,fsaverage6,fsnative}_bold.func.gii``
  (one data array per volume; the repetition time only in the JSON sidecar), and
- with CIFTI output, ``..._space-fsLR_den-91k_bold.dtseries.nii`` (left and
  right cortex on the fsLR-32k mesh, then subcortical voxels).

A surface run is a T x V matrix like a volume run; its columns are the vertices
that carry signal (:class:`~trdnet.geometry.MeshGeometry`). The meshes come
from

- fsaverage5: nilearn's bundled fsaverage5 (midthickness = mean of pial and
  white, vertex by vertex); other fsaverage densities must be given
  (``meshes=``), nilearn would have to download them;
- fsnative: the participant's ``anat/sub-<l>[_ses-<l>]_hemi-{L,R}_midthickness.surf.gii``
  written by fMRIPrep (T1w world coordinates), else the mean of its pial and
  white surfaces, as found with the run (``Run.anatomy``, :mod:`trdnet.inputs.anatomy`);
- fsLR-32k: the Conte69 midthickness meshes inside the ``brainspace`` wheel on
  PyPI (fetched with :mod:`trdnet.inputs.registry`, not installed), or
  meshes given with ``meshes=``.

fsaverage coordinates are MNI305 (FreeSurfer's talairach space); they are
mapped to MNI152 with FreeSurfer's published linear matrix
(:data:`MNI305_TO_MNI152`), a linear approximation of a non-linear relation
(Wu et al. 2018, Hum Brain Mapp 39:3793, give the error of such maps).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from ..entities import build_name, parse_bids_name, parse_entities, replace_entities
from ..errors import InputError, NotImplementedFeatureError
from ..geometry import HEMISPHERES, MeshGeometry
from .registry import Wheel
from .repetition import TR_TOLERANCE
from .runs import Run

#: FreeSurfer's MNI305 -> MNI152 matrix (RAS mm), from the FreeSurfer wiki page
#: "CoordinateSystems", section 8 ("I have an RAS in MNI305 space (fsaverage)
#: and want MNI152"); derived there from ``$FREESURFER_HOME/average/mni152.register.dat``.
#: A linear approximation: FreeSurfer and Wu et al. 2018 note errors of a few mm.
MNI305_TO_MNI152 = np.array(
    [
        [0.9975, -0.0073, 0.0176, -0.0429],
        [0.0146, 1.0009, -0.0024, 1.5496],
        [-0.0130, -0.0093, 0.9971, 1.1840],
        [0.0, 0.0, 0.0, 1.0],
    ]
)

#: The inverse direction as published on the same page (MNI152 -> MNI305).
MNI152_TO_MNI305 = np.array(
    [
        [1.0022, 0.0071, -0.0177, 0.0528],
        [-0.0146, 0.9990, 0.0027, -1.5519],
        [0.0129, 0.0094, 1.0027, -1.2012],
        [0.0, 0.0, 0.0, 1.0],
    ]
)

MNI305_NOTE = (
    "fsaverage vertices are MNI305 coordinates; their MNI152 coordinates come from FreeSurfer's linear "
    "MNI305-to-MNI152 matrix (FreeSurfer wiki, CoordinateSystems), a linear approximation"
)

#: File-name endings of surface BOLD series.
GIFTI_SUFFIX = "_bold.func.gii"
CIFTI_SUFFIX = "_bold.dtseries.nii"

#: Vertices per hemisphere of each fsaverage density (FreeSurfer's icosahedral meshes).
FSAVERAGE_VERTICES = {"fsaverage3": 642, "fsaverage4": 2562, "fsaverage5": 10242, "fsaverage6": 40962,
                      "fsaverage": 163842}

FSLR_VERTICES = 32492

_CIFTI_CORTEX = {"CIFTI_STRUCTURE_CORTEX_LEFT": "L", "CIFTI_STRUCTURE_CORTEX_RIGHT": "R"}


def is_surface_space(space: str | None) -> bool:
    """Whether a ``space-`` value names a surface space (fsaverage*, fsnative, fsLR)."""
    return bool(space) and (space.startswith("fsaverage") or space in ("fsnative", "fsLR"))


def template_affine(space: str) -> np.ndarray | None:
    """Linear map from a surface space's coordinates to MNI152, or None when there is none.

    fsaverage meshes are MNI305 (:data:`MNI305_TO_MNI152`); the fsLR Conte69
    meshes are already in MNI152 (identity; FSL's MNI152, used as the
    template the literature coordinates are given in); fsnative meshes are the
    participant's T1w coordinates (None: needs the registered sphere).
    """
    if space.startswith("fsaverage"):
        return MNI305_TO_MNI152
    if space == "fsLR":
        return np.eye(4)
    return None


@dataclass(frozen=True)
class SurfaceRun(Run):
    """A functional run on the cortical surface.

    ``bold`` is the first file (left hemisphere GIFTI or the CIFTI file);
    ``hemi_bold`` maps ``L``/``R`` to the GIFTI files (empty for CIFTI).

    Attributes
    ----------
    hemi_bold : dict
        Hemisphere -> GIFTI time series.
    meshes : dict
        Hemisphere -> mesh file (GIFTI ``.surf.gii``) or ``(coordinates, faces)``;
        empty: the standard mesh of the space (see :func:`standard_meshes`).
    medial_wall : dict
        Hemisphere -> boolean array over the mesh vertices, True on the medial
        wall (left out as no-signal vertices are); empty when unknown.
    """

    hemi_bold: dict = field(default_factory=dict)
    meshes: dict = field(default_factory=dict)
    medial_wall: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``gifti`` or ``cifti``."""
        return "cifti" if str(self.bold).endswith(CIFTI_SUFFIX) else "gifti"


def surface_bold_files(paths) -> list[Path]:
    """Surface BOLD files among paths: left-hemisphere GIFTI (stands for the pair) and CIFTI."""
    return sorted(
        p for p in paths
        if (p.name.endswith(GIFTI_SUFFIX) and parse_entities(p.name).get("hemi") == "L")
        or p.name.endswith(CIFTI_SUFFIX)
    )


def make_surface_run(bold: Path, entities: dict, simulated: bool, find_confounds) -> SurfaceRun:
    """The :class:`SurfaceRun` of one left-hemisphere GIFTI or CIFTI file.

    Parameters
    ----------
    bold : Path
        ``..._hemi-L_..._bold.func.gii`` or ``..._bold.dtseries.nii``.
    entities : dict
        Its BIDS entities.
    simulated : bool
    find_confounds : callable
        ``find_confounds(bold, entities)`` -> confounds path or None (the
        volume finder's, so both kinds find the same table).

    Raises
    ------
    InputError
        The right hemisphere is missing, a sidecar is unreadable, or the two
        hemispheres' sidecars give different repetition times.
    """
    bold = Path(bold)
    entities = {k: v for k, v in entities.items() if k != "hemi"}
    hemi_bold = {}
    if bold.name.endswith(GIFTI_SUFFIX):
        # the partner in the left file's own entity order, else in BIDS order
        partners = [bold.with_name(replace_entities(bold.name, keep_order=True, hemi="R")),
                    bold.with_name(replace_entities(bold.name, hemi="R"))]
        right = next((p for p in partners if p.is_file()), None)
        if right is None:
            raise InputError(f"{bold}: no right hemisphere beside it (expected {partners[0].name})")
        hemi_bold = {"L": bold, "R": right}
    tr, meta_simulated = _sidecar_tr(bold)
    tr_from = _sidecar_path(bold)
    if hemi_bold:
        right_tr, _ = _sidecar_tr(hemi_bold["R"])
        if tr is not None and right_tr is not None and not math.isclose(tr, right_tr, rel_tol=TR_TOLERANCE):
            raise InputError(f"{tr_from}: RepetitionTime {tr:g} s but {_sidecar_path(hemi_bold['R'])} "
                             f"says {right_tr:g} s; one run has one TR")
        if tr is None:
            tr, tr_from = right_tr, _sidecar_path(hemi_bold["R"])
    is_simulated = simulated or meta_simulated
    return SurfaceRun(
        bold=bold,
        entities=entities,
        confounds=find_confounds(bold, entities),
        tr=tr,
        tr_source=f"{tr_from.name} RepetitionTime" if tr is not None else "",
        simulated=is_simulated,
        source="simulated" if is_simulated else "fmriprep",
        hemi_bold=hemi_bold,
    )


def _sidecar_path(bold: Path) -> Path:
    parsed = parse_bids_name(bold.name)
    return bold.with_name(build_name(parsed.entities, parsed.suffix, ".json", keep_order=True))


def _sidecar_tr(bold: Path) -> tuple[float | None, bool]:
    sidecar = _sidecar_path(bold)
    if not sidecar.is_file():
        return None, False
    try:
        meta = json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{sidecar}: invalid JSON ({exc})") from None
    tr = meta.get("RepetitionTime")
    return (float(tr) if tr is not None else None), bool(meta.get("Simulated", False))


def read_gifti_series(path) -> np.ndarray:
    """Time series of one hemisphere's ``.func.gii``, shape (T, V), float32.

    fMRIPrep writes one data array per volume; a single 2D array (V x T) is
    accepted too.

    Raises
    ------
    InputError
        Unreadable file, no data arrays, or arrays of different lengths.
    """
    arrays = gifti_arrays(path, "one per volume")
    if len(arrays) == 1 and np.asarray(arrays[0].data).ndim == 2:
        return np.ascontiguousarray(np.asarray(arrays[0].data, dtype=np.float32).T)
    sizes = {np.asarray(a.data).size for a in arrays}
    if len(sizes) != 1:
        raise InputError(f"{path}: data arrays of different lengths {sorted(sizes)}")
    return np.stack([np.asarray(a.data, dtype=np.float32).ravel() for a in arrays])


def gifti_arrays(path, expected: str) -> list:
    """The data arrays of a GIFTI file.

    Raises
    ------
    InputError
        Unreadable file or no data array (``expected`` says what should be there).
    """
    try:
        img = nib.load(path)
    except Exception as exc:  # nibabel raises several types for unreadable files
        raise InputError(f"{path}: cannot read the GIFTI file ({exc})") from None
    arrays = getattr(img, "darrays", None)
    if not arrays:
        raise InputError(f"{path}: no data arrays (expected {expected})")
    return arrays


def no_signal(data: np.ndarray) -> np.ndarray:
    """Columns without signal: constant over time (e.g. zero) or with a non-finite value.

    Parameters
    ----------
    data : numpy.ndarray, shape (T, V)

    Returns
    -------
    numpy.ndarray of bool, shape (V,)
    """
    finite = np.isfinite(data).all(axis=0)
    constant = np.zeros(data.shape[1], dtype=bool)
    constant[finite] = np.ptp(data[:, finite], axis=0) == 0
    return ~finite | constant


def standard_meshes(space: str) -> tuple[dict, str]:
    """The standard midthickness meshes of a template surface space.

    Returns
    -------
    meshes : dict
        Hemisphere -> ``(coordinates, faces)``; the arrays are read once per process and shared
        (read-only).
    surface : str
        What the coordinates are (for the sidecars).

    Raises
    ------
    NotImplementedFeatureError
        A space without a mesh available offline (fsaverage6, fsaverage, ...):
        give the meshes explicitly.
    """
    meshes, surface = _standard_meshes(space)
    return dict(meshes), surface


@functools.lru_cache(maxsize=None)
def _standard_meshes(space: str) -> tuple[dict, str]:
    meshes, surface = _read_standard_meshes(space)
    for arrays in meshes.values():
        for array in arrays:
            array.setflags(write=False)
    return meshes, surface


def _read_standard_meshes(space: str) -> tuple[dict, str]:
    if space == "fsaverage5":
        from nilearn.datasets import load_fsaverage

        mesh = load_fsaverage("fsaverage5")
        out = {}
        for hemi, part in (("L", "left"), ("R", "right")):
            pial, white = mesh["pial"].parts[part], mesh["white_matter"].parts[part]
            coords = (np.asarray(pial.coordinates, float) + np.asarray(white.coordinates, float)) / 2.0
            out[hemi] = (coords, np.asarray(pial.faces, dtype=np.int64))
        return out, "midthickness (mean of nilearn's fsaverage5 pial and white surfaces)"
    if space == "fsLR":
        return fslr_meshes(), "midthickness (Conte69 fsLR-32k group average, brainspace 0.3.0 wheel)"
    raise NotImplementedFeatureError(
        f"space {space!r}: no mesh available offline (nilearn bundles fsaverage5 only), so these runs are not "
        "supported yet; use fMRIPrep's fsaverage5 or fsnative outputs (or, from Python, SurfaceRun.meshes)"
    )


def fsnative_meshes(anatomy) -> tuple[dict, str]:
    """The participant's fMRIPrep surfaces (T1w world coordinates) as midthickness meshes.

    Parameters
    ----------
    anatomy : trdnet.inputs.anatomy.NativeAnatomy
        Found with the run (``Run.anatomy``): its ``surfaces`` are fMRIPrep's
        ``..._hemi-{L,R}_{midthickness,pial,white}.surf.gii``; the midthickness
        is used, else the vertex-wise mean of pial and white.

    Raises
    ------
    InputError
        No usable surfaces for a hemisphere; the message names the folder and
        the files looked for.
    """
    out, kinds = {}, set()
    for hemi in HEMISPHERES:
        found, kind = native_mesh(anatomy.surfaces.get(hemi, {}))
        if found is None:
            raise InputError(
                f"{Path(anatomy.t1w).parent}: no fsnative surface for hemisphere {hemi} (expected "
                f"sub-{anatomy.subject}_hemi-{hemi}_midthickness.surf.gii, or _pial and _white)"
            )
        out[hemi] = found
        kinds.add(kind)
    return out, "; ".join(sorted(kinds)) + ", T1w world coordinates"


def native_mesh(files: dict) -> tuple:
    """One hemisphere's fsnative mesh from fMRIPrep's surface files: the midthickness, else the mean of pial and white.

    Parameters
    ----------
    files : dict
        ``{"midthickness" | "pial" | "white": Path}`` of one hemisphere (see
        :attr:`trdnet.inputs.anatomy.NativeAnatomy.surfaces`).

    Returns
    -------
    mesh : Path or (coordinates, faces) or None
        None when neither a midthickness nor both pial and white are given.
    kind : str
        What the mesh is, for the provenance ('' when None).
    """
    if "midthickness" in files:
        return files["midthickness"], "midthickness (fMRIPrep)"
    if "pial" in files and "white" in files:
        return _mean_mesh(files["pial"], files["white"]), "midthickness (mean of fMRIPrep's pial and white)"
    return None, ""


#: fMRIPrep's registered spheres (the participant's fsnative vertices placed on a template sphere), by the
#: template mesh family they register to: FreeSurfer's ``sphere.reg`` (fsaverage) and the fsLR one fMRIPrep
#: writes with CIFTI output.
REGISTERED_SPHERES = {"fsaverage": "_hemi-{hemi}_desc-reg_sphere.surf.gii",
                      "fsLR": "_hemi-{hemi}_space-fsLR_desc-reg_sphere.surf.gii"}


def sphere_family(space: str) -> str:
    """The registered-sphere family of a template surface space: ``fsaverage`` (any density) or ``fsLR``.

    Raises
    ------
    ValueError
        A space with no registered sphere.
    """
    family = "fsaverage" if space.startswith("fsaverage") else space
    if family not in REGISTERED_SPHERES:
        raise ValueError(f"space {space!r} has no registered sphere (accepted: fsaverage*, fsLR)")
    return family


def template_sphere(space: str, hemi: str) -> np.ndarray:
    """Vertex coordinates of a template mesh's sphere (same vertex order as its surfaces).

    fsaverage5: nilearn's bundled sphere; fsLR-32k: the Conte69 sphere in the
    brainspace wheel (:data:`BRAINSPACE_WHEEL`).

    Raises
    ------
    NotImplementedFeatureError
        Another template mesh (no sphere available offline).
    """
    part = {"L": "left", "R": "right"}[hemi]
    if space == "fsaverage5":
        from nilearn.datasets import load_fsaverage

        return np.asarray(load_fsaverage("fsaverage5")["sphere"].parts[part].coordinates, dtype=float)
    if space == "fsLR":
        from .registry import read_members

        member = f"brainspace/datasets/surfaces/conte69_32k_{'lh' if hemi == 'L' else 'rh'}_sphere.gii"
        img = nib.GiftiImage.from_bytes(read_members(BRAINSPACE_WHEEL, [member])[member])
        return np.asarray(img.agg_data("NIFTI_INTENT_POINTSET"), dtype=float)
    raise NotImplementedFeatureError(
        f"space {space!r}: no template sphere available offline (fsaverage5 from nilearn, fsLR-32k from the "
        "brainspace wheel), so its vertices cannot be followed to the participant's mesh"
    )


def native_vertices(template_vertices, template_sphere_xyz: np.ndarray, registered_sphere_xyz: np.ndarray,
                    native_xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The participant's fsnative vertex under each template vertex, through a registered sphere.

    A registered sphere gives each fsnative vertex its place on the template's
    sphere (FreeSurfer's ``sphere.reg``); the vertex whose place is nearest
    (smallest angle from the sphere's centre) to the template vertex is the
    participant's own vertex there, and its position on the participant's
    surface is in T1w world coordinates. Directions are compared, so spheres
    of different radii or centres give the same answer.

    Parameters
    ----------
    template_vertices : int or array of int
        Vertex indices on the template mesh.
    template_sphere_xyz : numpy.ndarray, shape (Nt, 3)
        The template mesh's sphere.
    registered_sphere_xyz : numpy.ndarray, shape (Nn, 3)
        The participant's registered sphere (fsnative vertex order).
    native_xyz : numpy.ndarray, shape (Nn, 3)
        The participant's surface (e.g. midthickness) in T1w world mm, same vertex order.

    Returns
    -------
    vertex : numpy.ndarray of int, shape (K,)
        fsnative vertex indices.
    xyz : numpy.ndarray, shape (K, 3)
        Their T1w world coordinates (RAS mm).
    angle_deg : numpy.ndarray, shape (K,)
        Angle on the sphere between each template vertex and the fsnative vertex found (degrees; on
        FreeSurfer's 100 mm sphere, 1 degree is about 1.7 mm of sphere).

    Raises
    ------
    InputError
        The registered sphere and the surface do not have the same number of vertices.
    """
    from scipy.spatial import cKDTree

    template_sphere_xyz = np.asarray(template_sphere_xyz, dtype=float)
    registered_sphere_xyz = np.asarray(registered_sphere_xyz, dtype=float)
    native_xyz = np.asarray(native_xyz, dtype=float)
    if registered_sphere_xyz.shape != native_xyz.shape:
        raise InputError(f"registered sphere has {len(registered_sphere_xyz)} vertices, the participant's "
                         f"surface {len(native_xyz)}: not the same mesh")
    wanted = np.atleast_1d(np.asarray(template_vertices, dtype=np.int64))
    template = _directions(template_sphere_xyz)[wanted]
    _, vertex = cKDTree(_directions(registered_sphere_xyz)).query(template)
    found = _directions(registered_sphere_xyz)[vertex]
    angle = np.degrees(np.arccos(np.clip(np.sum(template * found, axis=1), -1.0, 1.0)))
    return np.asarray(vertex, dtype=np.int64), native_xyz[vertex], angle


def participant_vertices(anatomy, space: str, hemi: str, template_vertices) -> dict | None:
    """Template-mesh vertices followed to the participant's fsnative mesh with fMRIPrep's anatomy.

    Parameters
    ----------
    anatomy : trdnet.inputs.anatomy.NativeAnatomy
        The participant's anatomy, found with the run: its registered spheres and fsnative surfaces.
    space : str
        The template mesh (``fsaverage5``, ``fsLR``).
    hemi : str
    template_vertices : int or array of int

    Returns
    -------
    dict or None
        ``vertex``, ``xyz`` (T1w RAS mm), ``angle_deg`` (see :func:`native_vertices`), ``sphere`` and
        ``surface`` (what was read); None when fMRIPrep wrote no registered sphere for this space.

    Raises
    ------
    InputError
        No fsnative surface beside the sphere, or sphere and surface of different meshes.
    NotImplementedFeatureError
        A template mesh whose sphere is not available offline.
    """
    sphere = anatomy.registered_spheres.get(sphere_family(space), {}).get(hemi)
    if sphere is None:
        return None
    mesh, surface = native_mesh(anatomy.surfaces.get(hemi, {}))
    if mesh is None:
        raise InputError(f"{sphere}: no fsnative surface of hemisphere {hemi} beside it (expected "
                         f"sub-{anatomy.subject}_hemi-{hemi}_midthickness.surf.gii, or _pial and _white)")
    from nilearn.surface import load_surf_mesh

    native = np.asarray(load_surf_mesh(mesh).coordinates, dtype=float)
    registered = np.asarray(nib.load(sphere).agg_data("NIFTI_INTENT_POINTSET"), dtype=float)
    try:
        vertex, xyz, angle = native_vertices(template_vertices, template_sphere(space, hemi), registered, native)
    except InputError as exc:
        raise InputError(f"{sphere}: {exc}") from None
    return {"vertex": vertex, "xyz": xyz, "angle_deg": angle, "sphere": sphere,
            "surface": f"{surface}, T1w world coordinates"}


def fsnative_template_points(anatomy) -> dict | None:
    """MNI152 coordinates of every fsnative vertex, through fMRIPrep's registered spheres.

    fMRIPrep writes ``anat/sub-<l>[_ses-<l>]_hemi-{L,R}_desc-reg_sphere.surf.gii``:
    FreeSurfer's ``sphere.reg``, each participant vertex's place on the
    fsaverage sphere. Each vertex takes the MNI152 position (through
    :data:`MNI305_TO_MNI152`) of the nearest fsaverage5 vertex on that sphere
    (directions compared, so a shifted or rescaled sphere gives the same
    answer); fsaverage5's vertex spacing (about 3 mm) bounds the precision.

    Parameters
    ----------
    anatomy : trdnet.inputs.anatomy.NativeAnatomy
        Found with the run (``Run.anatomy``): its ``registered_spheres["fsaverage"]``.

    Returns
    -------
    dict or None
        Hemisphere -> (n_vertices, 3) array; None when a hemisphere's sphere is missing.
    """
    from scipy.spatial import cKDTree

    spheres = anatomy.registered_spheres.get("fsaverage", {})
    if any(hemi not in spheres for hemi in HEMISPHERES):
        return None
    meshes, _ = standard_meshes("fsaverage5")
    out = {}
    for hemi in HEMISPHERES:
        sphere = np.asarray(nib.load(spheres[hemi]).agg_data("NIFTI_INTENT_POINTSET"), dtype=float)
        _, nearest = cKDTree(_directions(template_sphere("fsaverage5", hemi))).query(_directions(sphere))
        out[hemi] = nib.affines.apply_affine(MNI305_TO_MNI152, meshes[hemi][0][nearest])
    return out


def _missing_spheres(anatomy) -> str:
    """Which of fMRIPrep's fsaverage registered spheres are missing, as a phrase naming the files."""
    spheres = anatomy.registered_spheres.get("fsaverage", {})
    prefix = f"sub-{anatomy.subject}" + (f"_ses-{anatomy.session}" if anatomy.session else "")
    missing = [str(Path(anatomy.t1w).parent / f"{prefix}{REGISTERED_SPHERES['fsaverage'].format(hemi=hemi)}")
               for hemi in HEMISPHERES if hemi not in spheres]
    if not missing:
        return ""
    return (f"fMRIPrep's registered sphere{'s' if len(missing) > 1 else ''} {' and '.join(missing)} "
            f"{'are' if len(missing) > 1 else 'is'} missing")


def _directions(points: np.ndarray) -> np.ndarray:
    centred = points - points.mean(axis=0)
    return centred / np.linalg.norm(centred, axis=1, keepdims=True)


def _mean_mesh(pial: Path, white: Path):
    from nilearn.surface import load_surf_mesh

    a, b = load_surf_mesh(str(pial)), load_surf_mesh(str(white))
    if np.asarray(a.coordinates).shape != np.asarray(b.coordinates).shape:
        raise InputError(f"{pial}: not the same vertices as {white.name}")
    coords = (np.asarray(a.coordinates, float) + np.asarray(b.coordinates, float)) / 2.0
    return coords, np.asarray(a.faces, dtype=np.int64)


#: The brainspace 0.3.0 wheel on PyPI (BSD-3-Clause; see :mod:`trdnet.inputs.registry`): the Conte69
#: fsLR-32k meshes and one real MPI-LEMON resting-state run on fsaverage5 (:mod:`trdnet.inputs.lemon`).
BRAINSPACE_WHEEL = Wheel(
    package="brainspace",
    version="0.3.0",
    sha256="aec3854a9ad2ed8f05ee4da04943307833135320c990688ba7f16def1ce0132c",
    filename="brainspace-0.3.0-py3-none-any.whl",
)


def fslr_meshes() -> dict:
    """Conte69 fsLR-32k midthickness meshes per hemisphere from the brainspace wheel, ``(coordinates, faces)``.

    The files' own metadata name them ``MidThickness`` surfaces, a group
    average of HCP participants resampled to fsLR-32k in HCP's MNINonLinear
    (FSL MNI152) space.

    Raises
    ------
    DatasetError
        The wheel is neither cached nor downloadable (the message says where to put it).
    """
    from .registry import read_members

    members = {h: f"brainspace/datasets/surfaces/conte69_32k_{s}.gii" for h, s in (("L", "lh"), ("R", "rh"))}
    data = read_members(BRAINSPACE_WHEEL, list(members.values()))
    out = {}
    for hemi, member in members.items():
        img = nib.GiftiImage.from_bytes(data[member])
        out[hemi] = (np.asarray(img.agg_data("NIFTI_INTENT_POINTSET"), dtype=float),
                     np.asarray(img.agg_data("NIFTI_INTENT_TRIANGLE"), dtype=np.int64))
    return out


def run_meshes(run: SurfaceRun) -> tuple[dict, str]:
    """Meshes of a surface run: given ones, fsnative from the run's anatomy record, or the standard ones."""
    if run.meshes:
        return dict(run.meshes), "given meshes"
    if run.space == "fsnative":
        return fsnative_meshes(_fsnative_anatomy(run))
    return standard_meshes(run.space)


def _fsnative_anatomy(run: SurfaceRun):
    """The anatomy an fsnative run was found with (its surfaces and spheres), refusing a run without one."""
    if run.anatomy is None:
        raise InputError(f"{run.bold}: an fsnative run needs the participant's fMRIPrep anatomy (anat/ with "
                         f"sub-{run.subject}_desc-preproc_T1w and its surfaces), and none was found with the run")
    return run.anatomy


def load_surface_run(run: SurfaceRun) -> tuple[np.ndarray, MeshGeometry]:
    """Read a surface run: the T x V matrix of vertices with signal and their geometry.

    GIFTI per hemisphere, or CIFTI-2 (see :func:`load_cifti_run`).

    Parameters
    ----------
    run : SurfaceRun
        An fsnative run reads its surfaces and registered spheres from ``run.anatomy``.

    Returns
    -------
    data : numpy.ndarray, float32, shape (T, V)
        Left then right hemisphere, vertices with signal only.
    geometry : MeshGeometry
        ``n_excluded`` counts the medial-wall and no-signal vertices left out.

    Raises
    ------
    InputError
        Hemispheres with different numbers of volumes, a vertex count that
        does not match the mesh, or no vertex with signal.
    NotImplementedFeatureError
        A CIFTI run in a space other than fsLR (no mesh known for it).
    """
    if run.kind == "cifti":
        return load_cifti_run(run)
    meshes, surface = run_meshes(run)
    from nilearn.surface import load_surf_mesh

    series, keep = {}, {}
    for hemi in HEMISPHERES:
        data = read_gifti_series(run.hemi_bold[hemi])
        n_mesh = load_surf_mesh(meshes[hemi]).coordinates.shape[0]
        if data.shape[1] != n_mesh:
            raise InputError(
                f"{run.hemi_bold[hemi]}: {data.shape[1]} vertices but the {run.space} mesh has {n_mesh}; "
                "is the space- entity right?"
            )
        keep[hemi] = ~no_signal(data)
        if run.medial_wall.get(hemi) is not None:
            keep[hemi] &= ~np.asarray(run.medial_wall[hemi], dtype=bool)
        series[hemi] = data
    if series["L"].shape[0] != series["R"].shape[0]:
        raise InputError(
            f"{run.hemi_bold['R']}: {series['R'].shape[0]} volumes but the left hemisphere has {series['L'].shape[0]}"
        )
    if not any(k.any() for k in keep.values()):
        raise InputError(f"{run.bold}: no vertex carries signal (all constant or non-finite)")
    points, missing = None, ""
    if run.space == "fsnative" and run.anatomy is not None:
        points = fsnative_template_points(run.anatomy)
        if points is not None:
            surface += "; MNI152 positions through fMRIPrep's desc-reg_sphere and fsaverage5"
        else:
            missing = _missing_spheres(run.anatomy)
    geometry = MeshGeometry.from_meshes(meshes, run.space, keep=keep, template_affine=template_affine(run.space),
                                        surface=surface, template_points=points, template_missing=missing)
    data = np.concatenate([series[h][:, keep[h]] for h in HEMISPHERES], axis=1)
    return np.ascontiguousarray(data, dtype=np.float32), geometry


def read_cifti_series(path) -> tuple[np.ndarray, dict]:
    """Data and brain models of a CIFTI-2 dense time series (``.dtseries.nii``).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    data : numpy.ndarray, float32, shape (T, N)
        All brain-model columns in file order.
    models : dict
        ``cortex``: hemisphere -> (column numbers, vertex indices, mesh size);
        ``voxels``: (column numbers, RAS mm coordinates (K, 3), structure names);
        ``tr``: the series axis step in seconds (or None).

    Raises
    ------
    InputError
        Not a dense time series (no brain-model axis, or no series axis).
    """
    img, series, models = read_cifti_dense(path, nib.cifti2.SeriesAxis, "a dense time series (series x brain models)")
    tr = float(series.step) if series.unit == "SECOND" else None
    data = np.asarray(img.dataobj, dtype=np.float32)
    return data, {**models, "tr": tr}


def read_cifti_dense(path, first_axis: type, expected: str):
    """Open a dense CIFTI-2 file: the image, its first axis and its brain models.

    Parameters
    ----------
    path : str or Path
    first_axis : type
        The nibabel axis the rows must be (``SeriesAxis``, ``LabelAxis``, ...).
    expected : str
        What the file should be, for the message.

    Returns
    -------
    img : nibabel.Cifti2Image
    axis : nibabel.cifti2.Axis
        The first axis.
    models : dict
        ``cortex``: hemisphere -> (column numbers, vertex indices, mesh size);
        ``voxels``: (column numbers, RAS mm coordinates (K, 3), structure names).

    Raises
    ------
    InputError
        Unreadable, not CIFTI-2, or not ``first_axis`` x brain models.
    """
    try:
        img = nib.load(path)
    except Exception as exc:  # nibabel raises several types for unreadable files
        raise InputError(f"{path}: cannot read the CIFTI file ({exc})") from None
    if not isinstance(img, nib.Cifti2Image):
        raise InputError(f"{path}: not a CIFTI-2 image")
    axis, brain = img.header.get_axis(0), img.header.get_axis(1)
    if not isinstance(brain, nib.cifti2.BrainModelAxis) or not isinstance(axis, first_axis):
        raise InputError(f"{path}: expected {expected}")
    cortex, vox_cols, vox_xyz, vox_names = {}, [], [], []
    for name, columns, model in brain.iter_structures():
        cols = np.arange(brain.size)[columns]
        if name in _CIFTI_CORTEX:
            cortex[_CIFTI_CORTEX[name]] = (cols, np.asarray(model.vertex, dtype=np.int64),
                                            int(model.nvertices[name]))
        else:
            ijk = model.voxel[model.volume_mask]
            vox_cols.append(cols[model.volume_mask])
            vox_xyz.append(nib.affines.apply_affine(brain.affine, ijk))
            vox_names += [name] * len(ijk)
    voxels = (np.concatenate(vox_cols) if vox_cols else np.empty(0, np.int64),
              np.concatenate(vox_xyz) if vox_xyz else np.empty((0, 3)), np.asarray(vox_names))
    return img, axis, {"cortex": cortex, "voxels": voxels}


def load_cifti_run(run: SurfaceRun) -> tuple[np.ndarray, MeshGeometry]:
    """Read an fsLR CIFTI-2 dense time series: cortex vertices, then subcortical voxels, all with signal.

    The cortex columns are placed on the fsLR-32k midthickness meshes
    (:func:`fslr_meshes`) by their CIFTI vertex indices (the medial wall is
    absent from the file); the subcortical voxels keep their RAS mm
    coordinates (MNI152, like the fsLR meshes) and have no neighbours.
    ``geometry.source_columns`` gives each column's brain-model index.

    Raises
    ------
    InputError
        Not fsLR, a hemisphere whose vertex count differs from the mesh, or no signal.
    """
    if run.space != "fsLR":
        raise NotImplementedFeatureError(f"{run.bold}: CIFTI runs are read on fsLR only (space {run.space!r})")
    data, models = read_cifti_series(run.bold)
    meshes, surface = standard_meshes("fsLR")
    signal = ~no_signal(data)
    keep, sources = {}, []
    for hemi in HEMISPHERES:
        if hemi not in models["cortex"]:
            raise InputError(f"{run.bold}: no CIFTI_STRUCTURE_CORTEX_{'LEFT' if hemi == 'L' else 'RIGHT'}")
        cols, vertex, size = models["cortex"][hemi]
        if size != len(meshes[hemi][0]):
            raise InputError(f"{run.bold}: {hemi} cortex on a {size}-vertex mesh, fsLR-32k has {len(meshes[hemi][0])}")
        order = np.argsort(vertex)  # geometry columns follow mesh order
        cols, vertex = cols[order], vertex[order]
        cols, vertex = cols[signal[cols]], vertex[signal[cols]]
        keep[hemi] = np.zeros(size, dtype=bool)
        keep[hemi][vertex] = True
        sources.append(cols)
    vox_cols, vox_xyz, _ = models["voxels"]
    with_signal = signal[vox_cols]
    sources.append(vox_cols[with_signal])
    sources = np.concatenate(sources)
    if sources.size == 0:
        raise InputError(f"{run.bold}: no brain-model column carries signal (all constant or non-finite)")
    geometry = MeshGeometry.from_meshes(meshes, run.space, keep=keep, template_affine=template_affine(run.space),
                                        surface=surface, extra_xyz=vox_xyz[with_signal], source_columns=sources)
    return np.ascontiguousarray(data[:, sources], dtype=np.float32), geometry


def cifti_tr(path) -> float | None:
    """Repetition time from a CIFTI series axis (seconds), or None."""
    try:
        axis = nib.load(path).header.get_axis(0)
    except Exception:  # noqa: BLE001 - the reader reports unreadable files itself
        return None
    return float(axis.step) if getattr(axis, "unit", "") == "SECOND" and axis.step > 0 else None
