"""``trdnet demo``: simulate a small cohort, process it, compare with the truth."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .config import Settings
from .errors import SettingsError
from .console import report_results, write_html_reports
from .entities import sidecar_path
from .outputs import software_versions, write_json, write_tsv
from .sidecars import COORDINATE_CONVENTION, SIMULATED_NOTE

#: Space of the simulated cohort and of every coordinate of ``demo_accuracy.tsv``.
DEMO_SPACE = "MNI152NLin2009cAsym"
#: Repetition time of the simulated runs (seconds).
DEMO_TR = 2.0

#: What each column of ``demo_accuracy.tsv`` holds, with its unit.
ACCURACY_COLUMNS = {
    "participant_id": "Simulated participant (sub-<label>)",
    "run": "Run whose primary personalised target is compared (its BIDS prefix)",
    "found_x": "x of the primary personalised target (mm, RAS world coordinates of the space column)",
    "found_y": "y of the primary personalised target (mm, RAS)",
    "found_z": "z of the primary personalised target (mm, RAS)",
    "planted_x": "x of the target planted by the simulator (mm, RAS; the truth table's x)",
    "planted_y": "y of the planted target (mm, RAS)",
    "planted_z": "z of the planted target (mm, RAS)",
    "distance_mm": "Euclidean distance between the found and the planted target (mm)",
    "reliability": "good / fair / poor label of the found target (its targets table)",
    "space": "Space of every coordinate of the row",
    "simulated": "Always true: the row compares SIMULATED data with the simulator's own truth",
}


def run_demo(
    output_dir: Path,
    settings: Settings,
    n_subjects: int = 4,
    n_volumes: int = 300,
    resolution_mm: int = 3,
    seed: int = 0,
    n_jobs: int = 1,
    dask: str | None = None,
    dask_timeout: float | None = None,
    overwrite: bool = False,
    no_report: bool = False,
) -> int:
    """Simulate a cohort (SIMULATED DATA), run the pipeline, print a summary.

    Writes ``<output_dir>/simulated/`` (fMRIPrep-layout input and the ground
    truth in ``truth/``) and ``<output_dir>/trdnet/`` (the outputs), plus
    ``<output_dir>/trdnet/demo_accuracy.tsv`` comparing each personalised
    target with the planted one.

    Returns
    -------
    int
        Exit code: 0 when every run succeeded.
    """
    from .cohort import run_cohort
    from .inputs.bids import find_runs
    from .inputs.simulate import simulate_cohort
    from .preflight import check_denoise_fits

    output_dir = Path(output_dir)
    sim_root = output_dir / "simulated"
    out = output_dir / "trdnet"
    check_demo_request(out, sim_root, settings, n_volumes, dask, dask_timeout, overwrite)
    start = time.perf_counter()
    # The easy preset: white noise, the analysis's own seed and search spheres, a strong
    # patch and no shared group region. It shows the pipeline working, not its accuracy.
    cohort = simulate_cohort(sim_root, n_subjects=n_subjects, n_volumes=n_volumes, tr=DEMO_TR,
                             resolution_mm=resolution_mm, random_state=seed, preset="easy")
    print(f"SIMULATED cohort (EASY preset) of {n_subjects} participants written to {cohort.fmriprep_dir} "
          f"({time.perf_counter() - start:.0f} s); ground truth in {cohort.truth_dir}")
    runs = find_runs(cohort.fmriprep_dir, space=settings.space)
    check_denoise_fits(settings.denoise, runs)
    results = run_cohort(runs, out, settings, n_jobs=n_jobs, dask=dask, overwrite=overwrite,
                         dask_timeout=dask_timeout)
    code = report_results(results, out)
    if any(r.status != "failed" for r in results):
        from .group import run_group

        group = run_group(out)
        print(f"cohort tables and statistics (SIMULATED groups): {group.group_dir}")
    if not no_report:
        write_html_reports(out, sorted({r.subject for r in results if r.status != "failed"}))
    accuracy = accuracy_table(results, cohort.truth_table)
    if len(accuracy):
        write_accuracy(out / "demo_accuracy.tsv", accuracy, settings, cohort.truth_dir)
        print("distance of each personalised target to the planted (simulated) target:")
        for row in accuracy.itertuples():
            print(f"  {row.participant_id}: {row.distance_mm:.1f} mm")
        print(f"median distance {accuracy['distance_mm'].median():.1f} mm "
              f"(SIMULATED data, EASY preset: realistic simulations and real scans give larger errors; "
              f"see {out / 'demo_accuracy.tsv'})")
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return code


def check_demo_request(out: Path, sim_root: Path, settings: Settings, n_volumes: int, dask: str | None = None,
                       dask_timeout: float | None = None, overwrite: bool = False) -> None:
    """Everything ``trdnet run`` would refuse about the demo, checked before anything is simulated.

    The output folder (writable, apart from the simulated inputs, and
    without runs finished with other settings unless ``overwrite``), the Dask
    address (its form, and a scheduler that answers), the files the settings
    name and the atlas, and the settings against the runs about to be
    simulated (their TR and length; the rest is checked on their files).

    Parameters
    ----------
    out : Path
        Folder of trdnet's outputs.
    sim_root : Path
        Folder the simulated cohort is written into.
    settings : Settings
    n_volumes : int
        Volumes per simulated run (``--n-volumes``).
    dask : str, optional
    dask_timeout : float, optional
    overwrite : bool
        ``--overwrite``: finished runs are recomputed, whatever their settings.

    Raises
    ------
    TrdnetError
        One line naming the option, file or setting and the problem.
    """
    from .cohort import check_request
    from .networks.atlas_check import check_atlas_fits
    from .preflight import check_group_map_given, check_run_length, check_setting_files

    check_setting_files(settings)
    check_group_map_given(settings)
    check_atlas_fits(settings.networks, [])
    source = f"--n-volumes {n_volumes} (simulated runs, TR {DEMO_TR:g} s)"
    settings.denoise.check_sampling(DEMO_TR, source)
    check_run_length(n_volumes, DEMO_TR, settings.denoise, source, "give more --n-volumes, or lower them")
    check_request(out, [sim_root], dask=dask, dask_timeout=dask_timeout)
    if not overwrite:
        check_demo_settings(out, settings)


def check_demo_settings(out: Path, settings: Settings) -> None:
    """Refuse a demo output folder whose finished runs were processed with other settings.

    The demo's runs are known only once simulated, and the group step would
    refuse the mixture anyway, so every completion record of the folder is
    compared (a run recorded before rules added since,
    :meth:`~trdnet.config.Settings.earlier_digest`, is processed again, as by
    ``trdnet run``).

    Raises
    ------
    SettingsError
        One line naming the folder, how many runs, and the settings that differ (recorded vs asked).
    """
    from .group.digests import settings_differences
    from .records import completion_records, recorded_settings

    accepted = {settings.digest(), settings.earlier_digest()}
    clashes = [record for record in completion_records(out) if record.settings_digest not in accepted]
    if clashes:
        differences = settings_differences([recorded_settings(out, clashes[0]), settings.to_dict()])
        raise SettingsError(
            f"{out}: {len(clashes)} finished demo run(s) were processed with other settings (digest "
            f"{clashes[0].settings_digest} != {settings.digest()}; recorded vs asked: {differences}); "
            "use --overwrite or another output folder")


def accuracy_table(results, truth: pd.DataFrame) -> pd.DataFrame:
    """Distance between each run's primary target and the planted target."""
    rows = []
    truth = truth.set_index("participant_id")
    for result in results:
        pid = f"sub-{result.subject}"
        if result.status == "failed" or pid not in truth.index or "target_x" not in result.summary:
            continue
        planted = truth.loc[pid]
        planted = planted.iloc[0] if isinstance(planted, pd.DataFrame) else planted
        found = np.array([result.summary[k] for k in ("target_x", "target_y", "target_z")])
        true_xyz = np.array([planted["x"], planted["y"], planted["z"]], dtype=float)
        rows.append({
            "participant_id": pid, "run": result.prefix,
            "found_x": found[0], "found_y": found[1], "found_z": found[2],
            "planted_x": true_xyz[0], "planted_y": true_xyz[1], "planted_z": true_xyz[2],
            "distance_mm": float(np.linalg.norm(found - true_xyz)),
            "reliability": result.summary.get("reliability", ""),
            "space": DEMO_SPACE, "simulated": True,
        })
    return pd.DataFrame(rows)


