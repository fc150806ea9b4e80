"""Tests of trdnet.networks on small simulated runs with planted network signals."""

from __future__ import annotations

import dataclasses

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from trdnet.cleaned import CleanedRun, zscore_columns
from trdnet.config import MNI_SPACE, NetworkSettings
from trdnet.errors import InputError, SettingsError
from trdnet.grid import VoxelSpace
from trdnet.networks import (
    ROI_COLUMNS,
    analyse_networks,
    connectivity_matrix,
    graph_long_table,
    graph_measures,
    network_rois,
    network_table,
    roi_signals,
    threshold_graph,
)

# 4 mm grid covering the Raichle nodes: x -56..56, y -72..60, z -8..52 (MNI mm)
AFFINE = np.array(
    [[4.0, 0, 0, -56.0], [0, 4.0, 0, -72.0], [0, 0, 4.0, -8.0], [0, 0, 0, 1.0]]
)
SHAPE = (29, 34, 16)
# voxel box around the Raichle PCC node (0, -52, 27) = voxel (14, 5, 8.75), +- 2 voxels
PCC_BOX = (slice(12, 17), slice(3, 8), slice(6, 11))


def _space(mask=None, space=MNI_SPACE) -> VoxelSpace:
    mask = np.ones(SHAPE, dtype=bool) if mask is None else mask
    return VoxelSpace(mask=mask, affine=AFFINE, space=space)


def _planted_run(rois: pd.DataFrame | None, space: VoxelSpace, n_time=200, seed=0) -> CleanedRun:
    """Simulated run: each network's spheres share one signal; DMN and SN anticorrelated.

    ``rois=None`` gives noise only.
    """
    rng = np.random.default_rng(seed)
    dmn = rng.standard_normal(n_time)
    sn = -0.7 * dmn + 0.7 * rng.standard_normal(n_time)
    ecn = rng.standard_normal(n_time)
    network_signal = {"DMN": dmn, "SN": sn, "ECN": ecn}
    data = rng.standard_normal((n_time, space.n_voxels)).astype(np.float32)
    for _, row in (rois if rois is not None else pd.DataFrame()).iterrows():
        cols = space.sphere_columns((row.x, row.y, row.z), row.radius_mm)
        data[:, cols] = 0.3 * data[:, cols] + network_signal[row.network][:, None]
    data = zscore_columns(data)
    return CleanedRun(
        data=data,
        space=space,
        tr=2.0,
        retained=np.arange(n_time),
        n_volumes=n_time,
        simulated=True,
    )


@pytest.fixture(scope="module")
def raichle():
    return network_rois(NetworkSettings(atlas="raichle_nodes"))


# ---------------------------------------------------------------- ROI presets


def test_seitzman_preset_counts_and_columns():
    rois = network_rois(NetworkSettings())
    assert list(rois.columns) == list(ROI_COLUMNS)
    assert rois["network"].value_counts().to_dict() == {"DMN": 67, "ECN": 36, "SN": 9}
    assert list(dict.fromkeys(rois["network"])) == ["DMN", "SN", "ECN"]
    assert rois["roi"].is_unique and rois["roi"].iloc[0] == "DMN_001"
    assert set(rois["radius_mm"]) <= {4.0, 5.0}
    assert rois["atlas_label"].str.startswith(("DefaultMode", "Salience", "FrontoParietal")).all()


def test_dosenbach_preset_counts_and_proxy_label():
    rois = network_rois(NetworkSettings(atlas="dosenbach2010"))
    assert rois["network"].value_counts().to_dict() == {"DMN": 34, "SN": 32, "ECN": 21}
    sn = rois[rois["network"] == "SN"]
    assert sn["source"].str.contains("proxy for the salience network").all()
    assert not rois.loc[rois["network"] != "SN", "source"].str.contains("proxy").any()


