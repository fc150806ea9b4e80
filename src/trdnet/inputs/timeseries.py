"""ROI time series as input: tables of T volumes x R regions plus a labels
table giving each region's network.

Files are BIDS-derivative ``*_timeseries.tsv`` tables (one column per ROI,
header = ROI names) or the ``.1D`` text files of the ABIDE Preprocessed
Connectomes Project (whitespace-separated, optional ``#``-prefixed header).
Network names are normalised to ``DMN``, ``SN`` and ``ECN`` where an alias is
recognised (``DefaultMode``, ``Salience``, ``FrontoParietal``, Yeo's
``Default``/``SalVentAttn``/``Cont``, ...); other networks keep their name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..entities import build_name, output_prefix, parse_entities, subject_folder
from ..errors import InputError
from .repetition import check_plausible
from .runs import check_distinct_outputs

#: trdnet network name -> accepted spellings (compared lower-case, letters and digits only).
NETWORK_ALIASES = {
    "DMN": ("dmn", "defaultmode", "default", "defaultmodenetwork"),
    "SN": ("sn", "salience", "saliencenetwork", "salventattn"),
    "ECN": (
        "ecn",
        "frontoparietal",
        "cont",
        "control",
        "executivecontrol",
        "executivecontrolnetwork",
        "fpn",
        "fpcn",
        "cen",
    ),
}
CORE_NETWORKS = tuple(NETWORK_ALIASES)

_ROI_COLUMNS = ("roi", "roi_id", "name", "label", "region", "index")
_NETWORK_COLUMNS = ("network", "networks", "net")
_ALIAS_LOOKUP = {alias: net for net, aliases in NETWORK_ALIASES.items() for alias in aliases}


@dataclass(frozen=True)
class RoiTimeseriesRun:
    """One ROI time-series file and what is needed to analyse it.

    Attributes
    ----------
    path : Path
        ``*_timeseries.tsv`` (T x R, header = ROI names) or ABIDE ``.1D`` file.
    labels : pandas.DataFrame
        Columns ``roi`` and ``network`` (see :func:`read_labels_table`).
    tr : float or None
        Repetition time in seconds (``None``: read from the JSON sidecar).
    entities : dict
        BIDS entities (``sub``, ``ses``, ``task``, ``run``, ``space``, ``seg``, ...).
    source : str
        Where the file came from (``timeseries``, ``abide_pcp``, ``brainfc_rest01``).
    simulated : bool
        Whether the signals are simulated.
    confounds : Path or None
        fMRIPrep-named confounds table of the same run
        (``<entities>_desc-confounds_timeseries.tsv`` beside the signals); the
        signals are cleaned with it like a voxel run.
    already_cleaned : bool
        The signals are already denoised (stated by the user, or by a data
        provider): trdnet analyses them as given and every output says so.
    notes : tuple of str
        Statements about the input carried into every sidecar (``InputNotes``).
    atlas : str
        The parcellation the signals come from (``""``: unknown), recorded in the sidecars.
    """

    path: Path
    labels: pd.DataFrame = field(repr=False)
    tr: float | None = None
    entities: dict = field(default_factory=dict)
    source: str = "timeseries"
    simulated: bool = False
    confounds: Path | None = None
    already_cleaned: bool = False
    notes: tuple[str, ...] = ()
    atlas: str = ""

    @property
    def subject(self) -> str:
        """Participant label without ``sub-``."""
        return self.entities["sub"]

    @property
    def prefix(self) -> str:
        """BIDS prefix of the outputs: every entity of the file but ``desc`` and ``seg``, in BIDS order.

        The atlas (``seg``) is added by each output's own name.
        """
        return output_prefix(self.entities, drop=("desc", "seg"))

    @property
    def space(self) -> str:
        """Space of the parcellation the signals come from ('' when unknown)."""
        return self.entities.get("space", "")

    @property
    def subject_dir(self) -> str:
        """Relative output folder: ``sub-<l>[/ses-<l>]/func``."""
        return subject_folder(self.entities)

    def load(self) -> tuple[np.ndarray, pd.DataFrame]:
        """Read the signals and ROI table (see :func:`read_roi_timeseries`)."""
        return read_roi_timeseries(self.path, self.labels, tr=self.tr)


def normalise_network(name) -> str:
    """trdnet's name of a network label (``DMN``/``SN``/``ECN``), or the label itself.

    Parameters
    ----------
    name : str or None
        Network label from a labels table or atlas.

    Returns
    -------
    str
        ``""`` for a missing label.
    """
    if name is None or (isinstance(name, float) and np.isnan(name)):
        return ""
    text = str(name).strip()
    key = re.sub(r"[^a-z0-9]", "", text.lower())
    return _ALIAS_LOOKUP.get(key, text)


def read_labels_table(labels_table, source: str | None = None, columns=None) -> pd.DataFrame:
    """Read a table giving each ROI's network.

    Parameters
    ----------
    labels_table : str, Path, pandas.DataFrame or mapping
        A TSV/CSV file or DataFrame with an ROI column (``roi``, ``roi_id``,
        ``name``, ``label``, ``region`` or ``index``) and a ``network`` column; or a
        mapping ``{roi: network}`` or ``{network: [roi, ...]}``.
    source : str, optional
        Name used in error messages (default: the file name or ``labels table``).
    columns : list of str, optional
        Header of the signals: when several ROI columns exist (e.g. numeric
        ``roi_id`` and a ``name`` matching the header, as atlas tables often
        have), the first that lists every one of them is read; otherwise the
        first in the order above.

    Returns
    -------
    pandas.DataFrame
        Columns ``roi`` (str) and ``network`` (normalised, see :func:`normalise_network`);
        also ``x``, ``y``, ``z`` (ROI centres, mm) when the table has them as numbers.
        ``attrs["roi_column"]`` names the column read.

    Raises
    ------
    InputError
        Unreadable file, no ROI or network column, duplicated ROIs.
    """
    if isinstance(labels_table, pd.DataFrame):
        table = labels_table
        name = source or "labels table"
    elif isinstance(labels_table, Mapping):
        return _labels_from_mapping(labels_table, source or "labels mapping")
    else:
        path = Path(labels_table)
        name = source or str(path)
        try:
            sep = "\t" if path.suffix.lower() == ".tsv" else None
            table = pd.read_csv(path, sep=sep, engine="python", dtype=str, keep_default_na=False)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise InputError(f"{name}: cannot read labels table ({exc})") from None
    lower = {str(c).strip().lower(): c for c in table.columns}
    candidates = [lower[c] for c in _ROI_COLUMNS if c in lower]
    wanted = set(map(_roi_name, columns)) if columns is not None else set()
    roi_col = next((c for c in candidates if wanted <= set(table[c].map(_roi_name))),
                   candidates[0] if candidates else None)
    net_col = next((lower[c] for c in _NETWORK_COLUMNS if c in lower), None)
    if roi_col is None:
        raise InputError(
            f"{name}: no ROI column; found {list(table.columns)}, accepted names: {', '.join(_ROI_COLUMNS)}"
        )
    if net_col is None:
        raise InputError(
            f"{name}: no network column; found {list(table.columns)}, accepted names: "
            f"{', '.join(_NETWORK_COLUMNS)}"
        )
    out = pd.DataFrame(
        {
            "roi": table[roi_col].map(_roi_name).astype(str),
            "network": table[net_col].map(normalise_network),
        }
    )
    centres = [lower.get(axis) for axis in ("x", "y", "z")]
    if all(c is not None for c in centres):
        coords = table[centres].apply(pd.to_numeric, errors="coerce")
        if coords.notna().all().all():  # ROI centres (mm, the atlas's space): kept for connectome drawings
            out[["x", "y", "z"]] = coords.to_numpy(dtype=float)
    _check_unique(out, name)
    out = out.reset_index(drop=True)
    out.attrs["roi_column"] = str(roi_col)
    return out


def read_roi_timeseries(path, labels_table, tr: float | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """Read a T x R ROI time-series file and match its columns to networks.

    Parameters
    ----------
    path : str or Path
        ``*_timeseries.tsv`` with a header of ROI names, or ABIDE ``.1D`` file.
    labels_table : str, Path, pandas.DataFrame or mapping
        Each ROI's network (see :func:`read_labels_table`). Every column of
        the file must be listed; extra rows are ignored.
    tr : float, optional
        Repetition time in seconds; default: ``RepetitionTime`` (or
        ``1 / SamplingFrequency``) of the JSON sidecar, else unknown.

    Returns
    -------
    signals : numpy.ndarray, float64, shape (T, R)
    rois : pandas.DataFrame
        One row per column of ``signals``: ``roi``, ``network``. ``rois.attrs``
        holds ``tr`` (float or None) and ``source`` (the file).

    Raises
    ------
    InputError
        Unreadable file, non-numeric or missing values, fewer than 3 volumes,
        labels not matching the columns, no ROI in DMN/SN/ECN.
    """
    path = Path(path)
    signals, columns = _read_signals(path)
    labels = read_labels_table(labels_table, columns=columns)
    by_roi = dict(zip(labels["roi"], labels["network"], strict=True))
    _check_listed(path, columns, labels)
    rois = pd.DataFrame({"roi": columns, "network": [by_roi[c] for c in columns]})
    if {"x", "y", "z"} <= set(labels.columns):
        rois[["x", "y", "z"]] = labels.set_index("roi").loc[columns, ["x", "y", "z"]].to_numpy()
    if not rois["network"].isin(CORE_NETWORKS).any():
        found = sorted(set(rois["network"]) - {""})
        raise InputError(
            f"{path}: the labels table puts no column in DMN, SN or ECN (networks found: {found}); "
            "name them DMN/SN/ECN or a recognised alias (DefaultMode, Salience, FrontoParietal, ...)"
        )
    rois.attrs["tr"] = _resolve_tr(path, tr)
    rois.attrs["source"] = str(path)
    return signals, rois


def find_roi_timeseries_runs(
    folder, labels_table, pattern: str = "*_timeseries.tsv", *, already_cleaned: bool = False,
    source: str = "timeseries", notes: tuple[str, ...] = (), atlas: str | None = None,
) -> list[RoiTimeseriesRun]:
    """Find a user's ROI time-series files named with BIDS entities, and their confounds.

    Every file's header is checked against the labels table now, and every
    file needs fMRIPrep's confounds table of the same run beside it (see
    :func:`confounds_for`) unless the signals are declared already cleaned,
    so a problem is reported before any analysis starts. Confounds tables
    themselves (``desc-confounds``) are not taken as signals.

    Parameters
    ----------
    folder : str or Path
        Searched recursively.
    labels_table : str, Path, pandas.DataFrame or mapping
        Each ROI's network (see :func:`read_labels_table`).
    pattern : str
        Glob pattern of the files.
    already_cleaned : bool, default False
        The user states the signals are already denoised: no confounds are
        needed or used, and every output says so.
    source : str, default "timeseries"
        Recorded as each run's ``source``.
    notes : tuple of str
        Statements carried into every sidecar of every run.
    atlas : str, optional
        The parcellation the signals come from (default: each file's ``seg`` entity).

    Returns
    -------
    list of RoiTimeseriesRun
        Sorted by path; ``tr`` from each file's JSON sidecar when present.

    Raises
    ------
    InputError
        Missing folder, no matching file, a file without ``sub-``, a header
        not matching the labels table, or no confounds table or no
        repetition time for a file (unless ``already_cleaned``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder; expected a folder of {pattern} files")
    paths = sorted(p for p in folder.rglob(pattern) if parse_entities(p.name).get("desc") != "confounds")
    if not paths:
        raise InputError(f"{folder}: no {pattern} file found (names like sub-01_task-rest_timeseries.tsv)")
    labels = read_labels_table(labels_table, columns=_header(paths[0]))
    runs = []
    for path in paths:
        entities = parse_entities(path.name)
        if "sub" not in entities:
            raise InputError(
                f"{path}: file name has no sub-<label> entity; "
                "expected e.g. sub-01_task-rest_timeseries.tsv"
            )
        _check_listed(path, _header(path), labels)
        confounds = confounds_for(path)
        if confounds is None and not already_cleaned:
            raise InputError(
                f"{path}: no confounds table beside it (expected {confounds_name(path)}); give fMRIPrep's "
                "confounds of the run to clean the signals, or state that they are already cleaned "
                "(--already-cleaned)"
            )
        tr = _sidecar_tr(path)
        if confounds is not None and not already_cleaned and tr is None:
            raise InputError(
                f"{path}: no repetition time (RepetitionTime in {build_name(entities, 'timeseries', '.json')} "
                "beside it); cleaning the signals needs it"
            )
        run_notes = tuple(notes)
        if already_cleaned:
            run_notes += (ALREADY_CLEANED_NOTE,)
        runs.append(RoiTimeseriesRun(path=path, labels=labels, tr=tr, entities=entities,
                                     source=source, confounds=None if already_cleaned else confounds,
                                     already_cleaned=already_cleaned, notes=run_notes,
                                     atlas=atlas or entities.get("seg", "")))
    check_distinct_outputs(runs)
    return runs


def record_roi_input(settings, runs, labels_table=None):
    """Settings that also record what ROI time-series runs were given: the already-cleaned statement and
    the labels table (its path or source, and a SHA-256 of its content).

    Both are then part of :meth:`trdnet.config.Settings.digest`, so a re-run with the statement or the
    table changed is refused (or recomputed with ``--overwrite``) like a run with other settings.

    Parameters
    ----------
    settings : trdnet.config.Settings
    runs : list
        Runs of any kind; settings are returned unchanged without a :class:`RoiTimeseriesRun`.
    labels_table : str or Path, optional
        The labels file given on the command line (default: the runs' labels, named by their source).

    Returns
    -------
    trdnet.config.Settings
    """
    import dataclasses
    import hashlib

    roi_runs = [run for run in runs if isinstance(run, RoiTimeseriesRun)]
    if not roi_runs:
        return settings
    if labels_table is not None and Path(labels_table).is_file():
        name = str(Path(labels_table).resolve())
        content = Path(labels_table).read_bytes()
    else:
        name = roi_runs[0].source
        content = roi_runs[0].labels.to_csv(index=False).encode()
    networks = dataclasses.replace(settings.networks, roi_labels=name,
                                   roi_labels_sha256=hashlib.sha256(content).hexdigest())
    denoise = dataclasses.replace(settings.denoise, already_cleaned=any(r.already_cleaned for r in roi_runs))
    return dataclasses.replace(settings, networks=networks, denoise=denoise)


#: Recorded in every output of a run whose signals were declared already cleaned.
ALREADY_CLEANED_NOTE = (
    "signals declared already cleaned: trdnet applied no detrending, filtering, confound regression or "
    "censoring to them"
)

#: Entities fMRIPrep keeps in a run's confounds file name, in file-name order.
CONFOUNDS_ENTITIES = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "echo", "part")


def confounds_name(path) -> str:
    """File name of fMRIPrep's confounds table for the run of an ROI time-series file.

    Parameters
    ----------
    path : str or Path
        e.g. ``sub-01_task-rest_space-MNI152NLin6Asym_seg-Schaefer100_timeseries.tsv``.

    Returns
    -------
    str
        e.g. ``sub-01_task-rest_desc-confounds_timeseries.tsv``.
    """
    entities = parse_entities(Path(path).name)
    kept = {k: v for k, v in entities.items() if k in CONFOUNDS_ENTITIES}
    return build_name(kept | {"desc": "confounds"}, "timeseries", ".tsv")


def confounds_for(path) -> Path | None:
    """fMRIPrep's confounds table beside an ROI time-series file, if present.

    The current name (``desc-confounds_timeseries.tsv``) is preferred over
    fMRIPrep's older ``desc-confounds_regressors.tsv``.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    Path or None
    """
    from .bids import find_confounds

    return find_confounds(Path(path), parse_entities(Path(path).name))


# --------------------------------------------------------------------------- helpers


def _roi_name(value) -> str:
    text = str(value).strip()
    # "12.0" read from a float column names the same ROI as "12"
    if re.fullmatch(r"-?\d+\.0+", text):
        text = text.split(".")[0]
    return text.lstrip("#")


def _labels_from_mapping(mapping: Mapping, name: str) -> pd.DataFrame:
    rows = []
    for key, value in mapping.items():
        if isinstance(value, str):
            rows.append((_roi_name(key), normalise_network(value)))
        elif isinstance(value, (list, tuple, set, frozenset)):
            rows.extend((_roi_name(roi), normalise_network(key)) for roi in value)
        else:
            raise InputError(
                f"{name}: value for {key!r} is {type(value).__name__}; accepted: "
                "{roi: network name} or {network: [roi, ...]}"
            )
    out = pd.DataFrame(rows, columns=["roi", "network"])
    _check_unique(out, name)
    return out


def _header(path: Path) -> list[str]:
    try:
        return [str(c) for c in pd.read_csv(path, sep="\t", nrows=0).columns]
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read ROI time series ({exc})") from None


def _check_listed(path: Path, columns, labels: pd.DataFrame) -> None:
    """Refuse signal columns the labels table does not list, naming the labels column compared."""
    known = set(labels["roi"])
    missing = [c for c in map(_roi_name, columns) if c not in known]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InputError(
            f"{path}: {len(missing)} of {len(columns)} columns are not in the labels table's "
            f"{labels.attrs.get('roi_column', 'ROI')!r} column ({shown}); the table must list every column name"
        )


def _check_unique(labels: pd.DataFrame, name: str) -> None:
    dup = labels["roi"][labels["roi"].duplicated()].unique()
    if len(dup):
        raise InputError(f"{name}: ROI(s) listed more than once: {', '.join(map(str, dup[:5]))}")


def _read_signals(path: Path) -> tuple[np.ndarray, list[str]]:
    if not path.is_file():
        raise InputError(f"{path}: ROI time-series file not found")
    try:
        if path.suffix.lower() == ".1d":
            table = _read_1d(path)
        else:
            table = pd.read_csv(path, sep="\t")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read ROI time series ({exc})") from None
    if len(table) == 0:
        raise InputError(f"{path}: a header but no volumes; expected a T x R table of numbers with ROI names as header")
    non_numeric = [str(c) for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if non_numeric:
        raise InputError(
            f"{path}: non-numeric values in column(s) {', '.join(non_numeric[:5])}; "
            "expected a T x R table of numbers with ROI names as header"
        )
    signals = table.to_numpy(dtype=np.float64)
    if signals.ndim != 2 or signals.shape[0] < 3 or signals.shape[1] < 1:
        raise InputError(f"{path}: {signals.shape} table; expected at least 3 volumes x 1 ROI")
    bad = ~np.isfinite(signals)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise InputError(
            f"{path}: {int(bad.sum())} missing or infinite value(s), first at volume {int(rows[0])} "
            f"column {table.columns[cols[0]]!s}; expected finite numbers everywhere"
        )
    return signals, [_roi_name(c) for c in table.columns]


def _read_1d(path: Path) -> pd.DataFrame:
    with path.open() as handle:
        first = handle.readline()
    data = np.loadtxt(path, comments="#", ndmin=2)
    names = first.lstrip("#").split() if first.startswith("#") else []
    if len(names) != data.shape[1]:
        names = [str(i + 1) for i in range(data.shape[1])]
    return pd.DataFrame(data, columns=[n.lstrip("#") for n in names])


def _sidecar_tr(path: Path) -> float | None:
    sidecar = path.with_name(path.name.split(".")[0] + ".json")
    if not sidecar.is_file():
        return None
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{sidecar}: cannot read JSON sidecar ({exc})") from None
    if "SampleMask" in meta:  # e.g. trdnet's own series of a censored run
        raise InputError(f"{sidecar}: its rows are only the volumes SampleMask lists (censored), not one per "
                         "repetition time; give the series of every volume")
    if "RepetitionTime" in meta:
        return check_plausible(_positive_tr(meta["RepetitionTime"], sidecar), f"{sidecar}: RepetitionTime")
    if "SamplingFrequency" in meta:
        return check_plausible(1.0 / _positive_tr(meta["SamplingFrequency"], sidecar),
                               f"{sidecar}: 1 / SamplingFrequency")
    return None


def _resolve_tr(path: Path, tr: float | None) -> float | None:
    if tr is not None:
        return check_plausible(_positive_tr(tr, path), path)
    return _sidecar_tr(path)


def _positive_tr(value, where) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number) or number <= 0:
        raise InputError(
            f"{where}: TR/sampling value {value!r} is invalid; expected a positive number of seconds"
        )
    return number
