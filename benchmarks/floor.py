"""The floor for the same work, as one benchmark child process.

Usage: ``python floor.py RUN_ROOT OUT.npz``. Decompress once (ISA-L when
installed, else zlib), gather the in-mask voxels as float32, one float32
T x T by T x V product (in column blocks, in place), z-score, and one seed
correlation. No confounds, no filter design, no checks: a lower bound.
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

try:
    from isal import igzip_threaded as _gzip

    def _open(path):
        return _gzip.open(path, "rb", threads=1, block_size=4 << 20)
except ImportError:
    import gzip

    def _open(path):
        return gzip.open(path, "rb")


def main(root: str, out: str) -> None:
    """Time the floor on the one run under ``root``."""
    t_imported = time.perf_counter()
    func = Path(root) / "sub-01" / "func"
    bold = next(func.glob("*_desc-preproc_bold.nii.gz"))
    mask_img = nib.load(next(func.glob("*_desc-brain_mask.nii.gz")))
    mask = np.asanyarray(mask_img.dataobj) > 0
    header = nib.load(bold).header
    n_volumes = int(header.get_data_shape()[3])
    gather = np.ravel_multi_index(np.nonzero(mask), mask.shape, order="F")
    volume_bytes = mask.size * 4
    data = np.empty((n_volumes, gather.size), dtype=np.float32)
    with _open(bold) as stream:
        stream.read(int(header["vox_offset"]))
        for start in range(0, n_volumes, 32):
            count = min(32, n_volumes - start)
            block = np.frombuffer(stream.read(count * volume_bytes), dtype=np.float32)
            np.take(block.reshape(count, -1), gather, axis=1, out=data[start:start + count])
    operator = np.eye(n_volumes, dtype=np.float32) - np.float32(1.0 / n_volumes)
    for start in range(0, gather.size, 16384):
        data[:, start:start + 16384] = operator @ data[:, start:start + 16384]
    data -= data.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = np.sqrt(np.einsum("ij,ij->j", data, data) / n_volumes)
    data *= np.divide(1.0, std, out=np.zeros_like(std), where=std > 0)
    xyz = nib.affines.apply_affine(mask_img.affine, np.argwhere(mask))
    seed = np.flatnonzero(np.linalg.norm(xyz - np.array([6.0, 16.0, -10.0]), axis=1) <= 10.0)
    signal = data[:, seed].mean(axis=1)
    signal = (signal - signal.mean()) / signal.std()
    seed_map = signal @ data / n_volumes
    t_end = time.perf_counter()
    np.savez(out, seed_map=seed_map, import_s=t_imported - _T_START, work_s=t_end - t_imported)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
