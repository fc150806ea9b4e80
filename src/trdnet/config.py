"""Typed settings for every stage, with presets and JSON round-trip.

One :class:`Settings` object travels through the pipeline; nothing reads a
global. Every output sidecar records ``Settings.to_dict()`` and the hash of it,
so a re-run knows whether finished outputs were made with the same settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SettingsError

#: Template space of the embedded default and of the shipped coordinates.
MNI_SPACE = "MNI152NLin2009cAsym"


@dataclass
class DenoiseSettings:
    """How a run is cleaned.

    Confound choices are passed verbatim to
    :func:`nilearn.interfaces.fmriprep.load_confounds`; filtering and
    detrending follow :func:`nilearn.signal.clean`.
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
    min_volumes: int = 50  # refuse to analyse fewer retained volumes than this
    min_minutes: float = 2.0  # ... or less retained time than this

    @property
    def gsr(self) -> bool:
        """Whether global signal regression is applied."""
        return self.global_signal != "none"

    def confound_strategy(self) -> tuple[str, ...]:
        """Strategy tuple for :func:`nilearn.interfaces.fmriprep.load_confounds`.

        ``high_pass`` (cosine regressors) is not requested: the band-pass
        filter already removes those frequencies and regressing cosines as
        well would be redundant.
        """
        strategy = ["motion"]
        if self.wm_csf != "none":
            strategy.append("wm_csf")
        if self.gsr:
            strategy.append("global_signal")
        if self.scrub:
            strategy.append("scrub")
        return tuple(strategy)


@dataclass
class NetworkSettings:
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


@dataclass
class TargetSettings:
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
    smoothing_fwhm_mm: float | None = 4.0
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
    # Reliability word thresholds (mm): good needs both r95 and split-half under
    # their limits, fair needs r95 under its limit; otherwise poor.
    good_r95_mm: float = 5.0
    good_split_half_mm: float = 10.0
    fair_r95_mm: float = 10.0


@dataclass
class ExportSettings:
    """What is written for neuronavigation systems."""

    formats: tuple[str, ...] = ("brainsight", "localite", "nifti")
    sphere_radius_mm: float = 5.0  # radius of the marker spheres in the NIfTI export
    native: bool = True  # map targets to the participant's T1w when transforms exist
    # coil orientation written to Brainsight/Localite: identity | scalp_normal
    coil_orientation: str = "identity"
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


@dataclass
class Settings:
    """All settings of one trdnet run."""

    denoise: DenoiseSettings = field(default_factory=DenoiseSettings)
    networks: NetworkSettings = field(default_factory=NetworkSettings)
    targeting: TargetSettings = field(default_factory=TargetSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    space: str = MNI_SPACE
    random_state: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the settings."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def digest(self) -> str:
        """Short stable hash of the settings, recorded beside every output."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Settings":
        """Build settings from a (possibly partial) dictionary.

        Unknown keys raise :class:`~trdnet.errors.SettingsError` naming them.
        """
        sections = {
            "denoise": DenoiseSettings,
            "networks": NetworkSettings,
            "targeting": TargetSettings,
            "export": ExportSettings,
        }
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key in sections:
                kwargs[key] = _build_section(sections[key], value, key)
            elif key in ("space", "random_state"):
                kwargs[key] = value
            else:
                raise SettingsError(
                    f"unknown settings section {key!r}; accepted: "
                    f"{sorted([*sections, 'space', 'random_state'])}"
                )
        return cls(**kwargs)

    @classmethod
    def from_json(cls, path: str | Path) -> "Settings":
        """Read settings from a JSON file."""
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SettingsError(f"{path}: cannot read settings JSON ({exc})") from None
        return cls.from_dict(values)


def _build_section(section_cls, values: dict[str, Any], name: str):
    known = {f.name: f for f in dataclasses.fields(section_cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise SettingsError(
            f"unknown {name} setting(s) {sorted(unknown)}; accepted: {sorted(known)}"
        )
    converted = {
        key: tuple(value) if isinstance(value, list) and "tuple" in str(known[key].type) else value
        for key, value in values.items()
    }
    return section_cls(**converted)


def with_gsr(settings: Settings, gsr: bool) -> Settings:
    """Copy of ``settings`` with global signal regression switched on or off."""
    denoise = dataclasses.replace(
        settings.denoise, global_signal="basic" if gsr else "none"
    )
    return dataclasses.replace(settings, denoise=denoise)
