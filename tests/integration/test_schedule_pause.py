"""Pause and resume on a real scheduler (celery beat with the Task starter's scheduler) and a
real task handler: a paused schedule sends nothing, and fires again when resumed or when its
pause ends by itself."""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pytest
from django.utils import timezone

from lime_task import LimeApplication
from limepkg_task_starter.services.schedules import schedule_pause, schedule_resume
from tests.integration.test_scheduler import TASKS, Beat, beats, every, scheduled_runs
from tests.limepkg_task_starter.conftest import make_user
from tests.support.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.integration
__all__ = ["beats"]  # the fixture, shared with the scheduler's other tests

# A change is read within a second; a dispatch already on its way may still be recorded.
SETTLE_SECONDS = 2.5
WATCH_SECONDS = 4.0


def test_a_paused_schedule_sends_nothing_until_resumed_or_its_pause_ends(
    worker: WorkerProcess, live_demo_app: LimeApplication, beats: list[Beat], worker_logs: Path
) -> None:
    periodic = every(1, "demo: every second", f"{TASKS}.dummy_task", [2, 3])
    pauser = make_user("pat", perms=("pause",))
    beats.append(Beat(worker_logs, "pause"))
    wait_for(lambda: len(scheduled_runs()) >= 2, 30, what="runs before the pause")

    schedule_pause(actor=pauser, application="demo", periodic_task=periodic)
    time.sleep(SETTLE_SECONDS)
    before = len(scheduled_runs())
    time.sleep(WATCH_SECONDS)
    assert len(scheduled_runs()) == before, "a paused schedule was dispatched"
    assert "is paused: this tick is skipped" in beats[0].log_path.read_text()

    schedule_resume(actor=pauser, application="demo", periodic_task=periodic)
    wait_for(lambda: len(scheduled_runs()) >= before + 2, 30, what="runs after the resume")

    until = timezone.now() + datetime.timedelta(seconds=SETTLE_SECONDS + WATCH_SECONDS)
    schedule_pause(actor=pauser, application="demo", periodic_task=periodic, until=until)
    time.sleep(SETTLE_SECONDS)
    held = len(scheduled_runs())
    time.sleep(WATCH_SECONDS - 1)
    assert len(scheduled_runs()) == held, "a schedule paused until later was dispatched"
    # Nobody resumes it: the pause ends by itself and the schedule fires again.
    wait_for(lambda: len(scheduled_runs()) >= held + 2, 30, what="runs after the pause ended")
    first_after = min(r.created_at for r in scheduled_runs()[held:])
    assert first_after >= until
