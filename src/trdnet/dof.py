"""Temporal degrees of freedom left in a run after censoring, confound regression and band-pass filtering.

Every cleaning step spends some of a run's temporal degrees of freedom (DoF): a
censored volume removes one, each confound regressor one, the detrending
polynomial (mean and linear trend) two, and a band-pass filter keeps only the
fraction of the spectrum inside its band. Parkes et al. (2018, NeuroImage 171:
415-436) count DoF lost to regression and censoring ("tDOF-loss") and show that
strategies spending many of them leave correlations that are artefacts of the
cleaning; XCP-D stops a run early when too little low-motion data is left.
A correlation between two series with ``dof`` remaining DoF has a null standard
deviation of about ``1 / sqrt(dof)``, so with few DoF left r values of +-0.8
appear between signals with no coupling at all.

The estimate used here treats the band-pass as ideal (the Butterworth filter
trdnet applies is close to it away from the cut-offs):

    dof = n_retained * (min(low_pass, nyquist) - high_pass) / nyquist - n_regressors - n_trend

It needs only the retained volumes, the confound columns and the TR, so a run
can be refused from its confounds table and image header before the BOLD data
are read.
"""

from __future__ import annotations

import logging

from .config import DenoiseSettings

logger = logging.getLogger(__name__)

#: A run whose remaining DoF is below this multiple of ``denoise.min_dof`` is analysed with a warning.
WARN_FACTOR = 1.5


def band_fraction(tr: float, high_pass: float | None, low_pass: float | None) -> float:
    """Fraction of the spectrum (0 to Nyquist) an ideal band-pass filter keeps.

    Parameters
    ----------
    tr : float
        Repetition time, seconds.
    high_pass, low_pass : float or None
        Cut-offs in Hz; None: that side is not filtered.

    Returns
    -------
    float
        ``(min(low_pass, nyquist) - high_pass) / nyquist`` with ``nyquist = 1 / (2 tr)``; 1 without a filter.
    """
    nyquist = 0.5 / tr
    top = nyquist if low_pass is None else min(low_pass, nyquist)
    bottom = 0.0 if high_pass is None else high_pass
    return max(top - bottom, 0.0) / nyquist


def counted_regressors(columns, settings: DenoiseSettings) -> list[str]:
    """The confound columns that spend a DoF each.

    fMRIPrep's ``cosine*`` columns (a 128 s high-pass, requested by nilearn together with CompCor) are left out
    when the band-pass has a high-pass cut-off: the filter, applied to the confounds as well, already removed
    their frequencies, so regressing them takes nothing more from the data.
    """
    columns = [str(c) for c in (columns if columns is not None else [])]
    if settings.filter and settings.high_pass is not None:
        columns = [c for c in columns if not c.startswith("cosine")]
    return columns


def temporal_dof(n_retained: int, confound_columns, tr: float, settings: DenoiseSettings) -> dict:
    """Remaining temporal DoF of a run after cleaning with ``settings``.

    Parameters
    ----------
    n_retained : int
        Volumes kept after censoring (censored volumes are dropped, not modelled as spike regressors; a spike
        column in the confounds counts as one regressor).
    confound_columns : sequence of str or None
        Columns of the confounds regressed out.
    tr : float
        Repetition time, seconds.
    settings : DenoiseSettings
        Band-pass cut-offs and detrending.

    Returns
    -------
    dict
        ``dof_remaining`` (float, rounded to 0.1), ``dof_n_regressors`` (confounds counted plus the detrending
        terms), ``dof_band_fraction``; the ideal-filter formula of this module.
    """
    n_regressors = len(counted_regressors(confound_columns, settings)) + (2 if settings.detrend else 0)
    fraction = band_fraction(tr, settings.high_pass, settings.low_pass)
    return {
        "dof_remaining": round(n_retained * fraction - n_regressors, 1),
        "dof_n_regressors": n_regressors,
        "dof_band_fraction": round(fraction, 4),
    }


def check_dof(source, n_retained: int, confound_columns, tr: float, settings: DenoiseSettings, error,
              warn: bool = False) -> dict:
    """Refuse a run with fewer remaining DoF than ``settings.min_dof``; with ``warn``, warn just above it.

    ``min_dof = 0``: never refuse nor warn.

    Parameters
    ----------
    source : str or Path
        The file named in the message.
    n_retained : int
        Volumes kept after censoring.
    confound_columns : sequence of str or None
        Columns of the confounds regressed out.
    tr : float
        Repetition time, seconds.
    settings : DenoiseSettings
    error : type
        The exception raised (:class:`~trdnet.errors.SettingsError` before any work,
        :class:`~trdnet.errors.DenoiseError` when a run is cleaned).
    warn : bool
        Log a warning when the remaining DoF is above ``min_dof`` but below
        :data:`WARN_FACTOR` times it. Only the check of the run as it is
        cleaned warns: a check of the same run before any work leaves it
        to that one, so the warning is said once per run.

    Returns
    -------
    dict
        :func:`temporal_dof`'s QC fields.

    Raises
    ------
    error
        One line: kept volumes, regressors, band, remaining DoF and the minimum.
    """
    dof = temporal_dof(n_retained, confound_columns, tr, settings)
    band = (f"{settings.high_pass if settings.high_pass is not None else 0:g}-"
            f"{settings.low_pass if settings.low_pass is not None else 0.5 / tr:g} Hz")
    numbers = (f"{n_retained} volumes kept, {dof['dof_n_regressors']} regressors (confounds and trend), "
               f"band {band} at TR {tr:g} s ({dof['dof_band_fraction']:.0%} of the spectrum): "
               f"{dof['dof_remaining']:g} temporal degrees of freedom remain")
    if settings.min_dof <= 0:  # 0: no minimum
        return dof
    if dof["dof_remaining"] < settings.min_dof:
        raise error(f"{source}: {numbers}, fewer than denoise.min_dof = {settings.min_dof:g}; correlations this "
                    "run gives would be artefacts of the cleaning: use a longer run, fewer confounds (a "
                    "smaller strategy) or a wider band")
    if warn and dof["dof_remaining"] < WARN_FACTOR * settings.min_dof:
        logger.warning("%s: %s, just above denoise.min_dof = %g; its correlations are noisy", source, numbers,
                       settings.min_dof)
    return dof
