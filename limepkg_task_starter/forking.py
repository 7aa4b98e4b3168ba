"""Worker side: no pool process is forked while a thread of the task handler uses SQLite.

SQLite keeps the locks a process holds in that process's memory. A pool process forked while
another thread of the handler was inside a write inherits the record of that lock, but not
the thread that would release it: from then on every write it tries ends in "database is
locked". On the embedded default that is each pool process started to replace one that a
cancel or a lost process ended, now and then. So the handler's own threads (heartbeat,
cancel watcher, history replay, shutdown deadline) do their database work inside
``database_work()``, and a fork waits until none is inside it.

On other databases the guard takes no lock: a fork never waits for a thread that is waiting
on the network.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

_lock = threading.RLock()


def _guarded() -> bool:
    return bool(connections["default"].vendor == "sqlite")


@contextmanager
def database_work() -> Iterator[None]:
    """Hold forks of this process back while the block runs (on SQLite)."""
    if not _guarded():
        yield
        return
    with _lock:
        yield


def _before_fork() -> None:
    _lock.acquire()


def _after_fork_in_parent() -> None:
    _lock.release()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.RLock()  # the child has none of the parent's other threads


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
