"""Shared pieces of the export writers: what every file says about itself
(:class:`ExportMeta`), the coordinate table, the NIfTI of marker spheres and
JSON sidecars.

Every writer takes plain values, writes atomically (through
:mod:`trdnet.outputs`) and returns the written paths. Every file names the
participant, the source image, the space and the trdnet version, and says
SIMULATED when the data are. The navigator formats live in
:mod:`.brainsight` and :mod:`.localite`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from .._version import __version__
from ..entities import sidecar_path
from ..outputs import atomic_write_text, write_json, write_nifti


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
    reliability : dict of str to str
        Target name -> reliability word of the targets that have one
        (personalised targets; reference sites have none).
    reliability_notes : dict of str to str
        Target name -> what the reliability word means for the team (too
        little data, do not use yet, competing sites...); empty when none.
    targets_of : str
        Whose targets the file holds: the run's BIDS prefix, or the
        participant prefix and ``(participant)`` for a target from all of a
        participant's runs; named in the summary and in every warning, so a
        file and each warning say which run they are about.
    """

    participant: str
    source_image: str
    space: str
    simulated: bool = False
    notes: list[str] = field(default_factory=list)
    reliability: dict[str, str] = field(default_factory=dict)
    reliability_notes: dict[str, str] = field(default_factory=dict)
    targets_of: str = ""

    def display_name(self, name: str) -> str:
        """The target's name as a navigator lists it: ``<name> [reliability <word>]`` unless the word is good.

        Brainsight target names and Localite marker descriptions are free
        text, and the name is the one thing a team sees in every navigator
        list, so a target that is not reliably placed says so there too.
        """
        word = self.reliability.get(str(name), "")
        return str(name) if word in ("", "good") else f"{name} [reliability {word}]"

    def warning(self, name: str) -> str:
        """``target <name> of <targets_of>: reliability <word>. <note>`` (empty for a target without a word)."""
        word = self.reliability.get(str(name), "")
        if not word:
            return ""
        note = self.reliability_notes.get(str(name), "")
        of = f" of {self.targets_of}" if self.targets_of else ""
        return f"target {name}{of}: reliability {word}." + (f" {note}" if note else "")

    def warnings(self) -> list[str]:
        """:meth:`warning` of every target with a reliability word."""
        return [self.warning(name) for name in self.reliability]

    def summary(self) -> str:
        """One line naming participant, whose targets, source image, space and version."""
        of = f"targets of {self.targets_of}; " if self.targets_of else ""
        text = (
            f"participant {self.participant}; {of}source image {self.source_image}; "
            f"space {self.space} (world RAS mm); trdnet {__version__}"
        )
        if self.simulated:
            text = "SIMULATED DATA; " + text
        return text

    def to_dict(self) -> dict:
        """JSON form."""
        return {
            "Participant": self.participant,
            **({"TargetsOf": self.targets_of} if self.targets_of else {}),
            "SourceImage": self.source_image,
            "Space": self.space,
            "CoordinateConvention": "RAS world millimetres",
            "Simulated": self.simulated,
            "Software": f"trdnet {__version__}",
            "Notes": list(self.notes) + self.warnings(),
        }


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
    # the reference's own code, so a navigator lists the spheres in the T1w's coordinate system
    header = reference_img.header
    codes = [int(header[k]) for k in ("sform_code", "qform_code")] if isinstance(header, nib.Nifti1Header) else []
    code = 4 if meta.space != "T1w" else next((c for c in codes if c > 0), 2)
    img.set_sform(affine, code=code)
    img.set_qform(affine, code=code)
    descrip = f"{'SIMULATED ' if meta.simulated else ''}trdnet {__version__} {meta.participant} space-{meta.space}"
    img.header["descrip"] = descrip[:79]
    write_nifti(path, img)
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


