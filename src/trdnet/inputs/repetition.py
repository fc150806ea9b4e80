"""The repetition time of a BOLD run: the JSON sidecar and the NIfTI header, checked against each other.

BIDS makes the sidecar's ``RepetitionTime`` (seconds) authoritative, and
real headers are sometimes wrong (fMRIPrep 23.2.0 wrote ``pixdim[4] = 1``;
multi-echo outputs have had 0). Sidecars are sometimes wrong too: a value in
milliseconds (2000 for 2 s) would make every filter a no-op. So a TR is used
only when it lies in :data:`TR_RANGE_S`, and a disagreement between the two
sources is recorded with the TR in the QC sidecar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InputError

#: Plausible repetition times of a BOLD series, seconds. Whole-brain EPI
#: runs from about 0.3 s (multiband) to about 4 s; sparse and
#: slow-event designs reach about 10 s. Below 0.1 s or above 10 s the value is
#: almost surely in another unit (``RepetitionTime`` 2000 means 2000 ms).
TR_RANGE_S = (0.1, 10.0)

#: Relative difference above which JSON and header TRs are said to disagree.
TR_TOLERANCE = 0.01

_UNIT_SCALE = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6, "unknown": 1.0}


@dataclass(frozen=True)
class RepetitionTime:
    """A run's TR and where it came from.

    Attributes
    ----------
    seconds : float
    source : str
        ``"JSON sidecar RepetitionTime"``, ``"NIfTI header pixdim[4]"`` or the
        source a dataset reader gave.
    note : str
        Disagreement between the sources (``""`` when they agree or only one exists).
    """

    seconds: float
    source: str
    note: str = ""


def header_repetition_time(header) -> float | None:
    """TR in seconds from a NIfTI header (``pixdim[4]`` in its time unit), or None if absent or 0."""
    zooms = header.get_zooms()
    if len(zooms) < 4:
        return None
    value = float(zooms[3])
    if not math.isfinite(value) or value <= 0:
        return None
    unit = header.get_xyzt_units()[1]
    return value * _UNIT_SCALE.get(unit, 1.0)


def plausible(seconds: float) -> bool:
    """Whether a TR in seconds lies in :data:`TR_RANGE_S`."""
    return TR_RANGE_S[0] <= seconds <= TR_RANGE_S[1]


def _unit_hint(value: float) -> str:
    if plausible(value / 1000.0):
        return f"likely milliseconds, i.e. {value / 1000.0:g} s"
    if plausible(value * 1000.0):
        return f"likely kiloseconds or a misplaced decimal, i.e. {value * 1000.0:g} s"
    return "no unit makes it plausible"


def check_plausible(seconds: float, where) -> float:
    """Return a TR given in seconds (e.g. a surface run's sidecar value), refusing an implausible one.

    Raises
    ------
    InputError
        Naming ``where``, the value, the range and the likely unit.
    """
    value = float(seconds)
    if not math.isfinite(value) or not plausible(value):
        hint = _unit_hint(value) if math.isfinite(value) and value > 0 else "not a TR"
        raise InputError(f"{where}: repetition time {value:g} s is outside the plausible BOLD range "
                         f"{TR_RANGE_S[0]:g}-{TR_RANGE_S[1]:g} s ({hint}); write RepetitionTime in seconds")
    return value


def resolve_repetition_time(bold, sidecar_tr, header, sidecar_source: str = "JSON sidecar RepetitionTime"
                            ) -> RepetitionTime:
    """Choose a run's TR from its sidecar value and its header, refusing implausible values.

    Parameters
    ----------
    bold : Path or str
        The BOLD file (named in errors).
    sidecar_tr : float or None
        ``RepetitionTime`` from the sidecar (seconds by BIDS), or None.
    header : nibabel header
        The BOLD image's header.
    sidecar_source : str
        How to name the sidecar value's source.

    Returns
    -------
    RepetitionTime

    Raises
    ------
    InputError
        One line with the value(s), the plausible range and the likely unit,
        when the sidecar value is not a plausible TR in seconds, or when there
        is no sidecar value and the header's is missing or implausible.
    """
    return resolve_tr_values(bold, sidecar_tr, header_repetition_time(header), sidecar_source)


def resolve_tr_values(bold, sidecar_tr, from_header: float | None,
                      sidecar_source: str = "JSON sidecar RepetitionTime",
                      header_source: str = "NIfTI header pixdim[4]") -> RepetitionTime:
    """Choose a run's TR from its sidecar value and a header value already read (seconds).

    The rules of :func:`resolve_repetition_time` for any header that carries a
    TR (a NIfTI ``pixdim[4]``, a CIFTI series axis's ``SeriesStep``).

    Parameters
    ----------
    bold : Path or str
        The BOLD file (named in errors).
    sidecar_tr : float or None
        ``RepetitionTime`` from the sidecar (seconds by BIDS), or None.
    from_header : float or None
        The header's TR in seconds, or None when it has none.
    sidecar_source, header_source : str
        How to name each value's source (in notes and in the QC).

    Returns
    -------
    RepetitionTime

    Raises
    ------
    InputError
        As :func:`resolve_repetition_time`.
    """
    lo, hi = TR_RANGE_S
    header_text = f"{from_header:g} s" if from_header is not None else "none"
    if sidecar_tr is not None:
        try:
            value = float(sidecar_tr)
        except (TypeError, ValueError):
            raise InputError(f"{bold}: RepetitionTime {sidecar_tr!r} in its JSON sidecar is not a number") from None
        if not math.isfinite(value) or not plausible(value):
            raise InputError(
                f"{bold}: RepetitionTime {value:g} in its JSON sidecar is outside the plausible BOLD range "
                f"{lo:g}-{hi:g} s ({_unit_hint(value) if math.isfinite(value) and value > 0 else 'not a TR'}); "
                f"the image header says {header_text}; write RepetitionTime in seconds"
            )
        note = ""
        if from_header is not None and abs(from_header - value) > TR_TOLERANCE * value:
            note = (f"{header_source} says {from_header:g} s, the JSON sidecar {value:g} s: the sidecar is used "
                    "(BIDS makes it authoritative)")
        return RepetitionTime(value, sidecar_source, note)
    if from_header is None:
        raise InputError(
            f"{bold}: no repetition time (no RepetitionTime in a JSON sidecar and none in the header)"
        )
    if not plausible(from_header):
        raise InputError(
            f"{bold}: header repetition time {from_header:g} s is outside the plausible BOLD range {lo:g}-{hi:g} s "
            f"({_unit_hint(from_header)}) and there is no JSON sidecar with RepetitionTime; add one"
        )
    return RepetitionTime(from_header, header_source)
