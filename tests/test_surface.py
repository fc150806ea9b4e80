"""Surface runs laid out exactly as fMRIPrep writes them: finding, reading, cleaning, networks, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import confounds_table

from trdnet.cli import main
from trdnet.config import DenoiseSettings
from trdnet.errors import InputError
from trdnet.inputs.bids import find_runs
from trdnet.inputs.surface import (
    MNI152_TO_MNI305,
    MNI305_TO_MNI152,
    SurfaceRun,
    load_surface_run,
    read_cifti_series,
    read_gifti_series,
    standard_meshes,
)
from trdnet.surface_pipeline import clean_surface_run

N_FSAVERAGE5 = 10242


def func_gifti(data: np.ndarray) -> nib.gifti.GiftiImage:
    """A ``.func.gii`` as fMRIPrep writes it: one float32 data array per volume."""
    return nib.gifti.GiftiImage(darrays=[
        nib.gifti.GiftiDataArray(np.asarray(volume, dtype=np.float32), intent="NIFTI_INTENT_TIME_SERIES",
                                 datatype="NIFTI_TYPE_FLOAT32")
        for volume in data
    ])


def surf_gifti(coords: np.ndarray, faces: np.ndarray) -> nib.gifti.GiftiImage:
    return nib.gifti.GiftiImage(darrays=[
        nib.gifti.GiftiDataArray(np.asarray(coords, dtype=np.float32), intent="NIFTI_INTENT_POINTSET"),
        nib.gifti.GiftiDataArray(np.asarray(faces, dtype=np.int32), intent="NIFTI_INTENT_TRIANGLE"),
    ])


def write_surface_run(root: Path, sub: str = "01", space: str = "fsaverage5", n_volumes: int = 120,
                      tr: float = 2.0, seed: int = 0, data=None, n_vertices: int = N_FSAVERAGE5,
                      write_tr: bool = True, hemis=("L", "R")) -> dict:
    """One fMRIPrep surface run: ``sub-<l>_task-rest_hemi-{L,R}_space-<space>_bold.func.gii`` + JSON + confounds."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({
        "Name": "fMRIPrep - test", "BIDSVersion": "1.4.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "fMRIPrep", "Version": "23.2.0"}]}))
    func = root / f"sub-{sub}" / "func"
    func.mkdir(parents=True, exist_ok=True)
    paths = {}
    for index, hemi in enumerate(hemis):
        values = data[hemi] if data is not None else 100 + rng.normal(0, 1, (n_volumes, n_vertices))
        path = func / f"sub-{sub}_task-rest_hemi-{hemi}_space-{space}_bold.func.gii"
        nib.save(func_gifti(values), path)
        if write_tr:
            path.with_name(path.name.replace(".func.gii", ".json")).write_text(
                json.dumps({"RepetitionTime": tr, "TaskName": "rest"}))
        paths[hemi] = path
    confounds = func / f"sub-{sub}_task-rest_desc-confounds_timeseries.tsv"
    confounds_table(n_volumes, rng).to_csv(confounds, sep="\t", index=False, na_rep="n/a")
    paths["confounds"] = confounds
    paths["root"] = root
    return paths


def write_t1w(anat: Path, sub: str = "01") -> Path:
    """fMRIPrep's ``desc-preproc_T1w`` beside the surfaces: without it ``anat/`` is not the participant's anatomy."""
    anat.mkdir(parents=True, exist_ok=True)
    path = anat / f"sub-{sub}_desc-preproc_T1w.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), path)
    return path


SGACC = np.array([6.0, 16.0, -10.0])
PLANTED_DLPFC = np.array([-40.0, 36.0, 34.0])


def fsaverage5_mni152() -> dict:
    """MNI152 coordinates of nilearn's fsaverage5 midthickness vertices, computed here from nilearn's meshes."""
    from nilearn.datasets import load_fsaverage

    mesh = load_fsaverage("fsaverage5")
    out = {}
    for hemi, part in (("L", "left"), ("R", "right")):
        mid = (mesh["pial"].parts[part].coordinates + mesh["white_matter"].parts[part].coordinates) / 2
        out[hemi] = (np.c_[mid, np.ones(len(mid))] @ MNI305_TO_MNI152.T)[:, :3]
    return out


def fsaverage5_networks_data(n_volumes: int, seed: int = 0, silent_seed: bool = False) -> dict:
    """fsaverage5 data whose vertices near each Seitzman network share that network's signal,
    with the sgACC's signal planted, sign reversed, in a left DLPFC patch."""
    from trdnet.config import NetworkSettings
    from trdnet.networks import network_rois

    rng = np.random.default_rng(seed)
    rois = network_rois(NetworkSettings())
    sources = {name: rng.normal(size=n_volumes) for name in ("DMN", "SN", "ECN", "sgACC")}
    out = {}
    for hemi, xyz in fsaverage5_mni152().items():
        values = rng.normal(0, 1, (n_volumes, N_FSAVERAGE5))
        for row in rois.itertuples():
            near = np.linalg.norm(xyz - [row.x, row.y, row.z], axis=1) <= 12
            values[:, near] += 2 * sources[row.network][:, None]
        values[:, np.linalg.norm(xyz - SGACC, axis=1) <= 12] += 3 * sources["sgACC"][:, None]
        if hemi == "L":
            values[:, np.linalg.norm(xyz - PLANTED_DLPFC, axis=1) <= 8] -= 3 * sources["sgACC"][:, None]
        values += 100
        values[:, :40] = 0.0  # vertices without signal (as fMRIPrep's medial wall with NaN/zeros)
        if silent_seed:
            values[:, np.linalg.norm(xyz - SGACC, axis=1) <= 10] = 0.0
        out[hemi] = values
    return out


