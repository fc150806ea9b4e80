"""Read the in-mask voxels of a 4D NIfTI in one streamed pass; write NIfTI files through the same gzip.

The image is decompressed once, volume block by volume block, and only the
in-mask voxels of each volume are kept, as float32. This is the memory floor of
the analysis (the masked T x V matrix) plus one block of volumes. ``.nii.gz``
files are decompressed with ISA-L (``isal``) when it is installed, otherwise
with the standard library's ``gzip``.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from .errors import InputError

try:  # ISA-L decompresses gzip several times faster than zlib, and compresses five times faster at level 1.
    from isal import igzip as _fast_gzip_writer
    from isal import igzip_threaded as _fast_gzip
except ImportError:  # pragma: no cover - exercised only without the optional dependency
    _fast_gzip = _fast_gzip_writer = None

#: gzip level of the ``.nii.gz`` files trdnet writes (nibabel's own default): fMRI series are noise-like and
#: gain little from higher levels, which cost several times the time.
COMPRESS_LEVEL = 1


def decompressor_name() -> str:
    """Which gzip implementation :func:`open_image_stream` uses (``isal`` or ``gzip``)."""
    return "isal" if _fast_gzip is not None else "gzip"


def open_image_stream(path: Path):
    """Open a NIfTI file for sequential binary reading, decompressing if needed."""
    path = Path(path)
    if path.name.endswith(".gz"):
        if _fast_gzip is not None:
            return _fast_gzip.open(path, "rb", threads=1, block_size=4 << 20)
        return gzip.open(path, "rb")
    return open(path, "rb")


def save_image(img: nib.Nifti1Image, path: Path) -> None:
    """Save a NIfTI-1/2 image as nibabel does, compressing ``.nii.gz`` with ISA-L when it is installed.

    The file is the one :func:`nibabel.save` would write (same header and data, and as nibabel's no time stamp
    or file name in the gzip header: the same image gives the same bytes; only the compressed stream differs
    from nibabel's), streamed volume block by volume block, so no uncompressed copy is held in memory.
    Not atomic: :func:`trdnet.outputs.write_nifti` calls it on a temporary name.
    """
    path = Path(path)
    if _fast_gzip_writer is None or not path.name.endswith(".gz"):
        nib.save(img, path)
        return
    # as nibabel's own writer: no time stamp or file name in the gzip header, so equal images give equal files
    with open(path, "wb") as raw, _fast_gzip_writer.IGzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                                               compresslevel=COMPRESS_LEVEL) as stream:
        img.to_file_map({"image": nib.FileHolder(fileobj=stream)})


def read_header(path: Path) -> nib.Nifti1Header:
    """Read the NIfTI-1 or NIfTI-2 header of ``path`` without reading the data.

    The returned header carries the file's data offset as ``header.file_offset``
    and its scaling as ``file_slope`` / ``file_inter`` (nibabel resets
    ``vox_offset`` and ``scl_slope`` in the header copy it keeps).
    """
    path = Path(path)
    try:
        img = nib.load(path)
    except Exception as exc:  # nibabel raises several types for bad files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: cannot read as NIfTI ({first})") from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputError(f"{path}: not a NIfTI image ({type(img).__name__})")
    header = img.header
    header.file_offset = int(img.dataobj.offset)
    header.file_slope = float(img.dataobj.slope)
    header.file_inter = float(img.dataobj.inter)
    return header


def read_masked_volumes(path: Path, mask: np.ndarray, block_volumes: int = 32) -> np.ndarray:
    """Read the in-mask voxels of every volume of a 4D NIfTI image.

    Parameters
    ----------
    path : Path
        ``.nii`` or ``.nii.gz`` 4D image.
    mask : numpy.ndarray of bool, shape (X, Y, Z)
        Voxels to keep; must match the image's first three dimensions.
        Columns of the result follow ``numpy.argwhere(mask)`` order.
    block_volumes : int
        Volumes decoded per block (memory: one block of full volumes).

    Returns
    -------
    numpy.ndarray, float32, shape (T, V)
        Scaled values (``scl_slope`` / ``scl_inter`` applied).

    Raises
    ------
    InputError
        If the image is not 4D, its grid does not match ``mask``, it is
        truncated, or it holds NaN or infinite values inside the mask.
    """
    path = Path(path)
    header = read_header(path)
    shape = header.get_data_shape()
    if len(shape) != 4 or shape[3] < 2:
        raise InputError(
            f"{path}: expected a 4D BOLD image (x, y, z, time), got shape {tuple(shape)}"
        )
    if tuple(shape[:3]) != tuple(mask.shape):
        raise InputError(
            f"{path}: grid {tuple(shape[:3])} does not match the brain mask grid {tuple(mask.shape)}"
        )
    n_volumes = int(shape[3])
    volume_bytes = int(np.prod(shape[:3])) * header.get_data_dtype().itemsize
    # NIfTI stores x fastest: a volume's flat index is Fortran order.
    gather = np.ravel_multi_index(np.nonzero(mask), mask.shape, order="F")

    out = np.empty((n_volumes, gather.size), dtype=np.float32)
    # One reused buffer: a fresh ``read()`` per block would allocate (and
    # page-fault) a new block-sized bytes object every time.
    buffer = bytearray(min(block_volumes, n_volumes) * volume_bytes)
    try:
        _read_volumes(path, header, gather, out, buffer, block_volumes)
    except (EOFError, OSError, zlib.error) as exc:
        # A truncated or corrupt .nii.gz fails inside the decompressor, not at a short read.
        raise InputError(f"{path}: file is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    return out


def _read_volumes(path: Path, header, gather: np.ndarray, out: np.ndarray, buffer: bytearray,
                  block_volumes: int) -> None:
    n_volumes = out.shape[0]
    dtype = header.get_data_dtype()
    slope, inter = header.file_slope, header.file_inter
    voxels_per_volume = int(np.prod(header.get_data_shape()[:3]))
    volume_bytes = voxels_per_volume * dtype.itemsize
    with open_image_stream(path) as stream:
        _skip(stream, header.file_offset, path)
        for start in range(0, n_volumes, block_volumes):
            count = min(block_volumes, n_volumes - start)
            got = _read_into(stream, memoryview(buffer)[: count * volume_bytes])
            if got != count * volume_bytes:
                raise InputError(f"{path}: file is truncated (ends inside volume {start + got // volume_bytes})")
            block = np.frombuffer(buffer, dtype=dtype, count=count * voxels_per_volume)
            block = block.reshape(count, voxels_per_volume)
            target = out[start : start + count]
            if block.dtype == np.float32:
                np.take(block, gather, axis=1, out=target)
            else:
                target[:] = block[:, gather]
            if slope != 1.0 or inter != 0.0:
                target *= np.float32(slope)
                target += np.float32(inter)
            # Checked per block: a whole-matrix isfinite would add a T x V bool array.
            if not np.isfinite(target).all():
                finite = np.isfinite(out[:start + count]).all(axis=0)
                bad = int(finite.size - np.count_nonzero(finite))
                raise InputError(f"{path}: {bad} in-mask voxels hold NaN or infinite values")


def _read_into(stream, view: memoryview) -> int:
    """Fill ``view`` from ``stream``; return the bytes read (short only at end of file)."""
    filled = 0
    while filled < len(view):
        n = stream.readinto(view[filled:])
        if not n:
            break
        filled += n
    return filled


def _skip(stream, n_bytes: int, path: Path) -> None:
    remaining = n_bytes
    while remaining > 0:
        chunk = stream.read(min(remaining, 1 << 20))
        if not chunk:
            raise InputError(f"{path}: file ends before its image data")
        remaining -= len(chunk)
