"""Upstream scheduler tests that TaskStarterScheduler fails on purpose, each with the reason.

``run.py`` asserts that exactly these fail: a new failure, or one of these passing, fails the run.
Keys are ``class::test`` in upstream's ``t/unit/test_schedulers.py``.
"""

from __future__ import annotations

LOADS_EVERY_ROW = (
    "Every enabled row is loaded at start; the stock scheduler leaves out crontabs due only "
    "hours from now and reloads them later. Ours never reloads everything, so it holds them all."
)
HEAD_DOES_NOT_STARVE = (
    "A disabled entry at the head of the heap is rescheduled (Celery 5.7's tick), so the "
    "entries behind it get their turn; the stock scheduler rebuilds the heap on every change and "
    "keeps the disabled one on top, which this test pins down."
)
CHANGES_ONCE_A_SECOND = (
    "Changes are looked for at most once a second (LIME_SCHEDULER_CHANGE_CHECK_SECONDS), not on "
    "every read of the schedule; the test reads it again at once. It passes with the check at 0."
)

# With the defaults.
DIFFERENCES: dict[str, str] = {
    "test_DatabaseScheduler::test_all_as_schedule": LOADS_EVERY_ROW,
    "test_DatabaseScheduler::test_heap_always_return_the_first_item": HEAD_DOES_NOT_STARVE,
    "test_DatabaseScheduler::test_sync_saves_last_run_at": CHANGES_ONCE_A_SECOND,
    "test_DatabaseScheduler::test_schedule_changed": CHANGES_ONCE_A_SECOND,
    "test_DatabaseScheduler::test_sync_syncs_before_save": CHANGES_ONCE_A_SECOND,
    "test_DatabaseScheduler::test_periodic_task_disabled_and_enabled": CHANGES_ONCE_A_SECOND,
    "test_DatabaseScheduler::test_periodic_task_disabled_while_reserved": CHANGES_ONCE_A_SECOND,
    "test_DatabaseScheduler::test_starttime_trigger": CHANGES_ONCE_A_SECOND,
}

# With LIME_SCHEDULER_CHANGE_CHECK_SECONDS=0: what differs once the throttle is out of the way.
DIFFERENCES_WITHOUT_THROTTLE: dict[str, str] = {
    name: reason for name, reason in DIFFERENCES.items() if reason is not CHANGES_ONCE_A_SECOND
}