def test_raichle_preset_and_radius_override(raichle):
    assert raichle["network"].value_counts().to_dict() == {"DMN": 4, "SN": 3, "ECN": 5}
    assert (raichle["radius_mm"] == 6.0).all()
    assert raichle["source"].str.contains("unverified").all()
    pcc = raichle[raichle["atlas_label"].str.contains("PCC")].iloc[0]
    assert (pcc.x, pcc.y, pcc.z) == (0.0, -52.0, 27.0)
    wider = network_rois(NetworkSettings(atlas="raichle_nodes", roi_radius_mm=8.0))
    assert (wider["radius_mm"] == 8.0).all()


def test_custom_mapping_and_bad_settings():
    only_dmn = network_rois(NetworkSettings(networks={"DMN": ["DefaultMode"]}))
    assert set(only_dmn["network"]) == {"DMN"} and len(only_dmn) == 67
    with pytest.raises(SettingsError, match="seitzman"):
        network_rois(NetworkSettings(atlas="yeo"))
    with pytest.raises(SettingsError, match="Salence"):
        network_rois(NetworkSettings(networks={"SN": ["Salence"]}))
    with pytest.raises(SettingsError, match="labels"):
        network_rois(NetworkSettings(labels_img="atlas.nii.gz"))


# ---------------------------------------------------------------- signals


def test_planted_networks_give_expected_signs_and_pair_counts(raichle):
    run = _planted_run(raichle, _space())
    signals, kept, dropped = roi_signals(run, raichle)
    assert signals.shape == (200, 12) and dropped.empty
    assert (kept["n_voxels"] > 0).all()
    table = network_table(connectivity_matrix(signals), kept["network"])
    pairs = {(a, b): row for a, b, row in zip(table.network_a, table.network_b, table.itertuples())}
    assert list(pairs) == [
        ("DMN", "DMN"), ("DMN", "SN"), ("DMN", "ECN"), ("SN", "SN"), ("SN", "ECN"), ("ECN", "ECN")
    ]
    expected_pairs = {
        ("DMN", "DMN"): 6, ("SN", "SN"): 3, ("ECN", "ECN"): 10,
        ("DMN", "SN"): 12, ("DMN", "ECN"): 20, ("SN", "ECN"): 15,
    }
    assert {k: v.n_pairs for k, v in pairs.items()} == expected_pairs
    for net in ("DMN", "SN", "ECN"):
        assert pairs[(net, net)].mean_z > 1.0  # shared signal, little noise
    assert pairs[("DMN", "SN")].mean_z < -0.3
    assert abs(pairs[("DMN", "ECN")].mean_z) < 0.3


def test_roi_signal_is_mean_of_sphere_columns(raichle):
    space = _space()
    run = _planted_run(raichle, space)
    signals, kept, _ = roi_signals(run, raichle)
    row = kept.iloc[4]
    cols = space.sphere_columns((row.x, row.y, row.z), row.radius_mm)
    np.testing.assert_allclose(signals[:, 4], run.data[:, cols].mean(axis=1, dtype=np.float64), rtol=1e-9)
    assert row.n_voxels == cols.size


def test_roi_outside_mask_is_dropped_and_listed(raichle):
    mask = np.ones(SHAPE, dtype=bool)
    mask[PCC_BOX] = False
    run = _planted_run(raichle, _space(mask))
    signals, kept, dropped = roi_signals(run, raichle)
    assert signals.shape[1] == 11 == len(kept)
    assert dropped["atlas_label"].tolist() == ["DMN | PCC"]
    assert dropped["n_voxels"].tolist() == [0] and "mask" in dropped["reason"].iloc[0]
    table = network_table(connectivity_matrix(signals), kept["network"])
    dmn = table[(table.network_a == "DMN") & (table.network_b == "DMN")]
    assert dmn["n_pairs"].item() == 3


def test_sphere_rois_refuse_a_native_space_run(raichle):
    run = _planted_run(raichle, _space())
    run = dataclasses.replace(run, space=_space(space="T1w"))
    with pytest.raises(InputError, match="T1w"):
        roi_signals(run, raichle)


