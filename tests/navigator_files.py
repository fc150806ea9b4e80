"""Readers of navigator files and geometric oracles for the export tests.

The readers are written from the public descriptions of the formats, not
from trdnet's writers:

- Brainsight target list (Rogue Research's notes quoted in SimNIBS's
  ``nnav.py``, Brainsight's own exports of versions 7, 8 and 14): ``# Key:
  value`` header lines, a tab-separated ``# Target Name`` header, ``Loc.
  X/Y/Z`` and ``m<i>n<j>`` = component ``j`` of coil axis ``i``; the z axis
  points out of the head and the y axis away from the handle.
- Localite (SimNIBS documentation of its Localite module, Localite's own
  files in SimNIBS's test data): ``InstrumentMarkerList`` of ``Matrix4D``
  ``data<row><col>`` with column 0 = coil normal into the head and column 1
  = along the handle; ``EntryTargetList`` of ``Entry``/``Target`` markers
  with ``ColVec3D data0..2``.

Both are turned into one frame here, (normal into the head, handle,
position), so that the two files can be compared.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
from scipy import ndimage


def read_brainsight(path) -> dict:
    """Header fields and targets (name -> 4x4 matrix whose columns are the coil axes)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header, targets, columns = {}, {}, None
    for line in lines:
        if line.startswith("# Target Name"):
            columns = line[2:].split("\t")
        elif line.startswith("# ") and columns is None:
            key, _, value = line[2:].partition(": ")
            header[key] = value
        elif line.startswith("#"):
            columns = None  # another section (samples, landmarks)
        elif columns:
            row = dict(zip(columns, line.split("\t")))
            matrix = np.eye(4)
            for i in range(3):
                matrix[:3, i] = [float(row[f"m{i}n{j}"]) for j in range(3)]
            matrix[:3, 3] = [float(row[f"Loc. {c}"]) for c in "XYZ"]
            targets[row["Target Name"]] = matrix
    return {"header": header, "targets": targets}


def read_localite_markers(path) -> dict:
    """``coordinateSpace`` and markers (description -> 4x4 ``Matrix4D``)."""
    root = ET.parse(path).getroot()
    assert root.tag == "InstrumentMarkerList"
    markers = {}
    for node in root.findall("InstrumentMarker"):
        marker = node.find("Marker")
        m4 = marker.find("Matrix4D").attrib
        markers[marker.get("description")] = np.array(
            [[float(m4[f"data{r}{c}"]) for c in range(4)] for r in range(4)]
        )
    return {"space": root.get("coordinateSpace"), "markers": markers}


def read_localite_entry_targets(path) -> dict:
    """``coordinateSpace`` and pairs (target description -> (entry xyz, target xyz))."""
    root = ET.parse(path).getroot()
    assert root.tag == "EntryTargetList"

    def points(tag):
        out = {}
        for node in root.findall(tag):
            marker = node.find("Marker")
            vec = marker.find("ColVec3D").attrib
            out[node.get("index")] = (marker.get("description"),
                                      np.array([float(vec[f"data{i}"]) for i in range(3)]))
        return out

    entries, targets = points("Entry"), points("Target")
    assert set(entries) == set(targets)
    return {"space": root.get("coordinateSpace"),
            "pairs": {targets[k][0]: (entries[k][1], targets[k][1]) for k in targets}}


def pose_from_brainsight(matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normal into the head, handle, position): Brainsight z is outward, y away from the handle."""
    return -matrix[:3, 2], -matrix[:3, 1], matrix[:3, 3]


def pose_from_localite(matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normal into the head, handle, position): Localite column 0 inward, column 1 along the handle."""
    return matrix[:3, 0], matrix[:3, 1], matrix[:3, 3]


