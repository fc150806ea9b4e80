"""Typed settings for every stage, checked when built, with JSON round-trip.

One :class:`Settings` object travels through the pipeline; nothing reads a
global. Every value is checked against its type and accepted range when a
section is built or a field is assigned, so a bad value stops before any work
with one line naming the key, the value and what is accepted. Every output
sidecar records ``Settings.to_dict()`` and :meth:`Settings.digest`, so a
re-run knows whether finished outputs were made with the same settings.

Named denoising strategies (nilearn's ``load_confounds_strategy`` names) are
data files; see :mod:`trdnet.strategies`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .errors import SettingsError
from .strategies import strategy_name, strategy_values

#: Template space of the embedded default and of the shipped coordinates.
MNI_SPACE = "MNI152NLin2009cAsym"

#: Targeting methods accepted in ``TargetSettings.methods`` (see :mod:`trdnet.targeting.select`).
TARGET_METHODS = ("peak", "cluster", "seedmap", "hierarchical")

#: nilearn ``load_confounds`` choices for motion, tissue and global-signal regressors.
CONFOUND_DEGREES = ("basic", "power2", "derivatives", "full")
#: nilearn ``load_confounds`` CompCor choices (``none``: no CompCor).
COMPCOR_KINDS = ("none", "anat_combined", "anat_separated", "temporal", "temporal_anat_combined",
                 "temporal_anat_separated")

#: Largest accepted ``targeting.n_bootstrap``: every resample re-runs targeting on a T x V resampled
#: copy of the run; 10,000 resamples already pin a 95% radius far below a voxel.
MAX_BOOTSTRAP = 10_000

#: Fields added after output folders already recorded digests whose default does what trdnet did before them:
#: at their default they are left out of :meth:`Settings.digest`, so folders processed before keep their digest
#: and resume. Only for such fields: a new rule that changes results at its default is a :data:`_DIGEST_ADDED_RULE`.
_DIGEST_SKIPS_DEFAULT = "digest_skips_default"
#: Rules added after output folders already recorded digests, which change results at their default (a run may be
#: refused, a reliability word lowered, columns added). They count in :meth:`Settings.digest` even at their
#: default; a run recorded under :meth:`Settings.earlier_digest` (the same settings before these rules) is
#: processed again rather than resumed as if made under them.
_DIGEST_ADDED_RULE = "digest_added_rule"


# -- checks -------------------------------------------------------------------------------------------------

def _fail(key: str, value: Any, accepted: str) -> typing.NoReturn:
    raise SettingsError(f"{key} = {json.dumps(value, default=str)} is not accepted; accepted: {accepted}")


def _number(low: float | None = None, high: float | None = None, low_open: bool = False,
            high_open: bool = False, integer: bool = False):
    """Rule: a finite number in a range (``low_open``: ``low`` itself excluded)."""
    kind = "an integer" if integer else "a number"
    if high is None:
        text = f"{kind} {'>' if low_open else '>='} {low}"
    else:
        text = f"{kind} in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"

    def rule(key: str, value: Any) -> None:
        if value is None:
            return
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if not math.isfinite(value) or too_low or too_high:
            _fail(key, value, text)

    return rule


def _one_of(*accepted):
    """Rule: one of the listed values (each element of a tuple value, when the value is a tuple)."""
    text = ", ".join(repr(a) for a in accepted)

    def rule(key: str, value: Any) -> None:
        values = value if isinstance(value, tuple) else (value,)
        bad = [v for v in values if v is not None and v not in accepted]
        if bad:
            _fail(key, value, text)

    return rule


@functools.cache
def reference_site_names() -> tuple[str, ...]:
    """Names of the reference DLPFC sites shipped in ``data/reference_targets.tsv``, in the table's order.

    The accepted values of ``targeting.search_sites`` and ``targeting.reference_targets``; their coordinates
    are read by :func:`trdnet.targeting.regions.reference_sites`.
    """
    from .resources import read_table

    return tuple(str(name) for name in read_table("reference_targets.tsv")["name"])


def _reference_sites(key: str, value: tuple) -> None:
    """Rule: reference sites named in the shipped table, each once (none: no reference rows)."""
    if len(set(value)) != len(value):
        _fail(key, list(value), "each name once")
    _one_of(*reference_site_names())(key, value)


def _search_sites(key: str, value: tuple) -> None:
    """Rule: at least one reference site, named in the shipped table, each once."""
    _not_empty_unique(key, value)
    _reference_sites(key, value)


def _not_empty_unique(key: str, value: tuple) -> None:
    if not value:
        _fail(key, list(value), "at least one name")
    if len(set(value)) != len(value):
        _fail(key, list(value), "each name once")


def _type_ok(value: Any, annotation) -> bool:
    """Whether a value fits a field annotation (JSON lists accepted for tuples)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return True
    if annotation is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in args)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_type_ok(v, args[0]) for v in value)
        return len(value) == len(args) and all(_type_ok(v, a) for v, a in zip(value, args))
    if origin is list:
        return isinstance(value, (list, tuple)) and all(_type_ok(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            _type_ok(k, args[0]) and _type_ok(v, args[1]) for k, v in value.items())
    return isinstance(value, annotation)


def _type_text(annotation) -> str:
    """Plain words for an annotation, as a settings-file author reads them."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_text(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_text(args[0]).removeprefix('a ').removeprefix('an ')}s"
        return f"a list of {len(args)} numbers" if all(a is float for a in args) else f"a list of {len(args)} values"
    if origin is dict:
        return "an object mapping names to lists of names"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            type(None): "null"}.get(annotation, getattr(annotation, "__name__", str(annotation)))


class _Checked:
    """Check every field's type and range when built and when assigned.

    Subclasses set ``_section`` (the key prefix in messages), ``_rules``
    (field -> ``rule(key, value)``) and may override ``_check_together``
    for conditions between fields.
    """

    _section: ClassVar[str] = ""
    _rules: ClassVar[dict] = {}

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, self._checked_value(f.name, getattr(self, f.name)))
        self._check_together()

    def __setattr__(self, name: str, value: Any) -> None:
        names = _field_names(type(self))
        # while the dataclass __init__ is still setting fields, __post_init__ checks them all at once
        if name not in names or not names <= self.__dict__.keys():
            object.__setattr__(self, name, value)
            return
        previous = getattr(self, name)
        object.__setattr__(self, name, self._checked_value(name, value))
        try:
            self._check_together()
        except SettingsError:
            object.__setattr__(self, name, previous)
            raise

    def _key(self, name: str) -> str:
        return f"{self._section}.{name}" if self._section else name

    def _checked_value(self, name: str, value: Any) -> Any:
        annotation = _hints(type(self))[name]
        if not _type_ok(value, annotation):
            _fail(self._key(name), value, _type_text(annotation))
        if isinstance(value, list) and typing.get_origin(annotation) is not dict and "tuple" in str(annotation):
            value = tuple(value)
        rule = self._rules.get(name)
        if rule is not None:
            try:
                rule(self._key(name), value)
            except SettingsError as exc:
                if _type_ok(None, annotation):  # say that the setting can also be switched off
                    raise SettingsError(f"{exc}, or null") from None
                raise
        return value

    def _check_together(self) -> None:
        """Conditions between fields (none by default)."""


def _hints(cls) -> dict:
    cached = cls.__dict__.get("_hints_cache")
    if cached is None:
        cached = typing.get_type_hints(cls)
        cls._hints_cache = cached
    return cached


def _field_names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


# -- sections -----------------------------------------------------------------------------------------------

@dataclass
class DenoiseSettings(_Checked):
    """How a run is cleaned.

    Confound choices are passed verbatim to
    :func:`nilearn.interfaces.fmriprep.load_confounds`; filtering and
    detrending follow :func:`nilearn.signal.clean`. Named combinations of
    the confound choices are the strategies of :mod:`trdnet.strategies`.
    """

    motion: str = "full"  # basic | power2 | derivatives | full
    wm_csf: str = "basic"  # basic | power2 | derivatives | full | none
    global_signal: str = "basic"  # GSR: basic | power2 | derivatives | full | none
    scrub: bool = True
    scrub_min_segment: int = 5  # nilearn's ``scrub``: drop retained segments shorter than this
    fd_threshold: float = 0.5  # mm (Power 2014 uses 0.2-0.5)
    std_dvars_threshold: float = 1.5
    high_pass: float | None = 0.01  # Hz; None: no high-pass
    low_pass: float | None = 0.1  # Hz; None: no low-pass
    detrend: bool = True
    filter: str = "butterworth"
    butterworth_order: int = 5
    #: censored volumes at a run's ends are left out of the band-pass, not extrapolated (nilearn >= 0.13's
    #: default: spline extrapolation beyond the data is unreliable and changed seed maps by up to 0.14 r)
    extrapolate: bool = False
    min_volumes: int = 50  # refuse to analyse fewer retained volumes than this
    min_minutes: float = 2.0  # ... or less retained time than this
    #: refuse a run with fewer temporal degrees of freedom left after censoring, confound regression and band-pass
    #: (:mod:`trdnet.dof`). trdnet's choice, not a published threshold: the null SD of r is about 1/sqrt(dof), so
    #: below 20 chance correlations exceed +-0.43 one time in 20. With the default strategy (27 regressors,
    #: 0.01-0.1 Hz, TR 2 s) a 10-min run keeps about 79, a 2.5-min run none. 0: no minimum.
    min_dof: float = field(default=20.0, metadata={_DIGEST_ADDED_RULE: True})
    #: aCompCor / tCompCor components of fMRIPrep's confounds (nilearn's ``compcor``); none: not used
    compcor: str = field(default="none", metadata={_DIGEST_SKIPS_DEFAULT: True})
    #: number of CompCor components, or "all" (those fMRIPrep kept: 50% of the variance)
    n_compcor: int | str = field(default="all", metadata={_DIGEST_SKIPS_DEFAULT: True})
    #: ROI time series stated already cleaned by the user or a provider: nothing above is applied
    already_cleaned: bool = field(default=False, metadata={_DIGEST_SKIPS_DEFAULT: True})

    _section: ClassVar[str] = "denoise"
    _rules: ClassVar[dict] = {
        "motion": _one_of(*CONFOUND_DEGREES),
        "wm_csf": _one_of(*CONFOUND_DEGREES, "none"),
        "global_signal": _one_of(*CONFOUND_DEGREES, "none"),
        "scrub_min_segment": _number(0, 1000, integer=True),
        "fd_threshold": _number(0, low_open=True),
        "std_dvars_threshold": _number(0, low_open=True),
        "high_pass": _number(0, low_open=True),
        "low_pass": _number(0, low_open=True),
        "filter": _one_of("butterworth"),
        "butterworth_order": _number(1, 10, integer=True),
        "min_volumes": _number(2, integer=True),
        "min_minutes": _number(0),
        "min_dof": _number(0),
        "compcor": _one_of(*COMPCOR_KINDS),
    }

    def _check_together(self) -> None:
        if self.high_pass is not None and self.low_pass is not None and self.high_pass >= self.low_pass:
            raise SettingsError(
                f"denoise.high_pass = {self.high_pass} Hz is not below denoise.low_pass = {self.low_pass} Hz; "
                "accepted: high_pass < low_pass (or null for either)")
        if isinstance(self.n_compcor, str) and self.n_compcor != "all":
            _fail("denoise.n_compcor", self.n_compcor, "'all' or an integer >= 1")
        if isinstance(self.n_compcor, int) and self.n_compcor < 1:
            _fail("denoise.n_compcor", self.n_compcor, "'all' or an integer >= 1")

    @property
    def gsr(self) -> bool:
        """Whether global signal regression is applied."""
        return self.global_signal != "none"

    def confound_strategy(self) -> tuple[str, ...]:
        """Strategy tuple for :func:`nilearn.interfaces.fmriprep.load_confounds`.

        ``high_pass`` (cosine regressors) is not requested: the band-pass
        filter already removes those frequencies and regressing cosines as
        well would be redundant. CompCor is the exception: fMRIPrep computes
        its components after removing the cosines, and nilearn requires them
        together.
        """
        strategy = ["motion"]
        if self.wm_csf != "none":
            strategy.append("wm_csf")
        if self.gsr:
            strategy.append("global_signal")
        if self.compcor != "none":
            strategy += ["high_pass", "compcor"]
        if self.scrub:
            strategy.append("scrub")
        return tuple(strategy)

    def check_sampling(self, tr: float, source: str | Path) -> None:
        """Check the band-pass against a run's sampling rate.

        Parameters
        ----------
        tr : float
            Repetition time of the run, seconds.
        source : str or Path
            The file the TR comes from, named in the error.

        Raises
        ------
        SettingsError
            If a cut-off is at or above the Nyquist frequency ``1 / (2 TR)``:
            nilearn would otherwise lower it silently.
        """
        nyquist = 0.5 / tr
        for name in ("high_pass", "low_pass"):
            value = getattr(self, name)
            if value is not None and value >= nyquist:
                raise SettingsError(
                    f"{source}: denoise.{name} = {value} Hz is not below the Nyquist frequency {nyquist:.4g} Hz "
                    f"of this run (TR {tr} s); accepted: a cut-off below {nyquist:.4g} Hz, or null")


@dataclass
class NetworkSettings(_Checked):
    """Which ROIs define the networks and how the ROI graph is built."""

    atlas: str = "seitzman2018"  # seitzman2018 | dosenbach2010 | raichle_nodes | labels
    #: trdnet network name -> atlas label(s); None: the preset's own mapping
    #: (seitzman2018: DefaultMode, Salience, FrontoParietal)
    networks: dict[str, list[str]] | None = None
    roi_radius_mm: float | None = None  # None: the atlas's own radius
    graph_density: float = 0.15  # proportional threshold of positive edges
    connectivity: str = "PearsonCorrelation"
    #: atlas "labels": a 3D integer labels image in the run's space (parcels are the ROIs)
    labels_img: str | None = None
    #: atlas "labels": TSV with columns ``index`` (label value), ``name`` and
    #: ``network`` (an atlas network label mapped through ``networks``, or DMN/SN/ECN)
    labels_table: str | None = None
    #: ROI time-series input: the labels table giving each column's network (path, or the dataset's name)
    #: and the SHA-256 of its content, so a re-run with another table is not taken as finished
    roi_labels: str | None = field(default=None, metadata={_DIGEST_SKIPS_DEFAULT: True})
    roi_labels_sha256: str | None = field(default=None, metadata={_DIGEST_SKIPS_DEFAULT: True})

    _section: ClassVar[str] = "networks"
    _rules: ClassVar[dict] = {
        "atlas": _one_of("seitzman2018", "dosenbach2010", "raichle_nodes", "labels"),
        "roi_radius_mm": _number(0, 50, low_open=True),
        "graph_density": _number(0, 1, low_open=True),
        "connectivity": _one_of("PearsonCorrelation"),
    }

    def _check_together(self) -> None:
        if self.atlas == "labels" and not (self.labels_img and self.labels_table):
            raise SettingsError(
                "networks.atlas = \"labels\" needs both networks.labels_img (a labels image) and "
                "networks.labels_table (each label's network)")
        if self.networks is not None:
            self._check_mapping(self.networks)

    def _check_mapping(self, mapping: dict[str, list[str]]) -> None:
        """Refuse a network mapping that would leave no network, or name labels the preset atlas lacks.

        A user atlas's labels are those of its table, read before any work
        (:func:`trdnet.networks.atlas_check.check_atlas_fits`).
        """
        from .networks.presets import NETWORK_ORDER, preset_network_labels

        if not mapping:
            _fail("networks.networks", mapping, f"at least one network (e.g. {', '.join(NETWORK_ORDER)}) mapped to "
                                                "atlas labels, or null for the atlas's own mapping")
        if self.atlas == "labels":
            return
        labels = preset_network_labels(self.atlas)
        for name, given in mapping.items():
            # a label equal to the network's name always maps to it (trdnet.networks.rois)
            unknown = [label for label in given if label not in labels]
            if unknown or not {*given, name} & set(labels):
                _fail(f"networks.networks.{name}", given,
                      f"labels of networks.atlas = {self.atlas!r}: {', '.join(map(repr, labels))}")


@dataclass
class TargetSettings(_Checked):
    """sgACC seed, DLPFC search region and target selection."""

    seed_center_mm: tuple[float, float, float] = (6.0, 16.0, -10.0)  # Fox 2012
    seed_radius_mm: float = 10.0
    seed_bilateral: bool = False
    seed_mask: str | None = None  # path to a mask image overriding the sphere
    search_sites: tuple[str, ...] = ("5cm", "f3_beam", "ba9", "ba46")
    search_radius_mm: float = 20.0
    search_mask: str | None = None  # path to a mask image overriding the spheres
    restrict_to_grey_matter: bool = True
    grey_matter_threshold: float = 0.2
    methods: tuple[str, ...] = ("cluster",)  # first is primary
    top_fraction: float = 0.10  # most negative fraction of negative voxels
    # 4 mm (Cash 2021's value): chosen on the realistic simulator (validation/results/choose), where 8 and 12 mm
    # joined the planted patch with the broad shared region
    smoothing_fwhm_mm: float | None = 4.0
    # cluster: how candidate clusters are ranked (size | sum | mean) and how the centre is weighted
    # (abs: |smoothed r| | uniform); see trdnet.targeting.sites
    cluster_rank: str = field(default="size", metadata={_DIGEST_SKIPS_DEFAULT: True})
    centre_weights: str = field(default="abs", metadata={_DIGEST_SKIPS_DEFAULT: True})
    min_cluster_mm3: float = 400.0  # hierarchical: 50 voxels at 2 mm
    # hierarchical: dendrogram cut on 1 - Spearman rho and its linkage (Cole 2020 as described in public code;
    # unverified against the original supplement)
    hierarchical_distance_threshold: float = 0.5
    hierarchical_linkage: str = "average"
    group_map: str | None = None  # seedmap: NIfTI path, or "loo" (other participants in the output folder)
    reference_targets: tuple[str, ...] = ("5cm", "f3_beam", "ba9", "ba46")
    n_bootstrap: int = 100
    reliability: bool = True
    #: also compute the primary target with global signal regression switched the other way and report
    #: the distance (``--gsr both``); costs a second cleaning of the run
    compare_gsr: bool = False
    # Radius of the sphere averaged for the sgACC r reported at each reference site.
    reference_radius_mm: float = 5.0
    # Split-half needs at least this many retained volumes in each half.
    min_half_volumes: int = 50
    # Block length of the circular block bootstrap; None: one period of the
    # high-pass cut-off (1 / 0.01 Hz = 100 s), see trdnet.targeting.reliability.
    bootstrap_block_s: float | None = None
    # bootstrap_r95_mm is the bootstrap's 95th-percentile distance times this factor, calibrated so that the radius
    # covers the distance to a second session's target in >= 90% of sessions at every data length of the validation's
    # calibrate set (12 participants x 2 sessions, 8/16/30 minutes; validation/results/calibrate/calibration.tsv).
    # The 90th percentile of (session distance / raw r95) per length: 8 min 2.01, 16 min 1.67, 30 min 1.25; the
    # largest, rounded up, is used for all lengths. Resampled targets jump to another site less often than a second
    # session's target does (the block bootstrap of one session does not see session-to-session variation).
    r95_scale: float = 2.02
    # Reliability word thresholds (mm): good needs r95 and split-half under their limits (and the conditions of
    # trdnet.targeting.reliability.reliability_word), fair needs r95 under its limit; otherwise poor. good_r95_mm is the
    # largest r95 limit at which >= 90% of the calibrate set's good targets (all lengths pooled) were within 5 mm of
    # the planted one, with r95_scale above; fair stays at twice good.
    good_r95_mm: float = 13.0
    good_split_half_mm: float = 10.0
    fair_r95_mm: float = 26.0
    # Bootstrap targets linked by steps under this distance form one site (single linkage, mm);
    # good also needs no other site holding more than max_competing_share of the resamples.
    site_separation_mm: float = field(default=10.0, metadata={_DIGEST_SKIPS_DEFAULT: True})
    max_competing_share: float = field(default=0.10, metadata={_DIGEST_SKIPS_DEFAULT: True})
    # Participant target from several runs: good also needs the leave-one-run-out (or
    # session-to-session) distance under this (mm).
    good_retest_mm: float = field(default=5.0, metadata={_DIGEST_SKIPS_DEFAULT: True})
    # No word better than poor below this many retained minutes: the bootstrap of one short stretch cannot see
    # how far a second scan's target moves. On real scans, targets of single 15-minute scans were over 37 mm
    # apart (Ning et al. 2019, Brain Stimul 12:129; HCP), i.e. each about 26 mm from a common site, the fair
    # limit; about 28 minutes were needed for under 1 cm (Cao et al. 2024, Front Psychiatry). 15 min is the
    # shortest length with published real-data retest evidence; multi-echo data may justify less (Lynch 2020).
    min_minutes_for_word: float = field(default=15.0, metadata={_DIGEST_ADDED_RULE: True})

    _section: ClassVar[str] = "targeting"
    _rules: ClassVar[dict] = {
        "seed_center_mm": lambda key, value: [_number(-200, 200)(key, v) for v in value],
        "seed_radius_mm": _number(0, 50, low_open=True),
        "search_sites": _search_sites,
        "search_radius_mm": _number(0, 100, low_open=True),
        "grey_matter_threshold": _number(0, 1, high_open=True),
        "methods": lambda key, value: (_not_empty_unique(key, value), _one_of(*TARGET_METHODS)(key, value)),
        "top_fraction": _number(0, 1, low_open=True),
        "smoothing_fwhm_mm": _number(0, 50),
        "min_cluster_mm3": _number(0),
        "hierarchical_distance_threshold": _number(0, 2, low_open=True),
        # linkages that work on a precomputed 1 - rho distance with a connectivity constraint (scikit-learn)
        "hierarchical_linkage": _one_of("average", "complete", "single"),
        "reference_targets": _reference_sites,
        "n_bootstrap": _number(0, MAX_BOOTSTRAP, integer=True),
        "reference_radius_mm": _number(0, 50, low_open=True),
        "min_half_volumes": _number(2, integer=True),
        "bootstrap_block_s": _number(0, low_open=True),
        "r95_scale": _number(0, low_open=True),
        "good_r95_mm": _number(0, low_open=True),
        "good_split_half_mm": _number(0, low_open=True),
        "fair_r95_mm": _number(0, low_open=True),
        "cluster_rank": _one_of("size", "sum", "mean"),
        "centre_weights": _one_of("abs", "uniform"),
        "site_separation_mm": _number(0, low_open=True),
        "max_competing_share": _number(0, 1),
        "good_retest_mm": _number(0, low_open=True),
        "min_minutes_for_word": _number(0),
    }

    def _check_together(self) -> None:
        if self.fair_r95_mm < self.good_r95_mm:
            raise SettingsError(
                f"targeting.fair_r95_mm = {self.fair_r95_mm} is below targeting.good_r95_mm = {self.good_r95_mm}; "
                "accepted: fair_r95_mm >= good_r95_mm")


@dataclass
class ExportSettings(_Checked):
    """What is written for neuronavigation systems."""

    formats: tuple[str, ...] = ("brainsight", "localite", "nifti")
    sphere_radius_mm: float = 5.0  # radius of the marker spheres in the NIfTI export
    native: bool = True  # map targets to the participant's T1w when transforms exist
    # coil pose written to Brainsight/Localite: scalp_normal (coil tangential to the scalp, handle at
    # coil_handle_angle_deg to the midline) | identity (image axes; not a coil placement)
    coil_orientation: str = "scalp_normal"
    # handle angle to the midline, degrees: 0 straight back, 45 posterior-lateral (the usual DLPFC
    # placement, after Brasil-Neto et al. 1992; unverified), 90 lateral
    coil_handle_angle_deg: float = 45.0
    # coil centre this far out from the scalp along the normal (hair, cap), mm
    coil_scalp_distance_mm: float = 0.0
    brainsight_version: int = 12  # Brainsight file version: 12 (NIfTI:Scanner) | 14 (NIfTI:S:Scanner)
    grey_matter_threshold: float = 0.5  # GM probability at or above which a point is in grey matter
    brain_mask_threshold: float = 0.5  # mask value above which a point is in the brain
    # label of grey matter in fMRIPrep's tissue dseg (used only without a GM probseg; unverified)
    dseg_grey_matter_label: int = 1
    electrode_kind: str = "cortical_projection"  # Okamoto 2004 positions: cortical_projection | scalp
    # head/brain volume ratio under which the T1w is taken as skull-stripped (template head used)
    min_head_to_brain_ratio: float = 1.5
    # fallback head = MNI brain mask dilated by this scalp-to-cortex distance (mm; unverified typical value)
    template_scalp_offset_mm: float = 16.0
    shear_tolerance: float = 1e-3  # largest |cosine| between voxel axes before flagging shear
    qform_sform_tolerance_mm: float = 0.01  # largest qform/sform disagreement before flagging

    _section: ClassVar[str] = "export"
    _rules: ClassVar[dict] = {
        "formats": _one_of("brainsight", "localite", "nifti"),
        "sphere_radius_mm": _number(0, 50, low_open=True),
        "coil_orientation": _one_of("scalp_normal", "identity"),
        "coil_handle_angle_deg": _number(-180, 180),
        "coil_scalp_distance_mm": _number(0, 30),
        "brainsight_version": _one_of(12, 14),
        "grey_matter_threshold": _number(0, 1),
        "brain_mask_threshold": _number(0, 1, high_open=True),
        "dseg_grey_matter_label": _number(0, integer=True),
        "electrode_kind": _one_of("cortical_projection", "scalp"),
        "min_head_to_brain_ratio": _number(1),
        "template_scalp_offset_mm": _number(0, 100, low_open=True),
        "shear_tolerance": _number(0, 1, low_open=True),
        "qform_sform_tolerance_mm": _number(0, low_open=True),
    }


def _bids_label(key: str, value: str) -> None:
    from .entities import split_space_spec

    try:
        space, _ = split_space_spec(str(value))
    except ValueError:
        space = ""
    if not re.fullmatch(r"[A-Za-z0-9]+", space):
        _fail(key, value, "a BIDS space label (letters and digits, e.g. MNI152NLin2009cAsym or T1w), with "
                          "fMRIPrep's modifiers if wanted (MNI152NLin2009cAsym:res-2)")


#: Settings that name an input file, as (section, key). A relative path in a settings file is read
#: from the file's folder (:meth:`Settings.from_json`), as tools that read configuration files do.
PATH_SETTINGS = (("targeting", "seed_mask"), ("targeting", "search_mask"), ("targeting", "group_map"),
                 ("networks", "labels_img"), ("networks", "labels_table"))

#: ``targeting.group_map`` value asking for the cohort's own leave-one-out group sgACC map: names no file.
LEAVE_ONE_OUT = "loo"

SECTIONS = {
    "denoise": DenoiseSettings,
    "networks": NetworkSettings,
    "targeting": TargetSettings,
    "export": ExportSettings,
}


@dataclass
class Settings(_Checked):
    """All settings of one trdnet run."""

    denoise: DenoiseSettings = field(default_factory=DenoiseSettings)
    networks: NetworkSettings = field(default_factory=NetworkSettings)
    targeting: TargetSettings = field(default_factory=TargetSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    space: str = MNI_SPACE
    random_state: int = 0

    _rules: ClassVar[dict] = {
        "space": _bids_label,
        "random_state": _number(0, 2**32 - 1, integer=True),
    }

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the settings.

        The denoise section also names its strategy (``"strategy"``) when the
        confound choices are exactly those of a shipped strategy
        (:func:`trdnet.strategies.strategy_name`); :meth:`from_dict` accepts
        the result back.
        """
        values = json.loads(json.dumps(dataclasses.asdict(self)))
        name = strategy_name(self.denoise)
        if name is not None:
            values["denoise"] = {"strategy": name, **values["denoise"]}
        return values

    def digest(self) -> str:
        """Short stable hash of the settings, recorded beside every output.

        The strategy name is left out (it follows from the values), and so
        are fields added after outputs existed while they keep their default:
        settings that did not change keep the digest earlier versions wrote.
        Signals declared already cleaned get no denoising at all, so the
        denoise section then counts only as that declaration (``--gsr on``
        and ``off`` give the same digest). Rules added later that change
        results at their default (:func:`added_rules`) always count.
        """
        return self._digest(_DIGEST_SKIPS_DEFAULT)

    def earlier_digest(self) -> str | None:
        """The digest earlier versions recorded for these settings, before the rules of :func:`added_rules`.

        Returns
        -------
        str or None
            The digest with those rules left out at their default, as
            versions without them wrote it; None when it equals
            :meth:`digest` (no rule at its default). A run recorded under it
            was made without those rules and is processed again
            (:func:`trdnet.pipeline.is_finished`).
        """
        earlier = self._digest(_DIGEST_SKIPS_DEFAULT, _DIGEST_ADDED_RULE)
        return None if earlier == self.digest() else earlier

    def _digest(self, *skipped_at_default: str) -> str:
        """Hash of the settings, leaving out fields whose metadata holds one of ``skipped_at_default`` at default."""
        values = json.loads(json.dumps(dataclasses.asdict(self)))
        if self.denoise.already_cleaned:
            values["denoise"] = {"already_cleaned": True}
        for section_name, section_cls in SECTIONS.items():
            for f in dataclasses.fields(section_cls):
                if (any(f.metadata.get(key) for key in skipped_at_default)
                        and values[section_name].get(f.name) == f.default):
                    del values[section_name][f.name]
        text = json.dumps(values, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Settings":
        """Build settings from a (possibly partial) dictionary.

        A ``denoise`` section may name a strategy (``"strategy": "simple+gsr"``):
        its values are taken first and the section's other keys override them.

        Raises
        ------
        SettingsError
            For a value that is not an object where a section is expected,
            an unknown key (named, with the accepted ones), or any value
            outside its accepted type and range.
        """
        if not isinstance(values, dict):
            raise SettingsError(
                f"settings must be a JSON object with sections {sorted(SECTIONS)}, got {_json_kind(values)}")
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key in SECTIONS:
                kwargs[key] = _build_section(SECTIONS[key], value, key)
            elif key in ("space", "random_state"):
                kwargs[key] = value
            else:
                raise SettingsError(
                    f"unknown settings section {key!r}; accepted: "
                    f"{sorted([*SECTIONS, 'space', 'random_state'])}"
                )
        return cls(**kwargs)

    @classmethod
    def from_json(cls, path: str | Path) -> "Settings":
        """Read settings from a JSON file.

        A relative path among :data:`PATH_SETTINGS` (``targeting.seed_mask``,
        ``networks.labels_img``, ...) is read from the settings file's folder,
        not from the folder trdnet is started in, and is stored absolute.

        Raises
        ------
        SettingsError
            One line starting with the file: unreadable, not UTF-8, not JSON,
            not an object, or any value :meth:`from_dict` refuses.
        """
        path = Path(path)
        values = read_settings_file(path)
        for section, key in PATH_SETTINGS:
            entries = values.get(section)
            value = entries.get(key) if isinstance(entries, dict) else None
            if isinstance(value, str) and (section, key, value) != ("targeting", "group_map", LEAVE_ONE_OUT):
                values[section] = {**entries, key: str((path.parent / Path(value).expanduser()).resolve())}
        try:
            return cls.from_dict(values)
        except SettingsError as exc:
            raise SettingsError(f"{path}: {exc}") from None


def added_rules() -> list[str]:
    """Settings keys (``section.field``) of rules added after folders recorded digests that change results at
    their default, e.g. ``denoise.min_dof`` (see :meth:`Settings.earlier_digest`)."""
    return [f"{name}.{f.name}" for name, section_cls in SECTIONS.items() for f in dataclasses.fields(section_cls)
            if f.metadata.get(_DIGEST_ADDED_RULE)]


def _json_kind(value: Any) -> str:
    return {list: "a list", str: "a string", bool: "true/false", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


class _DuplicateKey(ValueError):
    """A key repeated in one JSON object of a settings file."""


def _refuse_duplicate_keys(pairs):
    values = {}
    for key, value in pairs:
        if key in values:
            raise _DuplicateKey(key)
        values[key] = value
    return values


def read_settings_file(path: str | Path) -> dict[str, Any]:
    """The JSON object of a settings file, checked to be readable UTF-8 JSON without repeated keys.

    Raises
    ------
    SettingsError
        Naming the file and the problem (a repeated key by name).
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read settings file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: settings file is not UTF-8 text (byte {exc.start})") from None
    try:
        values = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except _DuplicateKey as exc:
        raise SettingsError(f"{path}: key {exc.args[0]!r} appears twice in one object (JSON keeps only the last "
                            "value silently); keep one") from None
    if not isinstance(values, dict):
        raise SettingsError(
            f"{path}: settings must be a JSON object with sections {sorted(SECTIONS)}, got {_json_kind(values)}")
    return values


def _build_section(section_cls, values: dict[str, Any], name: str):
    if not isinstance(values, dict):
        raise SettingsError(f"settings section {name!r} must be an object of settings, got {_json_kind(values)}")
    values = dict(values)
    strategy = values.pop("strategy", None) if section_cls is DenoiseSettings else None
    if strategy is not None:
        values = {**strategy_values(strategy), **values}
    known = _field_names(section_cls)
    unknown = set(values) - known
    if unknown:
        extra = ", 'strategy'" if section_cls is DenoiseSettings else ""
        raise SettingsError(
            f"unknown {name} setting(s) {sorted(unknown)}; accepted: {sorted(known)}{extra}"
        )
    section = section_cls(**values)
    if strategy is not None and strategy_name(section) not in (strategy, None):
        # The values beside the name turned it into another shipped strategy (e.g. `settings --defaults` output
        # with only its strategy changed): the run would silently not be the strategy the file names.
        raise SettingsError(
            f"settings section {name!r} names strategy {strategy!r}, but the values beside it make it strategy "
            f"{strategy_name(section)!r}; remove the keys that contradict {strategy!r} (or the 'strategy' key)")
    return section


def with_gsr(settings: Settings, gsr: bool) -> Settings:
    """Copy of ``settings`` with global signal regression switched on or off."""
    denoise = dataclasses.replace(
        settings.denoise, global_signal="basic" if gsr else "none"
    )
    return dataclasses.replace(settings, denoise=denoise)
