"""The test suite's fork server runs a script as ``python <script>`` would, in a process of its own."""

from __future__ import annotations

import subprocess
import sys
import time

import forked
from conftest import SHIPPED_MIN_DOF

SCRIPT = """
import os, sys
from helper_beside import WORD
print(WORD, sys.argv[1:], os.getcwd(), os.environ.get("MARK"), __name__)
if sys.argv[1] == "fail":
    raise RuntimeError("broken on purpose")
sys.exit(int(sys.argv[1]))
"""


def test_a_script_sees_its_arguments_folder_environment_and_neighbours(tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "helper_beside.py").write_text("WORD = 'beside'\n")
    (scripts / "job.py").write_text(SCRIPT)
    done = forked.run([scripts / "job.py", "3"], cwd=tmp_path, env={"MARK": "m1", "PATH": "/usr/bin"})
    assert done.returncode == 3
    assert done.stdout.strip() == f"beside ['3'] {tmp_path} m1 __main__"
    failed = forked.run([scripts / "job.py", "fail"], cwd=scripts, env={})
    assert failed.returncode == 1
    assert "RuntimeError: broken on purpose" in failed.stderr and "None __main__" in failed.stdout


def test_a_module_runs_as_python_dash_m(tmp_path):
    done = forked.run(["trdnet", "--version"], cwd=tmp_path, module=True)
    assert done.returncode == 0 and done.stdout.startswith("trdnet ")
    refused = forked.run(["trdnet", "report", str(tmp_path / "absent")], cwd=tmp_path, module=True)
    assert refused.returncode == 2 and refused.stderr.startswith("trdnet: error:")


def test_the_suites_changed_defaults_do_not_reach_the_child(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from trdnet.config import DenoiseSettings\nprint(DenoiseSettings().min_dof)\n")
    assert float(forked.run([probe], cwd=tmp_path).stdout) == SHIPPED_MIN_DOF > 0  # the suite sets 0



def test_two_replies_arriving_in_one_read_are_both_returned():
    """A quick child's two lines (its pid, then its status) can reach the pipe together."""
    writer = subprocess.Popen([sys.executable, "-c", "import time; print(1); print(2, flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE)
    try:
        time.sleep(1)  # both lines are in the pipe before the first is read
        assert [forked._reply(writer, 10), forked._reply(writer, 10)] == [1, 2]
    finally:
        writer.kill()
        writer.wait()
