"""Tracking writes: deferred while the database is away and replayed in order, even with no
later write; a value the database refuses is a verdict on that run, never an outage."""

from __future__ import annotations

import threading

import pytest
from django.db import DataError, InternalError, OperationalError

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

    tracking._write("a", first)
    tracking._write("b", second)  # waits behind the first: order is kept
    assert written == [] and len(tracking._backlog) == 2

    database_back.set()
    assert caught_up.wait(5), "the deferred writes were never replayed"
    assert written == ["first", "second"]
    assert not tracking._backlog


def test_a_refused_write_is_replaced_by_what_it_leaves_and_holds_nothing(quick_replay) -> None:
    written: list[str] = []

    def poisoned() -> None:
        raise DataError("unsupported Unicode escape sequence")

    tracking._write("a", poisoned, instead=lambda problem: written.append(f"instead: {problem}"))
    tracking._write("b", lambda: written.append("next run"))

    assert written == ["instead: unsupported Unicode escape sequence", "next run"]
    assert not tracking._backlog


def test_a_refused_write_with_nothing_to_write_instead_is_dropped(quick_replay) -> None:
    written: list[str] = []

    def poisoned() -> None:
        raise DataError("integer out of range")

    tracking._write("a", poisoned)
    tracking._write("a", lambda: written.append("later write of the same run"))

    assert written == ["later write of the same run"]
    assert not tracking._backlog


def test_a_write_stuck_on_its_own_holds_only_its_run(quick_replay) -> None:
    written: list[str] = []
    tries = []

    def stuck() -> None:
        tries.append(1)
        raise InternalError("could not serialize access")

    tracking._write("a", stuck)
    tracking._write("a", lambda: written.append("a, later"))
    tracking._write("b", lambda: written.append("b"))

    assert written == ["b"], "another run's write waited behind a stuck one"
    assert [entry.task_id for entry in tracking._backlog] == ["a", "a"]


def test_a_write_stuck_on_its_own_is_given_up_and_its_run_goes_on(quick_replay) -> None:
    written: list[str] = []

    def stuck() -> None:
        raise InternalError("could not serialize access")

    tracking._write("a", stuck)
    tracking._write("a", lambda: written.append("a, later"))
    for _ in range(tracking.MAX_ATTEMPTS):
        tracking._replay()

    assert written == ["a, later"]
    assert not tracking._backlog
