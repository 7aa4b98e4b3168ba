"""An administrator uses the Task starter in headless Chromium, with a real task handler, on
the pages as deployed: gunicorn with DEBUG off, static files served by WhiteNoise."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from lime_task.status import Origin
from limepkg_task_starter.models import Application, TaskRun
from limepkg_task_starter.services import starting
from tests.browser.conftest import log_in, read_csp_violations, staff_user
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.browser
STATUS = "#history tbody tr:first-child .ts-status"


def open_task(page: Page, name: str) -> None:
    page.click("text=Start tasks and follow their runs")
    page.click(f"#task-list >> text={name}")
    expect(page.locator("h1")).to_have_text(name)


def test_start_watch_rerun_and_inspect(
    page: Page, production_server, worker: WorkerProcess, demo_site: Application
) -> None:
    staff_user("ada", demo_site, "view_taskrun", "start_task", "view_traceback")
    log_in(page, production_server, "ada")
    open_task(page, "dummy_task")

    page.click("text=Edit as JSON")  # the raw editor, beside the parameter form
    page.fill("#arguments", '{"number": 3,')
    page.click("text=Start task as logged in user")
    expect(page.locator("#argument-errors")).to_contain_text("Not valid JSON")
    expect(page.locator("#arguments")).to_have_value('{"number": 3,')

    page.fill("#arguments", '{"number": 3, "numberx": 4}')
    page.click("text=Start task as logged in user")
    expect(page.locator(".messagelist")).to_contain_text("Started dummy_task as ada.")
    # The message links the run; its row is marked and in view.
    started = TaskRun.objects.get()
    expect(page.locator(".messagelist a")).to_have_attribute(
        "href", f"/admin/task-starter/runs/{started.id}/"
    )
    expect(page.locator(f"#run-{started.id}.ts-new")).to_be_in_viewport()
    # Pending → Success with no reload: the row polls itself.
    expect(page.locator(STATUS)).to_have_text("Success", timeout=20_000)
    expect(page.locator("#history tbody tr:first-child .ts-result")).to_have_text("60")

    page.locator("#history tbody tr:first-child details.ts-menu summary").click()
    page.click("text=Run again…")
    # A confirmation first, saying what will run as whom.
    expect(page.locator("h1")).to_have_text("Run again?")
    expect(page.locator(".ts-confirm")).to_contain_text('"numberx": 4')
    expect(page.locator(".ts-confirm")).to_contain_text("ada")
    page.get_by_role("button", name="Run again").click()
    expect(page.locator("#history tbody tr")).to_have_count(2)
    expect(page.locator(STATUS)).to_have_text("Success", timeout=20_000)
    first, second = TaskRun.objects.order_by("-created_at")
    assert first.rerun_of_id == second.id and first.arguments == second.arguments

    # Back on the task page the parameter form is shown; copying fills its inputs.
    page.fill("#param-number", "0")
    page.locator("#history tbody tr:first-child details.ts-menu summary").click()
    page.click("text=Fill the form with these arguments")
    assert (page.input_value("#param-number"), page.input_value("#param-numberx")) == ("3", "4")

    page.locator("#history tbody tr:first-child details.ts-menu summary").click()
    page.click("text=View info")
    expect(page.locator(".ts-info")).to_contain_text(first.id)
    expect(page.locator(".ts-info")).to_contain_text("60")
    expect(page.locator(".ts-info")).to_contain_text(worker.hostname)


def test_run_again_from_view_info_lands_on_the_new_run(
    page: Page, production_server, worker: WorkerProcess, demo_site: Application
) -> None:
    ada = staff_user("ada", demo_site, "view_taskrun", "start_task")
    old = starting.run_start(
        actor=ada,
        application=demo_site,
        task_name="solution_demo.tasks.my_tasks.dummy_task",
        arguments={"number": 2},
        origin=Origin.API,
    )
    log_in(page, production_server, "ada")
    page.goto(f"{production_server.url}/admin/task-starter/runs/{old.id}/")
    page.click("text=Run again…")
    page.get_by_role("button", name="Run again").click()

    new = TaskRun.objects.get(rerun_of=old)
    page.wait_for_url(f"**/admin/task-starter/runs/{new.id}/")
    info = page.locator(".ts-info")
    expect(info).to_contain_text(new.id)
    expect(info).to_contain_text(f"Run again of {old.id}")
    expect(info.locator(".ts-status").first).to_have_text("Success", timeout=20_000)

    info.locator(f"a[href$='/runs/{old.id}/']").click()
    expect(page.locator(".ts-reruns")).to_contain_text(new.id)
    expect(page.locator(".ts-reruns .ts-status")).to_have_text("Success")


def test_the_parameter_form_starts_a_task_and_marks_a_wrong_field(
    page: Page, production_server, worker: WorkerProcess, demo_site: Application
) -> None:
    staff_user("ada", demo_site, "view_taskrun", "start_task")
    log_in(page, production_server, "ada")
    open_task(page, "dummy_task")

    page.fill("#param-number", "many")
    page.click("text=Start task as logged in user")
    number = page.locator("#param-number")
    expect(number).to_have_attribute("aria-invalid", "true")
    expect(number).to_have_value("many")
    expect(page.locator("#param-number_error")).to_contain_text(
        "“many” is not a whole number. Type it as, for example, 42."
    )
    described = number.get_attribute("aria-describedby") or ""
    assert "param-number_error" in described.split()

    page.fill("#param-number", "6")
    page.fill("#param-numberx", "7")
    page.click("text=Start task as logged in user")
    expect(page.locator(STATUS)).to_have_text("Success", timeout=20_000)
    expect(page.locator("#history tbody tr:first-child .ts-result")).to_have_text("210")


REMINDERS = "solution_demo.tasks.my_tasks.send_reminders"


def test_switching_between_the_form_and_json_keeps_what_was_typed_both_ways(
    page: Page, production_server, demo_site: Application, csp_violations
) -> None:
    demo_site.config["limepkg_task_starter"]["tasks"].append(REMINDERS)
    demo_site.save()
    staff_user("ada", demo_site, "view_taskrun", "start_task")
    log_in(page, production_server, "ada")
    open_task(page, "send_reminders")
    expect(page.locator(".field-customer_ids .help")).to_contain_text("list[int], required")
    expect(page.locator("#param-customer_ids")).to_have_attribute("placeholder", "e.g. 1, 2, 3")
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    page.fill("#param-customer_ids", '[1, "two", 3]')
    page.uncheck("#param-dry_run")
    page.fill("#param-note", "Q3 <b>")
    page.click("text=Edit as JSON")
    editor = page.locator("#arguments")
    expect(editor).to_be_visible()
    expect(page.locator("#param-customer_ids")).to_be_hidden()
    assert json.loads(editor.input_value()) == {
        "customer_ids": [1, "two", 3],
        "dry_run": False,
        "note": "Q3 <b>",
    }

    page.fill("#arguments", '{"customer_ids": [4, 5], "dry_run": true}')
    page.click("text=Edit in the form")
    assert (
        page.input_value("#param-customer_ids"),
        page.is_checked("#param-dry_run"),
        page.input_value("#param-note"),
    ) == ("4, 5", True, "")
    page.fill("#param-customer_ids", "1, 2, 3")
    page.click("text=Edit as JSON")
    assert json.loads(editor.input_value())["customer_ids"] == [1, 2, 3]

    page.fill("#arguments", '{"customer_ids": [1,')  # cannot be shown in the form: said, kept
    page.click("text=Edit in the form")
    expect(page.locator("#ts-switch-error")).to_contain_text("Fix the JSON first")
    expect(editor).to_have_value('{"customer_ids": [1,')
    # All of it on the page, no reload (the browser may still fetch the page's icon).
    assert [url for url in requests if "favicon" not in url] == []
    assert read_csp_violations(page) == []

    page.fill("#arguments", '{"customer_ids": [1, "two"]}')
    page.click("text=Edit in the form")
    page.click("text=Start task as logged in user")  # refused at the field, as typed
    expect(page.locator("#param-customer_ids_error")).to_contain_text(
        "Item 2, “two”, is not a whole number. Type it as, for example, 1, 2, 3."
    )
    expect(page.locator("#param-customer_ids")).to_have_value('[1,"two"]')
    assert not TaskRun.objects.exists()


def test_impersonation_button_only_with_the_permission(
    page: Page, production_server, demo_site: Application
) -> None:
    staff_user("starter", demo_site, "view_taskrun", "start_task")
    staff_user("imp", demo_site, "view_taskrun", "start_task", "start_task_as_impersonation_user")
    button = page.get_by_role("button", name="Start task as user integration-user")

    log_in(page, production_server, "starter")
    open_task(page, "dummy_task")
    expect(button).to_have_count(0)

    page.context.clear_cookies()
    log_in(page, production_server, "imp")
    open_task(page, "dummy_task")
    expect(button).to_be_visible()


def test_html_in_arguments_and_results_shows_as_text(
    page: Page, production_server, worker: WorkerProcess, demo_site: Application
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    staff_user("ada", demo_site, "view_taskrun", "start_task")
    log_in(page, production_server, "ada")
    open_task(page, "example_task")

    page.fill("#param-text", "<script>alert(1)</script><b>bold</b>")
    page.click("text=Start task as logged in user")
    result = page.locator("#history tbody tr:first-child .ts-result")
    expect(result).to_have_text(
        "Done with the task: <script>alert(1)</script><b>bold</b>", timeout=20_000
    )
    expect(page.locator("#history b")).to_have_count(0)
    page.reload()
    assert dialogs == []


def test_the_deployed_pages_load_every_asset_and_keep_to_the_csp(
    page: Page, production_server, demo_site: Application, csp_violations
) -> None:
    failed: list[str] = []
    page.on(
        "response",
        lambda response: (
            response.status >= 400 and failed.append(f"{response.status} {response.url}")
        ),
    )
    page.on("requestfailed", lambda request: failed.append(f"failed {request.url}"))
    staff_user("ada", demo_site, "view_taskrun", "start_task")
    log_in(page, production_server, "ada")
    open_task(page, "dummy_task")
    violations = read_csp_violations(page)
    assert page.evaluate("typeof window.htmx") == "object"  # live history can run
    static = [
        element.get_attribute("href") or element.get_attribute("src")
        for element in page.locator("link[rel=stylesheet], script[src]").all()
    ]
    assert static and all(url and "/static/" in url for url in static)
    # Content-hashed names, so they can be cached for a year.
    assert any(".css" in url and url.count(".") >= 2 for url in static if url)
    for path in ("/admin/", "/admin/limepkg_task_starter/taskrun/", "/api/v1/docs"):
        page.goto(f"{production_server.url}{path}")
        page.wait_for_load_state("networkidle")
        violations += read_csp_violations(page)
    assert failed == []
    assert violations == []
    assert "default-src 'self'" in page.evaluate(
        "fetch(location.href).then(r => r.headers.get('content-security-policy'))"
    )


def test_the_task_page_charts_outcomes_with_the_served_library_and_keeps_to_the_csp(
    page: Page, production_server, demo_site: Application, csp_violations
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    runs = [(30, "SUCCESS", 2), (20, "FAILURE", 2), (3, "SUCCESS", 0.004), (2, "SUCCESS", 0.006)]
    for hours_ago, status, seconds in runs:
        sent = now - timedelta(hours=hours_ago)
        TaskRun.objects.create(
            id=f"chart-{hours_ago}",
            application=demo_site,
            task_name="solution_demo.tasks.my_tasks.dummy_task",
            status=status,
            created_at=sent,
            started_at=sent,
            finished_at=sent + timedelta(seconds=seconds),
        )
    staff_user("ada", demo_site, "view_taskrun", "start_task")
    log_in(page, production_server, "ada")
    open_task(page, "dummy_task")
    insight = page.locator("#insight")
    expect(insight).to_contain_text("Last 7 days")
    expect(insight.locator("tbody tr").nth(1)).to_contain_text("75 %")
    expect(page.locator("#ts-chart canvas")).to_have_count(1)  # drawn by uPlot
    day, week = (page.get_by_role("button", name=name) for name in ("Last 24 h", "Last 7 days"))
    legend = page.locator(".ts-legend")

    # The last 24 hours by default, by the hour; the legend has the totals before any hover.
    expect(day).to_have_attribute("aria-pressed", "true")
    expect(legend.locator("[data-series=succeeded]")).to_have_text("Succeeded 2")
    expect(legend.locator("[data-series=failed]")).to_have_text("Failed 1")
    expect(page.locator("figcaption")).to_contain_text("Runs per hour, last 24 hours")
    axes = "document.getElementById('ts-chart').uplot.axes.map(axis => axis._values)"
    times, counts, durations = page.evaluate(axes)
    assert all(re.fullmatch(r"\d\d:\d\d(\n\d{4}-\d\d-\d\d)?", label) for label in times), times
    assert any("\n" in label for label in times)  # the date, once a day
    assert all(re.fullmatch(r"\d+", label) for label in counts), counts
    assert len(set(durations)) == len(durations), durations  # no "1 ms, 1 ms"
    assert all(re.fullmatch(r"\d+(\.\d)? (ms|s|min|h)", label) for label in durations), durations

    # Hovering names the hour, in ISO form on a 24-hour clock.
    page.locator("#ts-chart").scroll_into_view_if_needed()
    box = page.locator("#ts-chart .u-over").bounding_box()
    assert box
    page.mouse.move(box["x"] + box["width"] - 5, box["y"] + box["height"] / 2)
    expect(legend.locator("[data-series=time]")).to_have_text(
        re.compile(r"\d{4}-\d\d-\d\d \d\d:00 – \d\d:00")
    )
    page.mouse.move(0, 0)

    week.click()
    expect(week).to_have_attribute("aria-pressed", "true")
    expect(day).to_have_attribute("aria-pressed", "false")
    expect(legend.locator("[data-series=succeeded]")).to_have_text("Succeeded 3")
    expect(legend.locator("[data-series=failed]")).to_have_text("Failed 1")
    expect(page.locator("figcaption")).to_contain_text("Runs per 4 hours, last 7 days")
    times = page.evaluate(axes)[0]
    assert all(re.fullmatch(r"(\d\d:\d\d\n)?\d{4}-\d\d-\d\d|\d\d:\d\d", t) for t in times), times
    assert read_csp_violations(page) == []
