"""Load fMRIPrep/ANTs transforms with nitransforms and map points with them.

Points move with the inverse of the image transform. fMRIPrep's
``from-T1w_to-<template>_mode-image_xfm.h5`` resamples a T1w image onto the
template grid, so as a *point* mapping it takes template coordinates to T1w
coordinates: that is the file used to bring an MNI target to the
participant. nitransforms reads the ITK files (LPS inside) and maps RAS points.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from nitransforms import linear as nitl
from nitransforms import manip
from nitransforms.nonlinear import DenseFieldTransform

from ..entities import parse_entities
from ..errors import ExportError


@dataclass
class PointTransform:
    """A point mapping from one space to another, read from a transform file.

    Attributes
    ----------
    path : Path
        The transform file.
    source_space, target_space : str
        Spaces of the input and output points (e.g. ``MNI152NLin2009cAsym``
        -> ``T1w``).
    chain : nitransforms.manip.TransformChain
        Members applied to points in order.
    """

    path: Path
    source_space: str
    target_space: str
    chain: manip.TransformChain

    def map(self, points_ras) -> tuple[np.ndarray, np.ndarray]:
        """Map RAS mm points.

        Parameters
        ----------
        points_ras : array-like, shape (N, 3)
            Points in ``source_space`` (RAS mm).

        Returns
        -------
        mapped : numpy.ndarray, shape (N, 3)
            The points in ``target_space`` (RAS mm).
        covered : numpy.ndarray of bool, shape (N,)
            False where a point fell outside a displacement field's grid
            (nitransforms then applies no displacement there: flag it).
        """
        x = np.atleast_2d(np.asarray(points_ras, dtype=float))
        covered = np.ones(len(x), dtype=bool)
        with warnings.catch_warnings():
            # point mapping needs no reference grid; nitransforms warns anyway
            warnings.filterwarnings("ignore", message="Reference space not set")
            for xfm in self.chain.transforms:
                if isinstance(xfm, DenseFieldTransform):
                    ijk = xfm.reference.index(x)
                    shape = np.asarray(xfm.reference.shape[:3])
                    covered &= np.all((ijk >= 0) & (ijk <= shape - 1), axis=1)
                x = np.asarray(xfm.map(x), dtype=float)
        return x, covered


def load_point_transform(
    path: str | Path,
    source_space: str,
    target_space: str,
    subject: str | None = None,
) -> PointTransform:
    """Read the transform that maps points from ``source_space`` to ``target_space``.

    Parameters
    ----------
    path : str or Path
        An ITK composite ``.h5`` as written by fMRIPrep, or a plain ITK affine
        (``.txt``/``.tfm``/``.mat``). For a point mapping MNI -> T1w this is
        the image transform ``from-T1w_to-<template>``.
    source_space, target_space : str
        Spaces of the points going in and out.
    subject : str, optional
        Participant label; a file named for another participant is refused.

    Returns
    -------
    PointTransform

    Raises
    ------
    ExportError
        Missing, corrupt, for another participant, or named for the other
        direction.
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: transform file not found")
    ents = parse_entities(path)
    if subject is not None and "sub" in ents and ents["sub"] != subject:
        raise ExportError(
            f"{path.name}: transform belongs to sub-{ents['sub']}, not sub-{subject}; "
            f"use the file from sub-{subject}'s anat folder"
        )
    # As an image transform the file is named from-<target>_to-<source>.
    if "from" in ents and "to" in ents:
        if (ents["from"], ents["to"]) != (target_space, source_space):
            raise ExportError(
                f"{path.name}: maps points {ents['to']} -> {ents['from']}; mapping "
                f"{source_space} -> {target_space} needs the file named "
                f"from-{target_space}_to-{source_space}"
            )
    if path.suffix not in (".h5", ".txt", ".tfm", ".mat"):
        raise ExportError(
            f"{path.name}: unsupported transform format; accepted: ITK .h5, .txt, .tfm, .mat"
        )
    try:
        with warnings.catch_warnings():
            # point mapping needs no reference grid; nitransforms warns anyway
            warnings.filterwarnings("ignore", message="Reference space not set")
            if path.suffix == ".h5":
                chain = manip.load(path, fmt="itk")
            else:
                chain = manip.TransformChain([nitl.load(path, fmt="itk")])
    except Exception as exc:  # nitransforms/h5py raise many types on bad files
        raise ExportError(
            f"{path}: cannot read transform ({type(exc).__name__}: {exc}); "
            "accepted: ITK composite .h5 or ITK affine .txt/.mat"
        ) from None
    if not chain.transforms:
        raise ExportError(f"{path}: transform file holds no transform")
    return PointTransform(path, source_space, target_space, chain)
