"""The preset ROI atlases: their ROI tables and their own network labels.

Kept apart from :mod:`trdnet.networks.rois` (which turns a table into the
DMN / SN / ECN ROIs of the settings) so that the settings can check a network
mapping against an atlas's labels without importing themselves back.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from ..resources import read_table

#: trdnet's network names, in output order.
NETWORK_ORDER = ("DMN", "SN", "ECN")

#: Values of ``networks.atlas``: the presets, and ``labels`` for a user atlas (:mod:`trdnet.networks.rois`).
PRESETS = ("seitzman2018", "dosenbach2010", "raichle_nodes", "labels")

_SEITZMAN_SOURCE = (
    "Seitzman et al. 2018 (NeuroImage) ROI set via nilearn fetch_coords_seitzman_2018; "
    "MNI per nilearn (template version not stated, used as MNI152NLin2009cAsym)"
)
_DOSENBACH_SOURCE = (
    "Dosenbach et al. 2010 (Science) ROI set via nilearn fetch_coords_dosenbach_2010; "
    "MNI per nilearn (template version not stated, used as MNI152NLin2009cAsym); "
    "5 mm radius (10 mm diameter spheres, unverified)"
)
_DOSENBACH_RADIUS_MM = 5.0


def _seitzman_table() -> pd.DataFrame:
    from nilearn.datasets import fetch_coords_seitzman_2018

    # the atlas's own file order, so that roi names do not depend on nilearn's sorting
    bunch = fetch_coords_seitzman_2018(ordered_regions=False)
    coords = bunch.rois
    index = np.asarray(coords.index)
    return pd.DataFrame(
        {
            "atlas_network": np.asarray(bunch.networks, dtype=str),
            "atlas_label": [
                f"roi{i + 1:03d} {region}" for i, region in zip(index, np.asarray(bunch.regions))
            ],
            "x": coords["x"].to_numpy(float),
            "y": coords["y"].to_numpy(float),
            "z": coords["z"].to_numpy(float),
            "radius_mm": np.asarray(bunch.radius, dtype=float),
            "source": _SEITZMAN_SOURCE,
        }
    )


def _dosenbach_table() -> pd.DataFrame:
    from nilearn.datasets import fetch_coords_dosenbach_2010

    # the atlas's own file order, so that roi names do not depend on nilearn's sorting
    bunch = fetch_coords_dosenbach_2010(ordered_regions=False)
    coords = bunch.rois
    return pd.DataFrame(
        {
            "atlas_network": np.asarray(bunch.networks, dtype=str),
            "atlas_label": np.asarray(bunch.labels, dtype=str),
            "x": coords["x"].to_numpy(float),
            "y": coords["y"].to_numpy(float),
            "z": coords["z"].to_numpy(float),
            "radius_mm": _DOSENBACH_RADIUS_MM,
            "source": _DOSENBACH_SOURCE,
        }
    )


def preset_table(atlas: str) -> pd.DataFrame:
    """ROI table of a preset atlas (not ``"labels"``).

    Returns
    -------
    pandas.DataFrame
        Columns ``atlas_network`` (the atlas's own network label), ``atlas_label``,
        ``x``, ``y``, ``z`` (MNI152 RAS mm), ``radius_mm`` and ``source``, in the atlas's file order.
    """
    if atlas == "seitzman2018":
        return _seitzman_table()
    if atlas == "dosenbach2010":
        return _dosenbach_table()
    if atlas == "raichle_nodes":
        return read_table("networks_raichle_nodes.tsv").rename(columns={"network": "atlas_network"})
    raise ValueError(f"{atlas!r} is not a preset atlas; presets: {list(PRESETS[:-1])}")


@functools.cache
def preset_network_labels(atlas: str) -> tuple[str, ...]:
    """The network labels of a preset atlas: the values ``networks.networks`` can map to.

    Parameters
    ----------
    atlas : str
        One of :data:`PRESETS` except ``"labels"`` (a user atlas's labels are its table's).

    Returns
    -------
    tuple of str
        Sorted labels, e.g. Seitzman 2018's ``DefaultMode``, ``Salience``, ``FrontoParietal``, ...
    """
    return tuple(sorted(set(preset_table(atlas)["atlas_network"].astype(str))))
