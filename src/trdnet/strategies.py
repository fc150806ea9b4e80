"""Named denoising strategies, stored as JSON data files.

Each strategy (``data/denoise_strategies/<name>.json``, shipped in the wheel)
fixes the confound choices of :class:`trdnet.config.DenoiseSettings` that
nilearn's :func:`~nilearn.interfaces.fmriprep.load_confounds_strategy` presets
fix: motion, white matter / CSF, global signal, CompCor and censoring. The
names follow nilearn and giga-connectome (``simple``, ``simple+gsr``,
``scrubbing.5``, ``scrubbing.5+gsr``, ``scrubbing.2``, ``compcor``, ...).

Filtering is not part of a strategy: nilearn's presets regress cosine
(high-pass) terms, trdnet band-passes every run (``denoise.high_pass`` /
``low_pass``), which removes the same frequencies.

A strategy is a starting point, not a separate setting: the settings record
the values, and :func:`strategy_name` gives the name back when the values are
exactly a strategy's (the sidecars and methods text cite it).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from .errors import InputError, SettingsError
from .resources import data_dir

#: The denoise keys every strategy file sets, no more and no fewer.
STRATEGY_KEYS = ("motion", "wm_csf", "global_signal", "compcor", "n_compcor", "scrub", "scrub_min_segment",
                 "fd_threshold", "std_dvars_threshold")

#: Keys that only matter when censoring (``scrub``) or CompCor is on.
_SCRUB_KEYS = ("scrub_min_segment", "fd_threshold", "std_dvars_threshold")


def _strategy_folder() -> Path:
    return data_dir() / "denoise_strategies"


@lru_cache(maxsize=None)
def strategies() -> dict[str, dict]:
    """Every shipped strategy, by name.

    Returns
    -------
    dict
        name -> ``{"name", "description", "source", "denoise"}`` as stored.

    Raises
    ------
    InputError
        If a strategy file is unreadable or does not set exactly
        :data:`STRATEGY_KEYS` (a broken installation).
    """
    found = {}
    for path in sorted(_strategy_folder().glob("*.json")):
        try:
            preset = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot read denoising strategy ({exc}); reinstall trdnet") from None
        if sorted(preset.get("denoise", {})) != sorted(STRATEGY_KEYS) or preset.get("name") != path.stem:
            raise InputError(f"{path}: a denoising strategy must be named as its file and set exactly "
                             f"{list(STRATEGY_KEYS)}; reinstall trdnet")
        found[path.stem] = preset
    if not found:
        raise InputError(f"{_strategy_folder()}: no denoising strategies installed; reinstall trdnet")
    return found


def strategy_values(name: str) -> dict:
    """The denoise settings a strategy fixes.

    Parameters
    ----------
    name : str
        A strategy name (see :func:`strategies`).

    Returns
    -------
    dict
        :data:`STRATEGY_KEYS` -> value, ready for :class:`~trdnet.config.DenoiseSettings`.

    Raises
    ------
    SettingsError
        For an unknown name, listing the accepted ones.
    """
    presets = strategies()
    if name not in presets:
        raise SettingsError(f"denoise strategy {name!r} is unknown; accepted: {', '.join(presets)}")
    return dict(presets[name]["denoise"])


def _effective(values: dict) -> dict:
    """The confound choices that change the cleaning (censoring parameters only when censoring)."""
    chosen = {key: values[key] for key in STRATEGY_KEYS}
    if not chosen["scrub"]:
        for key in _SCRUB_KEYS:
            chosen.pop(key)
    if chosen["compcor"] == "none":
        chosen.pop("n_compcor")
    return chosen


def strategy_name(denoise) -> str | None:
    """The name of the strategy whose confound choices ``denoise`` has, if any.

    Parameters
    ----------
    denoise : trdnet.config.DenoiseSettings

    Returns
    -------
    str or None
        None when the choices match no shipped strategy (custom settings).
    """
    effective = _effective({key: getattr(denoise, key) for key in STRATEGY_KEYS})
    for name, preset in strategies().items():
        if _effective(preset["denoise"]) == effective:
            return name
    return None


def apply_strategy(settings, name: str):
    """Copy of ``settings`` whose denoise section takes a strategy's values.

    Parameters
    ----------
    settings : trdnet.config.Settings
    name : str

    Returns
    -------
    trdnet.config.Settings
    """
    import dataclasses

    return dataclasses.replace(settings, denoise=dataclasses.replace(settings.denoise, **strategy_values(name)))
