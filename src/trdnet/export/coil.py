"""Coil poses: one frame for every navigator file.

A :class:`CoilPose` is where and how the coil sits for one planned target, in
RAS world millimetres of the image the navigator loads (the participant's
``desc-preproc_T1w``, or the MNI template for a template-space export).
Brainsight and Localite each store a pose as a 4x4 matrix with their own axis
conventions; both writers take the same :class:`CoilPose` and convert it, so
the two files cannot disagree.

trdnet's frame (the columns of :attr:`CoilPose.matrix`):

- column 2, ``normal``: unit coil normal pointing *into* the head (along the
  inward scalp normal at the entry point, through the target);
- column 1, ``handle``: unit vector from the coil centre along the handle,
  tangential to the scalp;
- column 0: ``handle x normal`` (right-handed frame);
- column 3: the coil centre, ``entry + distance * (-normal)``.

Conversions, from the public descriptions of the formats (SimNIBS
documentation of its Brainsight and Localite modules and the test files it
ships; Rogue Research's notes in SimNIBS pull requests #122 and #289):

- Brainsight ``m<i>n<j>`` is component ``j`` of coil axis ``i``; its z axis
  points out of the head and its y axis away from the handle:
  ``brainsight = [x, -handle, -normal]``.
- Localite ``Matrix4D`` holds the axes as columns; column 0 is the coil
  normal into the head, column 1 runs along the handle:
  ``localite = [normal, handle, normal x handle]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ExportError

#: Coil orientations trdnet writes; ``identity`` only on request.
ORIENTATIONS = ("scalp_normal", "identity")

#: Added to the name of every identity pose in the navigator files.
IDENTITY_LABEL = "identity axes, not a coil placement, z axis misses the target"

#: trdnet's coil frame, as recorded in the sidecars.
FRAME = (
    "RAS world mm of the image named in SourceImage; column 2 = coil normal into the head, "
    "column 1 = along the handle, column 0 = column 1 x column 2, position = coil centre on the scalp "
    "(entry point moved out by CoilScalpDistanceMM)"
)

#: Source of the default handle angle (configurable; see ``ExportSettings``).
HANDLE_ANGLE_SOURCE = (
    "handle posterior-lateral at 45 degrees to the midline: the orientation that induces "
    "posterior-to-anterior currents (Brasil-Neto et al. 1992, J Clin Neurophysiol 9:132-136, "
    "motor cortex), the usual placement in DLPFC rTMS; unverified against the paper here"
)

#: What the handle angle means, as recorded in the sidecars (see :func:`handle_direction`).
HANDLE_ANGLE_MEANING = (
    "angle in the scalp's tangent plane from the head's posterior direction towards the target's side: "
    "0 = handle straight back, parallel to the midline; 45 = posterior-lateral; 90 = lateral; "
    "over 90 (obtuse) = anterior-lateral, 180 = straight forward; negative = posterior-medial "
    "(towards and, below -90, anterior across the midline); the same angle gives mirror poses on "
    "the two hemispheres"
)

#: Brainsight axes from trdnet's: x stays, y and z flip.
_TO_BRAINSIGHT = np.diag([1.0, -1.0, -1.0])
#: Localite axes from trdnet's: (normal, handle, normal x handle) = (z, y, -x).
_TO_LOCALITE = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


@dataclass(frozen=True)
class CoilPose:
    """Where the coil sits for one planned target.

    Attributes
    ----------
    name : str
        Target name.
    target : numpy.ndarray, shape (3,)
        Cortical target, RAS mm.
    entry : numpy.ndarray, shape (3,)
        Scalp point on the line from the target along the scalp normal, RAS mm.
    centre : numpy.ndarray, shape (3,)
        Coil centre: ``entry`` moved out along the normal by the coil-to-scalp
        distance, RAS mm.
    normal : numpy.ndarray, shape (3,)
        Unit coil normal pointing into the head.
    handle : numpy.ndarray, shape (3,)
        Unit vector along the coil handle, orthogonal to ``normal``.
    orientation : str
        How the axes were chosen (one of :data:`ORIENTATIONS`).
    """

    name: str
    target: np.ndarray
    entry: np.ndarray
    centre: np.ndarray
    normal: np.ndarray
    handle: np.ndarray
    orientation: str = "scalp_normal"

    @property
    def matrix(self) -> np.ndarray:
        """4x4 pose in trdnet's frame (columns: handle x normal, handle, normal, centre)."""
        out = np.eye(4)
        out[:3, :3] = np.column_stack([np.cross(self.handle, self.normal), self.handle, self.normal])
        out[:3, 3] = self.centre
        return out

    def brainsight(self) -> np.ndarray:
        """4x4 pose with Brainsight's axes (z out of the head, y away from the handle)."""
        return _convert(self.matrix, _TO_BRAINSIGHT)

    def localite(self) -> np.ndarray:
        """4x4 pose with Localite's axes (column 0 into the head, column 1 along the handle)."""
        return _convert(self.matrix, _TO_LOCALITE)


