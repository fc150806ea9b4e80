"""Export of targets for TMS teams: MNI -> native T1w, checks, scalp
projection, coil poses, and Brainsight / Localite / NIfTI / TSV writers.

The participant's anatomy is found with the run (:mod:`trdnet.inputs.anatomy`,
``Run.anatomy``); nothing here searches folders."""

from __future__ import annotations

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
    "PointTransform",
    "coordinate_system",
    "export_targets",
    "load_point_transform",
    "write_brainsight",
    "write_entry_targets",
    "write_instrument_markers",
    "write_sphere_nifti",
]
