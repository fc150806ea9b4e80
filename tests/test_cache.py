"""The on-disk array cache and the grey-matter lookup that uses it."""

from __future__ import annotations

import numpy as np
import pytest
from nilearn import datasets, image

from trdnet.cache import cache_dir, cached_array
from trdnet.grid import VoxelSpace
from trdnet.targeting.regions import grey_matter_probability


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRDNET_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_computes_once_then_reads_the_file(cache):
    calls = []

    def compute():
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    first = cached_array("thing", compute)
    second = cached_array("thing", compute)
    assert len(calls) == 1
    assert (cache / "thing.npy").is_file()
    np.testing.assert_array_equal(first, second)
    assert second.dtype == np.float32
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary left


def test_corrupt_file_is_recomputed_and_replaced(cache):
    cache.mkdir(parents=True)
    (cache / "thing.npy").write_bytes(b"not an array")
    value = cached_array("thing", lambda: np.ones(3))
    np.testing.assert_array_equal(value, np.ones(3))
    np.testing.assert_array_equal(np.load(cache / "thing.npy"), np.ones(3))


def test_unwritable_cache_still_returns_the_value(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("TRDNET_CACHE_DIR", str(blocker / "cache"))
    np.testing.assert_array_equal(cached_array("thing", lambda: np.zeros(2)), np.zeros(2))


def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("TRDNET_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "trdnet"


@pytest.mark.parametrize("resolution", [2, 3])
def test_grey_matter_equals_nilearn_linear_resampling(resolution):
    mask_img = datasets.load_mni152_brain_mask(resolution=resolution)
    mask = np.asanyarray(mask_img.dataobj) > 0
    space = VoxelSpace(mask, mask_img.affine, "MNI152NLin2009cAsym")
    template = datasets.load_mni152_gm_template(resolution=2)
    template = image.new_img_like(template, template.get_fdata(dtype=np.float32))
    expected = image.resample_to_img(template, mask_img, interpolation="linear",
                                     force_resample=True, copy_header=True)
    expected = np.asanyarray(expected.dataobj)[mask]
    np.testing.assert_allclose(grey_matter_probability(space), expected, atol=1e-5)
    some = np.arange(0, space.n_voxels, 97)
    np.testing.assert_allclose(grey_matter_probability(space, some), expected[some], atol=1e-5)


@pytest.mark.parametrize("kind, resolution", [("T1w", 2), ("brain_mask", 2), ("GM", 2), ("WM", 2), ("GM", 4)])
def test_cached_templates_equal_nilearn(kind, resolution, cache, monkeypatch):
    from trdnet import templates

    templates.mni152.cache_clear()
    loader = getattr(datasets, templates.KINDS[kind])
    expected = loader(resolution=resolution)
    # nilearn resamples at every call (a second each): the cold cache gets the image just made, so what is
    # checked is what trdnet asks nilearn for and what its cache gives back
    calls = []

    def nilearn_once(resolution):
        calls.append(resolution)
        return expected if resolution == asked else loader(resolution=resolution)

    asked = resolution
    monkeypatch.setattr(datasets, templates.KINDS[kind], nilearn_once)
    for _ in range(2):  # computed, then read back from the cache
        img = templates.mni152(kind, resolution)
        np.testing.assert_array_equal(np.asanyarray(img.dataobj), np.asanyarray(expected.dataobj))
        np.testing.assert_array_equal(img.affine, expected.affine)
        assert img.header.binaryblock == expected.header.binaryblock
        templates.mni152.cache_clear()
    assert calls == [resolution]  # computed once, then read from the cache
    versions = f"nilearn-{__import__('nilearn').__version__}_scipy-{__import__('scipy').__version__}"
    assert (cache / f"mni152_{kind}_{resolution}mm_{versions}.npy").is_file()
    assert templates.mni152_2mm(kind).shape == templates.mni152(kind, 2).shape
    with pytest.raises(ValueError, match="unknown template kind"):
        templates.mni152("T2w", resolution)