def _convert(matrix: np.ndarray, axes: np.ndarray) -> np.ndarray:
    out = matrix.copy()
    out[:3, :3] = matrix[:3, :3] @ axes
    return out


def handle_direction(normal, posterior, lateral, angle_deg: float) -> np.ndarray:
    """Handle direction in the scalp's tangent plane at ``angle_deg`` from the midline.

    Parameters
    ----------
    normal : array-like, shape (3,)
        Unit coil normal (into the head).
    posterior : array-like, shape (3,)
        The head's posterior direction at the target (RAS mm per mm).
    lateral : array-like, shape (3,)
        The head's direction away from the midline on the target's side.
    angle_deg : float
        0: handle straight back, parallel to the midline; 90: handle lateral;
        over 90: anterior-lateral; negative: towards the midline (see
        :data:`HANDLE_ANGLE_MEANING`).

    Returns
    -------
    numpy.ndarray, shape (3,)
        Unit vector orthogonal to ``normal``.
    """
    n = _unit(normal)
    back = _tangent(posterior, n)
    if back is None:  # the normal runs front-back (occipital or frontal pole)
        back = _tangent(np.cross(n, lateral), n)
    side = np.cross(n, back)
    if side @ np.asarray(lateral, float) < 0:
        side = -side
    angle = np.deg2rad(angle_deg)
    return _unit(np.cos(angle) * back + np.sin(angle) * side)


def scalp_normal_pose(name, target, entry, normal, posterior, lateral, angle_deg, distance_mm) -> CoilPose:
    """Coil tangential to the scalp at ``entry``, handle at ``angle_deg`` to the midline.

    Parameters
    ----------
    name : str
    target, entry : array-like, shape (3,)
        Cortical target and scalp entry point (RAS mm).
    normal : array-like, shape (3,)
        Inward unit scalp normal at ``entry``.
    posterior, lateral : array-like, shape (3,)
        The head's posterior and lateral (target side) directions.
    angle_deg : float
        Handle angle to the midline (see :func:`handle_direction`).
    distance_mm : float
        Coil-to-scalp distance (hair, cap): the coil centre sits this far out.

    Returns
    -------
    CoilPose
    """
    n = _unit(normal)
    entry = np.asarray(entry, float)
    return CoilPose(
        name=str(name),
        target=np.asarray(target, float),
        entry=entry,
        centre=entry - distance_mm * n,
        normal=n,
        handle=handle_direction(n, posterior, lateral, angle_deg),
        orientation="scalp_normal",
    )


def identity_pose(name, target, entry, normal, distance_mm) -> CoilPose:
    """Brainsight's identity axes (x = R, y = A, z = S) at the coil centre; on request only.

    Not a coil placement: the coil normal points straight down whatever the
    scalp does, so the z axis through the coil centre does not pass through
    the target. Outputs say so (:data:`IDENTITY_LABEL`).
    """
    entry = np.asarray(entry, float)
    return CoilPose(
        name=str(name),
        target=np.asarray(target, float),
        entry=entry,
        centre=entry - distance_mm * _unit(normal),
        normal=np.array([0.0, 0.0, -1.0]),
        handle=np.array([0.0, -1.0, 0.0]),
        orientation="identity",
    )


def check_frame(pose: CoilPose, tol: float = 1e-6) -> None:
    """Raise :class:`ExportError` unless the pose's axes are a right-handed orthonormal frame."""
    rot = pose.matrix[:3, :3]
    if not (np.allclose(rot.T @ rot, np.eye(3), atol=tol) and np.linalg.det(rot) > 0):
        raise ExportError(f"coil pose of target {pose.name!r} is not a rotation; not written")


def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    norm = np.linalg.norm(v)
    if not np.isfinite(norm) or norm == 0:
        raise ExportError("zero-length direction while building a coil pose")
    return v / norm


def _tangent(v, n) -> np.ndarray | None:
    v = np.asarray(v, float)
    t = v - (v @ n) * n
    norm = np.linalg.norm(t)
    return t / norm if norm > 1e-6 * max(np.linalg.norm(v), 1e-12) else None