# ---------------------------------------------------------------- user atlas


def _write_user_atlas(tmp_path, affine, shape, scale=1):
    """Three box parcels (values 3, 7, 9) and a TSV with Schaefer-like network names."""
    labels = np.zeros(shape, dtype=np.int16)
    labels[2 * scale : 5 * scale, 2 * scale : 5 * scale, 2 * scale : 4 * scale] = 3
    labels[8 * scale : 10 * scale, 2 * scale : 5 * scale, 2 * scale : 4 * scale] = 7
    labels[2 * scale : 5 * scale, 10 * scale : 12 * scale, 5 * scale : 7 * scale] = 9
    img_path = tmp_path / "atlas.nii.gz"
    nib.save(nib.Nifti1Image(labels, affine), img_path)
    table_path = tmp_path / "atlas.tsv"
    pd.DataFrame(
        {"index": [3, 7, 9], "name": ["pcc", "insula", "dlpfc"], "network": ["Default", "SalVentAttn", "Cont"]}
    ).to_csv(table_path, sep="\t", index=False)
    return img_path, table_path


def _user_settings(img_path, table_path):
    return NetworkSettings(
        atlas="labels",
        labels_img=str(img_path),
        labels_table=str(table_path),
        networks={"DMN": ["Default"], "SN": ["SalVentAttn"], "ECN": ["Cont"]},
    )


def test_user_atlas_parcels_on_the_run_grid(tmp_path):
    img_path, table_path = _write_user_atlas(tmp_path, AFFINE, SHAPE)
    rois = network_rois(_user_settings(img_path, table_path))
    assert rois["network"].tolist() == ["DMN", "SN", "ECN"]
    assert rois["label_value"].tolist() == [3.0, 7.0, 9.0]
    assert rois["radius_mm"].isna().all()
    # centroid of voxels i 2..4, j 2..4, k 2..3 -> (3, 3, 2.5) voxels
    np.testing.assert_allclose(rois.loc[0, ["x", "y", "z"]].to_numpy(float), [-44.0, -60.0, 2.0])
    space = _space()
    run = _planted_run(None, space)
    signals, kept, dropped = roi_signals(run, rois)
    assert dropped.empty and kept["n_voxels"].tolist() == [18, 12, 12]
    box = np.zeros(SHAPE, dtype=bool)
    box[2:5, 2:5, 2:4] = True
    cols = np.flatnonzero(box[space.mask])
    np.testing.assert_allclose(signals[:, 0], run.data[:, cols].mean(axis=1, dtype=np.float64), rtol=1e-9)


def test_user_atlas_on_a_finer_grid_is_resampled_nearest(tmp_path):
    fine = AFFINE.copy()
    fine[:3, :3] = np.eye(3) * 2.0
    fine[:3, 3] -= 1.0  # 2 mm voxel centres nested inside the 4 mm ones
    shape = tuple(2 * s for s in SHAPE)
    img_path, table_path = _write_user_atlas(tmp_path, fine, shape, scale=2)
    rois = network_rois(_user_settings(img_path, table_path))
    run = _planted_run(None, _space())
    _, kept, _ = roi_signals(run, rois)
    assert kept["n_voxels"].tolist() == [18, 12, 12]


def test_user_atlas_errors(tmp_path):
    img_path, table_path = _write_user_atlas(tmp_path, AFFINE, SHAPE)
    with pytest.raises(SettingsError, match="labels_table"):
        network_rois(NetworkSettings(atlas="labels", labels_img=str(img_path)))
    bad = tmp_path / "bad.tsv"
    pd.DataFrame({"index": [3, 42], "name": ["a", "b"], "network": ["Default", "Cont"]}).to_csv(
        bad, sep="\t", index=False
    )
    with pytest.raises(InputError, match="42"):
        network_rois(_user_settings(img_path, bad))


