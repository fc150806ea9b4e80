"""Surface atlases the user gives (.label.gii per hemisphere, CIFTI .dlabel.nii) for the network tables."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from test_surface import N_FSAVERAGE5, fsaverage5_mni152, fsaverage5_networks_data, write_surface_run

from trdnet.cleaned import CleanedRun, zscore_columns
from trdnet.cli import main
from trdnet.config import NetworkSettings
from trdnet.errors import InputError
from trdnet.geometry import MeshGeometry
from trdnet.networks import analyse_networks, network_rois, read_surface_labels, roi_signals

# Parcels around Seitzman ROIs of each network (left-hemisphere MNI152 centre, mirrored on the right), so the
# planted network signals reach them: (left value, right value, name, network, centre). The PCC parcel has one
# value on both hemispheres: one ROI across both.
PARCELS = [(1, 1, "pcc", "DMN", (-8.0, -52.0, 30.0)), (5, 15, "angular", "DMN", (-46.0, -66.0, 30.0)),
           (2, 12, "insula", "SN", (-36.0, 14.0, 2.0)), (3, 13, "ipl", "ECN", (-42.0, -54.0, 44.0)),
           (4, 14, "occipital", "Visual", (-20.0, -90.0, 4.0))]

def label_gifti(values: np.ndarray) -> nib.gifti.GiftiImage:
    return nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(
        np.asarray(values, dtype=np.int32), intent="NIFTI_INTENT_LABEL", datatype="NIFTI_TYPE_INT32")])


def write_label_pair(folder, labels: dict, stem: str = "tpl-fsaverage_hemi-{h}_den-10k_atlas-test_dseg") -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for hemi, values in labels.items():
        paths[hemi] = folder / (stem.format(h=hemi) + ".label.gii")
        nib.save(label_gifti(values), paths[hemi])
    return paths


def write_labels_table(path, rows) -> str:
    pd.DataFrame(rows, columns=["index", "name", "network"]).to_csv(path, sep="\t", index=False)
    return str(path)


def fsaverage5_parcels(radius_mm: float = 10.0) -> dict:
    """Label value per fsaverage5 vertex: the PARCELS, 0 elsewhere."""
    out = {}
    for hemi, xyz in fsaverage5_mni152().items():
        labels = np.zeros(N_FSAVERAGE5, dtype=np.int64)
        for left, right, _, _, centre in PARCELS:
            point = np.array(centre) * ([1, 1, 1] if hemi == "L" else [-1, 1, 1])
            labels[np.linalg.norm(xyz - point, axis=1) <= radius_mm] = left if hemi == "L" else right
        out[hemi] = labels
    return out


def parcels_table(path) -> str:
    rows = [(left, f"{name}_L", net) for left, _, name, net, _ in PARCELS]
    rows += [(right, f"{name}_R", net) for left, right, name, net, _ in PARCELS if right != left]
    return write_labels_table(path, rows)

def settings_file(path, labels_img, labels_table) -> str:
    path.write_text(json.dumps({"networks": {"atlas": "labels", "labels_img": str(labels_img),
                                             "labels_table": str(labels_table)}}))
    return str(path)


def test_trdnet_run_on_fsaverage5_with_a_label_gifti_pair(tmp_path, capsys):
    root = tmp_path / "fmriprep"
    write_surface_run(root, n_volumes=150, data=fsaverage5_networks_data(150))
    atlas = write_label_pair(tmp_path / "atlas", fsaverage5_parcels())
    table = parcels_table(tmp_path / "atlas" / "labels.tsv")
    settings = settings_file(tmp_path / "settings.json", atlas["L"], table)
    out = tmp_path / "out"
    code = main(["run", str(root), str(out), "participant", "--space", "fsaverage5", "--no-report",
                 "--settings", settings])
    printed = capsys.readouterr().out
    assert code == 0, printed
    func = out / "sub-01" / "func"
    networks = pd.read_csv(func / "sub-01_task-rest_space-fsaverage5_networks.tsv", sep="\t")
    assert {(a, b) for a, b in zip(networks.network_a, networks.network_b)} >= {("DMN", "DMN"), ("DMN", "SN"),
                                                                                ("SN", "ECN")}
    within = networks[networks.network_a == networks.network_b].mean_z.mean()
    between = networks[networks.network_a != networks.network_b].mean_z.mean()
    assert within > between + 0.3
    # one ROI per parcel (value 1 spans both hemispheres); the Visual parcels map to no network
    relmat = json.loads(next(func.glob("*_relmat.json")).read_text())
    rois = pd.DataFrame(relmat["ROIs"])
    assert list(rois.network) == ["DMN"] * 3 + ["SN"] * 2 + ["ECN"] * 2
    parcels, xyz = fsaverage5_parcels(), fsaverage5_mni152()
    signal = np.arange(N_FSAVERAGE5) >= 40  # fsaverage5_networks_data leaves the first 40 vertices without signal
    assert rois.n_voxels.iloc[0] == int(((parcels["L"] == 1) & signal).sum() + ((parcels["R"] == 1) & signal).sum())
    # each parcel sits at the mean MNI152 position of its vertices with signal on this run
    ipl_right = xyz["R"][(parcels["R"] == 13) & signal].mean(axis=0)
    row = rois.index[rois.atlas_label == "ECN | ipl_R"][0]
    np.testing.assert_allclose(rois.loc[row, ["x", "y", "z"]].to_numpy(float), ipl_right, atol=1e-4)
    assert abs(rois.x.iloc[0]) < 5  # the PCC pair, mirrored, centres near the midline
    # the atlas table shared by every run gives no position of its own to a surface parcel
    shared = pd.read_csv(next(out.glob("atlas-*_dseg.tsv")), sep="\t")
    assert shared[["x", "y", "z"]].isna().all().all()
    assert len(list(func.glob("*_graph.tsv"))) == 1


def test_an_atlas_on_another_mesh_is_refused_in_one_line(tmp_path, capsys):
    root = tmp_path / "fmriprep"
    write_surface_run(root, n_volumes=60)
    thirds = np.repeat([1, 2, 3], 40962 // 3 + 1)[:40962]  # fsaverage6
    atlas = write_label_pair(tmp_path / "atlas", {"L": thirds, "R": thirds})
    table = write_labels_table(tmp_path / "labels.tsv", [(1, "a", "DMN"), (2, "b", "SN"), (3, "c", "ECN")])
    settings = settings_file(tmp_path / "settings.json", atlas["L"], table)
    code = main(["run", str(root), str(tmp_path / "out"), "participant", "--space", "fsaverage5", "--no-report",
                 "--settings", settings])
    printed = capsys.readouterr()
    assert code == 2
    assert printed.err.count("\n") == 1 and printed.err.startswith("trdnet: error: ")
    assert "40962 vertices per hemisphere (fsaverage6)" in printed.err and "fsaverage5 mesh has 10242" in printed.err
    assert not (tmp_path / "out" / "sub-01").exists()  # refused before any work


# ---- small meshes: two hemispheres of a 6 x 5 grid each --------------------------------------------------------


def grid_mesh(nx: int = 6, ny: int = 5, x0: float = 0.0):
    xs, ys = np.meshgrid(np.arange(nx) * 3.0, np.arange(ny) * 3.0, indexing="ij")
    coords = np.c_[xs.ravel() + x0, ys.ravel(), np.zeros(nx * ny)]
    index = np.arange(nx * ny).reshape(nx, ny)
    faces = []
    for i in range(nx - 1):
        for j in range(ny - 1):
            a, b, c, d = index[i, j], index[i + 1, j], index[i, j + 1], index[i + 1, j + 1]
            faces += [(a, b, c), (b, d, c)]
    return coords, np.asarray(faces)


def small_run(keep=None, n_time: int = 80, extra_xyz=None, seed: int = 0) -> CleanedRun:
    meshes = {"L": grid_mesh(x0=-40.0), "R": grid_mesh(x0=25.0)}
    geometry = MeshGeometry.from_meshes(meshes, "fsaverage5", keep=keep, template_affine=np.eye(4),
                                        extra_xyz=extra_xyz)
    data = np.random.default_rng(seed).standard_normal((n_time, geometry.n_points)).astype(np.float32)
    return CleanedRun(data=zscore_columns(data), space=geometry, tr=2.0, retained=np.arange(n_time),
                      n_volumes=n_time)


def three_networks(n: int = 30) -> dict:
    left = np.repeat([1, 2, 3], n // 3)
    return {"L": left, "R": np.zeros(n, dtype=np.int64)}


def test_parcels_take_the_vertices_of_their_label_and_their_mean_position(tmp_path):
    atlas = write_label_pair(tmp_path, three_networks())
    table = write_labels_table(tmp_path / "t.tsv", [(1, "a", "DMN"), (2, "b", "SN"), (3, "c", "ECN")])
    cleaned = small_run()
    rois = network_rois(NetworkSettings(atlas="labels", labels_img=str(atlas["L"]), labels_table=table))
    assert rois[["x", "y", "z"]].isna().all().all()
    signals, kept, dropped = roi_signals(cleaned, rois)
    assert list(kept.n_voxels) == [10, 10, 10] and dropped.empty
    geometry = cleaned.space
    for k, value in enumerate((1, 2, 3)):
        columns = geometry.hemisphere_columns("L")[three_networks()["L"] == value]
        np.testing.assert_allclose(signals[:, k], cleaned.data[:, columns].mean(axis=1, dtype=float), atol=1e-6)
        np.testing.assert_allclose(kept.loc[k, ["x", "y", "z"]].to_numpy(float),
                                   geometry.template_xyz[columns].mean(axis=0))
    result = analyse_networks(cleaned, NetworkSettings(atlas="labels", labels_img=str(atlas["L"]),
                                                       labels_table=table))
    assert set(result.table.network_a) == {"DMN", "SN", "ECN"}


def test_a_network_without_a_vertex_with_signal_is_refused(tmp_path):
    atlas = write_label_pair(tmp_path, three_networks())
    table = write_labels_table(tmp_path / "t.tsv", [(1, "a", "DMN"), (2, "b", "SN"), (3, "c", "ECN")])
    keep = {"L": three_networks()["L"] != 2, "R": np.ones(30, dtype=bool)}  # the SN parcel is all medial wall
    rois = network_rois(NetworkSettings(atlas="labels", labels_img=str(atlas["L"]), labels_table=table))
    with pytest.raises(InputError, match=r"network\(s\) \['SN'\] get no vertex with signal"):
        roi_signals(small_run(keep=keep), rois)


def test_label_values_missing_from_the_atlas_are_named(tmp_path):
    atlas = write_label_pair(tmp_path, three_networks())
    table = write_labels_table(tmp_path / "t.tsv", [(1, "a", "DMN"), (7, "b", "SN"), (3, "c", "ECN")])
    with pytest.raises(InputError, match=r"label value\(s\) \[7\] do not occur"):
        network_rois(NetworkSettings(atlas="labels", labels_img=str(atlas["L"]), labels_table=table))


def test_gifti_atlas_names_and_partners(tmp_path):
    atlas = write_label_pair(tmp_path, three_networks())
    with pytest.raises(InputError, match="hemi-L in its name"):
        read_surface_labels(atlas["R"])
    atlas["R"].unlink()
    with pytest.raises(InputError, match="no right-hemisphere atlas beside it"):
        read_surface_labels(atlas["L"])
    floats = write_label_pair(tmp_path / "f", {"L": np.full(30, 1.5), "R": np.zeros(30)})
    (tmp_path / "f" / floats["L"].name).write_bytes(nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(
        np.full(30, 1.5, dtype=np.float32))]).to_bytes())
    with pytest.raises(InputError, match="not integers"):
        read_surface_labels(floats["L"])


def test_a_volume_labels_image_cannot_label_a_surface_run(tmp_path):
    img = tmp_path / "atlas.nii.gz"
    nib.save(nib.Nifti1Image(np.repeat([1, 2, 3, 3], 16).reshape(4, 4, 4).astype(np.int16), np.eye(4)), img)
    table = write_labels_table(tmp_path / "t.tsv", [(1, "a", "DMN"), (2, "b", "SN"), (3, "c", "ECN")])
    rois = network_rois(NetworkSettings(atlas="labels", labels_img=str(img), labels_table=table))
    with pytest.raises(InputError, match="a volume labels image cannot label a run in space 'fsaverage5'"):
        roi_signals(small_run(), rois)


def write_dlabel(path, labels: dict, voxels=None) -> None:
    """A CIFTI-2 dense label file over both small meshes (+ optional voxels: (ijk, labels, affine, shape))."""
    axis = None
    values = []
    for hemi, name in (("L", "CortexLeft"), ("R", "CortexRight")):
        part = nib.cifti2.BrainModelAxis.from_surface(np.arange(30), 30, name=name)
        axis = part if axis is None else axis + part
        values.append(labels[hemi])
    if voxels is not None:
        ijk, vox_labels, affine, shape = voxels
        mask = np.zeros(shape, dtype=bool)
        mask[tuple(ijk.T)] = True
        part = nib.cifti2.BrainModelAxis.from_mask(mask, name="Accumbens_Left", affine=affine)
        axis = axis + part
        order = {tuple(v): k for k, v in enumerate(ijk)}
        values.append(np.asarray([vox_labels[order[tuple(v)]] for v in part.voxel[part.volume_mask]]))
    table = {0: ("???", (0, 0, 0, 0)), 1: ("a", (1, 0, 0, 1)), 2: ("b", (0, 1, 0, 1)), 3: ("c", (0, 0, 1, 1)),
             4: ("d", (1, 1, 0, 1))}
    label_axis = nib.cifti2.LabelAxis(["networks"], [table])
    data = np.concatenate(values)[None, :].astype(np.float32)
    nib.save(nib.Cifti2Image(data, header=(label_axis, axis)), path)


def test_cifti_dlabel_labels_the_cortex_by_vertex_and_the_voxels_by_position(tmp_path):
    affine = np.array([[2.0, 0, 0, -10], [0, 2, 0, 20], [0, 0, 2, -4], [0, 0, 0, 1]])
    ijk = np.array([[1, 1, 1], [1, 2, 1], [3, 3, 3]])
    path = tmp_path / "atlas.dlabel.nii"
    labels = {"L": np.repeat([1, 2, 3], 10), "R": np.repeat([1, 0, 3], 10)}
    write_dlabel(path, labels, voxels=(ijk, np.array([4, 4, 0]), affine, (5, 5, 5)))
    # the run has the first two voxels only, and no signal on the left hemisphere's first five vertices
    cleaned = small_run(keep={"L": np.arange(30) >= 5, "R": np.ones(30, bool)},
                        extra_xyz=nib.affines.apply_affine(affine, ijk[:2]))
    table = write_labels_table(tmp_path / "t.tsv", [(1, "a", "DMN"), (2, "b", "SN"), (3, "c", "ECN"),
                                                    (4, "d", "SN")])
    rois = network_rois(NetworkSettings(atlas="labels", labels_img=str(path), labels_table=table))
    _, kept, _ = roi_signals(cleaned, rois)
    assert dict(zip(kept.atlas_label, kept.n_voxels)) == {"DMN | a": 5 + 10, "SN | b": 10, "ECN | c": 20,
                                                          "SN | d": 2}


def test_cifti_dlabel_on_another_mesh_is_refused(tmp_path):
    path = tmp_path / "atlas.dlabel.nii"
    write_dlabel(path, three_networks())
    table = write_labels_table(tmp_path / "t.tsv", [(1, "a", "DMN"), (2, "b", "SN"), (3, "c", "ECN")])
    rois = network_rois(NetworkSettings(atlas="labels", labels_img=str(path), labels_table=table))
    meshes = {"L": grid_mesh(7, 5), "R": grid_mesh(7, 5, x0=30)}
    geometry = MeshGeometry.from_meshes(meshes, "fsLR", template_affine=np.eye(4))
    data = zscore_columns(np.random.default_rng(0).standard_normal((40, geometry.n_points)).astype(np.float32))
    cleaned = CleanedRun(data=data, space=geometry, tr=2.0, retained=np.arange(40), n_volumes=40)
    with pytest.raises(InputError, match="mesh of 30 vertices per hemisphere .an unknown mesh. but the run's "
                                         "fsLR mesh has 35"):
        roi_signals(cleaned, rois)


def test_an_atlas_of_the_wrong_kind_is_refused_before_any_work(tmp_path, capsys):
    root = tmp_path / "fmriprep"
    write_surface_run(root, n_volumes=30, n_vertices=50)
    img = tmp_path / "atlas.nii.gz"
    nib.save(nib.Nifti1Image(np.repeat([1, 2, 3, 3], 16).reshape(4, 4, 4).astype(np.int16), np.eye(4)), img)
    table = write_labels_table(tmp_path / "t.tsv", [(1, "a", "DMN"), (2, "b", "SN"), (3, "c", "ECN")])
    settings = settings_file(tmp_path / "settings.json", img, table)
    code = main(["run", str(root), str(tmp_path / "out"), "participant", "--space", "fsaverage5", "--no-report",
                 "--settings", settings])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "a volume labels image cannot label run sub-01_task-rest_hemi-L_space-fsaverage5_bold.func.gii" in err
    assert not (tmp_path / "out" / "sub-01").exists()


def test_a_pair_on_two_meshes_names_the_file_on_the_other_mesh(tmp_path):
    from trdnet.networks.surface_atlas import check_atlas_mesh, read_surface_labels

    left = np.repeat([1, 2, 3], 10242 // 3 + 1)[:10242]  # fsaverage5
    right = np.repeat([1, 2, 3], 32492 // 3 + 1)[:32492]  # fsLR-32k
    atlas = write_label_pair(tmp_path / "atlas", {"L": left, "R": right})
    with pytest.raises(InputError) as caught:
        check_atlas_mesh(read_surface_labels(atlas["L"]), {"L": 10242, "R": 10242}, "fsaverage5")
    message = str(caught.value)
    assert message.startswith(f"{atlas['R']}: the atlas is on a mesh of 32492 vertices")
    assert "fsaverage5 mesh has 10242" in message and str(atlas["L"]) not in message
