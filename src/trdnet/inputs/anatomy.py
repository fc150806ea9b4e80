"""The participant's native anatomy as fMRIPrep lays it out in ``anat/``.

Found once per run when the run is found (:func:`trdnet.inputs.bids.find_runs`
stores it as ``Run.anatomy``); the analysis of T1w-space runs, the navigator
export and the report read it from there and never search ``anat/`` again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..config import MNI_SPACE
from ..entities import parse_bids_name, parse_entities

#: fMRIPrep's fsnative surfaces in ``anat/`` (T1w world coordinates), by suffix.
NATIVE_SURFACES = ("midthickness", "pial", "white")


@dataclass(frozen=True)
class NativeAnatomy:
    """Files of one participant's T1w space.

    Attributes
    ----------
    subject : str
        Participant label without ``sub-``.
    t1w : Path
        ``desc-preproc_T1w`` image: the image to load in the navigator.
    brain_mask, gm_probseg, dseg : Path or None
        ``desc-brain_mask``, ``label-GM_probseg`` and tissue ``dseg`` on the T1w grid.
    xfm_t1w_to_template : Path or None
        ``from-T1w_to-<template>_mode-image_xfm``: maps *points* template -> T1w.
    xfm_template_to_t1w : Path or None
        ``from-<template>_to-T1w_mode-image_xfm``: maps *points* T1w -> template.
    session : str or None
        Session label when the anatomy is per session.
    template : str
        Template space the transforms connect to.
    simulated : bool
        True for anatomy made by :mod:`trdnet.inputs.simulate.t1w`.
    registered_spheres : dict
        fMRIPrep's registered spheres (``..._hemi-<h>_desc-reg_sphere.surf.gii``: the participant's
        vertices placed on a template's sphere), ``{"fsaverage" | "fsLR": {"L" | "R": Path}}``.
    surfaces : dict
        fMRIPrep's fsnative surfaces, ``{"L" | "R": {"midthickness" | "pial" | "white": Path}}``.
    """

    subject: str
    t1w: Path
    brain_mask: Path | None = None
    gm_probseg: Path | None = None
    dseg: Path | None = None
    xfm_t1w_to_template: Path | None = None
    xfm_template_to_t1w: Path | None = None
    session: str | None = None
    template: str = MNI_SPACE
    simulated: bool = False
    registered_spheres: dict = field(default_factory=dict, compare=False)
    surfaces: dict = field(default_factory=dict, compare=False)


def find_native_anatomy(
    fmriprep_dir: str | Path,
    subject: str,
    session: str | None = None,
    template: str = MNI_SPACE,
) -> NativeAnatomy | None:
    """Find a participant's native T1w files in fMRIPrep derivatives.

    fMRIPrep writes anatomy to ``sub-<l>/anat`` (one T1w across sessions) or
    ``sub-<l>/ses-<l>/anat``. With ``session`` given, the session folder is
    searched first, then the subject folder; without it, the subject folder,
    then the first session folder (sorted) that holds a T1w.

    Parameters
    ----------
    fmriprep_dir : str or Path
        Root of the fMRIPrep derivatives.
    subject : str
        Participant label, with or without ``sub-``.
    session : str, optional
        Session label, with or without ``ses-``.
    template : str
        Template the transforms must connect to.

    Returns
    -------
    NativeAnatomy or None
        None when no native ``desc-preproc_T1w`` exists.
    """
    root = Path(fmriprep_dir)
    subject = subject.removeprefix("sub-")
    session = session.removeprefix("ses-") if session else None
    sub_dir = root / f"sub-{subject}"
    folders = []
    if session:
        folders.append(sub_dir / f"ses-{session}" / "anat")
    folders.append(sub_dir / "anat")
    if not session:
        folders += sorted(sub_dir.glob("ses-*/anat"))
    for folder in folders:
        found = _scan(folder, subject, template)
        if found is not None:
            return found
    return None


def _scan(folder: Path, subject: str, template: str) -> NativeAnatomy | None:
    if not folder.is_dir():
        return None
    files = sorted(p for p in folder.iterdir() if p.name.startswith(f"sub-{subject}_"))

    def pick(suffix: str, **want) -> Path | None:
        for path in files:
            if not (path.name.endswith(suffix + ".nii.gz") or path.name.endswith(suffix + ".nii")
                    or path.name.endswith(suffix + ".h5")):
                continue
            ents = parse_entities(path)
            if "space" in ents:
                continue  # template-space copies are not native
            if suffix == "_dseg" and "desc" in ents:
                continue  # FreeSurfer aseg/aparcaseg, not the tissue classes
            if all(ents.get(k) == v for k, v in want.items()):
                return path
        return None

    t1w = pick("_T1w", desc="preproc")
    if t1w is None:
        return None
    ents = parse_entities(t1w)
    return NativeAnatomy(
        subject=subject,
        session=ents.get("ses"),
        t1w=t1w,
        brain_mask=pick("_mask", desc="brain"),
        gm_probseg=pick("_probseg", label="GM"),
        dseg=pick("_dseg"),
        xfm_t1w_to_template=pick("_xfm", **{"from": "T1w", "to": template, "mode": "image"}),
        xfm_template_to_t1w=pick("_xfm", **{"from": template, "to": "T1w", "mode": "image"}),
        template=template,
        simulated=_is_simulated(t1w),
        **_surface_files(files, ents.get("ses")),
    )


def _surface_files(files: list[Path], session: str | None) -> dict:
    """``registered_spheres`` and ``surfaces`` among the files of the T1w's ``anat/`` folder.

    Files of the T1w's session, or of no session; sorted names put a session's own file after the other.
    """
    spheres, surfaces = {}, {}
    for path in files:
        name = parse_bids_name(path)
        hemi = name.entities.get("hemi")
        if name.extension != ".surf.gii" or hemi not in ("L", "R") or name.entities.get("ses") not in (None, session):
            continue
        space = name.entities.get("space")
        if name.suffix == "sphere" and name.entities.get("desc") == "reg" and space in (None, "fsLR"):
            spheres.setdefault(space or "fsaverage", {})[hemi] = path  # no space: FreeSurfer's sphere.reg
        elif name.suffix in NATIVE_SURFACES and space is None and "desc" not in name.entities:
            surfaces.setdefault(hemi, {})[name.suffix] = path
    return {"registered_spheres": spheres, "surfaces": surfaces}


def _is_simulated(t1w: Path) -> bool:
    sidecar = Path(str(t1w).replace(".nii.gz", ".json").replace(".nii", ".json"))
    try:
        return bool(json.loads(sidecar.read_text()).get("Simulated", False))
    except (OSError, ValueError):
        return False
