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
