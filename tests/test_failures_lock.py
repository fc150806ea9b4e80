"""The lock serialising rebuilds of failures.tsv lives with the other locks, not among the user-facing logs."""

import threading

from filelock import FileLock

from trdnet.records import write_failure_record, write_failures_table
from trdnet.staging import lock_path, work_dir


def test_failures_table_is_rebuilt_under_a_lock_beside_the_run_locks(tmp_path):
    out = tmp_path / "out"
    write_failure_record(out, "sub-01_task-rest", "sub-01", "a reason")
    lock = work_dir(out) / "locks" / "failures.tsv.lock"
    assert lock.parent == lock_path(out, "sub-01_task-rest").parent
    held = FileLock(lock)
    held.acquire()
    rebuild = threading.Thread(target=write_failures_table, args=(out,))
    rebuild.start()
    rebuild.join(0.5)
    assert rebuild.is_alive() and not (out / "failures.tsv").exists()  # waits for the lock's holder
    held.release()
    rebuild.join()
    assert (out / "failures.tsv").is_file()
    assert sorted(p.name for p in (out / "logs").iterdir()) == ["sub-01_task-rest_failed.json"]