def angle_deg(a, b) -> float:
    """Angle between two vectors in degrees."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b)), a @ b)))


def is_rotation(matrix) -> bool:
    """Whether the upper-left 3x3 block is a right-handed orthonormal frame (to file precision)."""
    rot = np.asarray(matrix)[:3, :3]
    return bool(np.allclose(rot.T @ rot, np.eye(3), atol=1e-3) and np.linalg.det(rot) > 0)


class ScalpOracle:
    """The scalp of a T1w as a TMS team would see it: where the intensity drops to ``level``.

    The scalp normal at a coil position is that of the least-squares plane
    through the scalp edge points within ``radius_mm`` of it, a coil-sized
    patch; the edge points are found on rays from the target fanned out
    around the line to the coil position, where the linearly interpolated
    intensity last drops below ``level``. Uses only the image's intensities:
    none of the export's head mask, smoothing or surface voxels.
    """

    def __init__(self, img, level: float, radius_mm: float = 10.0):
        self.data = np.asarray(img.dataobj, dtype=np.float32)
        self.inv = np.linalg.inv(img.affine)
        self.level = level
        self.radius_mm = radius_mm

    def intensity(self, points) -> np.ndarray:
        ijk = nib.affines.apply_affine(self.inv, np.atleast_2d(points))
        return ndimage.map_coordinates(self.data, ijk.T, order=1)

    def edge(self, origin, directions, reach: float, step: float = 0.1) -> np.ndarray:
        """Last point where each ray from ``origin`` leaves the bright head (NaN if none)."""
        steps = np.arange(0.0, reach, step)
        rays = origin + steps[None, :, None] * directions[:, None, :]
        values = self.intensity(rays.reshape(-1, 3)).reshape(len(directions), len(steps))
        out = np.full(directions.shape, np.nan)
        for n, v in enumerate(values):
            drops = np.flatnonzero((v[:-1] >= self.level) & (v[1:] < self.level))
            if len(drops):
                k = drops[-1]
                out[n] = origin + (steps[k] + step * (v[k] - self.level) / (v[k] - v[k + 1])) * directions[n]
        return out

    def inward_normal(self, point, target) -> np.ndarray:
        point, target = np.asarray(point, float), np.asarray(target, float)
        axis = (point - target) / np.linalg.norm(point - target)
        u = np.cross(axis, [1.0, 0.0, 0.0] if abs(axis[0]) < 0.9 else [0.0, 1.0, 0.0])
        u /= np.linalg.norm(u)
        v = np.cross(axis, u)
        cone = np.arctan(self.radius_mm / np.linalg.norm(point - target))
        directions = [axis] + [np.cos(a) * axis + np.sin(a) * (np.cos(b) * u + np.sin(b) * v)
                               for a in np.linspace(cone / 4, cone * 1.2, 5)
                               for b in np.linspace(0, 2 * np.pi, 16, endpoint=False)]
        edge = self.edge(target, np.array(directions), np.linalg.norm(point - target) + 30.0)
        edge = edge[np.all(np.isfinite(edge), axis=1)]
        edge = edge[np.linalg.norm(edge - point, axis=1) <= self.radius_mm]
        normal = np.linalg.svd(edge - edge.mean(axis=0), full_matrices=False)[2][-1]
        return normal if normal @ axis < 0 else -normal

    def on_scalp(self, point, normal, tol_mm: float) -> bool:
        """Whether the scalp edge lies within ``tol_mm`` of ``point`` along ``normal``."""
        inside, outside = self.intensity([point + tol_mm * normal, point - tol_mm * normal])
        return bool(inside >= self.level > outside)


def oblique_copy(paths: dict, dest: Path, rotation_deg: float, code: int, subject: str = "01") -> dict:
    """fMRIPrep-shaped anatomy whose world frame is the simulated one turned by a rigid motion.

    The T1w (and the masks on its grid) get the affine ``R @ A`` with qform
    and sform codes ``code``; the MNI -> T1w point mapping becomes ``R``
    after the original one, written into the ITK composite's affine (the
    displacement field, applied first, is on an MNI grid and unchanged).
    The other transform is left out.

    Returns
    -------
    dict
        Paths, ``rigid`` (the 4x4 R) and ``truth`` (points MNI -> new T1w).
    """
    axis = np.array([1.0, 0.6, -0.4])
    axis /= np.linalg.norm(axis)
    theta = np.deg2rad(rotation_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rigid = np.eye(4)
    rigid[:3, :3] = np.eye(3) + np.sin(theta) * k + (1 - np.cos(theta)) * k @ k
    rigid[:3, 3] = [6.0, -9.0, 14.0]
    anat = dest / f"sub-{subject}" / "anat"
    anat.mkdir(parents=True, exist_ok=True)
    out = {"rigid": rigid}
    for key in ("t1w", "brain_mask", "gm_probseg", "dseg"):
        img = nib.load(paths[key])
        new = nib.Nifti1Image(np.asanyarray(img.dataobj), rigid @ img.affine)
        new.set_qform(rigid @ img.affine, code=code)
        new.set_sform(rigid @ img.affine, code=code)
        out[key] = anat / Path(paths[key]).name
        nib.save(new, out[key])
    src = Path(paths["xfm_t1w_to_template"])
    out["xfm_t1w_to_template"] = anat / src.name
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    with h5py.File(src) as f_in, h5py.File(out["xfm_t1w_to_template"], "w") as f_out:
        for name in f_in:
            f_in.copy(f_in[name], f_out, name)
        group = f_out["TransformGroup/1"]
        params = group["TransformParameters"][()]
        center = group["TransformFixedParameters"][()]
        lps = np.eye(4)
        lps[:3, :3] = params[:9].reshape(3, 3)
        lps[:3, 3] = params[9:] + center - lps[:3, :3] @ center
        new = flip @ (rigid @ (flip @ lps @ flip)) @ flip
        group["TransformParameters"][...] = np.concatenate([new[:3, :3].ravel(), new[:3, 3]])
        group["TransformFixedParameters"][...] = np.zeros(3)
    truth = paths["truth"]
    inverse = np.linalg.inv(rigid)
    out["truth"] = lambda points: nib.affines.apply_affine(rigid, truth.mni_to_t1w(points))
    out["to_mni"] = lambda points: truth.t1w_to_mni(nib.affines.apply_affine(inverse, np.atleast_2d(points)))
    return out


def cropped_copy(paths: dict, dest: Path, z_max_mm: float, subject: str = "01") -> dict:
    """fMRIPrep-shaped anatomy whose field of view ends at world ``z = z_max_mm``.

    The T1w and the images on its grid lose every axial slice whose centre
    lies above ``z_max_mm``, as when the scan's field of view cuts through the
    top of the head; the transforms are copied unchanged.

    Returns
    -------
    dict
        Paths of the cropped files.
    """
    anat = dest / f"sub-{subject}" / "anat"
    anat.mkdir(parents=True, exist_ok=True)
    out = {}
    for key in ("t1w", "brain_mask", "gm_probseg", "dseg"):
        img = nib.load(paths[key])
        axis = int(np.argmax(np.abs(img.affine[2, :3])))
        index = np.zeros((img.shape[axis], 3))
        index[:, axis] = np.arange(img.shape[axis])
        keep = nib.affines.apply_affine(img.affine, index)[:, 2] <= z_max_mm
        slicer = [slice(None)] * 3
        slicer[axis] = np.flatnonzero(keep)
        lo = [0, 0, 0]
        lo[axis] = int(np.flatnonzero(keep)[0])
        data = np.asanyarray(img.dataobj)[tuple(slicer)]
        affine = img.affine.copy()
        affine[:3, 3] = nib.affines.apply_affine(img.affine, lo)
        new = nib.Nifti1Image(data, affine, img.header)
        new.set_qform(affine, code=int(img.header["qform_code"]) or 1)
        new.set_sform(affine, code=int(img.header["sform_code"]) or 1)
        out[key] = anat / Path(paths[key]).name
        nib.save(new, out[key])
    for key in ("xfm_t1w_to_template", "xfm_template_to_t1w"):
        if paths.get(key):
            out[key] = anat / Path(paths[key]).name
            shutil.copyfile(paths[key], out[key])
    return out
