"""trdnet's NIfTI writer against nibabel's: the same file content, whatever compresses it."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from trdnet import stream
from trdnet.outputs import write_nifti


def _images():
    rng = np.random.default_rng(4)
    affine = np.array([[-3.0, 0, 0, 90], [0, 3.0, 0, -126], [0, 0, 3.0, -72], [0, 0, 0, 1]])
    bold = nib.Nifti1Image((1000 + rng.normal(0, 5, (9, 11, 8, 30))).astype(np.float32), affine)
    bold.header.set_xyzt_units("mm", "sec")
    bold.header["pixdim"][4] = 0.8
    scaled = nib.Nifti1Image(rng.normal(0, 1, (9, 11, 8)), affine)
    scaled.set_data_dtype(np.int16)  # written with a slope and an intercept
    wide = nib.Nifti2Image(rng.integers(0, 3, (9, 11, 8)).astype(np.uint8), affine)
    return {"bold": bold, "scaled": scaled, "nifti2": wide}


@pytest.mark.parametrize("name", ["bold", "scaled", "nifti2"])
@pytest.mark.parametrize("extension", [".nii.gz", ".nii"])
def test_written_file_reads_back_as_nibabels_own(tmp_path, name, extension):
    img = _images()[name]
    ours, theirs = tmp_path / f"ours{extension}", tmp_path / f"theirs{extension}"
    write_nifti(ours, img)
    nib.save(img, theirs)
    a, b = nib.load(ours), nib.load(theirs)
    assert type(a) is type(b)
    assert a.header.binaryblock == b.header.binaryblock
    assert a.dataobj.slope == b.dataobj.slope and a.dataobj.inter == b.dataobj.inter
    assert np.array_equal(np.asanyarray(a.dataobj), np.asanyarray(b.dataobj))
    if extension == ".nii.gz":  # a standard gzip stream any reader opens
        assert gzip.decompress(ours.read_bytes()) == gzip.decompress(theirs.read_bytes())
    else:
        assert ours.read_bytes() == theirs.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_test_environment_compresses_with_isal():
    """``isal`` is in the test extra, so the fast path above is the one tested."""
    assert stream._fast_gzip_writer is not None


def test_the_same_image_gives_the_same_nii_gz_bytes_whatever_the_time_or_name(tmp_path):
    """As nibabel's writer: no time stamp and no file name in the gzip header (a rerun is byte-identical)."""
    import time

    img = _images()["bold"]
    first, second = tmp_path / "a" / "sub-01_bold.nii.gz", tmp_path / "b" / "sub-02_bold.nii.gz"
    write_nifti(first, img)
    time.sleep(1.1)  # the gzip header's time stamp counts whole seconds
    write_nifti(second, img)
    data = first.read_bytes()
    assert data == second.read_bytes()
    assert data[4:8] == b"\0\0\0\0"  # MTIME
    assert not data[3] & 0x08  # FLG.FNAME: no file name (trdnet writes under a temporary one)