def test_surface_runs_are_found_beside_volume_runs(tmp_path):
    paths = write_surface_run(tmp_path / "fmriprep", n_volumes=20, n_vertices=50)
    runs = find_runs(tmp_path / "fmriprep", space="fsaverage5")
    assert len(runs) == 1 and isinstance(runs[0], SurfaceRun)
    run = runs[0]
    assert run.hemi_bold == {"L": paths["L"], "R": paths["R"]}
    assert run.tr == 2.0 and run.confounds == paths["confounds"]
    assert run.prefix == "sub-01_task-rest_space-fsaverage5" and "hemi" not in run.entities
    with pytest.raises(InputError, match=r"space\(s\) \['fsaverage5'\]"):
        find_runs(tmp_path / "fmriprep", space="MNI152NLin2009cAsym")


def test_missing_right_hemisphere_is_named(tmp_path):
    write_surface_run(tmp_path / "fmriprep", n_volumes=20, n_vertices=50, hemis=("L",))
    with pytest.raises(InputError, match="no right hemisphere.*hemi-R_space-fsaverage5_bold.func.gii"):
        find_runs(tmp_path / "fmriprep", space="fsaverage5")


def test_gifti_series_one_array_per_volume(tmp_path):
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    nib.save(func_gifti(data), tmp_path / "x.func.gii")
    np.testing.assert_array_equal(read_gifti_series(tmp_path / "x.func.gii"), data)


def test_vertices_without_signal_are_left_out_and_counted(tmp_path):
    rng = np.random.default_rng(3)
    data = {h: 100 + rng.normal(size=(30, N_FSAVERAGE5)) for h in ("L", "R")}
    data["L"][:, :100] = 0.0
    data["R"][5, 7] = np.nan
    write_surface_run(tmp_path / "fmriprep", n_volumes=30, data=data)
    run = find_runs(tmp_path / "fmriprep", space="fsaverage5")[0]
    values, geometry = load_surface_run(run)
    assert geometry.n_excluded == {"L": 100, "R": 1}
    assert values.shape == (30, 2 * N_FSAVERAGE5 - 101)
    assert geometry.vertex[0] == 100 and 7 not in geometry.vertex[geometry.hemi == "R"]
    np.testing.assert_allclose(values[:, 0], data["L"][:, 100], rtol=1e-6)
    # fsaverage5 coordinates are MNI305; their MNI152 positions use FreeSurfer's matrix
    np.testing.assert_allclose(geometry.template_xyz,
                               (np.c_[geometry.xyz, np.ones(geometry.n_points)] @ MNI305_TO_MNI152.T)[:, :3])


def test_vertex_count_must_match_the_mesh(tmp_path):
    write_surface_run(tmp_path / "fmriprep", n_volumes=10, n_vertices=40962)
    run = find_runs(tmp_path / "fmriprep", space="fsaverage5")[0]
    with pytest.raises(InputError, match="40962 vertices but the fsaverage5 mesh has 10242"):
        load_surface_run(run)


def test_freesurfer_matrices_are_inverse():
    # both directions are published separately on FreeSurfer's CoordinateSystems page
    np.testing.assert_allclose(MNI305_TO_MNI152 @ MNI152_TO_MNI305, np.eye(4), atol=2e-3)


def test_surface_cleaning_is_nilearn_signal_clean(tmp_path):
    from nilearn import signal
    from nilearn.interfaces.fmriprep import load_confounds

    from trdnet.denoise import clean_arguments, confound_arguments

    write_surface_run(tmp_path / "fmriprep", n_volumes=100)
    run = find_runs(tmp_path / "fmriprep", space="fsaverage5")[0]
    settings = DenoiseSettings()
    cleaned = clean_surface_run(run, settings)
    raw, _ = load_surface_run(run)
    confounds, sample_mask = load_confounds(str(run.bold), **confound_arguments(settings))
    expected = signal.clean(raw[:, :500].astype(float), confounds=confounds, sample_mask=sample_mask,
                            **clean_arguments(settings, 2.0))
    expected = (expected - expected.mean(0)) / expected.std(0)
    np.testing.assert_allclose(cleaned.data[:, :500], expected, atol=2e-3)
    assert cleaned.qc["n_voxels"] == cleaned.space.n_points == 2 * N_FSAVERAGE5


