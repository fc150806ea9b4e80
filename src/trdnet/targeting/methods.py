"""Map-based target selection: ``peak`` (Fox 2012), ``cluster`` and
``seedmap`` (Fox 2013; Cash et al. 2021)."""

from __future__ import annotations

import numpy as np

from ..cleaned import CleanedRun, correlate_with
from ..config import TargetSettings
from ..errors import TargetingError
from ..geometry import Geometry
from .result import TargetResult
from .sites import candidate_table, cluster_centre, cluster_scores
from .seedmap import group_map_values, reference_signal


def peak_target(
    seed_r: np.ndarray, search_cols: np.ndarray, settings: TargetSettings, space: Geometry
) -> TargetResult:
    """Fox 2012: the single most negative voxel (or vertex) of the seed map in the search region.

    Parameters
    ----------
    seed_r : numpy.ndarray, shape (V,)
        sgACC seed map (r per column).
    search_cols : numpy.ndarray of int
    settings : TargetSettings
        Unused; kept so that every method has the same call.
    space : trdnet.geometry.Geometry
        Voxels or mesh vertices.

    Returns
    -------
    TargetResult
    """
    search_cols = _check_region(search_cols)
    values = np.asarray(seed_r)[search_cols]
    best = int(search_cols[int(np.argmin(values))])
    return TargetResult(
        method="peak",
        xyz=space.xyz[best].copy(),
        column=best,
        r_sgacc=float(seed_r[best]),
        n_voxels=1,
        details={"selection": "minimum of the sgACC seed map in the search region"},
    )


def cluster_target(
    seed_r: np.ndarray,
    search_cols: np.ndarray,
    settings: TargetSettings,
    space: Geometry,
    *,
    map_values: np.ndarray | None = None,
    method: str = "cluster",
) -> TargetResult:
    """Centre of the best cluster of strongly negative seed-map voxels.

    Steps: smooth the map inside the search region (``smoothing_fwhm_mm``;
    see :meth:`trdnet.geometry.Geometry.smooth`: normalised Gaussian
    convolution on a grid, calibrated neighbour averaging along a mesh);
    keep the most negative ``top_fraction`` of the region's negative voxels or
    vertices; label connected clusters (26 neighbours on a grid, mesh edges
    on a mesh); rank them (``settings.cluster_rank``: ``size``, the
    largest cluster as in Fox 2013 and Cash 2021; ``sum``, the largest summed
    anticorrelation; ``mean``, the strongest mean anticorrelation); the target
    is the best cluster's centre, weighted (``settings.centre_weights="abs"``)
    by |value| of the smoothed map, so that it leans towards the strongest
    anticorrelation inside the cluster rather than the cluster's shape alone,
    or unweighted (``"uniform"``, the centroid). The centre is then put on
    the region (:meth:`~trdnet.geometry.Geometry.place`): on a grid, a centre
    outside the region moves to the nearest region voxel; on a mesh, the
    target is the region vertex nearest the centre. Every cluster is kept in
    ``result.candidates`` (see :func:`~trdnet.targeting.sites.candidate_table`).

    Parameters
    ----------
    seed_r : numpy.ndarray, shape (V,)
        sgACC seed map; r_sgacc is read from it.
    search_cols : numpy.ndarray of int
    settings : TargetSettings
    space : trdnet.geometry.Geometry
    map_values : numpy.ndarray, shape (len(search_cols),), optional
        Map to cluster, one value per search column (default: ``seed_r`` there).
    method : str
        Name recorded in the result.

    Returns
    -------
    TargetResult

    Raises
    ------
    TargetingError
        When no voxel of the search region has a negative value.
    """
    search_cols = _check_region(search_cols)
    values = np.asarray(seed_r)[search_cols] if map_values is None else np.asarray(map_values)
    if values.shape != search_cols.shape:
        raise TargetingError(
            f"map to cluster has {values.shape[0]} values for {search_cols.size} search voxels"
        )
    smoothed = space.smooth(values, settings.smoothing_fwhm_mm, search_cols)
    negative = np.flatnonzero(smoothed < 0)
    if negative.size == 0:
        raise TargetingError(
            "no negative correlation in the DLPFC search region: cannot pick an anticorrelated target"
        )
    n_keep = max(1, int(np.ceil(settings.top_fraction * negative.size)))
    keep = negative[np.argsort(smoothed[negative], kind="stable")[:n_keep]]
    selected = np.zeros(search_cols.size, dtype=bool)
    selected[keep] = True
    labels = space.clusters(selected, search_cols)
    scores = cluster_scores(smoothed, labels, settings.cluster_rank)
    best = int(np.argmax(scores)) + 1
    members = np.flatnonzero(labels == best)
    centre = cluster_centre(space, search_cols[members], smoothed[members], settings.centre_weights)
    column, xyz, moved, dist = space.place(centre, search_cols)
    note = ""
    if moved:
        note = (
            f"centre of mass {tuple(float(v) for v in np.round(centre, 1))} lies outside the "
            f"search region (grey matter); moved {dist:.1f} mm to the nearest region voxel"
        )
    return TargetResult(
        method=method,
        xyz=xyz,
        column=column,
        r_sgacc=float(seed_r[column]),
        n_voxels=int(members.size),
        moved_to_grey_matter=moved,
        note=note,
        details={
            "smoothing_fwhm_mm": settings.smoothing_fwhm_mm,
            "smoothing": _SMOOTHING[space.kind],
            "top_fraction": settings.top_fraction,
            "n_negative": int(negative.size),
            "n_kept": int(n_keep),
            "n_clusters": int(scores.size),
            "connectivity": _CONNECTIVITY[space.kind],
            "cluster_rank": settings.cluster_rank,
            "centre_of_mass_weights": (
                "|smoothed map value|" if settings.centre_weights == "abs" else "uniform (centroid)"
            ),
            "map_value_at_target": float(smoothed[np.searchsorted(search_cols, column)]),
        },
        candidates=candidate_table(space, search_cols, labels, smoothed, scores, settings.centre_weights, best),
    )


