"""The in-mask voxel space of one run: world coordinates of every column of the
cleaned T x V matrix, sphere and mask look-ups, and back to images.

Every later stage addresses voxels through a :class:`VoxelSpace`, so nothing
re-reads or re-masks the 4D image. ``VoxelSpace`` is the voxel kind of
:class:`trdnet.geometry.Geometry` (:class:`trdnet.geometry.VoxelGeometry`),
which also gives it neighbours, smoothing and clusters shared with meshes.
"""

from __future__ import annotations

from .geometry import VoxelGeometry as VoxelSpace

__all__ = ["VoxelSpace"]