def test_gifti_without_tr_is_refused(tmp_path):
    write_surface_run(tmp_path / "fmriprep", n_volumes=20, write_tr=False)
    run = find_runs(tmp_path / "fmriprep", space="fsaverage5")[0]
    with pytest.raises(InputError, match="no RepetitionTime in its JSON sidecar"):
        clean_surface_run(run, DenoiseSettings())


def test_fsnative_run_reads_the_participants_surfaces(tmp_path):
    root = tmp_path / "fmriprep"
    write_surface_run(root, space="fsnative", n_volumes=60, n_vertices=300)
    anat = root / "sub-01" / "anat"
    write_t1w(anat)
    rng = np.random.default_rng(0)
    for hemi, shift in (("L", -40.0), ("R", 40.0)):
        coords = rng.normal(0, 20, (300, 3)) + [shift, 0, 0]
        faces = np.column_stack([np.arange(298), np.arange(1, 299), np.arange(2, 300)])
        nib.save(surf_gifti(coords, faces), anat / f"sub-01_hemi-{hemi}_pial.surf.gii")
        nib.save(surf_gifti(coords + 2.0, faces), anat / f"sub-01_hemi-{hemi}_white.surf.gii")
    run = find_runs(root, space="fsnative")[0]
    cleaned = clean_surface_run(run, DenoiseSettings())
    pial = nib.load(anat / "sub-01_hemi-L_pial.surf.gii").agg_data("NIFTI_INTENT_POINTSET")
    np.testing.assert_allclose(cleaned.space.xyz[:300], pial + 1.0, atol=1e-4)
    assert cleaned.space.template_xyz is None and "T1w world" in cleaned.qc["surface"]
    (anat / "sub-01_hemi-R_white.surf.gii").unlink()
    with pytest.raises(InputError, match=f"{anat}: no fsnative surface for hemisphere R"):
        clean_surface_run(find_runs(root, space="fsnative")[0], DenoiseSettings())


def test_an_fsnative_run_reads_the_anatomy_it_was_found_with_not_anat(tmp_path):
    """The surfaces and spheres come from the run's anatomy record (found once with the run), whatever anat/
    holds when the run is read; a run found without an anatomy is refused in one line."""
    import dataclasses

    root = tmp_path / "fmriprep"
    write_surface_run(root, space="fsnative", n_volumes=60, n_vertices=300)
    anat = root / "sub-01" / "anat"
    write_t1w(anat)
    elsewhere = tmp_path / "surfaces"
    elsewhere.mkdir()
    rng = np.random.default_rng(1)
    faces = np.column_stack([np.arange(298), np.arange(1, 299), np.arange(2, 300)])
    surfaces = {}
    for hemi, shift in (("L", -40.0), ("R", 40.0)):
        coords = rng.normal(0, 20, (300, 3)) + [shift, 0, 0]
        path = elsewhere / f"sub-01_hemi-{hemi}_midthickness.surf.gii"
        nib.save(surf_gifti(coords, faces), path)
        surfaces[hemi] = {"midthickness": path}
        # a decoy in anat/ that the record does not name
        nib.save(surf_gifti(coords + 100.0, faces), anat / f"sub-01_hemi-{hemi}_midthickness.surf.gii")
    run = find_runs(root, space="fsnative")[0]
    run = dataclasses.replace(run, anatomy=dataclasses.replace(run.anatomy, surfaces=surfaces))
    cleaned = clean_surface_run(run, DenoiseSettings())
    np.testing.assert_allclose(cleaned.space.xyz[:300], nib.load(surfaces["L"]["midthickness"]).agg_data(
        "NIFTI_INTENT_POINTSET"), atol=1e-4)
    with pytest.raises(InputError) as info:
        clean_surface_run(dataclasses.replace(run, anatomy=None), DenoiseSettings())
    assert "an fsnative run needs the participant's fMRIPrep anatomy" in str(info.value)
    assert "sub-01_desc-preproc_T1w" in str(info.value) and "\n" not in str(info.value)


def test_cifti_dense_series_structures(tmp_path):
    vertices = np.array([0, 2, 5])
    brain = nib.cifti2.BrainModelAxis.from_mask(np.array([1, 0, 1, 0, 0, 1], bool), name="CortexLeft")
    volume = np.zeros((3, 3, 3), bool)
    volume[1, 2, 0] = volume[2, 2, 2] = True
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-2, -4, -6]
    brain = brain + nib.cifti2.BrainModelAxis.from_mask(volume, name="Thalamus_Left", affine=affine)
    series = nib.cifti2.SeriesAxis(start=0, step=0.8, size=4)
    data = np.arange(20, dtype=np.float32).reshape(4, 5)
    path = tmp_path / "sub-01_task-rest_space-fsLR_den-91k_bold.dtseries.nii"
    nib.save(nib.Cifti2Image(data, header=(series, brain)), path)
    values, models = read_cifti_series(path)
    np.testing.assert_array_equal(values, data)
    cols, vertex, size = models["cortex"]["L"]
    np.testing.assert_array_equal(cols, [0, 1, 2])
    np.testing.assert_array_equal(vertex, vertices)
    assert size == 6 and models["tr"] == 0.8
    vox_cols, xyz, names = models["voxels"]
    np.testing.assert_array_equal(vox_cols, [3, 4])
    np.testing.assert_allclose(xyz, [[0, 0, -6], [2, 0, -2]])
    assert set(names) == {"CIFTI_STRUCTURE_THALAMUS_LEFT"}


