"""BIDS file names: the one parser and the one builder of the package.

Every module that reads an entity from a file name (``sub-01_task-rest_...``)
or builds an output name goes through this module; nothing else splits names
on ``_`` and ``-``.

A BIDS name is ``<key>-<label>[_<key>-<label>...]_<suffix><extension>``:
labels are alphanumeric, the extension starts at the first dot
(``.nii.gz``, ``.func.gii``, ``.dtseries.nii``). Entity order follows the
BIDS specification (Appendix: entity table), followed by the derivative
entities fMRIPrep, TemplateFlow and BEP017 (relationship matrices) use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

#: Entities in the order they appear in a BIDS file name: the order of the
#: BIDS schema (BIDS 1.11.2, schema 2.0.1: ``rules.entities``, which ends with ``desc``)
#: with the derivative entities it does not define placed among them:
#: ``from``, ``to``, ``mode`` name fMRIPrep's transforms, ``roi`` BEP017's
#: regions, ``model``, ``subset``, ``meas`` and ``stat`` models,
#: relationship matrices and statistical maps (all before ``desc``, which
#: stays last as in the schema). One deliberate difference: ``cohort``
#: follows ``space`` as fMRIPrep and niworkflows write it
#: (``space-MNIPediatricAsym_cohort-1``; the schema places it after ``ses``,
#: for TemplateFlow's ``tpl-``).
ENTITY_ORDER = (
    "sub", "tpl", "ses", "sample", "task", "tracksys", "acq", "nuc", "voi", "ce", "trc", "stain", "rec", "dir",
    "run", "mod", "echo", "flip", "inv", "mt", "part", "proc", "hemi", "space", "cohort", "split", "recording",
    "chunk", "from", "to", "mode", "atlas", "roi", "seg", "scale", "res", "den", "label", "model", "subset",
    "meas", "stat", "desc",
)

#: The BIDS schema's entity order (BIDS 1.11.2, ``rules.entities`` of bidsschematools 2.0.1), which
#: :data:`ENTITY_ORDER` follows.
SCHEMA_ENTITY_ORDER = (
    "sub", "tpl", "ses", "cohort", "sample", "task", "tracksys", "acq", "nuc", "voi", "ce", "trc", "stain", "rec",
    "dir", "run", "mod", "echo", "flip", "inv", "mt", "part", "proc", "hemi", "space", "split", "recording",
    "chunk", "atlas", "seg", "scale", "res", "den", "label", "desc",
)

#: Entities that describe what kind of derivative a file is rather than which
#: acquisition it came from; an output builds its own.
DERIVATIVE_ENTITIES = ("desc",)

_KEY = re.compile(r"^[a-zA-Z][a-zA-Z0-9]*$")
_LABEL = re.compile(r"^[a-zA-Z0-9]+$")
_RANK = {key: i for i, key in enumerate(ENTITY_ORDER)}


@dataclass(frozen=True)
class BIDSName:
    """The parts of a BIDS file name.

    Attributes
    ----------
    entities : dict
        ``{key: label}`` in the order of the name (``{'sub': '01', 'task': 'rest'}``).
    suffix : str
        The last underscore-separated part when it is not an entity (``bold``,
        ``timeseries``, ``xfm``); ``''`` when there is none (a run prefix).
    extension : str
        Everything from the first dot (``.nii.gz``), ``''`` if none.
    """

    entities: dict = field(default_factory=dict)
    suffix: str = ""
    extension: str = ""


def parse_bids_name(name: str | Path) -> BIDSName:
    """Split a BIDS file name (or a run prefix) into entities, suffix and extension.

    Parameters
    ----------
    name : str or Path
        A file name or path; only the last path component is read.

    Returns
    -------
    BIDSName
        Parts that are not ``key-label`` pairs with an alphanumeric label are
        not entities and are left out; when a key repeats, the first wins.

    Examples
    --------
    >>> parse_bids_name("sub-01_task-rest_part-mag_bold.nii.gz").entities
    {'sub': '01', 'task': 'rest', 'part': 'mag'}
    """
    base = Path(str(name)).name
    stem, dot, rest = base.partition(".")
    extension = dot + rest
    parts = stem.split("_") if stem else []
    entities: dict[str, str] = {}
    suffix = ""
    for i, part in enumerate(parts):
        key, sep, label = part.partition("-")
        if sep and _KEY.match(key) and _LABEL.match(label):
            entities.setdefault(key, label)
        elif i == len(parts) - 1 and not sep:
            suffix = part
    return BIDSName(entities, suffix, extension)


def parse_entities(name: str | Path) -> dict[str, str]:
    """BIDS entities of a file name, run prefix or path.

    ``sub-01_ses-2_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz``
    -> ``{'sub': '01', 'ses': '2', 'task': 'rest', 'space': 'MNI152NLin2009cAsym', 'desc': 'preproc'}``.
    See :func:`parse_bids_name`.
    """
    return dict(parse_bids_name(name).entities)


def order_entities(entities: dict) -> list[tuple[str, str]]:
    """``(key, label)`` pairs of ``entities`` in BIDS order, empty labels dropped.

    Keys the specification does not list keep their relative order and go
    just before ``desc``.
    """
    items = [(str(k), str(v)) for k, v in entities.items() if v not in (None, "")]
    unknown = _RANK["desc"] - 0.5
    return sorted(items, key=lambda kv: _RANK.get(kv[0], unknown))


def build_name(entities: dict, suffix: str = "", extension: str = "", keep_order: bool = False) -> str:
    """A BIDS file name from entities, in specification order (or in the dict's order with ``keep_order``).

    Parameters
    ----------
    entities : dict
        ``{key: label}``; ``None`` or empty labels are skipped.
    suffix : str, optional
        e.g. ``bold``, ``relmat``; no leading underscore.
    extension : str, optional
        e.g. ``.tsv``, ``.nii.gz``.
    keep_order : bool, optional
        Keep the entities' own order (the name of an input's partner file,
        written in whatever order the input was).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If a label is not alphanumeric (it would not parse back).
    """
    pairs = ([(str(k), str(v)) for k, v in entities.items() if v not in (None, "")] if keep_order
             else order_entities(entities))
    for key, label in pairs:
        if not (_KEY.match(key) and _LABEL.match(label)):
            raise ValueError(f"BIDS entity {key}-{label}: keys and labels must be alphanumeric")
    name = "_".join(f"{k}-{v}" for k, v in pairs)
    if suffix:
        name = f"{name}_{suffix}" if name else suffix
    return name + extension


def output_prefix(entities: dict, keep=None, drop=DERIVATIVE_ENTITIES) -> str:
    """The prefix every output of an input shares (``sub-01_task-rest_space-...``).

    Parameters
    ----------
    entities : dict
        Entities of the input file.
    keep : sequence of str, optional
        Only these keys; default all.
    drop : sequence of str
        Keys left out (default ``desc``: each output writes its own).

    Returns
    -------
    str
        Entities in BIDS order joined by ``_``.
    """
    chosen = {k: v for k, v in entities.items() if (keep is None or k in keep) and k not in drop}
    return build_name(chosen)


#: Entities that name a participant-level output (one result from all of a person's runs: sessions and
#: runs are joined, so ``ses`` and ``run`` are left out).
PARTICIPANT_ENTITIES = ("sub", "task", "acq", "space")

#: Entities of the sgACC seed map's name, volume and surface runs alike (suffix ``boldmap``); in the name they
#: follow the schema's order: ``..._stat-r_desc-sgacc_boldmap.nii.gz``.
SEED_MAP_ENTITIES = {"stat": "r", "desc": "sgacc"}

#: ``desc-`` entity of every navigator file (:mod:`trdnet.export`).
NAVIGATION_DESC = "navtargets"

_SUFFIX = re.compile(r"^[a-zA-Z0-9]+$")


def _own_entities(entities: dict | str | Path) -> dict:
    """Entities of a run (a dict, or a run prefix / file name to parse), ``desc`` dropped."""
    if isinstance(entities, (str, Path)):
        entities = parse_entities(entities)
    return {k: v for k, v in entities.items() if k not in DERIVATIVE_ENTITIES}


def output_name(entities: dict | str | Path, suffix: str, extension: str = "", **extra) -> str:
    """The file name of an output: the run's entities and the output's own, in BIDS order.

    The one place an output's name is decided (see :func:`output_path` for the
    folder). Entities appear in :data:`ENTITY_ORDER` (the BIDS schema's order),
    whatever the order of the input's name or of ``extra``.

    Parameters
    ----------
    entities : dict or str
        The run's entities (``Run.entities``) or its prefix (``Run.prefix``,
        ``sub-01_task-rest_space-MNI152NLin2009cAsym``); the input's ``desc``
        is dropped (an output names its own).
    suffix : str
        BIDS suffix (``boldmap``, ``timeseries``, ``targets``, ``coords``...),
        alphanumeric.
    extension : str, optional
        From the first dot: ``.tsv``, ``.nii.gz``, ``.json``, ``.func.gii``.
    **extra
        Entities of this output (``desc="sgacc"``, ``stat="r"``, ``seg=...``,
        ``hemi="L"``); a value replaces the run's, ``None`` removes it.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        A label, suffix or extension that would not parse back
        (:func:`parse_bids_name`).

    Examples
    --------
    >>> output_name("sub-01_task-rest_space-MNI152NLin2009cAsym", "boldmap", ".nii.gz", desc="sgacc", stat="r")
    'sub-01_task-rest_space-MNI152NLin2009cAsym_stat-r_desc-sgacc_boldmap.nii.gz'
    >>> output_name({"sub": "01", "task": "rest", "space": "fsaverage5", "desc": "preproc"}, "mask",
    ...             ".label.gii", hemi="L", desc="searchregion")
    'sub-01_task-rest_hemi-L_space-fsaverage5_desc-searchregion_mask.label.gii'
    """
    if not _SUFFIX.match(suffix):
        raise ValueError(f"BIDS suffix {suffix!r}: must be alphanumeric (e.g. boldmap, targets)")
    if extension and (not extension.startswith(".") or "_" in extension or "/" in extension):
        raise ValueError(f"extension {extension!r}: must start with a dot (e.g. .tsv, .nii.gz)")
    named = _own_entities(entities) | extra
    return build_name({k: v for k, v in named.items() if v is not None}, suffix, extension)


def output_path(out_dir: str | Path, entities: dict | str | Path, suffix: str, extension: str = "",
                **extra) -> Path:
    """Where a run writes an output: ``<out_dir>/sub-<l>[/ses-<l>]/func/<name>``.

    Every per-run output path of trdnet comes from here (the name from
    :func:`output_name`, the folder from :func:`subject_folder`), so the
    writers and the readers of a file agree by construction; readers may
    call it with the prefix a completion record holds.

    Parameters
    ----------
    out_dir : str or Path
        Root of trdnet's derivatives folder.
    entities, suffix, extension, **extra
        As :func:`output_name`.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> output_path("out", "sub-01_ses-2_task-rest_space-T1w", "targets", ".tsv").as_posix()
    'out/sub-01/ses-2/func/sub-01_ses-2_task-rest_space-T1w_targets.tsv'
    >>> output_path("out", "sub-01_task-rest_space-T1w", "relmat", ".tsv", seg="Seitzman2018",
    ...             meas="pearson").name
    'sub-01_task-rest_space-T1w_seg-Seitzman2018_meas-pearson_relmat.tsv'
    """
    own = _own_entities(entities)
    return Path(out_dir) / subject_folder(own) / output_name(own, suffix, extension, **extra)


def participant_output_path(out_dir: str | Path, entities: dict | str | Path, suffix: str,
                            extension: str = "", **extra) -> Path:
    """Where the participant step writes an output: ``<out_dir>/sub-<l>/func/<name>``.

    A participant-level result joins a person's sessions and runs, so its
    folder has no ``ses-`` level and its name keeps only
    :data:`PARTICIPANT_ENTITIES` of the run's (``sub``, ``task``, ``acq``,
    ``space``), then the output's own.

    Parameters
    ----------
    out_dir : str or Path
        Root of trdnet's derivatives folder.
    entities : dict or str
        Entities (or prefix) of any run of the participant, or the participant prefix.
    suffix, extension, **extra
        As :func:`output_name`.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> participant_output_path("out", "sub-01_ses-2_task-rest_run-1_space-T1w", "targets", ".tsv",
    ...                         desc="participant").as_posix()
    'out/sub-01/func/sub-01_task-rest_space-T1w_desc-participant_targets.tsv'
    """
    own = {k: v for k, v in _own_entities(entities).items() if k in PARTICIPANT_ENTITIES}
    return Path(out_dir) / subject_folder({"sub": own["sub"]}) / output_name(own, suffix, extension, **extra)


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar of an output: the same name with the extension ``.json``.

    >>> sidecar_path("f/sub-01_hemi-L_space-fsaverage5_desc-sgacc_boldmap.func.gii").as_posix()
    'f/sub-01_hemi-L_space-fsaverage5_desc-sgacc_boldmap.json'
    """
    path = Path(path)
    return path.with_name(path.name.split(".", 1)[0] + ".json")


