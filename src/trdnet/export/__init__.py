"""Export of targets for TMS teams: MNI -> native T1w, checks, scalp
projection, and Brainsight / Localite / NIfTI / TSV writers."""

from __future__ import annotations

from .anatomy import NativeAnatomy, find_native_anatomy
from .native import ExportResult, export_targets
from .transforms import PointTransform, load_point_transform
from .writers import ExportMeta, write_brainsight, write_localite, write_sphere_nifti

__all__ = [
    "ExportMeta",
    "ExportResult",
    "NativeAnatomy",
    "PointTransform",
    "export_targets",
    "find_native_anatomy",
    "load_point_transform",
    "write_brainsight",
    "write_localite",
    "write_sphere_nifti",
]