# ---------------------------------------------------------------- matrix and table


def test_connectivity_matrix_matches_corrcoef():
    rng = np.random.default_rng(1)
    signals = rng.standard_normal((50, 6))
    matrix = connectivity_matrix(signals)
    np.testing.assert_allclose(matrix, np.corrcoef(signals.T), atol=1e-12)
    assert np.array_equal(np.diag(matrix), np.ones(6))
    with pytest.raises(InputError, match=r"shape \(50, 1\).*R >= 2"):
        connectivity_matrix(signals[:, :1])


def test_fisher_z_means_are_exact():
    r = np.array(
        [
            [1.0, 0.5, -0.2, 0.1],
            [0.5, 1.0, 0.3, 1.0],
            [-0.2, 0.3, 1.0, 0.6],
            [0.1, 1.0, 0.6, 1.0],
        ]
    )
    table = network_table(r, ["ECN", "DMN", "DMN", "ECN"]).set_index(["network_a", "network_b"])
    clip = np.arctanh(0.999999)
    within_dmn = np.arctanh(0.3)
    within_ecn = np.arctanh(0.1)
    between = (np.arctanh(0.5) + np.arctanh(-0.2) + clip + np.arctanh(0.6)) / 4
    assert table.index.tolist() == [("DMN", "DMN"), ("DMN", "ECN"), ("ECN", "ECN")]
    assert table.loc[("DMN", "DMN"), "mean_z"] == pytest.approx(within_dmn, abs=1e-12)
    assert table.loc[("ECN", "ECN"), "mean_z"] == pytest.approx(within_ecn, abs=1e-12)
    assert table.loc[("DMN", "ECN"), "mean_z"] == pytest.approx(between, abs=1e-12)
    assert table.loc[("DMN", "ECN"), "mean_r"] == pytest.approx((0.5 - 0.2 + 1.0 + 0.6) / 4)
    assert table["n_pairs"].tolist() == [1, 4, 1]


def test_single_roi_network_has_no_within_pairs():
    r = np.array([[1.0, 0.4, 0.2], [0.4, 1.0, 0.3], [0.2, 0.3, 1.0]])
    table = network_table(r, ["SN", "DMN", "DMN"])
    sn = table[(table.network_a == "SN") & (table.network_b == "SN")]
    assert sn["n_pairs"].item() == 0 and np.isnan(sn["mean_z"].item())
    assert table["network_a"].tolist()[0] == "DMN"


# ---------------------------------------------------------------- graph


def _two_block_matrix():
    """Nodes 0-2 in A, 3-5 in B; node 3 links to node 0 and node 4 with equal weight."""
    r = np.full((6, 6), -0.1)
    r[np.ix_([0, 1, 2], [0, 1, 2])] = 0.6
    r[np.ix_([3, 4, 5], [3, 4, 5])] = 0.6
    r[3, 5] = r[5, 3] = -0.1
    r[0, 3] = r[3, 0] = 0.6
    np.fill_diagonal(r, 1.0)
    return r


def test_participation_coefficient_zero_inside_positive_across():
    roi_table, run_table = graph_measures(_two_block_matrix(), list("AAABBB"), density=1.0)
    p = roi_table.set_index("roi")["participation_coefficient"]
    assert p["ROI_001"] == 0.0 and p["ROI_002"] == 0.0
    assert p["ROI_003"] == pytest.approx(0.5)  # half its strength to A, half to B
    # node 0: 0.6 + 0.6 to A, 0.6 to B -> 1 - (2/3)^2 - (1/3)^2
    assert p["ROI_000"] == pytest.approx(4 / 9)
    assert p["ROI_004"] == 0.0 and p["ROI_005"] == 0.0
    assert roi_table["degree"].tolist() == [3, 2, 2, 2, 2, 1]
    assert roi_table["strength"].iloc[0] == pytest.approx(1.8)
    run = run_table.iloc[0]
    assert run["n_edges"] == 6 and run["threshold_r"] == pytest.approx(0.6)
    assert run["density"] == pytest.approx(6 / 15) and run["density_requested"] == 1.0
    assert run["modularity"] > 0.2