def subject_folder(entities: dict) -> str:
    """Relative BIDS output folder of a run: ``sub-<l>[/ses-<l>]/func``."""
    parts = [f"sub-{entities['sub']}"]
    if entities.get("ses"):
        parts.append(f"ses-{entities['ses']}")
    return "/".join(parts + ["func"])


def participant_session(entities: dict) -> str:
    """``sub-<l>[_ses-<l>]`` of a run (the stem navigator files share)."""
    return build_name({k: entities.get(k) for k in ("sub", "ses")})


def replace_entities(name: str | Path, keep_order: bool = False, **changes) -> str:
    """A file name with some entities changed, added (in BIDS order) or removed (``None``).

    ``replace_entities("sub-01_space-T1w_desc-x_coords.tsv", space="MNI152NLin2009cAsym")``.
    With ``keep_order``, changed entities stay where the name has them (new ones go last): the partner of an
    input named in another order (``..._space-fsaverage5_hemi-L_bold.func.gii``) keeps that order.
    """
    parsed = parse_bids_name(name)
    entities = dict(parsed.entities)
    for key, label in changes.items():
        entities[key] = label
    return build_name({k: v for k, v in entities.items() if v is not None}, parsed.suffix, parsed.extension,
                      keep_order=keep_order)


def split_space_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split fMRIPrep's ``--output-spaces`` form ``<space>[:<key>-<label>...]`` into the space and its entities.

    Parameters
    ----------
    spec : str
        e.g. ``"MNI152NLin2009cAsym"`` or ``"MNI152NLin2009cAsym:res-2"``.

    Returns
    -------
    space : str
    entities : dict
        e.g. ``{"res": "2"}``: entities the space's images must carry.

    Raises
    ------
    ValueError
        A modifier that is not ``key-label``, or a key BIDS does not define.
    """
    space, *modifiers = spec.split(":")
    entities = {}
    for modifier in modifiers:
        key, _, label = modifier.partition("-")
        if key not in _RANK or not _LABEL.match(label):
            raise ValueError(f"space {spec!r}: {modifier!r} is not a key-label modifier (e.g. res-2, cohort-1, den-91k)")
        entities[key] = label
    return space, entities
