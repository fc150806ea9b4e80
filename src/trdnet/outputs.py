"""Writing outputs: BIDS-derivative names, atomic writes, JSON sidecars.

Every file is written to a temporary name in its destination folder and
renamed into place, so a crash never leaves a half-written output that a
re-run would mistake for a finished one.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from ._version import __version__
from .entities import output_name, sidecar_path
from .stream import save_image

def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


#: Permission bits of written files (mkstemp would make them private).
FILE_MODE = _default_mode()

#: Decimal places of floats in TSV outputs (fixed so re-runs are byte-identical).
TSV_FLOAT_FORMAT = "%.6f"


def _atomic(path: Path, write, suffix: str = ".tmp") -> Path:
    """Call ``write(temporary_path)`` in the destination folder, then rename into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` through a temporary file and a rename."""
    return _atomic(path, lambda tmp: Path(tmp).write_bytes(payload))


def atomic_write_text(path: Path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, payload: dict) -> Path:
    """Write a JSON file atomically (sorted keys, NaN written as null)."""
    return atomic_write_text(path, json.dumps(_jsonable(payload), indent=2, sort_keys=True) + "\n")


def write_tsv(path: Path, table: pd.DataFrame) -> Path:
    """Write a table as BIDS TSV atomically (``n/a`` for missing values)."""
    return atomic_write_text(path, tsv_text(table))


def tsv_text(table: pd.DataFrame) -> str:
    """The BIDS TSV text of ``table``: pandas' ``to_csv`` with :data:`TSV_FLOAT_FORMAT` and ``n/a``.

    A table of floats only (a connectivity matrix, ROI time series) is formatted row by row with the same
    format, which gives the same text several times faster (a 1,000-ROI matrix in a fraction of a second).
    """
    names = [str(name) for name in table.columns]
    if (len(table) and names and all(pd.api.types.is_float_dtype(dtype) for dtype in table.dtypes)
            and not any(set(name) & set('\t\n\r"') for name in names)):
        row = "\t".join([TSV_FLOAT_FORMAT] * len(names))
        lines = [row % tuple(values) for values in table.to_numpy(dtype=float).tolist()]
        body = "\n".join(lines).replace("nan", "n/a")  # numbers only: "nan" is always a whole cell
        return "\t".join(names) + "\n" + body + "\n"
    return table.to_csv(sep="\t", index=False, na_rep="n/a", float_format=TSV_FLOAT_FORMAT, lineterminator="\n")


def read_tsv(path: Path, integers: bool = False) -> pd.DataFrame:
    """Read a TSV written by :func:`write_tsv`.

    Parameters
    ----------
    path : Path
    integers : bool
        Read a column written as whole numbers and ``n/a`` (e.g. a surface
        target's ``vertex`` beside reference rows without one) as nullable
        ``Int64`` instead of floats. A float column is always written with
        decimals, so the text tells the two apart.
    """
    table = pd.read_csv(path, sep="\t", na_values="n/a", keep_default_na=False)
    if integers:
        text = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        for column in table.select_dtypes("float").columns:
            written = text[column][text[column] != "n/a"]
            if len(written) and written.str.fullmatch(r"-?\d+").all():
                table[column] = table[column].astype("Int64")
    return table


def write_atlas_table(out_dir: Path, seg: str, rois: pd.DataFrame, description: str) -> Path:
    """Write the ROI table of an atlas once per output folder: ``<out_dir>/atlas-<seg>_dseg.tsv`` and its JSON.

    Runs with the same atlas share the file; it is rewritten (atomically) only when its content
    would change, so runs writing in parallel leave one complete file.

    Parameters
    ----------
    out_dir : Path
        Root of trdnet's output.
    seg : str
        The atlas label used in the outputs' ``seg-`` entity.
    rois : pandas.DataFrame
        One row per ROI of the atlas (name, network, position, size, source).
    description : str
        What the table is, for its JSON sidecar.

    Returns
    -------
    pathlib.Path
        The TSV.
    """
    path = Path(out_dir) / output_name({}, "dseg", ".tsv", atlas=seg)
    text = tsv_text(rois)
    if not path.is_file() or path.read_text() != text:
        atomic_write_text(path, text)
        write_json(sidecar_path(path), {"Description": description, "Atlas": seg})
    return path


def write_nifti(path: Path, img: nib.Nifti1Image) -> Path:
    """Save a NIfTI image atomically (the temporary name keeps the extension; :func:`trdnet.stream.save_image`
    compresses ``.nii.gz``)."""
    suffix = ".nii.gz" if str(path).endswith(".nii.gz") else ".nii"
    return _atomic(path, lambda tmp: save_image(img, tmp), suffix)


def software_versions() -> dict[str, str]:
    """Versions of trdnet and the libraries whose behaviour shapes the numbers."""
    import networkx
    import nilearn
    import scipy

    return {
        "trdnet": __version__,
        "nilearn": nilearn.__version__,
        "nibabel": nib.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "networkx": networkx.__version__,
        "python": platform.python_version(),
    }


def code_url() -> str | None:
    """Where trdnet's code is published: the ``Repository`` (else ``Source``, ``Homepage``) URL of the
    installed package's metadata (``[project.urls]`` in pyproject.toml); ``None`` when none is declared."""
    from importlib import metadata

    try:
        entries = metadata.metadata("trdnet").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    urls = dict(entry.split(", ", 1) for entry in entries if ", " in entry)
    return urls.get("Repository") or urls.get("Source") or urls.get("Homepage")


#: ``GeneratedBy`` name of trdnet's own ``dataset_description.json`` (how an output folder is recognised as trdnet's).
PIPELINE_NAME = "trdnet"


def write_dataset_description(out_dir: Path, simulated: bool, sources=()) -> Path:
    """Write the derivative dataset's ``dataset_description.json``, keeping what it said of earlier results.

    Call it only when a command writes results into the folder: it then
    names this trdnet version. An existing description is extended, not
    replaced, because a newer version resumes runs an older one finished
    (:mod:`trdnet.records` checks their settings digest and names, not the
    version): ``GeneratedBy`` lists this version first, then every other
    version that wrote results here (each run's sidecars say which made it,
    ``Software.trdnet``); ``SourceDatasets`` keeps earlier inputs; a folder
    holding simulated results stays labelled simulated.

    Parameters
    ----------
    out_dir : Path
        Root of trdnet's output.
    simulated : bool
        Whether any input of this command was simulated (the name says so).
    sources : iterable of Path
        Input derivatives folders, written as ``SourceDatasets`` (file URLs),
        together with what their own ``dataset_description.json`` says generated them.

    Returns
    -------
    Path
        The description.
    """
    path = Path(out_dir) / "dataset_description.json"
    previous = _read_description(path)
    simulated = bool(simulated) or previous.get("Simulated") is True
    name = "trdnet network connectivity and TMS targets"
    if simulated:
        name += " (SIMULATED DATA)"
    generated_by = {"Name": PIPELINE_NAME, "Version": __version__}
    url = code_url()
    if url:
        generated_by["CodeURL"] = url
    earlier = [entry for entry in previous.get("GeneratedBy", [])
               if isinstance(entry, dict) and (entry.get("Name"), entry.get("Version")) != (PIPELINE_NAME, __version__)]
    if any(entry.get("Name") == PIPELINE_NAME for entry in earlier):
        generated_by["Description"] = ("this folder also holds results of the other trdnet versions listed; each "
                                       "run's sidecars name the version that made it (Software.trdnet)")
    description = {
        "Name": name,
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [generated_by, *earlier],
        "Simulated": simulated,
    }
    source_datasets = {entry["URL"]: entry for entry in previous.get("SourceDatasets", [])
                       if isinstance(entry, dict) and "URL" in entry}
    for folder in sorted({Path(s) for s in sources}):
        entry = _source_dataset(folder)
        source_datasets[entry["URL"]] = entry
    if source_datasets:
        description["SourceDatasets"] = [source_datasets[url] for url in sorted(source_datasets)]
    return write_json(path, description)


def generated_by_trdnet(description) -> bool:
    """Whether a parsed ``dataset_description.json`` is one :func:`write_dataset_description` wrote.

    Such a description is a derivative one whose first ``GeneratedBy`` entry
    is trdnet (any version: a newer one resumes an older one's folder). A raw
    dataset's, or one another pipeline generated, is not.

    Parameters
    ----------
    description : object
        The parsed JSON.

    Returns
    -------
    bool
    """
    if not isinstance(description, dict) or description.get("DatasetType") != "derivative":
        return False
    generated_by = description.get("GeneratedBy")
    return (isinstance(generated_by, list) and bool(generated_by) and isinstance(generated_by[0], dict)
            and generated_by[0].get("Name") == PIPELINE_NAME)


def _read_description(path: Path) -> dict:
    """An existing ``dataset_description.json`` (empty when there is none or it cannot be read as one)."""
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(description, dict):
        return {}
    for key in ("GeneratedBy", "SourceDatasets"):
        if not isinstance(description.get(key, []), list):
            description[key] = []
    return description


def _source_dataset(folder: Path) -> dict:
    """BIDS ``SourceDatasets`` entry of an input folder: its URL, and the pipeline and version that made it."""
    entry = {"URL": folder.resolve().as_uri()}
    try:
        made_by = json.loads((folder / "dataset_description.json").read_text())["GeneratedBy"][0]
        entry["Version"] = f"{made_by['Name']} {made_by.get('Version', '')}".strip()
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        pass
    return entry


def source_datasets(root: Path) -> list[Path]:
    """Local folders named in a derivative's ``dataset_description.json`` (``SourceDatasets``): fMRIPrep's raw
    BIDS root, or the fMRIPrep folders a trdnet output folder was made from."""
    try:
        description = json.loads((Path(root) / "dataset_description.json").read_text())
    except (OSError, ValueError):
        return []
    found = []
    for entry in description.get("SourceDatasets", []) or []:
        url = str(entry.get("URL", "")) if isinstance(entry, dict) else ""
        if url.startswith("file://"):
            url = url[len("file://"):]
        if url and "://" not in url and not url.startswith("bids:"):
            path = Path(url)
            found.append(path if path.is_absolute() else Path(root) / path)
    return found


def _jsonable(value: Any):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return value
