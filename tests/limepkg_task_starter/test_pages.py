"""What the Task starter pages show and do (the browser tests drive them for real)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from lime_task import task
from lime_task.status import Origin
from limepkg_task_starter.models import Application, AuditEntry, ScheduleDeclaration, TaskRun
from tests.limepkg_task_starter.conftest import DUMMY, EXAMPLE, make_user

TASK_PAGE = f"/admin/task-starter/demo/tasks/{DUMMY}/"


@pytest.fixture
def starter(pages_application: Application) -> Client:
    client = Client()
    client.force_login(make_user("ada", perms=("view", "start"), applications=(pages_application,)))
    return client


def test_admin_index_and_sidebar_have_one_task_starter_section(starter: Client) -> None:
    section = 'title="Models in the Task starter application">Task starter</a>'
    index = starter.get("/admin/").content.decode()
    assert index.count(section) == 1
    assert 'href="/admin/task-starter/">Start tasks and follow their runs</a>' in index
    sidebar = starter.get("/admin/limepkg_task_starter/taskrun/").content.decode()
    assert sidebar.count(section) == 1
    assert "Start tasks and follow their runs" in sidebar


def test_a_starter_without_any_admin_model_still_finds_the_task_starter(
    pages_application,
) -> None:
    client = Client()
    client.force_login(make_user("only_start", perms=("start",), applications=(pages_application,)))
    assert "Start tasks and follow their runs" in client.get("/admin/").content.decode()


def test_task_list_shows_exposed_tasks_with_their_description(starter: Client) -> None:
    page = starter.get("/admin/task-starter/demo/").content.decode()
    assert "dummy_task" in page and "example_task" in page
    assert "Multiply two numbers by five" in page
    assert "slow_report" not in page  # registered, but not exposed by this application


def test_task_list_search(starter: Client) -> None:
    page = starter.get("/admin/task-starter/demo/", {"q": "multiply"}).content.decode()
    assert "dummy_task" in page and "example_task" not in page


def test_task_page_prefills_defaults_and_lists_parameters(starter: Client) -> None:
    page = starter.get(TASK_PAGE).content.decode()  # the parameter form, by default
    assert '<input type="text" name="param-number" value="5" data-kind="number"' in page
    assert 'name="param-numberx" value="10"' in page
    assert "<code>int</code>, default <code>10</code>" in page  # the form's rows list them
    assert "<h2>Parameters</h2>" not in page
    assert '<div class="ts-editor" data-editor-pane="json" hidden>' in page  # a click away
    raw = starter.get(TASK_PAGE, {"editor": "json"}).content.decode()  # the raw JSON editor
    assert "&quot;number&quot;: 5" in raw and "&quot;numberx&quot;: 10" in raw
    assert '<div class="ts-editor" data-editor-pane="form" hidden>' in raw


def test_the_parameter_form_starts_with_its_values_converted(starter: Client) -> None:
    response = starter.post(
        TASK_PAGE,
        {"editor": "form", "param-number": "7", "param-numberx": "", "run_as": "self"},
    )
    assert response.status_code == 302
    run = TaskRun.objects.get()
    assert run.arguments == {"number": 7}  # numberx left empty: its default applies
    assert run.kwargs == {"number": 7}


def test_who_may_not_start_sees_the_parameters_listed(pages_application: Application) -> None:
    viewer = Client()
    viewer.force_login(make_user("viewer", perms=("view",), applications=(pages_application,)))
    page = viewer.get(TASK_PAGE).content.decode()
    assert "<code>numberx</code></td><td><code>int</code>" in page
    assert 'name="param-number"' not in page


def test_a_refused_field_is_marked_and_described_and_the_rest_kept(starter: Client) -> None:
    response = starter.post(
        TASK_PAGE,
        {"editor": "form", "param-number": "many", "param-numberx": "3", "run_as": "self"},
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert 'name="param-number" value="many"' in page
    assert (
        'aria-invalid="true" aria-describedby="param-number_helptext param-number_error" '
        'id="param-number"'
    ) in page
    assert (
        '<ul class="errorlist" id="param-number_error"><li>“many” is not a whole number. '
        "Type it as, for example, 42.</li></ul>"
    ) in page
    assert 'name="param-numberx" value="3"' in page
    assert 'aria-describedby="param-numberx_helptext" id="param-numberx"' in page
    assert not TaskRun.objects.exists()


def test_bad_arguments_keep_the_text_and_say_what_is_wrong(starter: Client) -> None:
    response = starter.post(TASK_PAGE, {"arguments": '{"number": "many"}', "run_as": "self"})
    page = response.content.decode()
    assert response.status_code == 400
    assert "number: Input should be a valid integer" in page
    assert "{&quot;number&quot;: &quot;many&quot;}</textarea>" in page
    assert not TaskRun.objects.exists() and not AuditEntry.objects.exists()


def test_start_records_the_run_and_an_audit_entry(starter: Client) -> None:
    response = starter.post(TASK_PAGE, {"arguments": "[7, 8]", "run_as": "self"}, follow=True)

    run = TaskRun.objects.get()
    assert (run.arguments, run.run_as, run.origin, run.in_history) == (
        {"number": 7, "numberx": 8},
        "ada",
        Origin.PAGE,
        True,
    )
    assert "Started dummy_task as ada." in response.content.decode()
    entry = AuditEntry.objects.get()
    assert (entry.actor_username, entry.action, entry.run_as, entry.arguments, entry.run_id) == (
        "ada",
        "start",
        "ada",
        {"number": 7, "numberx": 8},
        run.id,
    )


def test_impersonation_button_needs_its_permission(starter: Client, impersonator: Client) -> None:
    label = b"Start task as user integration-user"
    assert label not in starter.get(TASK_PAGE).content
    assert label in impersonator.get(TASK_PAGE).content


def test_start_as_the_impersonation_user(impersonator: Client) -> None:
    impersonator.post(TASK_PAGE, {"arguments": "{}", "run_as": "impersonation"})
    assert TaskRun.objects.get().run_as == "integration-user"
    assert AuditEntry.objects.get().run_as == "integration-user"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"is_active": False}, "The user integration-user is inactive."),
        ({"is_superuser": True}, "is a superuser; only a superuser may start tasks as it."),
    ],
)
def test_unsafe_impersonation_is_refused_clearly(
    impersonator: Client, change: dict[str, bool], message: str
) -> None:
    User.objects.filter(username="integration-user").update(**change)
    response = impersonator.post(TASK_PAGE, {"arguments": "{}", "run_as": "impersonation"})
    assert response.status_code == 403
    assert message in response.content.decode()
    assert not TaskRun.objects.exists()


def test_rerun_starts_a_linked_run_with_the_same_arguments(starter: Client, a_run: TaskRun) -> None:
    starter.post(f"/admin/task-starter/runs/{a_run.id}/rerun/")
    rerun = TaskRun.objects.exclude(id=a_run.id).get()
    assert (rerun.rerun_of_id, rerun.arguments, rerun.origin) == (
        a_run.id,
        a_run.arguments,
        Origin.RERUN,
    )
    assert AuditEntry.objects.get().action == "rerun"


def test_start_lands_on_the_new_row_and_its_message_links_the_run(starter: Client) -> None:
    response = starter.post(TASK_PAGE, {"arguments": "{}", "run_as": "self"})
    run = TaskRun.objects.get()
    assert response["Location"] == f"{TASK_PAGE}#run-{run.id}"
    page = starter.get(response["Location"]).content.decode()
    assert (
        f'Started dummy_task as ada. <a href="/admin/task-starter/runs/{run.id}/" '
        'class="ts-new-run">View the run</a>'
    ) in page
    assert f'<tr id="run-{run.id}" class="ts-run">' in page


def test_run_again_from_view_info_lands_on_the_new_runs_view_info(
    starter: Client, a_run: TaskRun
) -> None:
    old_info = f"/admin/task-starter/runs/{a_run.id}/"
    response = starter.post(f"{old_info}rerun/", {"next": old_info})
    rerun = TaskRun.objects.get(rerun_of=a_run)
    assert response["Location"] == f"/admin/task-starter/runs/{rerun.id}/"
    new_page = starter.get(response["Location"]).content.decode()
    assert f'Run again of <a href="{old_info}">{a_run.id}</a>' in new_page
    old_page = starter.get(old_info).content.decode()
    assert '<th scope="row">Retried</th>' in old_page
    assert f'→ <a href="/admin/task-starter/runs/{rerun.id}/">{rerun.id}</a>' in old_page


def test_run_again_from_a_list_lands_there_on_the_new_row(starter: Client, a_run: TaskRun) -> None:
    response = starter.post(f"/admin/task-starter/runs/{a_run.id}/rerun/", {"next": TASK_PAGE})
    rerun = TaskRun.objects.get(rerun_of=a_run)
    assert response["Location"] == f"{TASK_PAGE}#run-{rerun.id}"
    history = starter.get(f"{TASK_PAGE}history/").content.decode()
    assert f'Retried → <a href="/admin/task-starter/runs/{rerun.id}/"' in history


def test_run_now_lands_on_the_new_row(impersonator: Client, a_schedule) -> None:
    response = impersonator.post(
        f"/admin/task-starter/schedules/{a_schedule.id}/run-now/", {"next": TASK_PAGE}
    )
    run = TaskRun.objects.get()
    assert response["Location"] == f"{TASK_PAGE}#run-{run.id}"


def test_the_history_polls_as_one_table_until_every_run_completes(
    starter: Client, a_run: TaskRun
) -> None:
    for _ in range(4):  # copies of the run, open
        run = TaskRun.objects.get(id=a_run.id)
        run.id, run.status = str(uuid.uuid4()), "STARTED"
        run.save(force_insert=True)
    TaskRun.objects.filter(id=a_run.id).delete()
    page = starter.get(TASK_PAGE)
    # One poll, four open runs; quick, as they were just started.
    assert page.content.count(b'hx-trigger="every 250ms"') == 1
    assert page.content.count(b"hx-trigger") == 1

    history = f"{TASK_PAGE}history/"
    polling = starter.get(history)
    assert polling.status_code == 200 and b'hx-trigger="every 250ms"' in polling.content
    TaskRun.objects.update(created_at=timezone.now() - timedelta(minutes=1))
    assert b'hx-trigger="every 1s"' in starter.get(history).content  # open for a while now
    TaskRun.objects.update(status="SUCCESS", result="done")
    done = starter.get(history)
    assert done.status_code == 286  # htmx stops polling
    assert b"hx-trigger" not in done.content and done.content.count(b"Success") == 4


def test_a_run_row_refreshes_one_run(starter: Client, a_run: TaskRun) -> None:
    TaskRun.objects.filter(id=a_run.id).update(status="SUCCESS", result="done")
    done = starter.get(f"/admin/task-starter/runs/{a_run.id}/row/")
    assert done.status_code == 286
    assert b"Success" in done.content and b"done" in done.content


def test_view_info_says_what_was_decided_and_what_its_worker_reported_later(
    starter: Client, a_run: TaskRun
) -> None:
    TaskRun.objects.filter(id=a_run.id).update(
        status="SUCCESS",
        reconciled_at=a_run.created_at,
        later_reports="Ended at … for its worker: <lost>\nw2 also ran it",
    )
    page = starter.get(f"/admin/task-starter/runs/{a_run.id}/").content.decode()
    assert "Later reports" in page and "Reconciled" in page
    assert "for its worker: &lt;lost&gt;<br>w2 also ran it" in page


def test_traceback_only_for_those_allowed(
    starter: Client, pages_application: Application, a_run: TaskRun
) -> None:
    assert b"secret frame" not in starter.get(f"/admin/task-starter/runs/{a_run.id}/").content
    allowed = Client()
    allowed.force_login(
        make_user("dev", perms=("view", "traceback"), applications=(pages_application,))
    )
    assert b"secret frame" in allowed.get(f"/admin/task-starter/runs/{a_run.id}/").content


def test_arguments_results_and_names_are_escaped(
    starter: Client, pages_application: Application
) -> None:
    script = "<script>alert(1)</script>"
    TaskRun.objects.create(
        id=str(uuid.uuid4()),
        application=pages_application,
        task_name=EXAMPLE,
        arguments={"text": script},
        in_history=True,
        status="SUCCESS",
        result=f"<b>Done</b> {script}",
        created_at=timezone.now(),
    )
    run = TaskRun.objects.get()
    for url in (
        f"/admin/task-starter/demo/tasks/{EXAMPLE}/",
        f"/admin/task-starter/runs/{run.id}/",
    ):
        page = starter.get(url).content.decode()
        assert script not in page and "<b>Done</b>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- query counts ------------------------------------------------------------------------

MANY_TASKS = 1000
for number in range(MANY_TASKS):

    def _generated(app, value: int = number):
        return value

    _generated.__qualname__ = _generated.__name__ = f"generated_{number:04d}"
    globals()[_generated.__name__] = task(_generated)
GENERATED = [f"{__name__}.generated_{number:04d}" for number in range(MANY_TASKS)]


def configure(application: Application, tasks: int, runs: int) -> None:
    application.config["limepkg_task_starter"]["tasks"] = [DUMMY, *GENERATED[: tasks - 1]]
    application.save()
    start = timezone.now() - timedelta(days=1)
    TaskRun.objects.bulk_create(
        TaskRun(
            id=str(uuid.uuid4()),
            application=application,
            task_name=DUMMY if i % 2 else GENERATED[i % (tasks - 1)],
            in_history=i % 10 == 0,
            status="SUCCESS",
            created_at=start + timedelta(seconds=i),
        )
        for i in range(runs)
    )


def count_queries(client: Client, url: str, django_assert_max_num_queries) -> int:
    client.get(url)  # warm: sessions, permissions cache
    with django_assert_max_num_queries(50) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("url", ["/admin/task-starter/demo/", TASK_PAGE])
def test_query_count_does_not_grow_with_tasks_or_runs(
    starter: Client, pages_application: Application, url: str, django_assert_max_num_queries
) -> None:
    configure(pages_application, tasks=10, runs=10)
    small = count_queries(starter, url, django_assert_max_num_queries)
    TaskRun.objects.all().delete()
    configure(pages_application, tasks=MANY_TASKS, runs=10_000)
    large = count_queries(starter, url, django_assert_max_num_queries)
    assert small == large


REMINDERS = "solution_demo.tasks.my_tasks.send_reminders"


@pytest.fixture
def reminders_page(pages_application: Application) -> str:
    pages_application.config["limepkg_task_starter"]["tasks"].append(REMINDERS)
    pages_application.save()
    return f"/admin/task-starter/demo/tasks/{REMINDERS}/"


def test_the_form_has_a_checkbox_for_a_flag_and_json_for_a_list(
    starter: Client, reminders_page: str
) -> None:
    page = starter.get(reminders_page).content.decode()
    assert '<input type="checkbox" name="param-dry_run" data-kind="checkbox"' in page
    assert 'id="param-dry_run" checked>' in page
    assert '<textarea name="param-customer_ids"' in page
    assert "<code>list[int]</code>, required" in page  # the full type, not "list"
    assert 'placeholder="e.g. 1, 2, 3"' in page
    response = starter.post(
        reminders_page,
        {"editor": "form", "param-customer_ids": "3, 1", "param-note": "Q3", "run_as": "self"},
    )
    assert response.status_code == 302
    # An unticked box is false; the list, typed as 3, 1, arrives as JSON.
    assert TaskRun.objects.get().arguments == {
        "customer_ids": [3, 1],
        "dry_run": False,
        "note": "Q3",
    }


def test_a_json_field_that_does_not_parse_is_said_at_the_field(
    starter: Client, reminders_page: str
) -> None:
    response = starter.post(
        reminders_page,
        {"editor": "form", "param-customer_ids": "[3,", "param-dry_run": "on", "run_as": "self"},
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert 'id="param-customer_ids_error"><li>Not valid JSON: Expecting value' in page
    assert "Type it as, for example, [1, 2, 3] or 1, 2, 3.</li>" in page
    assert ">\n[3,</textarea>" in page and 'id="param-dry_run" checked' in page
    assert not TaskRun.objects.exists()


def test_without_the_start_permission_the_refusal_comes_before_any_field_error(
    pages_application: Application, reminders_page: str
) -> None:
    viewer = Client()
    viewer.force_login(make_user("viewer", perms=("view",), applications=(pages_application,)))
    response = viewer.post(
        reminders_page, {"editor": "form", "param-customer_ids": "[3,", "run_as": "self"}
    )
    assert response.status_code == 403


def test_the_task_list_takes_the_whole_width_and_marks_scheduled_tasks(
    starter: Client, a_schedule: ScheduleDeclaration
) -> None:
    page = starter.get("/admin/task-starter/demo/").content.decode()
    assert 'id="nav-sidebar"' not in page
    scheduled = f'href="/admin/task-starter/demo/tasks/{DUMMY}/#schedules"'
    assert page.count("Scheduled</a>") == 1 and scheduled in page


def test_a_disabled_schedule_is_not_marked(
    starter: Client, a_schedule: ScheduleDeclaration
) -> None:
    a_schedule.periodic_task.enabled = False
    a_schedule.periodic_task.save()
    assert "Scheduled</a>" not in starter.get("/admin/task-starter/demo/").content.decode()


def test_the_cancel_confirmation_is_a_red_button_and_run_again_is_not(
    pages_application: Application, a_run: TaskRun
) -> None:
    client = Client()
    client.force_login(
        make_user("op", perms=("view", "start", "cancel"), applications=(pages_application,))
    )
    TaskRun.objects.filter(id=a_run.id).update(status="STARTED")
    cancel = client.get(f"/admin/task-starter/runs/{a_run.id}/cancel/").content.decode()
    assert 'class="button ts-danger">Cancel the run</button>' in cancel
    rerun = client.get(f"/admin/task-starter/runs/{a_run.id}/rerun/").content.decode()
    assert 'class="button default">Run again</button>' in rerun


def test_the_history_menu_and_the_runs_menu_name_their_actions_alike(
    pages_application: Application, a_run: TaskRun
) -> None:
    client = Client()
    client.force_login(
        make_user("op", perms=("view", "start", "cancel"), applications=(pages_application,))
    )
    TaskRun.objects.filter(id=a_run.id).update(status="STARTED")

    def items(url: str) -> list[str]:
        page = client.get(url).content.decode()
        menu = page[page.index('<details class="ts-menu"') : page.index("</details>")]
        return re.findall(r">([^<>]+)</(?:a|button)>", menu)

    shared = ["View info", "Run again…", "Cancel…", "Copy task id", "Copy arguments"]
    assert items(TASK_PAGE) == [*shared, "Fill the form with these arguments"]
    assert items("/admin/task-starter/demo/runs/") == shared