#: How the cluster method's map is smoothed and its clusters joined, per kind of geometry (for the sidecar).
_SMOOTHING = {"voxel": "normalised Gaussian inside the search region",
              "mesh": "neighbour averaging along the mesh inside the search region, calibrated to the FWHM"}
_CONNECTIVITY = {"voxel": 26, "mesh": "mesh edges"}


def seedmap_target(
    cleaned: CleanedRun,
    search_cols: np.ndarray,
    settings: TargetSettings,
    group_map=None,
    *,
    seed_r: np.ndarray | None = None,
    reference: np.ndarray | None = None,
) -> TargetResult:
    """Fox 2013 / Cash 2021 seedmap method.

    The reference signal is the group-map-weighted mean of grey-matter voxels
    (search region zeroed; see :func:`~trdnet.targeting.seedmap.reference_signal`
    for the sign convention), correlated with every search-region voxel; the
    :func:`cluster_target` step is then applied to that map.

    Parameters
    ----------
    cleaned : CleanedRun
    search_cols : numpy.ndarray of int
    settings : TargetSettings
    group_map : array-like (V,), str, Path or image, optional
        Group-level sgACC map; default ``settings.group_map``.
    seed_r : numpy.ndarray, shape (V,), optional
        Individual sgACC seed map, to report r_sgacc (NaN when absent).
    reference : numpy.ndarray, shape (T,), optional
        Precomputed reference signal (skips the group map).

    Returns
    -------
    TargetResult
    """
    search_cols = _check_region(search_cols)
    if reference is None:
        source = group_map if group_map is not None else settings.group_map
        if source is None:
            raise TargetingError(
                "method 'seedmap' needs a group sgACC map: pass group_map or set targeting.group_map"
            )
        weights = group_map_values(cleaned.space, source)
        reference = reference_signal(
            cleaned, weights, search_cols, settings.grey_matter_threshold
        )
    values = correlate_with(cleaned.data[:, search_cols], reference)
    r_map = seed_r if seed_r is not None else np.full(cleaned.space.n_points, np.nan, np.float32)
    result = cluster_target(
        r_map, search_cols, settings, cleaned.space, map_values=values, method="seedmap"
    )
    result.details["reference"] = (
        "group-map-weighted mean of grey-matter voxels, search region zeroed (sgACC-like sign)"
    )
    return result


def _check_region(search_cols) -> np.ndarray:
    search_cols = np.asarray(search_cols, dtype=np.int64)
    if search_cols.size == 0:
        raise TargetingError("the DLPFC search region is empty: no target can be chosen")
    if np.any(np.diff(search_cols) <= 0):
        search_cols = np.unique(search_cols)
    return search_cols
