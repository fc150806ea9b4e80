"""Brainsight target files: the coordinate-system name and the writer.

Brainsight names the coordinate systems of a NIfTI-based project after the
image's qform/sform codes (``NIFTI_XFORM_*``): ``NIfTI:Scanner`` (1),
``NIfTI:Aligned`` (2), ``NIfTI:Talairach`` (3), ``NIfTI:MNI-152`` (4); file
version 14 adds which transform the name comes from (``NIfTI:Q:Scanner``,
``NIfTI:S:Scanner``). Checked against Rogue Research's description quoted in
SimNIBS (``simnibs/utils/nnav.py``) and Brainsight's own exports of versions
7, 8 and 14 in SimNIBS's test data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib

from .._version import __version__
from ..entities import sidecar_path
from ..outputs import atomic_write_text
from .coil import IDENTITY_LABEL, CoilPose
from .writers import ExportMeta, write_json

#: Brainsight's names of the NIfTI xform codes.
CODE_NAMES = {1: "Scanner", 2: "Aligned", 3: "Talairach", 4: "MNI-152"}
#: File versions trdnet writes: 12 names the system by code, 14 also by form (Q or S).
VERSIONS = (12, 14)
#: Brainsight's fixed notes line.
NOTES_LINE = "# Notes: Each column is delimited by a tab. Each value within a column is delimited by a semicolon."
COLUMNS = ["# Target Name", "Loc. X", "Loc. Y", "Loc. Z",
           *[f"m{i}n{j}" for i in range(3) for j in range(3)]]


@dataclass(frozen=True)
class CoordinateSystem:
    """A Brainsight coordinate system for an image, or why there is none.

    Attributes
    ----------
    name : str or None
        ``NIfTI:<code name>`` (version 12) or ``NIfTI:<Q|S>:<code name>``
        (version 14); None when Brainsight would offer no NIfTI system.
    version : int
        File version consistent with ``name``.
    reason : str
        Why ``name`` is None (empty otherwise).
    """

    name: str | None
    version: int
    reason: str = ""


def coordinate_system_name(code: int, form: str, version: int) -> str:
    """``NIfTI:Scanner`` / ``NIfTI:S:Scanner`` ... for an xform code, its form (Q or S) and a file version."""
    if version not in VERSIONS:
        raise ValueError(f"Brainsight file version {version}; accepted: {VERSIONS}")
    label = CODE_NAMES[code]
    return f"NIfTI:{form}:{label}" if version >= 14 else f"NIfTI:{label}"


def coordinate_system(img, version: int = 12, name: str = "the T1w") -> CoordinateSystem:
    """The Brainsight system matching the coordinates trdnet computes for ``img``.

    trdnet's world coordinates are nibabel's ``img.affine``: the sform when
    its code is set, else the qform. The system is named after that
    transform's code.

    Parameters
    ----------
    img : nibabel image
        The image the navigator loads.
    version : {12, 14}
        Brainsight file version to write.
    name : str
        How to call the image in the reason.

    Returns
    -------
    CoordinateSystem
    """
    header = img.header
    if not isinstance(header, nib.Nifti1Header):
        return CoordinateSystem(None, version, f"{name} is not NIfTI; Brainsight names systems after NIfTI codes")
    scode, qcode = int(header["sform_code"]), int(header["qform_code"])
    code, form = (scode, "S") if scode > 0 else (qcode, "Q")
    if code == 0:
        return CoordinateSystem(None, version, f"{name} has qform_code = sform_code = 0 (no defined world frame), "
                                               "so Brainsight offers no NIfTI coordinate system for it; set the "
                                               "codes (1 = scanner)")
    if code not in CODE_NAMES:
        return CoordinateSystem(None, version, f"{name} has sform_code {scode} and qform_code {qcode}; "
                                               f"code {code} has no Brainsight name; accepted: {CODE_NAMES}")
    return CoordinateSystem(coordinate_system_name(code, form, version), version)


def write_brainsight(path, poses: list[CoilPose], meta: ExportMeta, system: CoordinateSystem,
                     extra: dict | None = None) -> list[Path]:
    """Brainsight target list, one target per coil pose, with a JSON sidecar.

    Parameters
    ----------
    path : str or Path
        Output ``.txt``.
    poses : list of CoilPose
        Position (coil centre) and axes of each target, RAS mm of ``meta.source_image``.
    meta : ExportMeta
    system : CoordinateSystem
        From :func:`coordinate_system`; ``system.name`` must be set.
    extra : dict, optional
        More sidecar fields.

    Returns
    -------
    list of Path
        The target file and its sidecar.
    """
    if system.name is None:
        raise ValueError(f"no Brainsight coordinate system: {system.reason}")
    created = f"trdnet {__version__}" + ("; SIMULATED DATA" if meta.simulated else "")
    lines = [
        f"# Version: {system.version}",
        f"# Coordinate system: {system.name}",
        f"# Created by: {created}",
        "# Units: millimetres, degrees, milliseconds, and microvolts",
        "# Encoding: UTF-8",
        NOTES_LINE,
        # comment lines, as the header's: what the reliability of each target means for the team
        *[f"# Warning: {_clean(line)}" for line in meta.warnings()],
        "\t".join(COLUMNS),
    ]
    for pose in poses:
        matrix = pose.brainsight()
        values = [*matrix[:3, 3], *matrix[:3, :3].T.ravel()]  # axis i, component j
        name = meta.display_name(pose.name)
        name = name if pose.orientation != "identity" else f"{name} ({IDENTITY_LABEL})"
        lines.append(_clean(name) + "\t" + "\t".join(f"{v:.4f}" for v in values))
    path = atomic_write_text(Path(path), "\n".join(lines) + "\n")
    side = write_json(sidecar_path(path), {
        **meta.to_dict(), **(extra or {}),
        "Format": f"Brainsight target list, version {system.version}",
        "Convention": "Loc. X/Y/Z = coil centre; m<i>n<j> = component j of coil axis i; "
                      "z out of the head, y away from the handle",
        "HowToLoad": "Open the Brainsight project built on SourceImage (the same file, not a re-saved copy) "
                     f"and import this file's targets; the project must offer coordinate system {system.name}",
    })
    return [path, side]


def _clean(name) -> str:
    return str(name).replace("\t", " ").replace("\n", " ")
