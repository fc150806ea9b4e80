"""Figures of surface runs: maps drawn on the cortex with nilearn's surface plotting."""

from __future__ import annotations

import numpy as np

from .plotting import TARGET_COLOR, new_figure

#: Meshes the report can draw on offline: nilearn bundles fsaverage5 only.
DRAWABLE_SPACES = ("fsaverage5",)

#: Rings of mesh neighbours outlined around a marked vertex: on fsaverage5 (about 4 mm between vertices)
#: three rings make an outline about a centimetre across, visible at report size.
MARK_RINGS = 3


def seed_map_on_cortex(values: dict, vmax: float = 0.5, marks: dict | None = None, competing: dict | None = None,
                       threshold: float | None = None, colorbar: bool = True):
    """The sgACC seed map on nilearn's inflated fsaverage5, lateral and medial views of each hemisphere.

    Marked vertices are outlined on the surface itself (nilearn's
    :func:`~nilearn.plotting.plot_surf_contours` around the vertices within
    :data:`MARK_RINGS` rings, in :data:`~trdnet.report.plotting.TARGET_COLOR`):
    a marker drawn apart from matplotlib's 3D surface is hidden behind it.

    Parameters
    ----------
    values : dict
        ``{"L": array, "R": array}``, one value per fsaverage5 vertex (NaN where none).
    vmax : float
        Colour scale limit (symmetric).
    marks : dict, optional
        ``{"L": [vertex, ...]}``: vertices outlined in gold (e.g. the target).
    competing : dict, optional
        ``{"L": [(vertex, colour), ...]}``: competing sites outlined in their
        colours (:func:`site_vertices`).
    threshold : float, optional
        |value| below which the map is transparent (nilearn's ``threshold``).
    colorbar : bool
        Draw the colour scale (not for a figure without a map).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from nilearn import datasets, plotting, surface

    fsaverage = datasets.fetch_surf_fsaverage("fsaverage5")
    fig = new_figure(10, 2.8)
    panels = [("L", "left", "lateral"), ("L", "left", "medial"), ("R", "right", "lateral"), ("R", "right", "medial")]
    for index, (hemi, side, view) in enumerate(panels):
        ax = fig.add_subplot(1, 4, index + 1, projection="3d")
        plotting.plot_surf_stat_map(
            fsaverage[f"infl_{side}"], np.nan_to_num(np.asarray(values[hemi], dtype=float)), hemi=side, view=view,
            bg_map=fsaverage[f"sulc_{side}"], vmax=vmax, colorbar=colorbar and index == 3, axes=ax, figure=fig,
            title=f"{hemi} {view}", threshold=threshold)
        outlines = [(vertex, color) for vertex, color in (competing or {}).get(hemi, [])]
        outlines += [(vertex, TARGET_COLOR) for vertex in (marks or {}).get(hemi, [])]  # drawn last, on top
        if outlines:
            mesh = surface.load_surf_mesh(fsaverage[f"infl_{side}"])
            for vertex, color in outlines:
                patch = neighbourhood(np.asarray(mesh.faces), len(mesh.coordinates), [vertex])
                plotting.plot_surf_contours(mesh, patch.astype(int), levels=[1], colors=[color], axes=ax,
                                            figure=fig)
    return fig


def site_vertices(points, space: str = "fsaverage5") -> list[tuple[str, int, float]]:
    """The mesh vertex nearest each point (the vertex a site is drawn at).

    Parameters
    ----------
    points : array-like, shape (N, 3)
        Site centres in the mesh's coordinates (fsaverage5: MNI305 RAS mm on
        the midthickness trdnet targets on).
    space : str
        The mesh (:func:`trdnet.inputs.surface.standard_meshes`).

    Returns
    -------
    list of (hemi, vertex, distance_mm)
        One per point, on the hemisphere holding the nearest vertex.
    """
    from scipy.spatial import cKDTree

    from ..inputs.surface import standard_meshes

    meshes, _ = standard_meshes(space)
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    best = [("", -1, np.inf)] * len(points)
    for hemi, (coords, _) in meshes.items():
        dist, index = cKDTree(coords).query(points)
        best = [(hemi, int(i), float(d)) if d < old[2] else old for old, d, i in zip(best, dist, index)]
    return best


def neighbourhood(faces: np.ndarray, n_vertices: int, vertices, rings: int = MARK_RINGS) -> np.ndarray:
    """Vertices within ``rings`` steps along mesh edges of the given vertices.

    Parameters
    ----------
    faces : numpy.ndarray of int, shape (F, 3)
    n_vertices : int
        Vertices of the mesh.
    vertices : sequence of int
    rings : int
        0: the vertices themselves; each ring adds their neighbours.

    Returns
    -------
    numpy.ndarray of bool, shape (n_vertices,)
    """
    near = np.zeros(n_vertices, dtype=bool)
    near[np.asarray(vertices, dtype=np.int64)] = True
    for _ in range(rings):
        near[faces[near[faces].any(axis=1)].ravel()] = True
    return near
