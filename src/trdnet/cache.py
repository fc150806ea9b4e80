"""A small on-disk cache for arrays derived from template data.

Some inputs cost more to derive than the work they feed: nilearn's 2 mm
grey-matter template is resampled from the 1 mm file at every load (about a
second), and a cluster job that processes one run per process pays it every
time. Such arrays are computed once and kept as ``.npy`` files in
``$TRDNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/trdnet``, else
``~/.cache/trdnet``. Files are written atomically, so concurrent jobs sharing
a home folder never read a half-written file; an unwritable or corrupt cache
only costs the recomputation.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np


def cache_dir() -> Path:
    """Folder of trdnet's on-disk cache (not created here).

    Returns
    -------
    pathlib.Path
    """
    explicit = os.environ.get("TRDNET_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "trdnet"


def cached_array(key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Return the array stored under ``key``, computing and storing it if absent.

    Parameters
    ----------
    key : str
        File-name-safe name; include everything the value depends on (for
        example the version of the package providing the source data).
    compute : callable
        Returns the array when it is not cached.

    Returns
    -------
    numpy.ndarray
    """
    path = cache_dir() / f"{key}.npy"
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        pass  # absent, unreadable or corrupt: recompute below
    array = np.asarray(compute())
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{key}.", suffix=".npy",
                                         delete=False) as handle:
            tmp = Path(handle.name)
            np.save(handle, array, allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        # A read-only home or a full disk only costs the recomputation next time.
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return array
