"""Wheel files from the package registry: pinned digest, cache reuse, one clear error offline."""

from __future__ import annotations

import hashlib
import os
import zipfile

import pytest

from trdnet.errors import DatasetError
from trdnet.inputs.registry import Wheel, fetch_wheel, read_member, read_members, wheels_dir


def _fake_wheel(folder, name="fakepkg-1.0-py3-none-any.whl", content=b"a\tb\n1\t2\n"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("fakepkg/data/table.tsv", content)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def offline_registry(monkeypatch, tmp_path):
    """pip sees one unreachable index and no local wheels or config files."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "2")
    empty = tmp_path / "no-wheels-here"
    empty.mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    monkeypatch.setenv("TRDNET_WHEELS_DIR", str(tmp_path / "wheels"))


def test_cached_wheel_is_read_without_the_registry(offline_registry):
    path, digest = _fake_wheel(wheels_dir())
    wheel = Wheel("fakepkg", "1.0", digest, path.name)
    assert fetch_wheel(wheel) == path
    assert read_members(wheel, ["fakepkg/data/table.tsv"]) == {"fakepkg/data/table.tsv": b"a\tb\n1\t2\n"}


def test_unreachable_registry_is_one_error_naming_package_and_folder(offline_registry):
    wheel = Wheel("fakepkg", "1.0", "0" * 64, "fakepkg-1.0-py3-none-any.whl")
    with pytest.raises(DatasetError) as info:
        fetch_wheel(wheel)
    message = str(info.value)
    assert "fakepkg==1.0" in message
    assert str(wheels_dir()) in message
    assert "\n" not in message
    assert not (wheels_dir() / wheel.filename).exists()


def test_cached_wheel_with_another_digest_is_refused(offline_registry):
    path, digest = _fake_wheel(wheels_dir())
    wheel = Wheel("fakepkg", "1.0", "f" * 64, path.name)
    with pytest.raises(DatasetError, match="differs from the pinned"):
        fetch_wheel(wheel)


def test_missing_member_names_the_wheel(tmp_path):
    path, _ = _fake_wheel(tmp_path)
    with pytest.raises(DatasetError, match="no file fakepkg/data/other.tsv"):
        read_member(path, "fakepkg/data/other.tsv")


def test_wheels_dir_follows_the_trdnet_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("TRDNET_WHEELS_DIR", raising=False)
    monkeypatch.setenv("TRDNET_CACHE_DIR", str(tmp_path / "cache"))
    assert wheels_dir() == tmp_path / "cache" / "wheels"
