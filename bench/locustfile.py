"""The load ``bench/load.py`` puts on the production server (run by Locust, not imported).

Watchers are administrators already logged in (each with a session of their own) with the task
page open: every second the page's history poll, and now and then the page itself and a run's
status through the API. Starters start the task through the API as fast as the server answers.
"""

from __future__ import annotations

import os
import random

from locust import HttpUser, constant, task

APP = os.environ["LOAD_APPLICATION"]
TASK = os.environ["LOAD_TASK"]
SESSIONS = os.environ["LOAD_SESSIONS"].split(",")
TOKEN = os.environ["LOAD_TOKEN"]
TASK_PAGE = f"/admin/task-starter/{APP}/tasks/{TASK}/"
START = f"/api/v1/applications/{APP}/tasks/{TASK}/runs"

# Ids of runs started in this process, for the watchers to read.
started: list[str] = []


class Watcher(HttpUser):
    fixed_count = int(os.environ.get("LOAD_WATCHERS", "50"))
    wait_time = constant(1)  # the page's poll interval

    def on_start(self) -> None:
        self.client.cookies.set("sessionid", SESSIONS.pop())

    @task(8)
    def poll_history(self) -> None:
        self.client.get(f"{TASK_PAGE}history/", name="history poll")

    @task(1)
    def open_task_page(self) -> None:
        self.client.get(TASK_PAGE, name="task page")

    @task(1)
    def read_status(self) -> None:
        if started:
            run_id = random.choice(started[-200:])
            self.client.get(f"/api/v1/applications/{APP}/runs/{run_id}", name="run status")


class Starter(HttpUser):
    fixed_count = int(os.environ.get("LOAD_STARTERS", "8"))
    wait_time = constant(0)

    @task
    def start_run(self) -> None:
        with self.client.post(
            START,
            json={"arguments": {"number": random.randint(0, 1000)}},
            headers={"Authorization": f"Bearer {TOKEN}"},
            name="start",
            catch_response=True,
        ) as response:
            if response.status_code == 202:
                started.append(response.json()["id"])
                response.success()
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")
