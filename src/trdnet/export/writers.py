"""Writers for neuronavigation systems and BIDS-style tables.

Every writer takes plain values, writes atomically (a temporary name in the
same folder, then :func:`os.replace`) and returns the written path. Every
file names the participant, the source T1w, the space, the trdnet version,
and says SIMULATED when the data are.

Orientation matrices: ``rotations[n]`` is a 3x3 matrix whose *columns* are
the coil's x, y and z axes in RAS. Brainsight's ``m<i>n<j>`` is component
``j`` of axis ``i``; Localite's ``Matrix4D`` holds the same axes as the
columns of its upper-left 3x3 block, the position in ``data03/13/23``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import nibabel as nib
import numpy as np

from .._version import __version__


@dataclass
class ExportMeta:
    """What every exported file says about its content.

    Attributes
    ----------
    participant : str
        ``sub-<l>[_ses-<l>]``.
    source_image : str
        File name of the image the coordinates refer to (the T1w to load in
        the navigator, or the template).
    space : str
        ``T1w`` or a template name.
    simulated : bool
        True when the data are simulated.
    notes : list of str
        Extra notes (checks, fallbacks).
    """

    participant: str
    source_image: str
    space: str
    simulated: bool = False
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line naming participant, source image, space and version."""
        text = (
            f"participant {self.participant}; source image {self.source_image}; "
            f"space {self.space} (world RAS mm); trdnet {__version__}"
        )
        if self.simulated:
            text = "SIMULATED DATA; " + text
        return text

    def to_dict(self) -> dict:
        """JSON form."""
        return {
            "Participant": self.participant,
            "SourceImage": self.source_image,
            "Space": self.space,
            "CoordinateConvention": "RAS world millimetres",
            "Simulated": self.simulated,
            "Software": f"trdnet {__version__}",
            "Notes": list(self.notes),
        }


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write text to ``path`` through a temporary file in the same folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_brainsight(path, names, xyz, rotations, meta: ExportMeta) -> Path:
    """Brainsight target file (``# Version: 12``, ``NIfTI:Aligned``).

    Parameters
    ----------
    path : str or Path
        Output ``.txt``.
    names : sequence of str
        Target names.
    xyz : array-like, shape (N, 3)
        Target positions, world RAS mm of ``meta.source_image``.
    rotations : array-like, shape (N, 3, 3)
        Coil axes as columns (identity: axes along R, A, S).
    meta : ExportMeta

    Returns
    -------
    pathlib.Path
    """
    lines = [
        "# Version: 12",
        "# Coordinate system: NIfTI:Aligned",
        f"# Created by: trdnet {__version__}",
        "# Units: millimetres, degrees, milliseconds, and microvolts",
        "# Encoding: UTF-8",
        "# Notes: " + "; ".join([meta.summary(), *meta.notes]).replace("\n", " "),
        "# Target Name\tLoc. X\tLoc. Y\tLoc. Z\t"
        + "\t".join(f"m{i}n{j}" for i in range(3) for j in range(3)),
    ]
    for name, point, rot in zip(names, np.asarray(xyz, float), np.asarray(rotations, float)):
        values = [*point, *rot.T.ravel()]  # axis i, component j
        lines.append(_clean(name) + "\t" + "\t".join(f"{v:.4f}" for v in values))
    return atomic_write_text(path, "\n".join(lines) + "\n")


