"""Export of targets for TMS teams: MNI -> native T1w, checks, scalp
projection, coil poses, and Brainsight / Localite / NIfTI / TSV writers."""

from __future__ import annotations

from .anatomy import NativeAnatomy, find_native_anatomy
from .brainsight import coordinate_system, write_brainsight
from .coil import CoilPose
from .localite import write_entry_targets, write_instrument_markers
from .native import ExportResult, export_targets
from .transforms import PointTransform, load_point_transform
from .writers import ExportMeta, write_sphere_nifti

__all__ = [
    "CoilPose",
    "ExportMeta",
    "ExportResult",
    "NativeAnatomy",
    "PointTransform",
    "coordinate_system",
    "export_targets",
    "find_native_anatomy",
    "load_point_transform",
    "write_brainsight",
    "write_entry_targets",
    "write_instrument_markers",
    "write_sphere_nifti",
]
