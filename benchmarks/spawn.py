"""Start one benchmark child from a small process and report its kernel-measured usage.

Usage: ``python -S spawn.py LIMIT_GIB USAGE.json -- COMMAND...`` (LIMIT_GIB 0: no limit).

Linux keeps a process's peak RSS (``ru_maxrss``) across ``exec``, so a child
forked from the benchmark driver (which holds numpy, nilearn and the writer's
buffers) would report at least the driver's size. This launcher is a bare
interpreter: the child forked from it starts from a few MiB, and its
``os.wait4`` usage is that of the child alone. The address-space limit is set
in the child before ``exec``.
"""

import json
import os
import resource
import sys
import time


def main() -> int:
    """Fork, limit, exec, wait; write wall time, peak RSS and exit code to USAGE.json."""
    limit_gib, usage_path, _, *command = sys.argv[1:]
    limit = int(float(limit_gib) * 2**30)
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        if limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.execv(command[0], command)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    with open(usage_path, "w") as handle:
        json.dump({"process_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024.0, "exit_code": code}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