def test_trdnet_run_on_fsaverage5_writes_networks_the_seed_map_and_the_target(surface_networks_run, tmp_path,
                                                                            capsys):
    root = Path(shutil.copytree(surface_networks_run("fsaverage5"), tmp_path / "fmriprep"))
    out = tmp_path / "out"
    code = main(["run", str(root), str(out), "participant", "--space", "fsaverage5", "--no-report",
                 "--n-bootstrap", "5"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    line = next(x for x in printed.splitlines() if x.startswith("sub-01_task-rest_space-fsaverage5"))
    assert "mm MNI305 (vertex" in line and "hemi-L" in line
    func = out / "sub-01" / "func"
    table = pd.read_csv(func / "sub-01_task-rest_space-fsaverage5_networks.tsv", sep="\t")
    within = table[table.network_a == table.network_b].mean_z.mean()
    between = table[table.network_a != table.network_b].mean_z.mean()
    assert within > between + 0.3
    sidecar = json.loads((func / "sub-01_task-rest_space-fsaverage5_networks.json").read_text())
    dropped = pd.DataFrame(sidecar["DroppedROIs"])
    assert len(dropped) > 0  # subcortical and cerebellar spheres catch no cortical vertex, and say so
    qc = pd.read_csv(func / "sub-01_task-rest_space-fsaverage5_qc.tsv", sep="\t")
    assert qc.n_voxels.iloc[0] == 2 * N_FSAVERAGE5 - 80
    # the sgACC seed map, one GIFTI per hemisphere over the whole mesh, NaN where there is no signal
    record = json.loads((out / "logs" / "sub-01_task-rest_space-fsaverage5_done.json").read_text())
    xyz = fsaverage5_mni152()
    usable = sum(int((np.linalg.norm(xyz[h][40:] - SGACC, axis=1) <= 10).sum()) for h in ("L", "R"))
    assert record["Summary"]["sgacc_seed_vertices"] == usable > 0
    from trdnet.config import TargetSettings
    from trdnet.targeting.regions import site_coordinates

    sites = np.array(list(site_coordinates(TargetSettings().search_sites).values()))
    left = np.linalg.norm(xyz["L"][40:, None, :] - sites[None], axis=2).min(axis=1) <= 20
    assert record["Summary"]["search_vertices"] == int(left.sum()) > 0  # left hemisphere only
    maps = {h: nib.load(func / f"sub-01_task-rest_hemi-{h}_space-fsaverage5_stat-r_desc-sgacc_boldmap.func.gii")
            .darrays[0].data for h in ("L", "R")}
    assert all(m.shape == (N_FSAVERAGE5,) and np.isnan(m[:40]).all() and np.isfinite(m[40:]).all()
               for m in maps.values())
    planted = np.linalg.norm(xyz["L"] - PLANTED_DLPFC, axis=1) <= 6
    elsewhere = np.linalg.norm(xyz["L"] - PLANTED_DLPFC, axis=1) > 30
    assert maps["L"][planted].mean() < -0.5 < maps["L"][elsewhere & np.isfinite(maps["L"])].mean()
    # the target: a left vertex of the planted patch, in MNI305 with its MNI152 position beside it
    targets = pd.read_csv(func / "sub-01_task-rest_space-fsaverage5_targets.tsv", sep="\t")
    row = targets[targets.target == "personalised"].iloc[0]
    vertex = int(row.vertex)
    assert row.hemi == "L" and row.space == "MNI305" and row.mesh == "fsaverage5"
    mid = standard_meshes("fsaverage5")[0]["L"][0]
    np.testing.assert_allclose([row.x, row.y, row.z], mid[vertex], atol=1e-4)
    np.testing.assert_allclose([row.mni152_x, row.mni152_y, row.mni152_z], xyz["L"][vertex], atol=1e-4)
    assert np.linalg.norm(xyz["L"][vertex] - PLANTED_DLPFC) <= 8  # inside the planted patch
    assert "linear approximation" in row.mni152_mapping
    assert np.isfinite(row.bootstrap_r95_mm) and row.reliability in ("good", "fair", "poor")
    references = targets[targets.method == "reference"]
    assert (references.space == "MNI152NLin2009cAsym").all() and references.hemi.isna().all()
    # candidates, bootstrap sites and region masks through the same outputs as volume runs
    assert len(pd.read_csv(func / "sub-01_task-rest_space-fsaverage5_desc-candidates_targets.tsv", sep="\t"))
    assert len(pd.read_csv(func / "sub-01_task-rest_space-fsaverage5_desc-bootstrap_targets.tsv", sep="\t")) == 5
    search = nib.load(next(func.glob("*hemi-L*desc-searchregion_mask.label.gii"))).darrays[0].data
    assert search.sum() == record["Summary"]["search_vertices"] and search[vertex] == 1
    assert record["Summary"]["target_vertex"] == vertex
    # the report draws the target on the cortex
    assert main(["report", str(out)]) == 0
    html = (out / "sub-01.html").read_text()
    assert "sgACC seed on the inflated fsaverage5 cortex" in html  # the seed map, drawn on the cortex
    assert "gold patch: the personalised target vertex" in html


def test_a_seed_on_the_medial_wall_only_is_refused_in_one_line(tmp_path, capsys):
    root = tmp_path / "fmriprep"
    write_surface_run(root, n_volumes=120, data=fsaverage5_networks_data(120, silent_seed=True))
    code = main(["run", str(root), str(tmp_path / "out"), "participant", "--space", "fsaverage5", "--no-report"])
    printed = capsys.readouterr().out
    assert code == 1
    line = next(x for x in printed.splitlines() if "FAILED" in x)
    assert "only 0 cortical vertices with signal" in line and "medial wall" in line


def write_fslr_cifti_run(root: Path, n_volumes: int = 120, seed: int = 0) -> dict:
    """An fMRIPrep CIFTI run (``space-fsLR_den-91k_bold.dtseries.nii``): cortex without its first 2000 vertices
    per hemisphere (a stand-in medial wall) and a subcortical block of voxels around the sgACC seed point."""
    from trdnet.config import NetworkSettings
    from trdnet.inputs.surface import fslr_meshes
    from trdnet.networks import network_rois

    rng = np.random.default_rng(seed)
    meshes = fslr_meshes()
    affine = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in (91, 109, 91)], indexing="ij"), axis=-1)
    volume = np.linalg.norm(ijk @ affine[:3, :3].T + affine[:3, 3] - SGACC, axis=-1) <= 6
    axes, xyz = None, []
    for hemi, name in (("L", "CortexLeft"), ("R", "CortexRight")):
        mask = np.ones(len(meshes[hemi][0]), dtype=bool)
        mask[:2000] = False
        axis = nib.cifti2.BrainModelAxis.from_mask(mask, name=name)
        axes = axis if axes is None else axes + axis
        xyz.append(meshes[hemi][0][mask])
    voxels = nib.cifti2.BrainModelAxis.from_mask(volume, name="Accumbens_Right", affine=affine)
    axes = axes + voxels
    xyz.append(voxels.voxel @ affine[:3, :3].T + affine[:3, 3])
    xyz = np.concatenate(xyz)
    sources = {name: rng.normal(size=n_volumes) for name in ("DMN", "SN", "ECN", "sgACC")}
    data = rng.normal(0, 1, (n_volumes, len(xyz)))
    for row in network_rois(NetworkSettings()).itertuples():
        data[:, np.linalg.norm(xyz - [row.x, row.y, row.z], axis=1) <= 12] += 2 * sources[row.network][:, None]
    data[:, np.linalg.norm(xyz - SGACC, axis=1) <= 12] += 3 * sources["sgACC"][:, None]
    data[:, np.linalg.norm(xyz - PLANTED_DLPFC, axis=1) <= 8] -= 3 * sources["sgACC"][:, None]
    data[:, 5] = 0.0  # one column without signal
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({
        "Name": "fMRIPrep - test", "BIDSVersion": "1.4.0", "DatasetType": "derivative"}))
    func = root / "sub-01" / "func"
    func.mkdir(parents=True)
    path = func / "sub-01_task-rest_space-fsLR_den-91k_bold.dtseries.nii"
    series = nib.cifti2.SeriesAxis(start=0, step=2.0, size=n_volumes, unit="SECOND")
    nib.save(nib.Cifti2Image((data + 100).astype(np.float32), header=(series, axes)), path)
    path.with_name(path.name.replace(".dtseries.nii", ".json")).write_text(json.dumps({"RepetitionTime": 2.0}))
    confounds_table(n_volumes, rng).to_csv(func / "sub-01_task-rest_desc-confounds_timeseries.tsv", sep="\t",
                                           index=False, na_rep="n/a")
    return {"path": path, "xyz": xyz, "root": root}


