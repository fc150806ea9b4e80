"""Which ROIs make up the DMN, SN and ECN: atlas presets and user atlases.

Every preset is turned into one table with the same columns, so the later
steps never need to know where the ROIs came from:

``roi``, ``network``, ``atlas_label``, ``x``, ``y``, ``z`` (MNI152 RAS mm;
for parcels the centroid), ``radius_mm`` (NaN for parcels), ``label_value``
(parcel value in ``labels_img``, NaN for spheres), ``labels_img`` (path or
empty), ``source``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import NetworkSettings
from ..errors import InputError, SettingsError
from .presets import NETWORK_ORDER, PRESETS, preset_table
from .surface_atlas import is_surface_atlas, read_surface_labels

#: Columns of every ROI table returned by :func:`network_rois`.
ROI_COLUMNS = (
    "roi",
    "network",
    "atlas_label",
    "x",
    "y",
    "z",
    "radius_mm",
    "label_value",
    "labels_img",
    "source",
)

# Each preset's own network labels. ``NetworkSettings.networks`` is written in
# Seitzman's labels by default; for another preset that default means "this
# preset's own mapping", any other value is used as given.
_PRESET_NETWORKS = {
    "seitzman2018": {"DMN": ["DefaultMode"], "SN": ["Salience"], "ECN": ["FrontoParietal"]},
    # Dosenbach 2010 has no salience network: cingulo-opercular is a proxy.
    "dosenbach2010": {
        "DMN": ["default"],
        "SN": ["cingulo-opercular"],
        "ECN": ["fronto-parietal"],
    },
    "raichle_nodes": {"DMN": ["DMN"], "SN": ["SN"], "ECN": ["ECN"]},
}

def network_rois(settings: NetworkSettings) -> pd.DataFrame:
    """ROIs of the DMN, SN and ECN for the chosen atlas.

    Parameters
    ----------
    settings : NetworkSettings
        ``atlas`` picks the preset (``seitzman2018``, ``dosenbach2010``,
        ``raichle_nodes``) or ``labels`` for a user atlas given by
        ``labels_img`` and ``labels_table``. ``networks`` maps trdnet's
        network names to the atlas's network labels (a label equal to a
        trdnet name always maps to itself). ``roi_radius_mm`` overrides the
        preset's sphere radius.

    Returns
    -------
    pandas.DataFrame
        One row per ROI, columns :data:`ROI_COLUMNS`, ordered DMN, SN, ECN
        then by atlas order; ``roi`` is ``<network>_<nnn>`` numbered from 1
        within each network. Coordinates are MNI152 RAS world mm (for a user
        atlas: the space of ``labels_img``).

    Raises
    ------
    SettingsError
        Unknown atlas, missing user-atlas files, or a requested network
        that matches no ROI of the atlas.
    """
    atlas = settings.atlas
    if atlas not in PRESETS:
        raise SettingsError(f"networks.atlas={atlas!r} is unknown; accepted: {list(PRESETS)}")
    if atlas != "labels" and (settings.labels_img or settings.labels_table):
        raise SettingsError(
            f"networks.labels_img/labels_table are set but networks.atlas={atlas!r}; "
            "set networks.atlas='labels' to use a user atlas"
        )
    if settings.roi_radius_mm is not None and settings.roi_radius_mm <= 0:
        raise SettingsError(
            f"networks.roi_radius_mm={settings.roi_radius_mm!r} must be > 0 (or None)"
        )
    table = _user_atlas_table(settings) if atlas == "labels" else preset_table(atlas)
    if settings.roi_radius_mm is not None and atlas != "labels":
        table["radius_mm"] = float(settings.roi_radius_mm)
    mapping = _effective_mapping(settings)
    return _assign_networks(table, mapping, atlas)


def _effective_mapping(settings: NetworkSettings) -> dict[str, list[str]]:
    """trdnet network -> atlas labels actually used for this atlas."""
    if settings.networks is not None:
        mapping = settings.networks
    elif settings.atlas in _PRESET_NETWORKS:
        mapping = _PRESET_NETWORKS[settings.atlas]
    else:  # a user atlas whose table names DMN / SN / ECN directly
        mapping = {"DMN": [], "SN": [], "ECN": []}
    if not mapping:
        raise SettingsError("networks.networks is empty; give at least one of DMN, SN, ECN")
    return {name: [*labels, name] for name, labels in mapping.items()}


def _assign_networks(table: pd.DataFrame, mapping: dict[str, list[str]], atlas: str) -> pd.DataFrame:
    label_to_network: dict[str, str] = {}
    for name, labels in mapping.items():
        for label in labels:
            if label in label_to_network and label_to_network[label] != name:
                raise SettingsError(
                    f"atlas network label {label!r} is mapped to both "
                    f"{label_to_network[label]} and {name}; give each label one network"
                )
            label_to_network[label] = name
    table = table.copy()
    table["network"] = table["atlas_network"].map(label_to_network)
    found = set(table["network"].dropna())
    missing = {name: labels for name, labels in mapping.items() if name not in found}
    if missing:
        raise SettingsError(
            f"atlas {atlas!r}: no ROI has the network label(s) {missing} "
            f"(networks.networks); the atlas's labels are "
            f"{sorted(set(table['atlas_network'].astype(str)))}"
        )
    table = table.dropna(subset=["network"])
    order = [*[n for n in NETWORK_ORDER if n in found], *sorted(found - set(NETWORK_ORDER))]
    table["_rank"] = table["network"].map({name: i for i, name in enumerate(order)})
    table = table.sort_values(["_rank"], kind="stable").drop(columns="_rank")
    table["roi"] = [
        f"{net}_{i:03d}" for net, i in zip(table["network"], table.groupby("network").cumcount() + 1)
    ]
    if atlas == "dosenbach2010":
        proxy = table["atlas_network"] == "cingulo-opercular"
        table.loc[proxy, "source"] = (
            table.loc[proxy, "source"] + "; cingulo-opercular used as a proxy for the salience network"
        )
    for column in ROI_COLUMNS:
        if column not in table:
            table[column] = np.nan if column in ("radius_mm", "label_value") else ""
    table["atlas_label"] = table["atlas_network"].astype(str) + " | " + table["atlas_label"].astype(str)
    table = table[list(ROI_COLUMNS)].reset_index(drop=True)
    table[["x", "y", "z", "radius_mm", "label_value"]] = table[
        ["x", "y", "z", "radius_mm", "label_value"]
    ].astype(float)
    return table


def _user_atlas_table(settings: NetworkSettings) -> pd.DataFrame:
    """ROI table of a user labels image + TSV (parcels, centroids as x, y, z).

    A surface atlas (``.label.gii`` pair or ``.dlabel.nii``, see
    :mod:`trdnet.networks.surface_atlas`) gives NaN positions here: a run
    places each parcel at the mean MNI152 position of its vertices.
    """
    from nilearn import image

    if not settings.labels_img or not settings.labels_table:
        raise SettingsError(
            "networks.atlas='labels' needs both networks.labels_img (3D integer image) "
            "and networks.labels_table (TSV with columns index, name, network)"
        )
    table_path = Path(settings.labels_table)
    try:
        labels = pd.read_csv(table_path, sep="\t", comment="#")
    except (OSError, pd.errors.ParserError) as exc:
        raise InputError(f"{table_path}: cannot read the labels table ({exc})") from None
    needed = {"index", "name", "network"}
    if not needed <= set(labels.columns):
        raise InputError(
            f"{table_path}: labels table lacks column(s) {sorted(needed - set(labels.columns))}; "
            "expected tab-separated columns index, name, network"
        )
    values = labels["index"].to_numpy(np.int64)
    if is_surface_atlas(settings.labels_img):
        # parcels on a mesh have no position of their own: each run gives them the mean of its vertices
        found = np.where(read_surface_labels(settings.labels_img).present(values), 0.0, np.nan)[:, None]
        return _labels_table(settings, labels, values, found, np.full((values.size, 3), np.nan), table_path)
    try:
        img = image.load_img(settings.labels_img)
    except Exception as exc:  # nilearn raises several types for unreadable images
        raise InputError(f"{settings.labels_img}: cannot read the labels image ({exc})") from None
    if img.ndim != 3:
        raise InputError(f"{settings.labels_img}: expected a 3D labels image, got {img.ndim}D")
    data = np.asarray(img.dataobj)
    if not np.allclose(data, np.round(data)):
        raise InputError(f"{settings.labels_img}: labels image has non-integer values")
    data = np.round(data).astype(np.int64)
    centroids = _label_centroids(data, img.affine, values)
    return _labels_table(settings, labels, values, centroids, centroids, table_path)


def _labels_table(settings: NetworkSettings, labels: pd.DataFrame, values: np.ndarray, found: np.ndarray,
                  centroids: np.ndarray, table_path: Path) -> pd.DataFrame:
    """ROI rows of a user atlas; ``found`` is NaN for the label values absent from the atlas."""
    absent = values[np.isnan(found[:, 0])]
    if absent.size:
        raise InputError(
            f"{table_path}: label value(s) {absent.tolist()} do not occur in {settings.labels_img}"
        )
    return pd.DataFrame(
        {
            "atlas_network": labels["network"].astype(str).to_numpy(),
            "atlas_label": labels["name"].astype(str).to_numpy(),
            "x": centroids[:, 0],
            "y": centroids[:, 1],
            "z": centroids[:, 2],
            "radius_mm": np.nan,
            "label_value": values.astype(float),
            "labels_img": str(settings.labels_img),
            "source": f"user atlas {Path(settings.labels_img).name} + {table_path.name}",
        }
    )


def _label_centroids(data: np.ndarray, affine: np.ndarray, values: np.ndarray) -> np.ndarray:
    """World-mm centroid of each label value (NaN row for an absent value)."""
    import nibabel as nib
    from scipy import ndimage

    ones = np.ones(data.shape)
    counts = np.asarray(ndimage.sum(ones, labels=data, index=values), dtype=float)
    ijk = np.full((values.size, 3), np.nan)
    present = counts > 0
    if present.any():
        centres = ndimage.center_of_mass(ones, labels=data, index=values[present])
        ijk[present] = np.asarray(centres, dtype=float).reshape(-1, 3)
    return nib.affines.apply_affine(affine, ijk)
