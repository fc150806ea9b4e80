"""Checks of the settings against a cohort's files, run before any work.

Each check reads as little as it can (a sidecar, a header line) and raises one
:class:`~trdnet.errors.SettingsError` naming the file, so that a request that
cannot work stops before the first run is touched.
"""

from __future__ import annotations

from pathlib import Path

from .config import LEAVE_ONE_OUT, PATH_SETTINGS, DenoiseSettings, Settings
from .denoise import repetition_time
from .inputs.repetition import plausible
from .errors import SettingsError, TrdnetError
from .inputs.runs import Run


def check_denoise_fits(denoise: DenoiseSettings, runs) -> None:
    """Refuse, before any work, denoise settings the runs' files cannot honour.

    - A band-pass cut-off at or above a run's Nyquist frequency (nilearn
      would lower it silently); the TR is the sidecar's, else the header's.
    - CompCor without fMRIPrep confounds holding ``a_comp_cor_*``
      (anatomical) or ``t_comp_cor_*`` (temporal) columns (a public dataset's
      own regressor table has none), or without a JSON sidecar from which
      nilearn selects components of each requested kind, all in the table.
      Only each table's header line and its sidecar are read.
    - An empty or comma-separated confounds table, or one without the
      columns the settings select (:func:`trdnet.confounds.check_confounds_header`).
    - A NIfTI run with fewer volumes (or minutes, when its TR is known) than
      ``min_volumes`` / ``min_minutes`` before any censoring: it could only
      fail. Only the image header is read.
    - A NIfTI run with fewer temporal degrees of freedom left after censoring,
      confound regression and band-pass than ``min_dof``
      (:func:`trdnet.dof.check_dof`); its header and confounds are read, not its data.

    Parameters
    ----------
    denoise : trdnet.config.DenoiseSettings
    runs : list of trdnet.inputs.runs.Run
        Image runs (ROI time-series runs are not cleaned and are skipped).

    Raises
    ------
    SettingsError
        Naming the first file that cannot serve the request.
    """
    from .confounds import check_confounds_header

    runs = [run for run in runs if isinstance(run, Run)]
    for run in runs:
        tr = _known_tr(run)
        if tr is not None:
            denoise.check_sampling(tr, run.bold)
        n_volumes = _check_length(run, tr, denoise)
        if run.confounds_format == "fmriprep" and run.confounds is not None:
            check_confounds_header(run.confounds, denoise)
        if n_volumes is not None and tr is not None:
            _check_dof(run, n_volumes, tr, denoise)
    if denoise.compcor == "none":
        return
    prefixes = []
    if "anat" in denoise.compcor:
        prefixes.append("a_comp_cor_")
    if "temporal" in denoise.compcor:
        prefixes.append("t_comp_cor_")
    for run in runs:
        if run.confounds_format != "fmriprep" or run.confounds is None:
            raise SettingsError(
                f"{run.bold}: denoise.compcor = {denoise.compcor!r} needs fMRIPrep's confounds table with CompCor "
                "columns, which this run does not have; choose a strategy without CompCor")
        try:
            with open(run.confounds, encoding="utf-8") as handle:
                header = handle.readline().rstrip("\n").split("\t")
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{run.confounds}: cannot read the confounds header ({exc})") from None
        missing = [p for p in prefixes if not any(column.startswith(p) for column in header)]
        if missing:
            raise SettingsError(
                f"{run.confounds}: no {'/'.join(p + '*' for p in missing)} columns for denoise.compcor = "
                f"{denoise.compcor!r}; choose a strategy without CompCor (e.g. scrubbing.5)")
        _check_compcor_sidecar(Path(run.confounds), header, prefixes, denoise)