@pytest.mark.slow  # a whole fsLR CIFTI run through the command line
def test_trdnet_run_on_fslr_cifti(tmp_path, capsys):
    from trdnet.inputs.surface import fslr_meshes

    paths = write_fslr_cifti_run(tmp_path / "fmriprep")
    out = tmp_path / "out"
    code = main(["run", str(paths["root"]), str(out), "participant", "--space", "fsLR", "--no-report"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    func = out / "sub-01" / "func"
    table = pd.read_csv(func / "sub-01_task-rest_space-fsLR_den-91k_networks.tsv", sep="\t")
    within = table[table.network_a == table.network_b].mean_z.mean()
    assert within > table[table.network_a != table.network_b].mean_z.mean() + 0.3
    # the seed takes the cortical vertices and the subcortical voxels within 10 mm, with signal
    record = json.loads((out / "logs" / "sub-01_task-rest_space-fsLR_den-91k_done.json").read_text())
    near = np.linalg.norm(paths["xyz"] - SGACC, axis=1) <= 10
    near[5] = False
    assert record["Summary"]["sgacc_seed_vertices"] == int(near.sum())
    scalar = nib.load(func / "sub-01_task-rest_space-fsLR_den-91k_stat-r_desc-sgacc_boldmap.dscalar.nii")
    source = nib.load(paths["path"])
    assert scalar.header.get_axis(1) == source.header.get_axis(1)
    values = np.asarray(scalar.dataobj)[0]
    assert np.isnan(values[5]) and np.isfinite(np.delete(values, 5)).all()
    planted = np.linalg.norm(paths["xyz"] - PLANTED_DLPFC, axis=1) <= 6
    far = np.linalg.norm(paths["xyz"] - PLANTED_DLPFC, axis=1) > 30
    assert values[planted].mean() < -0.5 < np.nanmean(values[far])
    # the target: a left cortex vertex of the planted patch, in fsLR coordinates, through the same outputs
    targets = pd.read_csv(func / "sub-01_task-rest_space-fsLR_den-91k_targets.tsv", sep="\t")
    row = targets[targets.target == "personalised"].iloc[0]
    assert row.hemi == "L" and row.space == "fsLR" and row.mesh == "fsLR"
    np.testing.assert_allclose([row.x, row.y, row.z], fslr_meshes()["L"][0][int(row.vertex)], atol=1e-4)
    assert np.linalg.norm([row.x - PLANTED_DLPFC[0], row.y - PLANTED_DLPFC[1], row.z - PLANTED_DLPFC[2]]) <= 8
    search = np.asarray(nib.load(func / "sub-01_task-rest_space-fsLR_den-91k_desc-searchregion_mask.dscalar.nii")
                        .dataobj)[0]
    assert search.sum() == record["Summary"]["search_vertices"] and search[5] == 0


def test_fsnative_run_finds_mni_positions_through_the_registered_sphere(surface_networks_run, tmp_path, capsys):
    # a participant whose cortex happens to be fsaverage5's, in T1w coordinates shifted from MNI305,
    # and whose registered sphere is fsaverage5's sphere, rescaled and moved (as tkr/scanner offsets do)
    from nilearn.datasets import load_fsaverage

    root = Path(shutil.copytree(surface_networks_run("fsnative"), tmp_path / "fmriprep"))
    anat = root / "sub-01" / "anat"
    write_t1w(anat)
    meshes, _ = standard_meshes("fsaverage5")
    fsaverage = load_fsaverage("fsaverage5")
    for hemi, part in (("L", "left"), ("R", "right")):
        coords, faces = meshes[hemi]
        nib.save(surf_gifti(coords + [3.0, -20.0, 10.0], faces), anat / f"sub-01_hemi-{hemi}_midthickness.surf.gii")
        sphere = fsaverage["sphere"].parts[part].coordinates * 1.02 + [1.0, 2.0, -3.0]
        nib.save(surf_gifti(sphere, faces), anat / f"sub-01_hemi-{hemi}_desc-reg_sphere.surf.gii")
    run = find_runs(root, space="fsnative")[0]
    cleaned = clean_surface_run(run, DenoiseSettings())
    expected = np.concatenate([xyz[40:] for xyz in fsaverage5_mni152().values()])
    np.testing.assert_allclose(cleaned.space.template_xyz, expected, atol=1e-4)
    np.testing.assert_allclose(cleaned.space.xyz[0], meshes["L"][0][40] + [3.0, -20.0, 10.0], atol=1e-4)
    out = tmp_path / "out"
    # the navigator files are another test's (they need fMRIPrep's T1w <-> MNI transform, not written here);
    # the target's reliability is the fsaverage5 run's test's
    no_navigator = tmp_path / "no_navigator.json"
    no_navigator.write_text(json.dumps({"export": {"native": False}, "targeting": {"n_bootstrap": 5}}))
    assert main(["run", str(root), str(out), "participant", "--space", "fsnative", "--no-report",
                 "--settings", str(no_navigator)]) == 0
    table = pd.read_csv(out / "sub-01" / "func" / "sub-01_task-rest_space-fsnative_networks.tsv", sep="\t")
    assert table[table.network_a == table.network_b].mean_z.mean() > table[
        table.network_a != table.network_b].mean_z.mean() + 0.3
    # the target is a vertex of the participant's own midthickness, in T1w world coordinates, and its MNI152
    # position (through the registered sphere) lies in the planted patch
    targets = pd.read_csv(out / "sub-01" / "func" / "sub-01_task-rest_space-fsnative_targets.tsv", sep="\t")
    row = targets[targets.target == "personalised"].iloc[0]
    vertex = int(row.vertex)
    assert row.hemi == "L" and row.space == "T1w" and "registered sphere" in row.mni152_mapping
    np.testing.assert_allclose([row.x, row.y, row.z], meshes["L"][0][vertex] + [3.0, -20.0, 10.0], atol=1e-4)
    assert np.linalg.norm(fsaverage5_mni152()["L"][vertex] - PLANTED_DLPFC) <= 8
    # without the left registered sphere, MNI network spheres cannot be placed: one line names that sphere,
    # not the volume transform (which is there)
    (anat / "sub-01_hemi-L_desc-reg_sphere.surf.gii").unlink()
    (anat / "sub-01_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5").write_bytes(b"")
    capsys.readouterr()
    assert main(["run", str(root), str(tmp_path / "out2"), "participant", "--space", "fsnative",
                 "--no-report", "--settings", str(no_navigator)]) == 1
    failed = [line for line in capsys.readouterr().out.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and "without a transform to MNI" in failed[0]
    assert "sub-01_hemi-L_desc-reg_sphere.surf.gii is missing" in failed[0]
    assert "hemi-R_desc-reg_sphere" not in failed[0] and "xfm.h5" not in failed[0]


def test_a_mesh_not_available_offline_is_refused_in_one_line(tmp_path, capsys):
    root = tmp_path / "fmriprep"
    # the mesh is refused whatever the series holds: a few volumes are enough
    write_surface_run(root, space="fsaverage6", n_volumes=5, n_vertices=40962)
    code = main(["run", str(root), str(tmp_path / "out"), "participant", "--space", "fsaverage6", "--no-report"])
    line = next(x for x in capsys.readouterr().out.splitlines() if "FAILED" in x)
    assert code == 1 and "'fsaverage6': no mesh available offline" in line and "not supported yet" in line


@pytest.mark.slow  # two whole surface runs and the participant step
def test_a_participant_with_two_surface_runs_gets_one_target_on_the_mesh(tmp_path, capsys):
    root = tmp_path / "fmriprep"
    for run, seed in (("1", 1), ("2", 2)):
        paths = write_surface_run(tmp_path / f"single{run}", n_volumes=150, seed=seed,
                                  data=fsaverage5_networks_data(150, seed=seed))
        func = root / "sub-01" / "func"
        func.mkdir(parents=True, exist_ok=True)
        for path in paths["root"].rglob("*"):
            if path.is_file():
                name = path.name.replace("_task-rest_", f"_task-rest_run-{run}_")
                target = root / path.relative_to(paths["root"]).parent / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(path.read_bytes())
    out = tmp_path / "out"
    code = main(["run", str(root), str(out), "participant", "--space", "fsaverage5", "--no-report",
                 "--n-bootstrap", "5"])
    assert code == 0, capsys.readouterr().out
    found = list(out.rglob("*desc-participant_targets.tsv"))
    assert len(found) == 1
    row = pd.read_csv(found[0], sep="\t").iloc[0]
    vertex = int(row.vertex)
    assert row.hemi == "L" and row.space == "MNI305" and np.isfinite(row.retest_mm)
    assert np.linalg.norm(fsaverage5_mni152()["L"][vertex] - PLANTED_DLPFC) <= 8


def test_hierarchical_on_a_surface_run_is_refused_before_any_work(tmp_path, capsys):
    root = tmp_path / "fmriprep"
    write_surface_run(root, n_volumes=60)
    out = tmp_path / "out"
    code = main(["run", str(root), str(out), "participant", "--space", "fsaverage5", "--no-report",
                 "--target-method", "cluster", "hierarchical"])
    captured = capsys.readouterr()
    assert code == 2
    assert "'hierarchical' is not implemented on cortical meshes" in captured.err + captured.out
    assert "Traceback" not in captured.err and not list(out.rglob("*.tsv"))
    code = main(["run", str(root), str(out), "participant", "--space", "fsaverage5", "--no-report",
                 "--target-method", "seedmap"])
    captured = capsys.readouterr()
    assert code == 2 and "per-vertex group map for cortical meshes is not implemented" in captured.err + captured.out


def test_hemispheres_with_different_trs_are_refused_naming_both_sidecars(tmp_path):
    paths = write_surface_run(tmp_path / "fmriprep", n_volumes=20, n_vertices=50)
    right_json = paths["R"].with_name(paths["R"].name.replace(".func.gii", ".json"))
    right_json.write_text(json.dumps({"RepetitionTime": 1.5, "TaskName": "rest"}))
    with pytest.raises(InputError, match=r"hemi-L_space-fsaverage5_bold\.json: RepetitionTime 2 s but "
                                         r".*hemi-R_space-fsaverage5_bold\.json says 1\.5 s") as caught:
        find_runs(tmp_path / "fmriprep", space="fsaverage5")
    assert "\n" not in str(caught.value)


def test_cifti_series_step_and_json_tr_disagreeing_uses_the_json_and_records_both(tmp_path, caplog):
    case = write_fslr_cifti_run(tmp_path / "fmriprep", n_volumes=60)
    sidecar = case["path"].with_name(case["path"].name.replace(".dtseries.nii", ".json"))
    img = nib.load(case["path"], mmap=False)  # rewritten in place below
    data, brain = img.get_fdata(dtype=np.float32), img.header.get_axis(1)
    series = nib.cifti2.SeriesAxis(start=0, step=1.0, size=60, unit="SECOND")
    nib.save(nib.Cifti2Image(data, header=(series, brain)), case["path"])
    run = find_runs(case["root"], space="fsLR")[0]
    with caplog.at_level("WARNING"):
        cleaned = clean_surface_run(run, DenoiseSettings())
    assert cleaned.qc["tr"] == 2.0
    assert cleaned.qc["tr_source"] == f"{sidecar.name} RepetitionTime"
    assert "CIFTI header SeriesStep says 1 s, the JSON sidecar 2 s" in cleaned.qc["tr_note"]
    assert [r.getMessage() for r in caplog.records if "SeriesStep" in r.getMessage()] == [
        f"{case['path']}: {cleaned.qc['tr_note']}"]
    sidecar.unlink()  # no JSON: a SeriesStep in milliseconds is refused with its likely unit
    series = nib.cifti2.SeriesAxis(start=0, step=2000.0, size=60, unit="SECOND")
    nib.save(nib.Cifti2Image(data, header=(series, brain)), case["path"])
    with pytest.raises(InputError, match="header repetition time 2000 s .*likely milliseconds"):
        clean_surface_run(find_runs(case["root"], space="fsLR")[0], DenoiseSettings())


def test_a_hemisphere_pair_named_in_its_own_entity_order_is_paired_in_that_order(tmp_path):
    paths = write_surface_run(tmp_path / "fmriprep", n_volumes=20, n_vertices=50, hemis=("L",))
    left = paths["L"].with_name("sub-01_task-rest_space-fsaverage5_hemi-L_bold.func.gii")
    paths["L"].rename(left)
    paths["L"].with_name(paths["L"].name.replace(".func.gii", ".json")).rename(left.with_name(
        "sub-01_task-rest_space-fsaverage5_hemi-L_bold.json"))
    with pytest.raises(InputError, match=r"no right hemisphere.*expected "
                                         r"sub-01_task-rest_space-fsaverage5_hemi-R_bold\.func\.gii\)$"):
        find_runs(tmp_path / "fmriprep", space="fsaverage5")
    nib.save(func_gifti(np.ones((20, 50))), left.with_name("sub-01_task-rest_space-fsaverage5_hemi-R_bold.func.gii"))
    run = find_runs(tmp_path / "fmriprep", space="fsaverage5")[0]
    assert run.hemi_bold["R"].name == "sub-01_task-rest_space-fsaverage5_hemi-R_bold.func.gii"
    assert run.tr == 2.0 and run.tr_source == "sub-01_task-rest_space-fsaverage5_hemi-L_bold.json RepetitionTime"


def test_seed_map_figure_shows_the_target_in_gold_at_the_target_vertex():
    from matplotlib.colors import to_rgb
    from mpl_toolkits.mplot3d import proj3d
    from nilearn import datasets, surface

    from trdnet.report.figures_surface import seed_map_on_cortex
    from trdnet.report.plotting import TARGET_COLOR

    fsaverage = datasets.fetch_surf_fsaverage("fsaverage5")
    pial = surface.load_surf_mesh(fsaverage["pial_left"]).coordinates
    target = int(np.argmin(np.linalg.norm(pial - MNI152_TO_MNI305[:3, :3] @ PLANTED_DLPFC
                                          - MNI152_TO_MNI305[:3, 3], axis=1)))
    values = {"L": np.zeros(N_FSAVERAGE5), "R": np.zeros(N_FSAVERAGE5)}
    fig = seed_map_on_cortex(values, marks={"L": [target]})
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float) / 255
    lateral = fig.axes[0]
    box = lateral.get_window_extent()
    rows = slice(int(pixels.shape[0] - box.y1), int(pixels.shape[0] - box.y0))
    cols = slice(int(box.x0), int(box.x1))
    gold = np.argwhere((np.abs(pixels[rows, cols] - to_rgb(TARGET_COLOR)) < 0.12).all(axis=-1))
    assert len(gold) >= 10  # a patch, not a stray pixel
    inflated = surface.load_surf_mesh(fsaverage["infl_left"]).coordinates[target]
    x, y, _ = proj3d.proj_transform(*inflated, lateral.get_proj())
    px, py = lateral.transData.transform((x, y))
    centre = gold.mean(axis=0) + [rows.start, cols.start]  # (row, column)
    assert np.hypot(centre[0] - (pixels.shape[0] - py), centre[1] - px) < 10


def test_standard_meshes_are_read_once_per_process_and_cannot_be_changed_by_a_caller():
    from trdnet.inputs.surface import standard_meshes

    first, surface = standard_meshes("fsaverage5")
    first.pop("R")  # a caller's own dict
    second, again = standard_meshes("fsaverage5")
    assert set(second) == {"L", "R"} and again == surface
    assert second["L"][0] is first["L"][0]
    with pytest.raises(ValueError, match="read-only"):
        second["L"][0][0, 0] = 0.0
