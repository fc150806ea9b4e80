"""The :func:`simulate_cohort` entry point: checks settings, simulates and writes a cohort."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ...config import MNI_SPACE
from ...errors import InputError, SettingsError
from .anatomy import _load_anatomy, _participant
from .expected import expected_seed_map
from .parameters import GRID_NOTE, SIMULATED_NOTE, SimulatedCohort, preset_parameters
from .signals import _simulate_run, _target_correlation
from ...outputs import atomic_write_text, software_versions, write_json
from .writer import _run_prefixes, _write_dataset_description, _write_participants, _write_run


def _check_arguments(n_subjects, n_volumes, tr, resolution_mm, sessions, runs, confounds_suffix):
    if resolution_mm not in (2, 3, 4):
        raise SettingsError(f"resolution_mm={resolution_mm!r}; accepted: 2, 3 or 4")
    if confounds_suffix not in ("timeseries", "regressors"):
        raise SettingsError(
            f"confounds_suffix={confounds_suffix!r}; accepted: 'timeseries' or 'regressors'"
        )
    if int(n_subjects) < 1:
        raise SettingsError(f"n_subjects={n_subjects!r}; accepted: an integer >= 1")
    lengths = list(n_volumes) if isinstance(n_volumes, (list, tuple)) else [n_volumes]
    if not lengths or min(int(n) for n in lengths) < 20:
        raise SettingsError(f"n_volumes={n_volumes!r}; accepted: an integer >= 20, or one per run")
    if len(lengths) > 1 and (runs is None or len(lengths) != int(runs)):
        raise SettingsError(f"n_volumes gives {len(lengths)} run lengths; runs={runs!r} must be that number")
    if not tr > 0:
        raise SettingsError(f"tr={tr!r}; accepted: a positive number of seconds")
    if runs is not None and int(runs) < 1:
        raise SettingsError(f"runs={runs!r}; accepted: None or an integer >= 1")
    if sessions is not None:
        bad = [s for s in sessions if not str(s).isalnum()]
        if bad or len(sessions) == 0:
            raise SettingsError(f"sessions={sessions!r}; accepted: a non-empty list of alphanumeric labels")


def simulate_cohort(
    out_dir,
    n_subjects: int = 4,
    n_volumes: int | list[int] = 300,
    tr: float = 2.0,
    resolution_mm: int = 3,
    sessions: list[str] | None = None,
    runs: int | None = None,
    confounds_suffix: str = "timeseries",
    random_state: int = 0,
    overwrite: bool = False,
    anatomy: bool = True,
    preset: str = "realistic",
    **signal_parameters,
) -> SimulatedCohort:
    """Write a SIMULATED resting-state cohort as fMRIPrep derivatives plus its ground truth.

    Parameters
    ----------
    out_dir : str or Path
        Output folder; gets ``fmriprep/``, ``truth/`` and ``SIMULATED_DATA.txt``.
    n_subjects : int
        Number of participants (labels ``01``, ``02``, ...).
    n_volumes : int or list of int
        Volumes per run (at least 20), or one number per run of a session
        (as many as ``runs``).
    tr : float
        Repetition time in seconds.
    resolution_mm : {2, 3, 4}
        Grid of nilearn's bundled MNI152 2009 templates.
    sessions : list of str or None
        Session labels; ``None`` writes no ``ses-`` level.
    anatomy : bool
        Also write a simulated T1w, masks, tissue maps and fMRIPrep transforms
        per participant (``anat/``, see :mod:`trdnet.inputs.simulate.t1w`).
    runs : int or None
        Runs per session; ``None`` writes no ``run-`` entity.
    confounds_suffix : {"timeseries", "regressors"}
        ``desc-confounds_timeseries.tsv`` (fMRIPrep >= 20.2) or the older
        ``desc-confounds_regressors.tsv``.
    random_state : int
        Seed of :func:`numpy.random.default_rng`; participants and runs get
        independent child streams, so the same seed gives identical files.
    overwrite : bool
        Rewrite an existing cohort made with other settings. A cohort made
        with the same settings is reused without rewriting.
    preset : {"realistic", "easy"}
        Difficulty preset (:data:`PRESETS`): ``"realistic"`` (the default)
        has every difficulty of real scans switched on; ``"easy"`` has none
        and is labelled easy in the dataset description, the truth table and
        ``simulation.json``.
    **signal_parameters
        Fields of :class:`SignalParameters` overriding the preset (e.g.
        ``effect_size=0.8``, ``noise_fwhm_mm=0``, ``shared_weight=0``).

    Returns
    -------
    SimulatedCohort

    Notes
    -----
    BOLD images are int16 with ``scl_slope`` (values in arbitrary units,
    baseline ~1000), sform/qform code 4 (MNI). The planted target of a
    participant is the same in all sessions and runs; only noise, latent
    signals and motion differ. The truth table also gives each participant's
    noise-free reference (:func:`~trdnet.inputs.simulate.expected.expected_seed_map`,
    the Fox 2012 seed after the default denoising): ``expected_peak_x/y/z``
    (the strongest anticorrelated voxel of the simulator's search region),
    ``expected_patch_min_r``, ``expected_elsewhere_min_r`` (strongest site
    beyond the patch's radius), ``expected_margin_r`` (their difference;
    positive when the planted patch is the strongest site),
    ``expected_shared_r`` and ``expected_background_sd_r``.
    """
    _check_arguments(n_subjects, n_volumes, tr, resolution_mm, sessions, runs, confounds_suffix)
    params = preset_parameters(preset, **signal_parameters)
    _target_correlation(params, [*dict.fromkeys(params.networks.values()), "sgACC"])
    sessions = None if sessions is None else [str(s) for s in sessions]
    out_dir = Path(out_dir)
    fmriprep_dir, truth_dir = out_dir / "fmriprep", out_dir / "truth"
    subjects = [f"{i + 1:02d}" for i in range(int(n_subjects))]
    record = {
        "Simulated": True,
        "Description": SIMULATED_NOTE,
        "preset": preset,
        "n_subjects": int(n_subjects), "n_volumes": [int(n) for n in n_volumes] if isinstance(n_volumes, (list, tuple)) else int(n_volumes), "tr": float(tr),
        "resolution_mm": int(resolution_mm), "sessions": sessions, "runs": runs,
        "confounds_suffix": confounds_suffix, "random_state": int(random_state),
        "signal_parameters": params.to_dict(),
        "space": MNI_SPACE, "coordinate_convention": "RAS world millimetres",
        "grid": GRID_NOTE,
        "anatomy": bool(anatomy),
    }
    record_path = truth_dir / "simulation.json"
    truth_path = truth_dir / "targets_truth.tsv"
    if record_path.is_file() and truth_path.is_file():
        previous = json.loads(record_path.read_text())
        same = {k: v for k, v in previous.items() if k not in ("software", "runs_detail")} == record
        if same and not overwrite:
            table = _read_truth(truth_path)
            return SimulatedCohort(fmriprep_dir, truth_dir, table, subjects, preset)
        if not overwrite:
            raise InputError(
                f"{out_dir}: holds a simulated cohort made with other settings; "
                "pass overwrite=True or choose another folder"
            )
    for folder in (fmriprep_dir, truth_dir):
        folder.mkdir(parents=True, exist_ok=True)

    anat = _load_anatomy(int(resolution_mm), params)
    _write_dataset_description(fmriprep_dir, preset)
    rows, details = [], []
    seeds = np.random.SeedSequence(int(random_state)).spawn(len(subjects))
    for subject, seed in zip(subjects, seeds):
        prefixes = _run_prefixes(subject, sessions, None if runs is None else int(runs))
        person_seed, *run_seeds = seed.spawn(1 + len(prefixes))
        person = _participant(anat, params, np.random.default_rng(person_seed))
        reference = expected_seed_map(anat, params, person, tr=float(tr)).truth_columns()
        if anatomy:
            from .t1w import write_simulated_anat

            write_simulated_anat(fmriprep_dir, subject, np.random.default_rng(person_seed.spawn(1)[0]))
        for (ses, run, prefix), run_seed in zip(prefixes, run_seeds):
            func = fmriprep_dir / f"sub-{subject}" / (f"ses-{ses}" if ses else "") / "func"
            func.mkdir(parents=True, exist_ok=True)
            length = n_volumes[int(run) - 1] if isinstance(n_volumes, (list, tuple)) else n_volumes
            result = _simulate_run(anat, params, person, int(length), float(tr),
                                   np.random.default_rng(run_seed))
            _write_run(func, prefix, anat, result, float(tr), confounds_suffix)
            centre = person["centre"]
            rows.append({
                "participant_id": f"sub-{subject}", "session": ses or "n/a", "run": run or "n/a",
                "x": centre[0], "y": centre[1], "z": centre[2], "space": MNI_SPACE,
                "patch_radius_mm": params.patch_radius_mm, "effect_size": params.effect_size,
                **reference, "preset": preset, "note": "simulated",
            })
            details.append({
                "bold": str(Path(func.relative_to(out_dir)) / f"{prefix}_space-{MNI_SPACE}_desc-preproc_bold.nii.gz"),
                "spike_volumes": [int(t) for t in result["spikes"]],
            })
    table = pd.DataFrame(rows)
    _write_participants(fmriprep_dir, subjects)
    atomic_write_text(truth_path, table.to_csv(sep="\t", index=False, float_format="%.2f"))
    write_json(record_path, {**record, "runs_detail": details, "software": software_versions()})
    atomic_write_text(out_dir / "SIMULATED_DATA.txt",
                f"SIMULATED data made by trdnet's simulator ({preset} preset; not from any person); "
                "ground truth in truth/, derivatives in fmriprep/.\n")
    table = _read_truth(truth_path)
    return SimulatedCohort(fmriprep_dir, truth_dir, table, subjects, preset)


def _read_truth(path: Path) -> pd.DataFrame:
    """The truth table with ``session``/``run`` kept as text (``n/a`` when absent)."""
    return pd.read_csv(path, sep="\t", keep_default_na=False,
                       dtype={"participant_id": str, "session": str, "run": str})
