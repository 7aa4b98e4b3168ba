"""A pool process forked while a thread of the task handler writes to SQLite can still write."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest

from limepkg_task_starter import forking

WROTE, LOCKED = 0, 3


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "handler.sqlite3"
    with sqlite3.connect(path, isolation_level=None) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE runs (id INTEGER)")
    return path


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The guard is on where the project's database is SQLite (the embedded default); these
    # tests use a SQLite file of their own whatever the suite's database is.
    monkeypatch.setattr(forking, "_guarded", lambda: True)
    yield


def fork_while_a_thread_writes(
    database: Path, guard: Callable[[], AbstractContextManager[None]]
) -> int:
    """Fork while another thread is inside a write; the child's exit code says whether it
    could write afterwards."""
    inside, done = threading.Event(), threading.Event()

    def heartbeat() -> None:
        with guard():
            writer = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("INSERT INTO runs VALUES (1)")
            inside.set()
            time.sleep(0.3)
            writer.execute("COMMIT")
            writer.close()
        done.set()

    thread = threading.Thread(target=heartbeat)
    thread.start()
    inside.wait(5)
    pid = os.fork()
    if pid == 0:  # the new pool process
        code = LOCKED
        try:
            done.wait(0)  # nothing of the parent's threads runs here
            time.sleep(0.5)  # the parent's write has long been committed
            child = sqlite3.connect(database, isolation_level=None, timeout=1)
            child.execute("INSERT INTO runs VALUES (2)")
            code = WROTE
        finally:
            os._exit(code)
    thread.join()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_a_process_forked_inside_another_threads_write_cannot_write(database: Path) -> None:
    # The hazard itself, as SQLite has it: the reason for the guard.
    assert fork_while_a_thread_writes(database, nullcontext) == LOCKED


def test_a_fork_waits_for_database_work_and_the_new_process_can_write(
    database: Path, guarded: None
) -> None:
    assert fork_while_a_thread_writes(database, forking.database_work) == WROTE
