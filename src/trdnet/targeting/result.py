"""The result of one target selection method."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class TargetResult:
    """One personalised target.

    Attributes
    ----------
    method : str
        ``peak``, ``cluster``, ``seedmap`` or ``hierarchical``.
    xyz : numpy.ndarray, shape (3,)
        Target, world RAS mm of the data's space (MNI152 mm for template data).
    column : int
        Column of the data matrix nearest the target (a search-region voxel).
    r_sgacc : float
        sgACC seed-map r at that column.
    n_voxels : int
        Voxels in the chosen cluster (1 for ``peak``).
    moved_to_grey_matter : bool
        Whether a centre of mass outside the search region (which is grey
        matter for the default region) was moved to the nearest in-region voxel.
    note : str
        Human-readable remark (why it moved, how far).
    details : dict
        Method parameters and intermediate numbers for the sidecar.
    candidates : pandas.DataFrame or None
        Every candidate cluster the method weighed (see
        :data:`trdnet.targeting.sites.CANDIDATE_COLUMNS`); None for methods
        without clusters of the map (``peak``).
    """

    method: str
    xyz: np.ndarray
    column: int
    r_sgacc: float
    n_voxels: int
    moved_to_grey_matter: bool = False
    note: str = ""
    details: dict = field(default_factory=dict)
    candidates: pd.DataFrame | None = None
