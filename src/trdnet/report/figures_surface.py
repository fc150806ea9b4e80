"""Figures of surface runs: maps drawn on the cortex with nilearn's surface plotting."""

from __future__ import annotations

import numpy as np

from .plotting import new_figure

#: Meshes the report can draw on offline: nilearn bundles fsaverage5 only.
DRAWABLE_SPACES = ("fsaverage5",)


def seed_map_on_cortex(values: dict, vmax: float = 0.5, marks: dict | None = None):
    """The sgACC seed map on nilearn's inflated fsaverage5, lateral and medial views of each hemisphere.

    Parameters
    ----------
    values : dict
        ``{"L": array, "R": array}``, one value per fsaverage5 vertex (NaN where none).
    vmax : float
        Colour scale limit (symmetric).
    marks : dict, optional
        ``{"L": [vertex, ...]}``: vertices drawn as gold stars (e.g. the target).

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
            bg_map=fsaverage[f"sulc_{side}"], vmax=vmax, colorbar=index == 3, axes=ax, figure=fig,
            title=f"{hemi} {view}")
        for vertex in (marks or {}).get(hemi, []):
            point = np.asarray(surface.load_surf_mesh(fsaverage[f"infl_{side}"]).coordinates)[vertex]
            ax.scatter(*point, s=90, c="gold", marker="*", edgecolors="black", depthshade=False, zorder=10)
    return fig
