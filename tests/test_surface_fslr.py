"""fsLR CIFTI runs as fMRIPrep writes them: cortex brain models that skip the medial wall, by vertex index.

A CIFTI cortex model lists only the vertices it has (``vertex_indices``), so column k of the file is not
vertex k of the fsLR-32k mesh. The same data written as GIFTI over the whole mesh (medial wall constant)
must give the same seed map, search region and target, vertex for vertex.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import confounds_table
from test_surface import PLANTED_DLPFC, SGACC, func_gifti

from trdnet.config import DenoiseSettings, TargetSettings
from trdnet.inputs.bids import find_runs
from trdnet.inputs.simulate.surface import _fslr_cortex
from trdnet.inputs.surface import fslr_meshes
from trdnet.surface_pipeline import clean_surface_run
from trdnet.targeting import compute_targets

N_VOLUMES = 120


def _write_common(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({
        "Name": "fMRIPrep - test", "BIDSVersion": "1.4.0", "DatasetType": "derivative"}))
    func = root / "sub-01" / "func"
    func.mkdir(parents=True)
    confounds_table(N_VOLUMES, np.random.default_rng(1)).to_csv(
        func / "sub-01_task-rest_desc-confounds_timeseries.tsv", sep="\t", index=False, na_rep="n/a")
    return func


def write_cifti_and_gifti(tmp_path: Path) -> tuple[Path, Path, dict]:
    """The same cortex data as an fMRIPrep CIFTI (medial wall absent, cerebellar voxels after the cortex)
    and as GIFTI per hemisphere on the same fsLR-32k mesh (medial wall constant)."""
    rng = np.random.default_rng(3)
    meshes, cortex = fslr_meshes(), _fslr_cortex()
    assert not cortex["L"].all() and cortex["L"][0]  # a medial wall inside the index range, not a prefix
    source = rng.normal(size=N_VOLUMES)
    full = {}
    for hemi in ("L", "R"):
        xyz = meshes[hemi][0]
        full[hemi] = 100 + rng.normal(0, 1, (N_VOLUMES, len(xyz)))
        full[hemi][:, np.linalg.norm(xyz - SGACC, axis=1) <= 12] += 3 * source[:, None]
        if hemi == "L":
            full[hemi][:, np.linalg.norm(xyz - PLANTED_DLPFC, axis=1) <= 8] -= 3 * source[:, None]
        full[hemi][:, ~cortex[hemi]] = 0.0  # the medial wall: no data
    # CIFTI: cortex models with their vertex indices, then a block of cerebellar voxels far from every region
    affine = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    volume = np.zeros((91, 109, 91), dtype=bool)
    volume[43:47, 25:29, 10:14] = True  # around MNI (0, -72, -48)
    axes = nib.cifti2.BrainModelAxis.from_mask(cortex["L"], name="CortexLeft") + \
        nib.cifti2.BrainModelAxis.from_mask(cortex["R"], name="CortexRight") + \
        nib.cifti2.BrainModelAxis.from_mask(volume, name="Cerebellum", affine=affine)
    voxels = 100 + rng.normal(0, 1, (N_VOLUMES, int(volume.sum())))
    data = np.concatenate([full["L"][:, cortex["L"]], full["R"][:, cortex["R"]], voxels], axis=1)
    func = _write_common(tmp_path / "cifti")
    cifti = func / "sub-01_task-rest_space-fsLR_den-91k_bold.dtseries.nii"
    series = nib.cifti2.SeriesAxis(start=0, step=2.0, size=N_VOLUMES, unit="SECOND")
    nib.save(nib.Cifti2Image(data.astype(np.float32), header=(series, axes)), cifti)
    cifti.with_name(cifti.name.replace(".dtseries.nii", ".json")).write_text(json.dumps({"RepetitionTime": 2.0}))
    func = _write_common(tmp_path / "gifti")
    for hemi in ("L", "R"):
        path = func / f"sub-01_task-rest_hemi-{hemi}_space-fsLR_den-32k_bold.func.gii"
        nib.save(func_gifti(full[hemi]), path)
        path.with_name(path.name.replace(".func.gii", ".json")).write_text(json.dumps({"RepetitionTime": 2.0}))
    return tmp_path / "cifti", tmp_path / "gifti", cortex


def _targets(root: Path):
    run = find_runs(root, space="fsLR")[0]
    cleaned = clean_surface_run(run, DenoiseSettings())
    settings = dataclasses.replace(TargetSettings(), methods=("cluster", "peak"), reliability=False)
    return run, cleaned.space, compute_targets(cleaned, settings, 0)


@pytest.mark.slow  # two whole fsLR-32k runs
def test_a_cifti_run_is_the_gifti_run_on_the_same_mesh_vertex_for_vertex(tmp_path):
    cifti_root, gifti_root, cortex = write_cifti_and_gifti(tmp_path)
    run_c, geom_c, result_c = _targets(cifti_root)
    run_g, geom_g, result_g = _targets(gifti_root)
    assert run_c.kind == "cifti" and run_g.kind == "gifti"
    meshes = fslr_meshes()
    for hemi in ("L", "R"):
        # every cortex vertex of the file, and only those, at its own place on the mesh
        cols_c, cols_g = geom_c.hemisphere_columns(hemi), geom_g.hemisphere_columns(hemi)
        np.testing.assert_array_equal(geom_c.vertex[cols_c], np.flatnonzero(cortex[hemi]))
        np.testing.assert_array_equal(geom_c.vertex[cols_c], geom_g.vertex[cols_g])
        np.testing.assert_allclose(geom_c.xyz[cols_c], meshes[hemi][0][cortex[hemi]])
        np.testing.assert_allclose(np.asarray(result_c.seed_map)[cols_c], np.asarray(result_g.seed_map)[cols_g],
                                   atol=1e-4)
    np.testing.assert_array_equal(geom_c.vertex[result_c.search_columns], geom_g.vertex[result_g.search_columns])
    # the cerebellar voxels are columns after the cortex, in neither region
    assert (geom_c.hemi == "").sum() == 64 and not (geom_c.hemi[result_c.seed_columns] == "").any()
    for method in ("cluster", "peak"):
        row_c = result_c.table[result_c.table.method == method].iloc[0]
        row_g = result_g.table[result_g.table.method == method].iloc[0]
        assert row_c.hemi == row_g.hemi == "L" and int(row_c.vertex) == int(row_g.vertex)
        target = meshes["L"][0][int(row_c.vertex)]
        np.testing.assert_allclose([row_c.mni152_x, row_c.mni152_y, row_c.mni152_z], target, atol=1e-4)
        assert np.linalg.norm(target - PLANTED_DLPFC) <= 8  # inside the planted patch
