"""Brain figures drawn with nilearn: seed map through the target, DLPFC zoom,
bootstrap cloud, competing sites, network connectome, cohort targets."""

from __future__ import annotations

import contextlib
import functools

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from nilearn import plotting

from ..templates import mni152_2mm
from .plotting import (CANDIDATE_COLOR, COMPETING_SITE_COLOR, NETWORK_COLORS, SITE_COLORS, TARGET_COLOR,
                       new_figure, to_data_uri)

#: Half-width (mm) of the zoomed DLPFC views.
ZOOM_MM = 28.0
#: Axis pairs shown by each ortho cut: cut direction -> (horizontal, vertical) world axes.
_CUT_AXES = {"x": (1, 2), "y": (0, 2), "z": (0, 1)}


def template():
    """nilearn's bundled MNI152 (2009) template at 2 mm, the background of MNI figures."""
    return mni152_2mm("T1w")


def _background(background):
    return template() if isinstance(background, str) and background == "template" else background


def _markers(names, xyz):
    """Marker styles: the personalised target(s) first in gold stars, reference sites in colours."""
    styles = []
    site = 0
    for name, point in zip(names, xyz):
        if str(name).startswith("personalised"):
            styles.append((name, point, TARGET_COLOR, "*", 220))
        else:
            styles.append((name, point, SITE_COLORS[site % len(SITE_COLORS)], "o", 60))
            site += 1
    return styles


def competing_styles(sites=None, candidates=None) -> list[tuple]:
    """Marker styles of the competing sites: bootstrap sites and candidate clusters.

    Parameters
    ----------
    sites : pandas.DataFrame or None
        One method's bootstrap sites (:data:`trdnet.targeting.sites.SITE_COLUMNS`).
    candidates : pandas.DataFrame or None
        One method's candidate clusters (:data:`trdnet.targeting.sites.CANDIDATE_COLUMNS`).

    Returns
    -------
    list of (label, xyz, colour, marker, size)
        Sites as circles whose area grows with their share of the resamples,
        labelled ``site k NN%``; clusters as squares labelled ``cluster k``.
    """
    styles = []
    for row in ([] if sites is None else sites.to_dict("records")):
        share = float(row["share"])
        styles.append((f"site {int(row['site'])} {share:.0%}", (row["x"], row["y"], row["z"]),
                       COMPETING_SITE_COLOR, "o", 60.0 + 400.0 * share))
    for row in ([] if candidates is None else candidates.to_dict("records")):
        chosen = str(row.get("chosen")) in ("True", "true", "1")
        styles.append((f"cluster {int(row['rank'])}" + (" (chosen)" if chosen else ""),
                       (row["x"], row["y"], row["z"]), CANDIDATE_COLOR, "s", 60.0))
    return styles


#: Legend entries of :func:`competing_styles`.
COMPETING_LEGEND = (
    Line2D([], [], ls="", marker="o", color=COMPETING_SITE_COLOR, markeredgecolor="black",
           label="bootstrap site (area ~ share)"),
    Line2D([], [], ls="", marker="s", color=CANDIDATE_COLOR, markeredgecolor="black", label="candidate cluster"),
)


def _add_competing(display, competing) -> None:
    """Competing sites as labelled markers, projected onto every cut.

    Drawn on each cut's axes directly: nilearn's ``add_markers`` leaves out
    markers more than 2 mm from the slice, which would hide exactly the
    competing site away from the target.
    """
    for cut, cut_axes in display.axes.items():
        if cut not in _CUT_AXES:
            continue
        h, v = _CUT_AXES[cut]
        for label, point, color, marker, size in competing:
            cut_axes.ax.scatter([point[h]], [point[v]], s=size, c=color, marker=marker, edgecolors="black",
                                linewidths=0.6, alpha=0.85, zorder=5)
            # sites labelled above their marker, clusters below, so a site on its cluster keeps both readable
            shift = 2.5 if marker == "o" else -5.0
            cut_axes.ax.text(point[h] + 2.5, point[v] + shift, label, color=color, fontsize=7,
                             bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "lw": 0})


def _add_points(display, styles, label_near_mm: float | None = None):
    for name, point, color, marker, size in styles:
        display.add_markers([point], marker_color=color, marker_size=size, marker=marker,
                            edgecolors="black", linewidths=0.6)
    if label_near_mm is None:
        return
    for cut, cut_axes in display.axes.items():
        if cut not in _CUT_AXES:
            continue
        h, v = _CUT_AXES[cut]
        depth = "xyz".index(cut)
        for name, point, color, _, _ in styles:
            if abs(point[depth] - cut_axes.coord) <= label_near_mm:
                cut_axes.ax.text(point[h] + 1.5, point[v] + 1.5, str(name), color="white", fontsize=7,
                                 bbox={"facecolor": "black", "alpha": 0.55, "pad": 1, "lw": 0})


def _legend(fig, styles, extra=()):
    handles = [Line2D([], [], ls="", marker=m, color=c, markeredgecolor="black", ms=9 if m == "*" else 6,
                      label=str(n)) for n, _, c, m, _ in styles]
    handles += list(extra)
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=7, frameon=False)


