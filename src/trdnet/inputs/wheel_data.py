"""Where a sample taken from a wheel (:mod:`trdnet.inputs.registry`) is laid out, and whether that copy is current."""

from __future__ import annotations

import json
from pathlib import Path

from ..cache import cache_dir
from .registry import Wheel


def dataset_folder(name: str, data_dir: str | Path | None = None) -> Path:
    """``<data_dir>/<name>``, else ``<trdnet cache>/datasets/<name>`` (not created here)."""
    root = Path(data_dir) if data_dir is not None else cache_dir() / "datasets"
    return root / name


def is_laid_out(folder: Path, layout_version: str, wheel: Wheel) -> bool:
    """Whether ``folder`` holds a complete copy made by this layout version from this wheel.

    The layout writes ``dataset_description.json`` last, with ``TrdnetLayoutVersion``
    and ``WheelSHA256``; a missing, unreadable or older description means "lay it out again".
    """
    try:
        content = json.loads((Path(folder) / "dataset_description.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return content.get("TrdnetLayoutVersion") == layout_version and content.get("WheelSHA256") == wheel.sha256