def write_accuracy(path: Path, accuracy: pd.DataFrame, settings: Settings, truth_dir: Path) -> Path:
    """Write ``demo_accuracy.tsv`` and its JSON sidecar (columns and units, space, the SIMULATED label, settings).

    Parameters
    ----------
    path : Path
        The table to write; the sidecar is the same name with ``.json``.
    accuracy : pandas.DataFrame
        From :func:`accuracy_table`.
    settings : Settings
        The settings the runs were processed with.
    truth_dir : Path
        Where the simulator wrote the planted targets (named in the sidecar relative to ``path``'s folder).

    Returns
    -------
    Path
        The table.
    """
    write_json(sidecar_path(path), {
        "Description": "Distance of each simulated participant's primary personalised target to the target the "
                       "simulator planted (EASY preset: it shows the pipeline working, not its accuracy)",
        "Columns": {column: ACCURACY_COLUMNS[column] for column in accuracy.columns},
        "Space": DEMO_SPACE, "CoordinateConvention": COORDINATE_CONVENTION,
        "Simulated": True, "Note": SIMULATED_NOTE, "SimulationPreset": "easy", "GroundTruth": os.path.relpath(truth_dir, Path(path).parent),
        "SettingsDigest": settings.digest(), "Settings": settings.to_dict(), "Software": software_versions(),
    })
    return write_tsv(path, accuracy)
