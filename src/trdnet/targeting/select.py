"""Run the configured target methods and read the seed map at reference sites."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..cleaned import CleanedRun
from ..config import TARGET_METHODS, TargetSettings
from ..errors import NotImplementedFeatureError, SettingsError
from .hierarchical import hierarchical_target
from .methods import cluster_target, peak_target, seedmap_target
from .regions import has_template_coordinates, site_coordinates, usable_regions
from .result import TargetResult
from .seedmap import seed_map

#: Names accepted in ``TargetSettings.methods``.
METHODS = TARGET_METHODS


def check_methods(settings: TargetSettings) -> None:
    """Fail early, naming the accepted methods, if a method name is unknown."""
    if not settings.methods:
        raise SettingsError(f"targeting.methods is empty; accepted: {list(METHODS)}")
    unknown = [m for m in settings.methods if m not in METHODS]
    if unknown:
        raise SettingsError(f"unknown targeting method(s) {unknown}; accepted: {list(METHODS)}")


#: Methods that need a volume (their parameters are defined in voxels or mm^3).
VOLUME_ONLY_METHODS = ("hierarchical",)


def check_targeting_fits(settings: TargetSettings, runs) -> None:
    """Refuse, before any work, targeting requests that surface runs cannot serve.

    ``hierarchical`` (its minimum cluster size is a volume), ``seedmap`` (its group map is a
    volume image) and region masks given as volume images (``seed_mask``, ``search_mask``) on
    runs whose columns are mesh vertices.

    Raises
    ------
    NotImplementedFeatureError
        Naming the first surface run, the request and what works instead.
    """
    from ..inputs.surface import SurfaceRun

    surface = [run for run in runs if isinstance(run, SurfaceRun)]
    if not surface:
        return
    name = Path(surface[0].bold).name
    methods = [m for m in settings.methods if m in VOLUME_ONLY_METHODS]
    if methods:
        raise NotImplementedFeatureError(
            f"{name}: target method {methods[0]!r} is not implemented on cortical meshes (its minimum cluster size, "
            f"{settings.min_cluster_mm3:g} mm^3, is a volume with no published surface equivalent); use cluster or "
            "peak for surface runs"
        )
    if "seedmap" in settings.methods:
        raise NotImplementedFeatureError(
            f"{name}: target method 'seedmap' needs a group sgACC map, and group maps are volume images: a "
            "per-vertex group map for cortical meshes is not implemented; use cluster or peak for surface runs"
        )
    for setting in ("seed_mask", "search_mask"):
        if getattr(settings, setting):
            raise NotImplementedFeatureError(
                f"{name}: targeting.{setting} is a volume image and the run is on a cortical mesh: region masks on "
                "meshes are not implemented (leave the setting out to use the spheres)"
            )


def run_method(
    method: str,
    cleaned: CleanedRun,
    seed_cols: np.ndarray,
    search_cols: np.ndarray,
    settings: TargetSettings,
    seed_r: np.ndarray,
    *,
    group_map=None,
    reference: np.ndarray | None = None,
) -> TargetResult:
    """Run one method by name with the inputs every method may need.

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    cleaned : CleanedRun
    seed_cols, search_cols : numpy.ndarray of int
    settings : TargetSettings
    seed_r : numpy.ndarray, shape (V,)
        sgACC seed map of ``cleaned``.
    group_map : optional
        Group sgACC map for ``seedmap``.
    reference : numpy.ndarray, optional
        Precomputed ``seedmap`` reference signal.

    Returns
    -------
    TargetResult
    """
    if method == "peak":
        return peak_target(seed_r, search_cols, settings, cleaned.space)
    if method == "cluster":
        return cluster_target(seed_r, search_cols, settings, cleaned.space)
    if method == "seedmap":
        return seedmap_target(
            cleaned, search_cols, settings, group_map, seed_r=seed_r, reference=reference
        )
    if method == "hierarchical":
        return hierarchical_target(cleaned, search_cols, settings, seed_cols, seed_r=seed_r)
    raise SettingsError(f"unknown targeting method {method!r}; accepted: {list(METHODS)}")


def select_targets(
    cleaned: CleanedRun, settings: TargetSettings, group_map=None
) -> list[TargetResult]:
    """Targets of every method in ``settings.methods`` (the first is primary).

    Parameters
    ----------
    cleaned : CleanedRun
    settings : TargetSettings
    group_map : optional
        Group sgACC map for the ``seedmap`` method (array per column or image).

    Returns
    -------
    list of TargetResult
        In the order of ``settings.methods``.
    """
    check_methods(settings)
    seeds, search, _ = usable_regions(cleaned, settings)
    seed_r = seed_map(cleaned, seeds)
    return [
        run_method(m, cleaned, seeds, search, settings, seed_r, group_map=group_map)
        for m in settings.methods
    ]


def reference_rows(cleaned: CleanedRun, seed_r: np.ndarray, settings: TargetSettings) -> pd.DataFrame:
    """sgACC seed-map r at each reference site of ``settings.reference_targets``.

    r is the mean over a ``settings.reference_radius_mm`` sphere around the
    site; the coordinate reported is the site itself (MNI152 world RAS mm).

    Parameters
    ----------
    cleaned : CleanedRun
    seed_r : numpy.ndarray, shape (V,)
    settings : TargetSettings

    Returns
    -------
    pandas.DataFrame
        Columns ``target, method, x, y, z, r_sgacc, n_voxels, note``.
    """
    rows = []
    sites = site_coordinates(settings.reference_targets)
    for name, xyz in sites.items():
        note = ""
        if not has_template_coordinates(cleaned.space):
            r, n = np.nan, 0
            note = f"MNI152 literature site, not sampled: the data are in {cleaned.space.space}"
        else:
            cols = cleaned.space.template_sphere_columns(xyz, settings.reference_radius_mm)
            n = int(cols.size)
            r = float(np.mean(seed_r[cols])) if n else np.nan
            if not n:
                note = ("no brain voxel within the reference sphere" if cleaned.space.kind == "voxel" else
                        f"no vertex with signal within {settings.reference_radius_mm:g} mm (the site lies off the "
                        f"{cleaned.space.surface} surface)")
        rows.append(
            {
                "target": name,
                "method": "reference",
                "x": xyz[0],
                "y": xyz[1],
                "z": xyz[2],
                "r_sgacc": r,
                "n_voxels": n,
                "note": note,
            }
        )
    return pd.DataFrame(rows)
