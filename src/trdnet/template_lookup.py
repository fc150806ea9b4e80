"""Where the voxels of a run in the participant's T1w space lie in the MNI template.

trdnet's regions (sgACC seed, DLPFC sites, network ROIs, grey-matter
template) are MNI coordinates. For a run in T1w space the data are not
resampled: each in-mask voxel centre is mapped to MNI once, through the
transform fMRIPrep wrote (``anat/*_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5``,
which maps points T1w -> MNI), and the regions are looked up at those
positions. Targets stay T1w coordinates.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .cleaned import CleanedRun
from .inputs.anatomy import NativeAnatomy

#: Native space whose transforms fMRIPrep writes to ``anat/``.
NATIVE_SPACE = "T1w"


def with_template_coordinates(cleaned: CleanedRun, anatomy: NativeAnatomy | None
                              ) -> tuple[CleanedRun, Path | None]:
    """Attach MNI coordinates to the voxels of a T1w-space run.

    Parameters
    ----------
    cleaned : CleanedRun
    anatomy : NativeAnatomy or None
        The run's native anatomy (``Run.anatomy``, found with the run).

    Returns
    -------
    cleaned : CleanedRun
        Unchanged for template-space runs, other native spaces, or when the
        transform is missing (regions then need masks in the run's space,
        and the errors say so); otherwise with ``space.template_xyz`` set
        (NaN where the transform's field does not reach).
    transform : Path or None
        The transform file used.
    """
    from .export.transforms import load_point_transform

    space = cleaned.space
    if space.is_template or space.space != NATIVE_SPACE:
        return cleaned, None
    if anatomy is None or anatomy.xfm_template_to_t1w is None:
        return cleaned, None
    transform = load_point_transform(anatomy.xfm_template_to_t1w, NATIVE_SPACE, anatomy.template, anatomy.subject)
    mapped, covered = transform.map(space.xyz)
    mapped = np.asarray(mapped, dtype=np.float64)
    mapped[~covered] = np.nan
    native = dataclasses.replace(space, template_xyz=mapped)
    return dataclasses.replace(cleaned, space=native), Path(anatomy.xfm_template_to_t1w)
