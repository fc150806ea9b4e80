"""Locate the reference tables shipped with trdnet (``data/`` in the source tree,
``trdnet/data`` inside an installed wheel)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    import pandas as pd


def data_dir() -> Path:
    """Return the folder holding trdnet's reference tables.

    Returns
    -------
    pathlib.Path
        ``trdnet/data`` in an installed wheel, or the repository's ``data/``
        folder for an editable install.
    """
    packaged = Path(str(resources.files("trdnet"))) / "data"
    if packaged.is_dir():
        return packaged
    source_tree = Path(__file__).resolve().parents[2] / "data"
    if source_tree.is_dir():
        return source_tree
    raise InputError("trdnet's data folder is missing from the installation; reinstall trdnet")


def read_table(name: str) -> pd.DataFrame:
    """Read one of the shipped TSV tables by file name.

    Parameters
    ----------
    name : str
        File name inside the data folder, e.g. ``"reference_targets.tsv"``.

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd  # here, so that finding the data folder does not load pandas

    path = data_dir() / name
    if not path.is_file():
        raise InputError(f"{path}: reference table not found in trdnet's data folder")
    return pd.read_csv(path, sep="\t", comment="#")
