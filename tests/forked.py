"""Python scripts and ``python -m`` commands run as new processes without a new interpreter's imports.

A server process imports the heavy libraries once (nilearn, matplotlib, trdnet); each request is a process
forked from it, which runs the script as ``python <script> <args>`` would (``__main__``, ``sys.argv``, the
script's folder first on ``sys.path``) in its own folder, environment and output files. The test suite's own
modules are never imported into the server, so the child sees trdnet as shipped (``tests/conftest.py`` changes
a default for the suite). Used where a test needs a process of its own (a tutorial, a command's exit status)
and not the cost of starting Python again.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Imported once by the server (everything a tutorial or a command imports that takes long).
PRELOAD = ("numpy", "pandas", "scipy.ndimage", "nibabel", "matplotlib.pyplot", "nilearn.image", "nilearn.signal",
           "nilearn.plotting", "nilearn.interfaces.fmriprep", "nilearn.datasets", "networkx", "trdnet.cli",
           "trdnet.cohort", "trdnet.pipeline", "trdnet.report", "trdnet.inputs.simulate")

_SERVER_CODE = r"""
import json, os, runpy, sys, traceback
os.environ.setdefault("MPLBACKEND", "Agg")
for name in sys.argv[1:]:
    __import__(name)
requests, replies = sys.stdin, sys.stdout
print(json.dumps("ready"), file=replies, flush=True)
for line in requests:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setsid()
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
            sys.stdin = open(0, closefd=False)
            argv = request["argv"]
            try:
                if request["module"]:
                    sys.argv = [argv[0], *argv[1:]]
                    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
                else:
                    sys.argv = list(argv)
                    sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
                    runpy.run_path(argv[0], run_name="__main__")
                code = 0
            except SystemExit as exc:
                if exc.code is None or isinstance(exc.code, int):
                    code = exc.code or 0
                else:
                    print(exc.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    print(json.dumps({"pid": pid}), file=replies, flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"status": os.waitstatus_to_exitcode(status)}), file=replies, flush=True)
"""

_SERVERS: list[subprocess.Popen] = []
_PENDING = bytearray()  # replies read from the server's pipe and not yet returned


def _server() -> subprocess.Popen:
    if _SERVERS and _SERVERS[0].poll() is None:
        return _SERVERS[0]
    _SERVERS.clear()
    _PENDING.clear()
    server = subprocess.Popen([sys.executable, "-c", _SERVER_CODE, *PRELOAD], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    try:
        ready = _reply(server, 300)
    except (TimeoutError, RuntimeError, ValueError):
        server.kill()
        raise RuntimeError(f"the fork server did not start (exit status {server.wait()})") from None
    if ready != "ready":
        raise RuntimeError(f"the fork server said {ready!r} instead of starting")
    atexit.register(_stop, server)
    _SERVERS.append(server)
    return server


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.stdin.close()
        server.wait(timeout=30)


def _reply(server: subprocess.Popen, deadline_s: float):
    """The server's next line (JSON), read from the pipe itself: a buffered reader could hold a second line
    that ``select`` would never see."""
    end = time.monotonic() + deadline_s
    descriptor = server.stdout.fileno()
    while b"\n" not in _PENDING:
        remaining = end - time.monotonic()
        if remaining <= 0 or not select.select([descriptor], [], [], remaining)[0]:
            raise TimeoutError
        chunk = os.read(descriptor, 65536)
        if not chunk:
            raise RuntimeError("the fork server ended")
        _PENDING.extend(chunk)
    line, _, rest = bytes(_PENDING).partition(b"\n")
    _PENDING[:] = rest
    return json.loads(line)


def run(argv: list[str], cwd: Path, env: dict | None = None, module: bool = False,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """``python <argv...>`` (``python -m <argv...>`` with ``module``) in a forked process.

    Parameters
    ----------
    argv : list of str
        The script's path and its arguments, or the module's name and its arguments.
    cwd : Path
        The folder it runs in.
    env : dict, optional
        Its whole environment (default: this process's).
    timeout : float
        Seconds before the process group is killed and the test fails.

    Returns
    -------
    subprocess.CompletedProcess
        Exit status (negative: ended by that signal), standard output and error as text.
    """
    server = _server()
    with tempfile.TemporaryDirectory() as captured:
        stdout, stderr = Path(captured) / "stdout", Path(captured) / "stderr"
        request = {"argv": [str(a) for a in argv], "cwd": str(cwd), "module": module,
                   "env": dict(os.environ if env is None else env), "stdout": str(stdout), "stderr": str(stderr)}
        server.stdin.write((json.dumps(request) + "\n").encode())
        server.stdin.flush()
        pid = _reply(server, 60)["pid"]
        try:
            status = _reply(server, timeout)["status"]
        except TimeoutError:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:  # ended meanwhile
                pass
            _reply(server, 60)
            raise TimeoutError(f"{' '.join(map(str, argv))} did not end within {timeout:g} s") from None
        return subprocess.CompletedProcess(argv, status, stdout.read_text(), stderr.read_text())
