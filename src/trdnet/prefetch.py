"""Read the next run while the current one computes (serial cohorts).

Decompressing and gathering a run is about a third of its processing time
and runs on one core; the rest (cleaning product, targeting, outputs) leaves
the other core mostly idle on a laptop. A serial cohort therefore reads run
k+1 in a background thread while run k computes. Memory: at most one extra
masked matrix (T x V float32). Worker processes (``--n-jobs``, Dask) get the
same overlap from each other and do not prefetch.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from .inputs.runs import Run
from .stream import read_header, read_masked_volumes

#: Reads a run's in-mask voxels: ``reader(bold_path, mask) -> (T, V) float32``.
VolumeReader = Callable[[Path, np.ndarray], np.ndarray]


def _read_run(run: Run) -> tuple[np.ndarray, np.ndarray]:
    from .denoise import load_brain_space  # denoise imports this module's users, not the reverse

    space = load_brain_space(run, read_header(run.bold))
    return space.mask, read_masked_volumes(run.bold, space.mask)


class RunPrefetcher:
    """One background thread reading runs ahead of their processing.

    Use as a context manager; :meth:`prefetch` queues a run, :meth:`reader`
    hands its data to :func:`trdnet.denoise.clean_run`. A failed or
    mismatching prefetch falls back to reading in the caller, so errors are
    reported exactly as without prefetching.
    """

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trdnet-prefetch")
        self._futures: dict[Path, Future] = {}

    def __enter__(self) -> RunPrefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._futures.clear()

    def prefetch(self, run) -> None:
        """Start reading ``run`` (a :class:`~trdnet.inputs.runs.Run`; other inputs are ignored)."""
        if isinstance(run, Run) and run.bold not in self._futures:
            self._futures[run.bold] = self._executor.submit(_read_run, run)

    def reader(self, run) -> VolumeReader:
        """A reader returning the prefetched data of ``run`` (reading it now if there is none)."""
        future = self._futures.pop(getattr(run, "bold", None), None)

        def read(path: Path, mask: np.ndarray) -> np.ndarray:
            if future is not None:
                try:
                    used_mask, data = future.result()
                except Exception:  # noqa: BLE001 - the direct read below raises the proper error
                    pass
                else:
                    if used_mask.shape == mask.shape and np.array_equal(used_mask, mask):
                        return data
            return read_masked_volumes(path, mask)

        return read