def test_modularity_prefers_the_true_partition():
    matrix = _two_block_matrix()
    _, true_run = graph_measures(matrix, list("AAABBB"), density=1.0)
    _, mixed_run = graph_measures(matrix, list("ABABAB"), density=1.0)
    assert true_run["modularity"].item() > mixed_run["modularity"].item()


def test_proportional_threshold_keeps_top_positive_edges():
    rng = np.random.default_rng(3)
    r = np.corrcoef(rng.standard_normal((5, 40)))
    upper = r[np.triu_indices(5, 1)]
    graph, threshold = threshold_graph(r, 0.3, [str(i) for i in range(5)])
    assert graph.number_of_edges() == 3
    assert threshold == pytest.approx(np.sort(upper)[-3])
    # more edges requested than positive correlations exist: keep only positives
    graph, threshold = threshold_graph(r, 1.0, [str(i) for i in range(5)])
    assert graph.number_of_edges() == int((upper > 0).sum())
    assert threshold > 0
    with pytest.raises(SettingsError, match="graph_density"):
        threshold_graph(r, 0.0, [str(i) for i in range(5)])


def test_complete_positive_graph_has_unit_efficiency_and_long_table():
    r = np.full((4, 4), 0.5)
    np.fill_diagonal(r, 1.0)
    names = ["DMN_001", "DMN_002", "SN_001", "ECN_001"]
    roi_table, run_table = graph_measures(r, ["DMN", "DMN", "SN", "ECN"], 1.0, rois=names)
    assert run_table["global_efficiency"].item() == pytest.approx(1.0)
    long = graph_long_table(roi_table, run_table)
    assert list(long.columns) == ["level", "roi", "network", "measure", "value"]
    assert len(long) == 4 * 3 + 6
    assert long.loc[(long.roi == "SN_001") & (long.measure == "degree"), "value"].item() == 3.0
    assert (long.loc[long.level == "run", "roi"] == "n/a").all()


def test_graph_without_positive_edges():
    r = np.full((3, 3), -0.4)
    np.fill_diagonal(r, 1.0)
    roi_table, run_table = graph_measures(r, ["DMN", "SN", "ECN"], 0.5)
    assert run_table["n_edges"].item() == 0 and np.isnan(run_table["modularity"].item())
    assert np.isnan(run_table["threshold_r"].item())
    assert roi_table["participation_coefficient"].isna().all()


# ---------------------------------------------------------------- one call per run


def test_analyse_networks_end_to_end(raichle):
    mask = np.ones(SHAPE, dtype=bool)
    mask[PCC_BOX] = False
    run = _planted_run(raichle, _space(mask))
    result = analyse_networks(run, NetworkSettings(atlas="raichle_nodes", graph_density=0.3))
    assert result.timeseries_frame().shape == (200, 11)
    relmat = result.relmat_frame()
    assert relmat.columns.tolist() == result.rois["roi"].tolist() and relmat.shape == (11, 11)
    np.testing.assert_allclose(relmat.to_numpy(), np.corrcoef(result.signals, rowvar=False), atol=1e-12)
    assert "DMN_001" not in relmat.columns  # the PCC node was dropped
    assert result.dropped["roi"].tolist() == ["DMN_001"]
    assert result.rois["network"].value_counts().to_dict() == {"ECN": 5, "DMN": 3, "SN": 3}
    assert result.graph_run["n_edges"].item() == round(0.3 * 55)
    assert set(result.graph_frame()["level"]) == {"roi", "run"}
    assert set(result.table["network_a"]) == {"DMN", "SN", "ECN"}
    with pytest.raises(SettingsError, match="PartialCorrelation"):
        NetworkSettings(atlas="raichle_nodes", connectivity="PartialCorrelation")
