"""The group sgACC seed map of an output folder: mean Fisher z of the participants' sgACC r maps.

Used as weights by the ``seedmap`` targeting method (Fox 2013; Cash 2021).
The average is :func:`trdnet.targeting.seedmap.group_mean_map` (each
participant counts once: their runs first, then the participants; voxels
outside a participant's mask do not count for them); this module reads the
written maps one at a time and checks they share a grid.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from ..errors import InputError
from ..targeting.seedmap import group_mean_map
from .collect import RunRecord, discover_runs, run_file_name

#: Largest accepted difference between two maps' affines (mm).
AFFINE_TOLERANCE_MM = 1e-4


def _load(path: Path, reference: tuple[Path, tuple, np.ndarray] | None):
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as exc:
        raise InputError(f"{path}: cannot read the sgACC map ({exc})") from None
    if data.ndim != 3:
        raise InputError(f"{path}: sgACC map has shape {data.shape}; expected a 3D image")
    if reference is not None:
        ref_path, ref_shape, ref_affine = reference
        if data.shape != ref_shape or not np.allclose(img.affine, ref_affine, atol=AFFINE_TOLERANCE_MM):
            raise InputError(
                f"{path}: sgACC map grid (shape {data.shape}) differs from {ref_path} (shape {ref_shape}) "
                "in shape or affine; every run must be processed in the same space and resolution"
            )
    return img, data


def mean_seed_map(records: list[RunRecord], exclude_subject: str | None = None):
    """Mean Fisher-z sgACC map of some runs.

    Parameters
    ----------
    records : list of RunRecord
        Runs to use (runs without a seed map are skipped).
    exclude_subject : str, optional
        Participant to leave out (``01`` or ``sub-01``).

    Returns
    -------
    img : nibabel.Nifti1Image
        float32 mean Fisher z.
    used : dict
        ``participant_id`` -> list of run prefixes averaged.

    Raises
    ------
    InputError
        On a grid mismatch (naming the file), an unknown ``exclude_subject``,
        or when no map is left.
    """
    with_map = [r for r in records if "boldmap" in r.files]
    if exclude_subject is not None:
        excluded = exclude_subject if str(exclude_subject).startswith("sub-") else f"sub-{exclude_subject}"
        known = sorted({r.participant_id for r in with_map})
        if excluded not in known:
            raise InputError(f"exclude_subject={exclude_subject!r} has no sgACC map; participants: {known}")
        with_map = [r for r in with_map if r.participant_id != excluded]
    if not with_map:
        raise InputError(f"no participant's sgACC map (*_{run_file_name('', 'boldmap')}) is left to average")
    with_map = sorted(with_map, key=lambda r: r.participant_id)  # stable: each participant's runs together
    first_path = with_map[0].files["boldmap"]
    first_img, first = _load(first_path, None)
    reference = (first_path, first.shape, first_img.affine)
    maps = (_load(record.files["boldmap"], reference)[1].ravel() for record in with_map)
    mean = group_mean_map(maps, [r.participant_id for r in with_map]).reshape(first.shape)
    used = {}
    for record in with_map:
        used.setdefault(record.participant_id, []).append(record.prefix)
    header = first_img.header.copy()
    header.set_data_dtype(np.float32)
    out = nib.Nifti1Image(mean, first_img.affine, header)
    out.header["descrip"] = b"trdnet group sgACC map: mean Fisher z"
    return out, used


def group_seed_map(out_dir: Path, exclude_subject: str | None = None, exclude=None) -> nib.Nifti1Image:
    """Group sgACC seed map of a trdnet output folder.

    Parameters
    ----------
    out_dir : Path
        Root of a trdnet derivatives folder.
    exclude_subject : str, optional
        Leave this participant out (``01`` or ``sub-01``): a leave-one-out
        group map for targeting that participant without circularity.
    exclude : QcThresholds, optional
        Also leave out runs that break these QC thresholds.

    Returns
    -------
    nibabel.Nifti1Image
        float32 mean Fisher z (participants weigh equally; see module notes).
    """
    records, _ = discover_runs(out_dir)
    if exclude is not None:
        from .collect import collect_table

        qc = collect_table(records, "qc")
        bad = set(qc.loc[exclude.reasons(qc) != "", "run"])
        records = [r for r in records if r.prefix not in bad]
    img, _ = mean_seed_map(records, exclude_subject)
    return img
