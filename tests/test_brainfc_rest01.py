"""A real participant's scan at the parcel level (brainfc 0.5.1 wheel's rest01 sample), end to end.

The wheel is fetched from the package registry into the user's wheel cache (never skipped: an
unreachable registry with an empty cache fails these tests); see trdnet.inputs.brainfc for the
provenance of the sample and how its confounds are converted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from nilearn import signal
from nilearn.connectome import ConnectivityMeasure
from sklearn.covariance import EmpiricalCovariance

from trdnet.cli import main
from trdnet.inputs.brainfc import (
    BRAINFC_WHEEL,
    DATA_FILES,
    LABELS_NAME,
    PROVENANCE_FILES,
    SAMPLE_FOLDER,
    write_sample,
)
from trdnet.inputs.registry import read_members
from trdnet.inputs.timeseries import normalise_network

CORE = ("DMN", "SN", "ECN")


def _sample(folder):
    members = read_members(BRAINFC_WHEEL, [SAMPLE_FOLDER + n for n in (*DATA_FILES, *PROVENANCE_FILES)])
    return write_sample(folder, {k.removeprefix(SAMPLE_FOLDER): v for k, v in members.items()})


def _plain_nilearn_networks(folder) -> dict:
    """Mean Fisher z per network pair, computed with nilearn alone from the same files."""
    func = folder / "sub-rest01" / "func"
    signals = pd.read_csv(next(func.glob("*_seg-*_timeseries.tsv")), sep="\t")
    confounds = pd.read_csv(next(func.glob("*_desc-confounds_timeseries.tsv")), sep="\t", na_values="n/a")
    motion = [c for c in confounds if c.startswith(("trans_", "rot_"))]
    assert len(motion) == 24
    # load_confounds replaces the derivatives' n/a at the first volume by the second volume's value
    regressors = confounds[[*motion, "white_matter", "csf", "global_signal"]].bfill().to_numpy()
    keep = np.arange(5, len(signals))  # the non-steady-state volumes flagged in the table
    # nilearn's defaults otherwise: the censored volumes at the run's start are left out of the band-pass
    cleaned = signal.clean(signals.to_numpy(), confounds=regressors, sample_mask=keep, detrend=True,
                           standardize="zscore_sample", standardize_confounds=True, filter="butterworth",
                           high_pass=0.01, low_pass=0.1, t_r=2.0, butterworth__order=5)
    # Pearson correlation: the empirical covariance, not ConnectivityMeasure's default Ledoit-Wolf shrinkage
    r = ConnectivityMeasure(kind="correlation", cov_estimator=EmpiricalCovariance(),
                            standardize="zscore_sample").fit_transform([cleaned])[0]
    z = np.arctanh(np.clip(r, -1 + 1e-12, 1 - 1e-12))
    labels = pd.read_csv(folder / LABELS_NAME, sep="\t").set_index("name")["network"].map(normalise_network)
    nets = labels.loc[signals.columns].to_numpy()
    out = {}
    for a in CORE:
        for b in CORE:
            ia, ib = np.flatnonzero(nets == a), np.flatnonzero(nets == b)
            block = z[np.ix_(ia, ib)]
            out[a, b] = block[np.triu_indices(len(ia), 1)].mean() if a == b else block.mean()
    return out


def test_real_scan_through_roi_timeseries_matches_plain_nilearn(tmp_path, capsys):
    folder = _sample(tmp_path / "rest01")
    out = tmp_path / "out"
    args = ["run", "--roi-timeseries", str(folder), "--labels", str(folder / LABELS_NAME), str(out), "participant",
            "--no-report"]
    # Default settings scrub on FD and standardised DVARS; parcel means have no DVARS: refused before any
    # work, in one line saying what is missing and which setting works without it.
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert "desc-confounds_timeseries.tsv: scrubbing needs std_dvars" in error
    assert "scrub=false works without" in error
    assert not list(out.rglob("*_networks.tsv"))
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"denoise": {"scrub": False}}))
    assert main([*args, "--settings", str(settings)]) == 0
    table = pd.read_csv(next(out.rglob("*_networks.tsv")), sep="\t")
    trdnet = {(a, b): z for a, b, z in zip(table["network_a"], table["network_b"], table["mean_z"])}
    for (a, b), expected in _plain_nilearn_networks(folder).items():
        value = trdnet.get((a, b), trdnet.get((b, a)))
        assert abs(value - expected) < 1e-3, (a, b, value, expected)
    for network in CORE:
        within = trdnet[network, network]
        between = [z for (a, b), z in trdnet.items() if a != b and network in (a, b)]
        assert len(between) == 6 and within > max(between), (network, within, between)
    qc = pd.read_csv(next(out.rglob("*_qc.tsv")), sep="\t")
    assert qc["n_censored"].iloc[0] == 5 and qc["n_confounds"].iloc[0] == 27


def test_real_scan_as_a_named_dataset(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TRDNET_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["fetch", "brainfc_rest01"]) == 0
    printed = capsys.readouterr().out
    assert "1 ROI time-series runs" in printed and "package's own statement" in printed
    laid_out = tmp_path / "cache" / "datasets" / "brainfc_rest01"
    assert (laid_out / "provenance" / "README.md").read_text().startswith("# rest01")
    out = tmp_path / "out"
    assert main(["run", "--dataset", "brainfc_rest01", str(out), "participant", "--no-report"]) == 0
    assert "no motion censoring" in capsys.readouterr().out
    sidecar = json.loads(next(out.rglob("*_networks.json")).read_text())
    assert sidecar["InputSource"] == "brainfc_rest01" and sidecar["Simulated"] is False
    assert any("package's own statement" in note for note in sidecar["InputNotes"])
    assert sidecar["Settings"]["denoise"]["scrub"] is False
    # the parcellation and space the package states, not trdnet's voxel-run atlas and template defaults
    assert "Schaefer-100" in sidecar["Settings"]["networks"]["atlas"]
    assert "7 networks" in sidecar["Settings"]["networks"]["atlas"]
    assert sidecar["Settings"]["space"] == sidecar["Space"] == "MNI152NLin6Asym"
    table = pd.read_csv(next(out.rglob("*_networks.tsv")), sep="\t")
    core = table[table["network_a"].isin(CORE) & table["network_b"].isin(CORE)]
    within = core[core["network_a"] == core["network_b"]].set_index("network_a")["mean_z"]
    between = core[core["network_a"] != core["network_b"]]
    for network in CORE:
        pairs = between[(between["network_a"] == network) | (between["network_b"] == network)]["mean_z"]
        assert within[network] > pairs.max()
    # The README's table states these numbers: it must say what the code gives.
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### A real participant's scan at the parcel level")[1].split("\n## ")[0]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:5]]
            for line in section.splitlines() if line.startswith(("| DMN", "| SN", "| ECN"))}
    z = {(a, b): v for a, b, v in zip(core["network_a"], core["network_b"], core["mean_z"])}
    for i, a in enumerate(CORE):
        for j, b in enumerate(CORE[i:], start=i):
            value = z.get((a, b), z.get((b, a)))
            assert rows[a][j] == f"{value:+.2f}", (a, b, rows[a][j], value)


def test_unreachable_registry_is_one_line_naming_the_wheel_and_the_folder(tmp_path, capsys, monkeypatch):
    import os

    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    monkeypatch.setenv("TRDNET_WHEELS_DIR", str(tmp_path / "empty-wheels"))
    monkeypatch.setenv("TRDNET_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["fetch", "brainfc_rest01"]) != 0
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert "brainfc==0.5.1" in error and str(tmp_path / "empty-wheels") in error
    assert not (tmp_path / "cache" / "datasets" / "brainfc_rest01" / "dataset_description.json").exists()


def test_the_packages_own_rois_table_works_as_labels(tmp_path, capsys):
    """brainfc's rois.tsv has a numeric roi_id before the name column that matches the signals' header."""
    folder = _sample(tmp_path / "rest01")
    members = read_members(BRAINFC_WHEEL, [SAMPLE_FOLDER + "rois.tsv"])
    rois = tmp_path / "rois.tsv"
    rois.write_bytes(members[SAMPLE_FOLDER + "rois.tsv"])
    assert "roi_id" in pd.read_csv(rois, sep="\t").columns
    out = tmp_path / "out"
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"denoise": {"scrub": False}}))
    assert main(["run", "--roi-timeseries", str(folder), "--labels", str(rois), str(out), "participant",
                 "--no-report", "--settings", str(settings)]) == 0
    table = pd.read_csv(next(out.rglob("*_networks.tsv")), sep="\t")
    assert set(CORE) <= set(table["network_a"])