def write_localite(path, names, xyz, rotations, meta: ExportMeta) -> Path:
    """Localite ``InstrumentMarkerList`` (RAS) with one marker per target.

    Parameters are those of :func:`write_brainsight`.

    Returns
    -------
    pathlib.Path
    """
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<!-- " + meta.summary().replace("--", "- -") + " -->",
        *[f"<!-- {n.replace('--', '- -')} -->" for n in meta.notes],
        '<InstrumentMarkerList coordinateSpace="RAS">',
    ]
    for index, (name, point, rot) in enumerate(
        zip(names, np.asarray(xyz, float), np.asarray(rotations, float))
    ):
        matrix = np.eye(4)
        matrix[:3, :3] = rot
        matrix[:3, 3] = point
        data = " ".join(
            f'data{r}{c}="{matrix[r, c]:.6f}"' for r in range(4) for c in range(4)
        )
        lines += [
            f'    <InstrumentMarker alwaysVisible="false" index="{index}" selected="false">',
            f'        <Marker additionalInformation="" color="#ff0000" '
            f"description={quoteattr(str(name))} set=\"true\">",
            f"            <Matrix4D {data}/>",
            "        </Marker>",
            "    </InstrumentMarker>",
        ]
    lines.append("</InstrumentMarkerList>")
    return atomic_write_text(path, "\n".join(lines) + "\n")


def write_sphere_nifti(
    path, names, xyz, reference_img, radius_mm: float, meta: ExportMeta
) -> tuple[Path, Path]:
    """Spheres on the reference grid, value = 1-based target index, with a JSON sidecar.

    Where spheres overlap the later target wins. Targets outside the grid are
    listed in the sidecar with ``"InImage": false``.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The image and its sidecar.
    """
    path = Path(path)
    shape = reference_img.shape[:3]
    affine = reference_img.affine
    data = np.zeros(shape, dtype=np.uint16)
    inv = np.linalg.inv(affine)
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    labels = {}
    for value, (name, point) in enumerate(zip(names, np.asarray(xyz, float)), start=1):
        labels[str(value)] = {"Name": str(name), "InImage": False}
        if not np.all(np.isfinite(point)):
            continue
        center = nib.affines.apply_affine(inv, point)
        half = radius_mm / zooms
        lo = np.maximum(np.floor(center - half).astype(int), 0)
        hi = np.minimum(np.ceil(center + half).astype(int) + 1, shape)
        if np.any(hi <= lo):
            continue
        box = np.stack(
            np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), -1
        ).reshape(-1, 3)
        inside = np.linalg.norm(nib.affines.apply_affine(affine, box) - point, axis=1) <= radius_mm
        box = box[inside]
        if len(box):
            data[box[:, 0], box[:, 1], box[:, 2]] = value
            labels[str(value)]["InImage"] = True
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=2 if meta.space == "T1w" else 4)
    img.set_qform(affine, code=2 if meta.space == "T1w" else 4)
    descrip = f"{'SIMULATED ' if meta.simulated else ''}trdnet {__version__} {meta.participant} space-{meta.space}"
    img.header["descrip"] = descrip[:79]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".nii.gz", dir=path.parent)
    os.close(fd)
    try:
        nib.save(img, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    sidecar = {**meta.to_dict(), "SphereRadiusMM": radius_mm, "Labels": labels}
    side = write_json(sidecar_path(path), sidecar)
    return path, side


def write_table(path, table, meta: ExportMeta, extra: dict | None = None) -> tuple[Path, Path]:
    """Tab-separated table plus a JSON sidecar."""
    path = Path(path)
    text = table.to_csv(sep="\t", index=False, na_rep="n/a", float_format="%.4f")
    atomic_write_text(path, text)
    side = write_json(sidecar_path(path), {**meta.to_dict(), **(extra or {})})
    return path, side


def write_json(path, values: dict) -> Path:
    """JSON file, written atomically."""
    return atomic_write_text(path, json.dumps(values, indent=2, default=_jsonable) + "\n")


def sidecar_path(path: str | Path) -> Path:
    """``x.nii.gz`` / ``x.tsv`` / ``x.txt`` -> ``x.json``."""
    path = Path(path)
    name = path.name
    for ext in (".nii.gz", ".nii", ".tsv", ".txt", ".xml"):
        if name.endswith(ext):
            return path.with_name(name[: -len(ext)] + ".json")
    return path.with_suffix(".json")


def _clean(name) -> str:
    return str(name).replace("\t", " ").replace("\n", " ")


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)
