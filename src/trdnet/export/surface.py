"""Surface targets for the navigator: vertices brought to the participant's T1w world coordinates.

A target found on a cortical mesh is a vertex (``hemi``, ``vertex`` and the
mesh's ``space``):

- on ``fsnative`` (fMRIPrep's own surfaces of the participant) its
  coordinates already are T1w world coordinates (RAS mm), so the navigator
  files are written from them without any volume transform;
- on a template mesh (``fsaverage*``, ``fsLR``) the participant's own vertex
  under it is found through fMRIPrep's registered sphere
  (:func:`trdnet.inputs.surface.participant_vertices`) and its T1w position on
  the participant's midthickness is used, again without a volume transform.
  Without a registered sphere the target's mesh coordinates go to MNI152
  through the mesh's linear map (fsaverage: FreeSurfer's MNI305 -> MNI152
  matrix) and on through fMRIPrep's volume transform, and a note says so.

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


def is_mesh_space(space: str) -> bool:
    """Whether a target row's ``space`` names a cortical mesh (fsnative, fsaverage*, fsLR)."""
    from ..inputs.surface import is_surface_space

    return is_surface_space(str(space))


def surface_targets_to_t1w(targets: pd.DataFrame, anat) -> tuple[pd.DataFrame, list[str]]:
    """Targets on a mesh given as T1w (or, failing that, MNI152) rows for the export.

    Parameters
    ----------
    targets : pandas.DataFrame
        Rows with ``x``, ``y``, ``z`` and ``space``; rows whose space is a mesh
        also need ``hemi`` (``L``/``R``) and ``vertex`` (index on that mesh).
        Other rows are returned unchanged.
    anat : trdnet.export.NativeAnatomy or None
        The participant's fMRIPrep anatomy (its ``anat/`` folder holds the
        surfaces and registered spheres).

    Returns
    -------
    targets : pandas.DataFrame
        Mesh rows in ``T1w`` (or ``MNI152NLin2009cAsym``) with their new coordinates.
    notes : list of str
        One line per mesh row saying how it was brought to the navigator's frame.

    Raises
    ------
    ExportError
        A mesh row without ``hemi``/``vertex``, an fsnative row without the
        participant's anatomy, or a mesh with no way to the T1w.
    """
    if "space" not in targets or not targets["space"].map(is_mesh_space).any():
        return targets, []
    missing = {"hemi", "vertex"} - set(targets.columns)
    if missing:
        raise ExportError(f"targets on a cortical mesh need columns hemi and vertex (missing {sorted(missing)})")
    out = targets.copy()
    notes = []
    names = out["name"].astype(str) if "name" in out else pd.Series([f"target{n + 1}" for n in range(len(out))])
    for index, row in out.loc[out["space"].map(is_mesh_space)].iterrows():
        label = f"target {names.loc[index]} (vertex {int(row['vertex'])} of the {row['hemi']} {row['space']} mesh)"
        if row["space"] == "fsnative":
            if anat is None:
                raise ExportError(f"{label}: an fsnative vertex needs the participant's T1w anatomy to be exported")
            out.loc[index, "space"] = "T1w"
            notes.append(f"{label}: T1w world coordinates of fMRIPrep's surface; no volume transform")
            continue
        found = None
        if anat is not None:
            from ..inputs.surface import participant_vertices

            found = participant_vertices(_derivatives_root(anat), anat.subject, anat.session, str(row["space"]),
                                         str(row["hemi"]), int(row["vertex"]))
        if found is not None:
            out.loc[index, ["x", "y", "z"]] = found["xyz"][0]
            out.loc[index, "space"] = "T1w"
            notes.append(f"{label}: the participant's vertex {int(found['vertex'][0])} through "
                         f"{Path(found['sphere']).name} ({found['angle_deg'][0]:.2f} degrees away on the sphere), "
                         f"on the {found['surface']}; no volume transform")
            continue
        out.loc[index, ["x", "y", "z"]], note = _to_template(row, label)
        out.loc[index, "space"] = MNI_SPACE
        notes.append(note)
    return out, notes


def _to_template(row, label: str) -> tuple[np.ndarray, str]:
    from ..inputs.surface import template_affine

    affine = template_affine(str(row["space"]))
    if affine is None:
        raise ExportError(f"{label}: no way from the {row['space']} mesh to the T1w")
    xyz = nib.affines.apply_affine(affine, np.array([row["x"], row["y"], row["z"]], dtype=float))
    how = ("FreeSurfer's linear MNI305-to-MNI152 matrix, an approximation" if str(row["space"]).startswith("fsaverage")
           else "the mesh's MNI152 coordinates")
    return xyz, (f"{label}: no registered sphere from fMRIPrep for this mesh: its MNI152 position ({how}) is "
                 "mapped to T1w with the volume transform")


def _derivatives_root(anat) -> Path:
    """The fMRIPrep folder holding ``sub-<l>/`` of the anatomy's T1w."""
    folder = Path(anat.t1w).parent
    while folder.name != f"sub-{anat.subject}" and folder != folder.parent:
        folder = folder.parent
    return folder.parent
