"""A real resting-state run on the fsaverage5 cortex (MPI-LEMON, from the brainspace 0.3.0 wheel), end to end.

The wheel is fetched from the package registry into the user's wheel cache (never skipped: an
unreachable registry with an empty cache fails these tests); see trdnet.inputs.lemon for what was
checked about the run (TR, cleaning) and what was not.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn import signal
from nilearn.datasets import load_fsaverage

from trdnet.cli import main
from trdnet.config import NetworkSettings
from trdnet.inputs.lemon import MEMBERS, RUN_STEM, mgz_series
from trdnet.inputs.public import fetch_dataset
from trdnet.inputs.registry import read_members
from trdnet.inputs.surface import BRAINSPACE_WHEEL, MNI305_TO_MNI152
from trdnet.networks import network_rois

pytestmark = pytest.mark.slow  # a real 652-volume run on both hemispheres, end to end

CORE = ("DMN", "SN", "ECN")


@pytest.fixture(scope="module")
def lemon(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    dataset = fetch_dataset("lemon_fsaverage5", data_dir=data_dir)
    out = tmp_path_factory.mktemp("out")
    code = main(["run", "--dataset", "lemon_fsaverage5", "--data-dir", str(data_dir), str(out), "participant",
                 "--no-report"])
    return {"dataset": dataset, "data_dir": data_dir, "out": out, "code": code}


def test_laid_out_as_fmriprep_writes_surface_runs(lemon):
    run = lemon["dataset"].runs[0]
    func = run.bold.parent
    assert run.bold.name == f"{RUN_STEM}_hemi-L_space-fsaverage5_bold.func.gii"
    assert func.parts[-3:] == ("sub-010188", "ses-02", "func")
    provider = read_members(BRAINSPACE_WHEEL, [MEMBERS["L"], MEMBERS["R"]])
    for hemi in ("L", "R"):
        img = nib.load(run.hemi_bold[hemi])
        assert len(img.darrays) == 652 and img.darrays[0].data.shape == (10242,)
        # the same numbers as the provider's .mgz, volume by volume
        np.testing.assert_array_equal(np.stack([d.data for d in img.darrays]),
                                      mgz_series(provider[MEMBERS[hemi]], MEMBERS[hemi]))
        sidecar = json.loads(run.hemi_bold[hemi].with_name(
            f"{RUN_STEM}_hemi-{hemi}_space-fsaverage5_bold.json").read_text())
        assert sidecar["RepetitionTime"] == 1.4 and "1.0 s" in sidecar["RepetitionTimeSource"]
    assert run.tr == 1.4 and not run.simulated


def test_networks_on_the_real_cortex_match_plain_nilearn(lemon):
    assert lemon["code"] == 0
    func = lemon["out"] / "sub-010188" / "ses-02" / "func"
    prefix = f"{RUN_STEM}_space-fsaverage5"
    table = pd.read_csv(func / f"{prefix}_networks.tsv", sep="\t")
    ours = {(a, b): z for a, b, z in table[["network_a", "network_b", "mean_z"]].itertuples(index=False)}

    # the same analysis with nibabel, numpy and nilearn only
    run = lemon["dataset"].runs[0]
    mesh = load_fsaverage("fsaverage5")
    data, xyz = [], []
    for hemi, part in (("L", "left"), ("R", "right")):
        series = np.stack([d.data for d in nib.load(run.hemi_bold[hemi]).darrays]).astype(float)
        keep = np.ptp(series, axis=0) > 0
        mid = (mesh["pial"].parts[part].coordinates + mesh["white_matter"].parts[part].coordinates) / 2
        data.append(series[:, keep])
        xyz.append((np.c_[mid, np.ones(len(mid))] @ MNI305_TO_MNI152.T)[keep, :3])
    data, xyz = np.concatenate(data, axis=1), np.concatenate(xyz)
    global_signal = data.mean(axis=1, keepdims=True)
    cleaned = signal.clean(data, confounds=global_signal, detrend=True, standardize="zscore_sample",
                           standardize_confounds=True, filter=False, t_r=1.4)
    rois = network_rois(NetworkSettings())
    means, networks = [], []
    for row in rois.itertuples():
        inside = np.linalg.norm(xyz - [row.x, row.y, row.z], axis=1) <= row.radius_mm
        if inside.any():
            means.append(cleaned[:, inside].mean(axis=1))
            networks.append(row.network)
    z = np.arctanh(np.clip(np.corrcoef(np.array(means)), -1 + 1e-7, 1 - 1e-7))
    networks = np.array(networks)
    for i, a in enumerate(CORE):
        for b in CORE[i:]:
            block = z[np.ix_(networks == a, networks == b)]
            expected = block[np.triu_indices_from(block, k=1)].mean() if a == b else block.mean()
            assert ours[(a, b)] == pytest.approx(expected, abs=2e-3), (a, b)
    within = np.mean([ours[(n, n)] for n in CORE])
    between = np.mean([ours[(a, b)] for a, b in ours if a != b])
    assert within > between


def test_the_run_says_what_it_is_and_what_is_not_done(lemon):
    func = lemon["out"] / "sub-010188" / "ses-02" / "func"
    prefix = f"{RUN_STEM}_space-fsaverage5"
    qc = pd.read_csv(func / f"{prefix}_qc.tsv", sep="\t").iloc[0]
    assert qc.n_volumes == 652 and qc.tr == 1.4
    # the provider's all-zero medial wall is left out (counted from the files directly)
    run = lemon["dataset"].runs[0]
    zero = sum(int((np.ptp(np.stack([d.data for d in nib.load(run.hemi_bold[h]).darrays]), axis=0) == 0).sum())
               for h in ("L", "R"))
    assert qc.n_voxels == 2 * 10242 - zero
    # the provider demeaned the data: no baseline intensity, so no tSNR (n/a, with the reason), not a 0
    assert np.isnan(qc.median_tsnr)
    qc_sidecar = json.loads((func / f"{prefix}_qc.json").read_text())
    assert "no baseline intensity" in qc_sidecar["TSNRNote"] and "demeaned" in qc_sidecar["TSNRNote"]
    sidecar = json.loads((func / f"{prefix}_networks.json").read_text())
    notes = json.dumps(sidecar)
    assert "TR 1.4 s from the LEMON protocol" in notes and "not a measure of accuracy" in notes
    record = json.loads((lemon["out"] / "logs" / f"{prefix}_done.json").read_text())
    # a target on the left cortex with its reliability (one person, one run: no accuracy claimed)
    assert record["Summary"]["target_hemi"] == "L" and record["Summary"]["reliability"] in ("good", "fair", "poor")
    assert len(pd.read_csv(func / f"{prefix}_targets.tsv", sep="\t"))
    # a report without framewise displacement (the provider shipped none) still says what was done
    assert main(["report", str(lemon["out"])]) == 0
    assert "gold patch: the personalised target vertex" in (lemon["out"] / "sub-010188.html").read_text()
