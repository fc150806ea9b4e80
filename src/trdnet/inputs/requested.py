"""What a user asked for, checked against what an input folder holds, before any work.

BIDS Apps stop with an error naming participant labels that are not in the
dataset; trdnet does the same, and names a folder or sidecar it cannot read
as unreadable (not as "not present", which is what a silent directory scan
would make of it).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..entities import parse_entities
from ..errors import InputError, SettingsError


def normalise_labels(labels, entity: str = "sub", option: str = "--participant-label") -> list[str] | None:
    """Labels without their ``<entity>-`` prefix, refusing anything that is not a BIDS label.

    Parameters
    ----------
    labels : iterable of str or None
    entity : str
        ``sub`` or ``ses``.
    option : str
        Named in the error.

    Returns
    -------
    list of str or None
        None when no label was given.

    Raises
    ------
    SettingsError
        For a wildcard (``*``), a comma-separated list, a path or an empty label.
    """
    if not labels:
        return None
    out = []
    for raw in labels:
        label = str(raw).removeprefix(f"{entity}-")
        if parse_entities(f"{entity}-{label}") != {entity: label}:
            raise SettingsError(f"{option} {raw!r}: not a BIDS label; accepted: letters and digits, with or "
                                f"without '{entity}-', several labels separated by spaces (no wildcards)")
        out.append(label)
    return list(dict.fromkeys(out))


#: Labels named in a message before the list is shortened.
SHOWN_LABELS = 20


def shown_labels(labels) -> str:
    """Labels for a message: sorted, space-separated, the first :data:`SHOWN_LABELS` and how many more."""
    labels = sorted(set(labels))
    more = f" (and {len(labels) - SHOWN_LABELS} more)" if len(labels) > SHOWN_LABELS else ""
    return " ".join(labels[:SHOWN_LABELS]) + more if labels else "none"


def check_labels_present(labels, present, where, option: str = "--participant-label") -> None:
    """Refuse requested participant labels that are not present.

    Raises
    ------
    InputError
        Listing every missing label and the labels present (shortened when long).
    """
    missing = [label for label in labels or () if label not in set(present)]
    if missing:
        raise InputError(f"{where}: {option} {' '.join(missing)}: not found; present: {shown_labels(present)}")


def _unreadable(path, exc: OSError) -> InputError:
    return InputError(f"{path}: cannot be read ({exc.strerror or exc}); check its permissions")


def check_readable_file(path: Path) -> None:
    """Open a file for reading and close it; an unreadable file is one clear error."""
    try:
        with open(path, "rb"):
            pass
    except PermissionError as exc:
        raise _unreadable(path, exc) from None


def check_participants(root: Path, labels=None) -> list[str]:
    """Check the participants of a BIDS(-derivatives) folder before any work.

    The folders and JSON sidecars of every requested participant that is
    present (every participant without ``labels``) must be readable, as must
    the folder itself and its ``dataset_description.json``.

    Parameters
    ----------
    root : Path
    labels : list of str, optional
        Participant labels (normalised with :func:`normalise_labels`).

    Returns
    -------
    list of str
        The participant labels present, sorted.

    Raises
    ------
    InputError
        Naming the first unreadable folder or file, or every requested label
        without a ``sub-<label>`` folder (with those present).
    """
    root = Path(root)
    description = root / "dataset_description.json"
    if description.exists():
        check_readable_file(description)
    try:
        with os.scandir(root) as entries:
            subjects = {e.name[4:]: Path(e.path) for e in entries if e.name.startswith("sub-") and e.is_dir()}
    except PermissionError as exc:
        raise _unreadable(root, exc) from None
    except FileNotFoundError:
        return []  # the input checks name a missing folder
    check_labels_present(labels, subjects, root)
    for label in [label for label in labels or sorted(subjects) if label in subjects]:
        for folder, _, files in os.walk(subjects[label], onerror=_raise_unreadable):
            for name in files:
                if name.endswith(".json"):
                    check_readable_file(Path(folder) / name)
    return sorted(subjects)


def _raise_unreadable(exc: OSError):
    raise _unreadable(exc.filename, exc)
