"""The test run itself: parallel workers share the machine's cores instead of each spinning a full BLAS pool."""

import os
import subprocess
import sys

from threadpoolctl import threadpool_info

from conftest import blas_threads_per_worker


def test_each_worker_blas_pool_is_its_share_of_the_cores():
    threads = blas_threads_per_worker()
    pools = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert pools, "numpy's BLAS not found"
    if threads is None:  # one process: the whole machine, as trdnet would have it
        assert "PYTEST_XDIST_WORKER" not in os.environ
        return
    cores = len(os.sched_getaffinity(0))
    assert threads == max(1, cores // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    assert all(pool["num_threads"] <= threads for pool in pools), pools
    # and the commands a test starts inherit it
    child = subprocess.run([sys.executable, "-c", "import numpy, threadpoolctl; print(max(pool['num_threads'] "
                            "for pool in threadpoolctl.threadpool_info() if pool['user_api'] == 'blas'))"],
                           capture_output=True, text=True, check=True)
    assert int(child.stdout) <= threads, child.stdout