def seed_map_slices(seed_img, search_img, names, xyz, cut_coords, title: str, threshold: float = 0.1,
                    background="template", competing=()):
    """The sgACC seed map on orthogonal slices through the target.

    Parameters
    ----------
    seed_img : Niimg-like
        ``stat-r_desc-sgacc_boldmap`` (Pearson r).
    search_img : Niimg-like or None
        Search-region mask, outlined.
    names, xyz : sequences
        Target names and coordinates (world RAS mm of the map's space).
    cut_coords : sequence of 3 floats
        Where the slices cut (the personalised target).
    title : str
    threshold : float
        |r| below which the map is transparent.
    background : Niimg-like, "template" or None
        Anatomy under the map: the MNI template (for MNI maps), an image in
        the map's space, or None for none (a map in another space must not be
        drawn on the template).
    competing : sequence of styles
        Competing sites drawn over the map (:func:`competing_styles`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = new_figure(9.5, 3.9)
    display, styles = _seed_display(fig, seed_img, search_img, names, xyz, cut_coords, background, competing,
                                    threshold=threshold, title=title, annotate=True)
    _add_points(display, styles)
    _legend(fig, styles, [Line2D([], [], color="lime", label="search region")]
            + (list(COMPETING_LEGEND) if competing else []))
    fig.set_facecolor("white")
    return fig


def dlpfc_zoom(seed_img, search_img, names, xyz, cut_coords, half_width: float = ZOOM_MM, background="template",
               competing=()):
    """Zoomed DLPFC view around the target with labelled sites.

    Parameters are as :func:`seed_map_slices`; ``half_width`` is the zoom in
    mm, widened to hold every competing site.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = new_figure(9.5, 3.6)
    display, styles = _seed_display(fig, seed_img, search_img, names, xyz, cut_coords, background, competing,
                                    threshold=0.1, colorbar=False, annotate=False)
    _add_points(display, styles, label_near_mm=half_width)
    _zoom(display, cut_coords, _reach(cut_coords, competing, half_width))
    _legend(fig, styles, list(COMPETING_LEGEND) if competing else [])
    fig.set_facecolor("white")
    return fig


def _seed_display(fig, seed_img, search_img, names, xyz, cut_coords, background, competing, **options):
    """The seed map in three orthogonal cuts, its search region outlined and the competing sites drawn;
    ``options`` go to :func:`nilearn.plotting.plot_stat_map`. Returns the display and the targets' styles."""
    display = plotting.plot_stat_map(seed_img, bg_img=_background(background), cut_coords=cut_coords,
                                     display_mode="ortho", cmap="RdBu_r", symmetric_cbar=True, figure=fig,
                                     axes=[0.0, 0.12, 1.0, 0.86], draw_cross=False, black_bg=True, **options)
    if search_img is not None:
        display.add_contours(search_img, levels=[0.5], colors="lime", linewidths=1.2)
    _add_competing(display, competing)
    return display, _markers(names, xyz)


def _reach(center, competing, half_width: float, margin_mm: float = 8.0) -> float:
    """A zoom half-width holding every competing site (with a margin), at least ``half_width``."""
    points = np.array([point for _, point, _, _, _ in competing], dtype=float).reshape(-1, 3)
    if not len(points):
        return half_width
    return float(max(half_width, np.abs(points - np.asarray(center, dtype=float)).max() + margin_mm))


