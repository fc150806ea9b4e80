"""Localite TMS Navigator files: planned entry/target pairs and coil poses.

Two XML files, laid out as Localite writes them in a session folder (checked
against Localite's own ``EntryTarget`` and ``InstrumentMarkers`` files in
SimNIBS's test data and SimNIBS's documentation of its Localite module):

- ``EntryTargetList``: per target an ``Entry`` (the scalp entry point) and a
  ``Target`` (the cortical target) with the same ``index``, each a ``Marker``
  holding a ``ColVec3D`` (``data0..2`` = x, y, z).
- ``InstrumentMarkerList``: per target an ``InstrumentMarker`` whose
  ``Matrix4D`` (``data<row><col>``) is the coil pose with Localite's axes:
  column 0 = coil normal into the head, column 1 = along the handle, column 3
  = coil centre on the scalp.

Both use ``coordinateSpace="RAS"``: RAS world mm of the NIfTI image loaded
in Localite. Localite has no import for these files: they are copied into a
session folder (``Sessions/Session_<datetime>/EntryTarget/`` and
``.../InstrumentMarkers/``) under Localite's own names, see the README.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from ..entities import sidecar_path
from ..outputs import atomic_write_text
from .coil import IDENTITY_LABEL, CoilPose
from .writers import ExportMeta, write_json

#: BIDS suffix and extension of each file (the name is built by :func:`trdnet.entities.output_name`).
ENTRY_TARGET_NAME = ("localiteEntryTarget", ".xml")
INSTRUMENT_MARKER_NAME = ("localiteInstrumentMarker", ".xml")
#: File-name endings (after the BIDS prefix and ``desc-navtargets_``).
ENTRY_TARGET_SUFFIX = "".join(ENTRY_TARGET_NAME)
INSTRUMENT_MARKER_SUFFIX = "".join(INSTRUMENT_MARKER_NAME)
#: Where each file goes in a Localite patient folder, and the name Localite gives such files.
SESSION_FILES = {
    ENTRY_TARGET_SUFFIX: "Sessions/Session_<datetime>/EntryTarget/EntryTarget<yyyyMMddHHmmssSSS>.xml",
    INSTRUMENT_MARKER_SUFFIX: "Sessions/Session_<datetime>/InstrumentMarkers/InstrumentMarker<yyyyMMddHHmmssSSS>.xml",
}
_HOW_TO_LOAD = (
    "Localite has no import for this file. With TMS Navigator closed, copy it into the session folder as {dest}, "
    "with a date-time later than the files already there (Localite reads the newest), then open the session. "
    "The session must use SourceImage as its image, in RAS."
)


def write_entry_targets(path, poses: list[CoilPose], meta: ExportMeta, extra: dict | None = None) -> list[Path]:
    """``EntryTargetList``: the scalp entry and the cortical target of each pose.

    Parameters
    ----------
    path : str or Path
        Output ``..._localiteEntryTarget.xml``.
    poses : list of CoilPose
        RAS mm of ``meta.source_image``.
    meta : ExportMeta
    extra : dict, optional
        More sidecar fields.

    Returns
    -------
    list of Path
        The XML file and its JSON sidecar.
    """
    body = []
    for index, pose in enumerate(poses):
        for tag, point, color, label, aura in (
            ("Entry", pose.entry, "#00ff00", f"{meta.display_name(pose.name)} entry", "false"),
            ("Target", pose.target, "#00ffff", meta.display_name(pose.name), "true"),
        ):
            body += [
                f'    <{tag} alwaysVisible="false" index="{index}" selected="false">',
                f'        <Marker color="{color}" description={quoteattr(label)} drawAura="{aura}" '
                f'radius="4.0" set="true">',
                "            <ColVec3D " + " ".join(f'data{i}="{v:.6f}"' for i, v in enumerate(point)) + "/>",
                "        </Marker>",
                f"    </{tag}>",
            ]
    text = _document("EntryTargetList", body, meta)
    return _write(path, text, meta, extra, ENTRY_TARGET_SUFFIX,
                  "ColVec3D data0/1/2 = x/y/z; Entry = scalp entry point, Target = cortical target")


def write_instrument_markers(path, poses: list[CoilPose], meta: ExportMeta,
                             extra: dict | None = None) -> list[Path]:
    """``InstrumentMarkerList``: the coil pose of each target in Localite's axes.

    Parameters are those of :func:`write_entry_targets`.

    Returns
    -------
    list of Path
        The XML file and its JSON sidecar.
    """
    body = []
    for index, pose in enumerate(poses):
        matrix = pose.localite()
        name = meta.display_name(pose.name)
        name = name if pose.orientation != "identity" else f"{name} ({IDENTITY_LABEL})"
        warning = meta.warning(pose.name)
        data = " ".join(f'data{r}{c}="{matrix[r, c]:.6f}"' for r in range(4) for c in range(4))
        body += [
            f'    <InstrumentMarker alwaysVisible="false" index="{index}" selected="false">',
            f'        <Marker additionalInformation={quoteattr(warning)} color="#ff0000" description={quoteattr(name)} '
            'set="true">',
            f"            <Matrix4D {data}/>",
            "        </Marker>",
            "    </InstrumentMarker>",
        ]
    text = _document("InstrumentMarkerList", body, meta)
    return _write(path, text, meta, extra, INSTRUMENT_MARKER_SUFFIX,
                  "Matrix4D data<row><col>: column 0 = coil normal into the head, column 1 = along the handle, "
                  "column 2 = column 0 x column 1, column 3 = coil centre on the scalp")


def _document(root: str, body: list[str], meta: ExportMeta) -> str:
    comments = [meta.summary(), *meta.notes, *meta.warnings()]
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<{root} coordinateSpace="RAS">',
        *[f"    <!--{_comment(c)}-->" for c in comments],
        *body,
        f"</{root}>",
    ]) + "\n"


def _comment(text: str) -> str:
    # "--" may not appear inside an XML comment
    return escape(str(text)).replace("--", "- -")


def _write(path, text: str, meta: ExportMeta, extra, suffix: str, convention: str) -> list[Path]:
    path = atomic_write_text(Path(path), text)
    side = write_json(sidecar_path(path), {
        **meta.to_dict(), **(extra or {}),
        "Format": f"Localite TMS Navigator {suffix.removeprefix('localite').removesuffix('.xml')} file",
        "Convention": "coordinateSpace RAS (world mm of SourceImage); " + convention,
        "LocaliteSessionFile": SESSION_FILES[suffix],
        "HowToLoad": _HOW_TO_LOAD.format(dest=SESSION_FILES[suffix]),
    })
    return [path, side]
