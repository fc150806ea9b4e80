"""Surface targets for the navigator: vertices brought to the participant's T1w world coordinates.

A target found on a cortical mesh carries ``hemi``, ``vertex`` and ``mesh``
(see :meth:`trdnet.geometry.MeshGeometry.target_columns`), its coordinates
in the mesh's own space and its MNI152 position (``mni152_x/y/z``):

- on ``fsnative`` (fMRIPrep's own surfaces of the participant) its
  coordinates already are T1w world coordinates (RAS mm), so the navigator
  files are written from them without any volume transform;
- on a template mesh (``fsaverage*``, ``fsLR``) the participant's own vertex
  under it is found through fMRIPrep's registered sphere
  (:func:`trdnet.inputs.surface.participant_vertices`) and its T1w position on
  the participant's midthickness is used, again without a volume transform;
- otherwise (no registered sphere, or no anatomy) its MNI152 position goes
  on through fMRIPrep's volume transform (fsaverage: FreeSurfer's linear
  MNI305-to-MNI152 matrix, an approximation), and a note says so.

The rows then go through the one export path (:func:`trdnet.export.export_targets`):
same checks, coil pose and writers as every other target.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from ..config import MNI_SPACE
from ..errors import ExportError

#: Columns of a surface target row the export reads besides name, x, y, z and space.
MESH_COLUMNS = ("hemi", "vertex", "mesh", "mni152_x", "mni152_y", "mni152_z", "mni152_mapping")


def _mesh(row) -> str:
    """The row's mesh: its ``mesh`` column, or a mesh named as its space; empty for a volume target."""
    from ..inputs.surface import is_surface_space

    mesh = row.get("mesh")
    if isinstance(mesh, str) and is_surface_space(mesh):
        return mesh
    return str(row["space"]) if is_surface_space(str(row.get("space", ""))) else ""


def surface_targets_to_t1w(targets: pd.DataFrame, anat) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Targets on a mesh given as T1w (or, failing that, MNI152) rows for the export.

    Parameters
    ----------
    targets : pandas.DataFrame
        Rows with ``x``, ``y``, ``z`` and ``space``; rows on a mesh (a ``mesh``
        column, or a mesh as ``space``) also need ``hemi`` (``L``/``R``) and
        ``vertex`` (index on that mesh), and may give ``mni152_x/y/z``.
        Other rows are returned unchanged.
    anat : trdnet.inputs.anatomy.NativeAnatomy or None
        The participant's fMRIPrep anatomy, found with the run (its
        registered spheres and fsnative surfaces; nothing is searched here).

    Returns
    -------
    targets : pandas.DataFrame
        Mesh rows in ``T1w`` or ``MNI152NLin2009cAsym`` with their new coordinates.
    notes : list of str
        One line per mesh row brought to T1w without a volume transform (how).
    warnings : list of str
        One line per mesh row that went through its MNI152 position instead (an approximation).

    Raises
    ------
    ExportError
        A mesh row without ``hemi``/``vertex``, an fsnative row without the
        participant's anatomy, or a mesh row with no way to the T1w or MNI152.
    """
    if "space" not in targets:
        return targets, [], []
    meshes = targets.apply(_mesh, axis=1) if len(targets) else pd.Series(dtype=str)
    if not (meshes != "").any():
        return targets, [], []
    missing = {"hemi", "vertex"} - set(targets.columns)
    if missing:
        raise ExportError(f"targets on a cortical mesh need columns hemi and vertex (missing {sorted(missing)})")
    out = targets.copy()
    notes, warnings = [], []
    names = out["name"].astype(str) if "name" in out else pd.Series([f"target{n + 1}" for n in range(len(out))])
    for index, row in out.loc[meshes != ""].iterrows():
        mesh = meshes.loc[index]
        label = f"target {names.loc[index]} (vertex {int(row['vertex'])} of the {row['hemi']} {mesh} mesh)"
        if mesh == "fsnative":
            if anat is None:
                raise ExportError(f"{label}: an fsnative vertex needs the participant's T1w anatomy to be exported")
            out.loc[index, "space"] = "T1w"
            notes.append(f"{label}: T1w world coordinates of fMRIPrep's surface; no volume transform")
            continue
        found = None
        if anat is not None and row["hemi"] in ("L", "R") and int(row["vertex"]) >= 0:
            from ..inputs.surface import participant_vertices

            found = participant_vertices(anat, mesh, str(row["hemi"]), int(row["vertex"]))
        if found is not None:
            out.loc[index, ["x", "y", "z"]] = found["xyz"][0]
            out.loc[index, "space"] = "T1w"
            notes.append(f"{label}: the participant's vertex {int(found['vertex'][0])} through "
                         f"{Path(found['sphere']).name} ({found['angle_deg'][0]:.2f} degrees away on the sphere), "
                         f"on the {found['surface']}; no volume transform")
            continue
        if row["space"] in (MNI_SPACE, "T1w"):
            continue
        out.loc[index, ["x", "y", "z"]], how = _mni152(row, mesh, label)
        out.loc[index, "space"] = MNI_SPACE
        # The mesh's MNI152 is FSL's (MNI152NLin6Asym); fMRIPrep's volume transform starts from
        # MNI152NLin2009cAsym. The two templates differ by a few mm, so the warning names both approximations.
        warnings.append(f"{label}: no registered sphere from fMRIPrep for this mesh: its MNI152 position ({how}) "
                        f"is in FSL's MNI152 (MNI152NLin6Asym) and goes on with the {MNI_SPACE} volume "
                        "transform as if it were that template (a further approximation of a few mm)")
    return out, notes, warnings


def _mni152(row, mesh: str, label: str) -> tuple[np.ndarray, str]:
    """The row's MNI152 position: its own ``mni152_x/y/z``, else the mesh's linear map of x, y, z."""
    from ..inputs.surface import template_affine

    given = [row.get(f"mni152_{axis}") for axis in "xyz"]
    if all(v is not None and np.isfinite(float(v)) for v in given):
        return np.asarray(given, dtype=float), str(row.get("mni152_mapping") or "as given with the target")
    affine = template_affine(mesh)
    if affine is None:
        raise ExportError(f"{label}: no MNI152 position and no registered sphere: no way to the T1w")
    xyz = nib.affines.apply_affine(affine, np.array([row["x"], row["y"], row["z"]], dtype=float))
    how = ("FreeSurfer's linear MNI305-to-MNI152 matrix, an approximation" if mesh.startswith("fsaverage")
           else "the mesh's MNI152 coordinates")
    return xyz, how