def _check_compcor_sidecar(confounds: Path, header: list[str], prefixes: list[str], denoise: DenoiseSettings) -> None:
    """Refuse a confounds JSON sidecar from which nilearn would select no CompCor component of a requested kind.

    nilearn's ``load_confounds`` takes the CompCor columns from the sidecar,
    not from the table: it counts the sidecar's ``a_comp_cor_*`` /
    ``t_comp_cor_*`` entries, keeps the anatomical ones whose ``Mask`` is the
    requested mask (``combined``, or ``WM`` and ``CSF``), then the first
    ``n_compcor``. The selection is made here by nilearn's own function, on
    the sidecar alone (a few kB).
    """
    import json

    from nilearn.interfaces.fmriprep.load_confounds_compcor import find_compcor

    sidecar = confounds.with_suffix(".json")
    remedy = "restore fMRIPrep's sidecar, or choose a strategy without CompCor (e.g. scrubbing.5)"
    try:
        metadata = json.loads(sidecar.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"{sidecar}: no confounds JSON sidecar; denoise.compcor = {denoise.compcor!r} needs it "
                            f"(it describes the CompCor components fMRIPrep kept); {remedy}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SettingsError(f"{sidecar}: cannot read the confounds JSON sidecar ({exc}); {remedy}") from None
    try:
        selected = find_compcor(metadata if isinstance(metadata, dict) else {}, denoise.compcor, denoise.n_compcor)
    except (KeyError, TypeError) as exc:
        raise SettingsError(f"{sidecar}: a CompCor entry has no usable 'Mask' ({exc}); denoise.compcor = "
                            f"{denoise.compcor!r} selects anatomical components by their mask; {remedy}") from None
    # anatomical components with a WM or CSF mask are named w_comp_cor_* / c_comp_cor_* by recent fMRIPrep
    kinds = {"a_comp_cor_": ("a_comp_cor_", "w_comp_cor_", "c_comp_cor_"), "t_comp_cor_": ("t_comp_cor_",)}
    empty = [p + "*" for p in prefixes if not any(column.startswith(kinds[p]) for column in selected)]
    if empty:
        mask = {"anat_combined": " with Mask 'combined'", "anat_separated": " with Mask 'WM' or 'CSF'"}.get(
            denoise.compcor.replace("temporal_", ""), "")
        raise SettingsError(f"{sidecar}: describes no {'/'.join(empty)} component{mask}, so nilearn would select "
                            f"none for denoise.compcor = {denoise.compcor!r}; {remedy}")
    absent = [column for column in selected if column not in header]
    if absent:
        raise SettingsError(f"{sidecar}: describes CompCor component(s) {absent[:3]} absent from {confounds.name}; "
                            f"the sidecar and the table are not from one fMRIPrep run; {remedy}")


def _check_length(run: Run, tr: float | None, denoise: DenoiseSettings) -> int | None:
    """Refuse a NIfTI run shorter than the settings' minimum before censoring (its header's volume count).

    Returns the volume count, or None when the header does not give one (surface files are counted when read).
    """
    import nibabel as nib

    name = Path(run.bold).name
    if not name.endswith((".nii", ".nii.gz")) or name.endswith(".dtseries.nii"):
        return None  # surface files: counted when read
    try:
        shape = nib.load(run.bold).shape
    except Exception:  # noqa: BLE001 - an unreadable image fails that run with its own message
        return None
    if len(shape) != 4:
        return None  # a 3D image fails that run with its own message
    check_run_length(shape[3], tr, denoise, run.bold)
    return int(shape[3])


def _check_dof(run: Run, n_volumes: int, tr: float, denoise: DenoiseSettings) -> None:
    """Refuse a run left with fewer temporal degrees of freedom than ``denoise.min_dof`` (:mod:`trdnet.dof`).

    Reads the confounds table (the censoring mask and the regressors), not the BOLD data.
    """
    from .confounds import load_run_confounds
    from .dof import check_dof

    try:
        confounds, sample_mask, _ = load_run_confounds(run, n_volumes, denoise)
    except TrdnetError:  # a confounds table the run cannot use fails that run with its own message
        return
    check_dof(run.confounds or run.bold, len(sample_mask), None if confounds is None else confounds.columns, tr,
              denoise, SettingsError)


def check_run_length(n_volumes: int, tr: float | None, denoise: DenoiseSettings, source: str | Path,
                     remedy: str = "lower them, or leave the run out (--bids-filter-file)") -> None:
    """Refuse a run shorter than ``min_volumes`` / ``min_minutes`` before any censoring: it could only fail.

    Parameters
    ----------
    n_volumes : int
        Volumes of the run.
    tr : float or None
        Repetition time in seconds; None: only the volume count is checked.
    denoise : trdnet.config.DenoiseSettings
    source : str or Path
        The file (or option) the length comes from, named in the error.
    remedy : str
        What the user can do, ending the error.

    Raises
    ------
    SettingsError
    """
    minutes = n_volumes * tr / 60.0 if tr is not None else None
    if n_volumes < denoise.min_volumes or (minutes is not None and minutes < denoise.min_minutes):
        length = f"{n_volumes} volumes" + (f" ({minutes:.1f} min)" if minutes is not None else "")
        raise SettingsError(f"{source}: {length} before any censoring; at least {denoise.min_volumes} volumes "
                            f"and {denoise.min_minutes} min are required (denoise.min_volumes, denoise.min_minutes): "
                            f"{remedy}")


def _known_tr(run: Run) -> float | None:
    """The run's TR from its sidecar, else from a NIfTI volume header; None when neither gives a usable one.

    A volume's sidecar TR is checked against its header and the plausible range
    (:func:`trdnet.denoise.repetition_time`): a TR in milliseconds fails that
    run with its own message instead of a Nyquist refusal at 2000 s.
    """
    name = Path(run.bold).name
    if not name.endswith((".nii", ".nii.gz")) or name.endswith(".dtseries.nii"):
        # surface files carry their TR only in the JSON sidecar
        return float(run.tr) if run.tr is not None and plausible(run.tr) else None
    try:
        return repetition_time(run)
    except TrdnetError:  # no usable TR: that run fails on its own and is recorded
        return None


#: Settings that name an input file, as (section, key).
SETTING_FILES = PATH_SETTINGS


def check_group_map_given(settings: Settings) -> None:
    """Refuse, before any work, the ``seedmap`` target method without a group sgACC map.

    A Python caller may pass the map itself to :func:`trdnet.targeting.compute_targets`,
    so the settings alone do not refuse it; a cohort run can take it only from
    ``targeting.group_map`` (``--group-map``).

    Raises
    ------
    SettingsError
        Naming ``--group-map`` and ``targeting.group_map``.
    """
    if "seedmap" in settings.targeting.methods and settings.targeting.group_map is None:
        raise SettingsError(
            "target method 'seedmap' needs a group sgACC map: give --group-map FILE (a NIfTI map) or --group-map "
            f"{LEAVE_ONE_OUT} (the other participants of the output folder), or set targeting.group_map")


def check_setting_files(settings: Settings) -> None:
    """Refuse, before any work, a setting that names a file that is not there.

    Parameters
    ----------
    settings : Settings

    Raises
    ------
    SettingsError
        Naming the key and the path (``targeting.group_map = "loo"`` names no file).
    """
    for section, key in SETTING_FILES:
        value = getattr(getattr(settings, section), key)
        if value is None or (key == "group_map" and value == LEAVE_ONE_OUT):
            continue
        if not Path(value).is_file():
            raise SettingsError(f"{section}.{key} = {value!r}: no such file (a relative path in a settings file "
                                "is read from the file's folder)")