def competing_sites_figure(target_xyz, competing, background="template", title: str = ""):
    """The target and its competing sites on orthogonal slices of an anatomical image.

    Used where no seed map goes with the target (a participant-level target
    joins several runs' data and writes no map of its own).

    Parameters
    ----------
    target_xyz : sequence of 3 floats
        The target (world RAS mm), where the slices cut.
    competing : sequence of styles
        From :func:`competing_styles`, in the target's space.
    background : Niimg-like or "template"
        Anatomy in the target's space (the MNI template for MNI targets).
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = new_figure(9.5, 3.6)
    display = plotting.plot_anat(_background(background), cut_coords=target_xyz, display_mode="ortho", figure=fig,
                                 axes=[0.0, 0.12, 1.0, 0.86], annotate=True, draw_cross=False, black_bg=True,
                                 dim=-0.3, colorbar=False, title=title or None)
    _add_competing(display, competing)
    display.add_markers([target_xyz], marker_color=TARGET_COLOR, marker_size=220, marker="*", edgecolors="black")
    _zoom(display, target_xyz, _reach(target_xyz, competing, ZOOM_MM))
    handles = [Line2D([], [], ls="", marker="*", color=TARGET_COLOR, markeredgecolor="black", ms=10,
                      label="target")] + list(COMPETING_LEGEND)
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.set_facecolor("white")
    return fig


def _zoom(display, center, half_width: float) -> None:
    for cut, cut_axes in display.axes.items():
        if cut in _CUT_AXES:
            h, v = _CUT_AXES[cut]
            cut_axes.ax.set_xlim(center[h] - half_width, center[h] + half_width)
            cut_axes.ax.set_ylim(center[v] - half_width, center[v] + half_width)


def bootstrap_cloud(cloud_xyz, target_xyz, split_xyz=None, half_width: float = 20.0):
    """Bootstrap targets (and split-half targets) around the personalised target.

    Parameters
    ----------
    cloud_xyz : array, shape (B, 3)
        Bootstrap targets, world RAS mm.
    target_xyz : sequence of 3 floats
    split_xyz : array, shape (2, 3), optional
        Targets of the first and second half of the data.
    half_width : float
        Zoom in mm.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = new_figure(9.5, 3.4)
    display = plotting.plot_anat(template(), cut_coords=target_xyz, display_mode="ortho", figure=fig,
                                 axes=[0.0, 0.12, 1.0, 0.86], annotate=False, draw_cross=False,
                                 black_bg=True, dim=-0.3, colorbar=False)
    cloud = np.asarray(cloud_xyz, dtype=float).reshape(-1, 3)
    # the personalised target first, so a tight cloud stays visible on top of it
    display.add_markers([target_xyz], marker_color=TARGET_COLOR, marker_size=160, marker="*", edgecolors="black")
    handles = [Line2D([], [], ls="", marker="*", color=TARGET_COLOR, markeredgecolor="black", ms=10,
                      label="personalised")]
    if len(cloud):
        display.add_markers(cloud, marker_color="#00e5ff", marker_size=12, alpha=0.7, edgecolors="none")
        handles.append(Line2D([], [], ls="", marker="o", color="#00e5ff", label=f"bootstrap ({len(cloud)})"))
    if split_xyz is not None and len(split_xyz):
        display.add_markers(np.asarray(split_xyz, dtype=float), marker_color="#ff4fd8", marker_size=60,
                            marker="D", edgecolors="black")
        handles.append(Line2D([], [], ls="", marker="D", color="#ff4fd8", label="split-half targets"))
    _zoom(display, target_xyz, half_width)
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.set_facecolor("white")
    return fig


@functools.lru_cache(maxsize=1)
def _glass_brain_canvas():
    fig = Figure(figsize=(9.5, 3.4))
    FigureCanvasAgg(fig)
    display = plotting.plot_glass_brain(None, display_mode="lzr", figure=fig, axes=[0.0, 0.1, 1.0, 0.9],
                                        annotate=False)
    return fig, display


@contextlib.contextmanager
def _glass_brain():
    """nilearn's empty glass brain, drawn once per process and cleaned after each use.

    Drawing the brain outlines is most of the cost of a glass-brain figure
    (about 0.7 s); every participant's connectome goes onto the same drawing,
    and whatever was added (edges, nodes, markers, legend) is removed after.
    """
    fig, display = _glass_brain_canvas()
    axes = list(fig.axes)
    children = {ax: set(ax.get_children()) for ax in axes}
    legends = list(fig.legends)
    try:
        yield fig, display
    finally:
        for ax in list(fig.axes):
            if ax not in children:
                ax.remove()
                continue
            for artist in set(ax.get_children()) - children[ax]:
                artist.remove()
        fig.legends[:] = legends


def connectome(matrix, coords, networks, edge_threshold: str = "98%") -> str:
    """Glass-brain connectome of the network ROIs coloured by network, as a PNG data URI.

    Parameters
    ----------
    matrix : numpy.ndarray, shape (R, R)
    coords : numpy.ndarray, shape (R, 3)
        ROI centres, MNI152 RAS mm.
    networks : sequence of str
    edge_threshold : str
        Strongest edges drawn (nilearn percentile string).

    Returns
    -------
    str
    """
    matrix = np.nan_to_num(np.asarray(matrix, dtype=np.float32))
    np.fill_diagonal(matrix, 0)
    colors = [NETWORK_COLORS.get(n, "#7f7f7f") for n in networks]
    handles = [Line2D([], [], ls="", marker="o", color=c, label=n) for n, c in NETWORK_COLORS.items()
               if n in set(networks)]
    with _glass_brain() as (fig, display):
        # what nilearn's plot_connectome does after drawing the glass brain
        display.add_graph(matrix, coords, node_color=colors, node_size=14, edge_threshold=edge_threshold,
                          edge_cmap="RdBu_r", edge_vmin=-1, edge_vmax=1, colorbar=False)
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
        return to_data_uri(fig, close=False)


def cohort_targets(xyz, colors, labels_colors: dict) -> str:
    """All personalised targets of a cohort on one glass brain.

    Parameters
    ----------
    xyz : array, shape (N, 3)
        Targets, MNI152 RAS mm.
    colors : sequence of N colours
    labels_colors : dict
        Legend entries (label -> colour).

    Returns
    -------
    str
        PNG data URI.
    """
    points = np.asarray(xyz, dtype=float).reshape(-1, 3)
    handles = [Line2D([], [], ls="", marker="o", color=c, markeredgecolor="black", label=k)
               for k, c in labels_colors.items()]
    with _glass_brain() as (fig, display):
        for point, color in zip(points, colors):
            display.add_markers([point], marker_color=color, marker_size=40, edgecolors="black", linewidths=0.5)
        fig.legend(handles=handles, loc="lower center", ncol=max(1, len(handles)), fontsize=8, frameon=False)
        return to_data_uri(fig, close=False)
