"""Ctrl-C in a pool worker: a run is interrupted (and records it); an idle worker leaves without a traceback."""

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from trdnet.errors import worker_sigint


def _handlers_in_child(queue, ignored):
    # as under a terminal, or as a shell's background job (whatever the test process itself inherited)
    signal.signal(signal.SIGINT, signal.SIG_IGN if ignored else signal.default_int_handler)
    worker_sigint(running=True)
    during = signal.getsignal(signal.SIGINT)
    worker_sigint(running=False)
    after = signal.getsignal(signal.SIGINT)
    queue.put((during is signal.default_int_handler, during is signal.SIG_IGN,
               after is signal.default_int_handler, after is signal.SIG_IGN))


def _in_child(ignored: bool):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_handlers_in_child, args=(queue, ignored))
    child.start()
    result = queue.get(timeout=60)
    child.join(timeout=60)
    return result


def test_a_worker_raises_in_a_run_and_not_between_runs():
    during_default, _, after_default, after_ignored = _in_child(ignored=False)
    assert during_default and not after_default and not after_ignored


def test_an_inherited_ignore_is_kept():
    assert _in_child(ignored=True) == (False, True, False, True)


def test_the_commands_own_process_is_left_alone():
    before = signal.getsignal(signal.SIGINT)
    worker_sigint(running=False)
    assert signal.getsignal(signal.SIGINT) is before


def test_an_idle_worker_interrupted_prints_nothing_and_exits_130():
    code = textwrap.dedent("""
        import multiprocessing, os, signal, time
        from trdnet.errors import worker_sigint

        def idle():
            worker_sigint(running=True)
            worker_sigint(running=False)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)

        if __name__ == "__main__":
            child = multiprocessing.get_context("fork").Process(target=idle)
            child.start()
            child.join(60)
            print(child.exitcode)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert done.stdout.strip() == "130", done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr



#: What SIGINT does in the workers of the pool trdnet makes, before any run has set it: each task here is not a run.
POOL_HANDLERS = textwrap.dedent("""
    import signal
    from joblib import delayed
    from trdnet.cohort import worker_pool

    def handler():
        return getattr(signal.getsignal(signal.SIGINT), "__name__", str(signal.getsignal(signal.SIGINT)))

    if __name__ == "__main__":
        print(sorted(set(worker_pool(2)(delayed(handler)() for _ in range(4)))))
""")


@pytest.mark.slow  # a joblib pool: new interpreters importing numpy and joblib
def test_pool_workers_leave_quietly_from_their_start_not_only_after_a_run():
    """A worker waiting for its first run is idle like one between runs: Ctrl-C ends it with exit 130 and no
    output (test above), instead of raising KeyboardInterrupt in loky's loop."""
    done = subprocess.run([sys.executable, "-c", POOL_HANDLERS], capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert done.stdout.strip() == "['_leave_quietly']", done.stdout + done.stderr
