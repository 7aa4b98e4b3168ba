"""A tracking write the database refused is replayed in order, even with no later write."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError

from limepkg_task_starter import tracking

# A refused write closes the broken connection: the test may touch the database.
pytestmark = pytest.mark.django_db


@pytest.fixture
def quick_replay(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(tracking, "REPLAY_EVERY_SECONDS", 0.05)
    tracking._backlog.clear()
    yield
    tracking._backlog.clear()


def test_deferred_writes_reach_the_database_without_a_next_run(quick_replay) -> None:
    written: list[str] = []
    caught_up = threading.Event()
    database_back = threading.Event()

    def first() -> None:
        if not database_back.is_set():
            raise OperationalError("server closed the connection unexpectedly")
        written.append("first")

    def second() -> None:
        written.append("second")
        caught_up.set()

    tracking._write(first)
    tracking._write(second)  # waits behind the first: order is kept
    assert written == [] and len(tracking._backlog) == 2

    database_back.set()
    assert caught_up.wait(5), "the deferred writes were never replayed"
    assert written == ["first", "second"]
    assert not tracking._backlog
