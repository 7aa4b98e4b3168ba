"""The tutorial (docs/tutorial.md), followed as written, in a fresh copy of the repository.

Each fenced block is taken from the page itself, in order, so the page cannot drift from what
works: a block whose first line is ``# <path>`` is written to that file; a ``sh`` block runs in
a shell, and one that ends in ``bin/start`` is the server, left running (stopped when the next
one starts, as the page's Ctrl-C does). The page steps are done in Chromium with the labels the
page names. Two things differ from a newcomer's machine, both for time: the copy shares this
checkout's ``.venv`` (bin/start still runs its install step against it), and the server listens
on a free port instead of 8000, so that nothing else on the machine is in its way.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.worker import PROJECT_DIR

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

TUTORIAL = PROJECT_DIR / "docs" / "tutorial.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
GREET = "my_solution.tasks.greetings.greet"
FILE_LINE = re.compile(r"#\s*([\w./-]+\.(?:py|yaml))\s*$")
# What a newcomer's shell would not have: the settings this test run itself was given.
FOREIGN = ("DATABASE_URL", "BROKER_URL", "LIME_CONFIG", "LIME_PACKAGES", "RESULT_BACKEND_URL")


@dataclass
class Block:
    language: str
    text: str

    @property
    def file(self) -> str | None:
        first = self.text.splitlines()[0] if self.text else ""
        found = FILE_LINE.fullmatch(first.strip()) if self.language in {"python", "yaml"} else None
        return found[1] if found else None

    @property
    def starts_the_server(self) -> bool:
        return self.language == "sh" and self.text.strip().endswith("bin/start")


def tutorial_blocks() -> list[Block]:
    return [Block(language, text) for language, text in BLOCK.findall(TUTORIAL.read_text())]


@dataclass
class Newcomer:
    """A fresh copy of the repository and the processes started in it."""

    root: Path
    port: int
    server: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if k not in FOREIGN}
        return {k: v for k, v in environ.items() if not k.startswith("LIME_TASKS_")}

    def shell(self, text: str) -> str:
        text = text.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", text],
            cwd=self.root,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{text}\n{done.stdout}\n{done.stderr}"
        self.outputs.append(done.stdout)
        return done.stdout

    def start_server(self, text: str) -> None:
        self.stop_server()
        log = self.root / "var" / f"bin-start-{len(self.logs)}.log"
        log.parent.mkdir(exist_ok=True)
        self.logs.append(log)
        command = f"{text.strip()} --addrport 127.0.0.1:{self.port}"
        with log.open("wb") as out:
            self.server = subprocess.Popen(
                ["bash", "-c", command],
                cwd=self.root,
                env=self.environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 240
        while not self._answers(f"{self.url}/admin/login/"):
            assert self.server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(1)

    def stop_server(self) -> None:
        """Ctrl-C, as the page says; everything ends within 15 s."""
        if self.server is None or self.server.poll() is not None:
            return
        os.killpg(self.server.pid, signal.SIGINT)
        try:
            self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.server.pid, signal.SIGKILL)
            self.server.wait(timeout=10)
            raise AssertionError("bin/start did not stop within 30 s of Ctrl-C") from None

    def password(self) -> str:
        found = re.search(r"password: (\S+)", self.logs[0].read_text())
        assert found, self.logs[0].read_text()
        return found[1]

    def runs(self, task_name: str, origin: str) -> list[tuple[str, str]]:
        with sqlite3.connect(self.root / "var" / "db.sqlite3", timeout=10) as database:
            return database.execute(
                "SELECT status, result FROM limepkg_task_starter_taskrun "
                "WHERE task_name = ? AND origin = ?",
                (task_name, origin),
            ).fetchall()

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False


@pytest.fixture
def newcomer(tmp_path: Path) -> Iterator[Newcomer]:
    root = tmp_path / "task-starter"
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT_DIR, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, tracked.split("\0")):
        source = PROJECT_DIR / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    (root / ".venv").symlink_to(PROJECT_DIR / ".venv")
    person = Newcomer(root, port=_free_port())
    yield person
    person.stop_server()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_tutorial_works_as_written(newcomer: Newcomer, page: Page) -> None:
    text = TUTORIAL.read_text()
    blocks = tutorial_blocks()
    page_step = next(i for i, b in enumerate(blocks) if "manage.py shell" in b.text)
    for block in blocks[:page_step]:
        follow(newcomer, block)
    started_from_the_page(newcomer, page, text)
    for block in blocks[page_step:]:
        follow(newcomer, block)

    # Step 6 prints what the page says it prints.
    printed = newcomer.outputs[-1].strip().splitlines()[-1]
    assert printed == "Hello, Grace! Hello, Grace! Hello, Grace!"
    assert f"It prints `{printed}`" in text

    # Step 7: the schedule fires within a minute (and its run succeeds).
    deadline = time.monotonic() + 90
    while not newcomer.runs(GREET, "schedule"):
        assert time.monotonic() < deadline, "no scheduled run within 90 s"
        time.sleep(2)
    deadline = time.monotonic() + 30
    while ("SUCCESS", '"Hello, schedule!"') not in newcomer.runs(GREET, "schedule"):
        assert time.monotonic() < deadline, newcomer.runs(GREET, "schedule")
        time.sleep(1)


def follow(newcomer: Newcomer, block: Block) -> None:
    if block.file:
        path = newcomer.root / block.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.text)
    elif block.starts_the_server:
        newcomer.start_server(block.text)
    elif block.language == "sh":
        newcomer.shell(block.text)
    # ``text`` blocks show output; they are not run.


def started_from_the_page(newcomer: Newcomer, page: Page, text: str) -> None:
    """Step 5, with the labels the page names in bold."""
    for label in ("Start tasks and follow their runs", "greetings", "greet"):
        assert f"**{label}**" in text
    assert "**Start task as logged in user**" in text
    page.goto(f"{newcomer.url}/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", newcomer.password())
    page.click("input[type=submit]")
    page.click("text=Start tasks and follow their runs")
    page.click(".ts-app-switch >> text=greetings")
    page.click("#task-list >> text=greet")
    page.fill("#param-name", "Ada")
    page.fill("#param-times", "2")
    page.click("text=Start task as logged in user")
    first_row = page.locator("#history tbody tr:first-child")
    expect(first_row.locator(".ts-status")).to_have_text("Success", timeout=60_000)
    expect(first_row.locator(".ts-result")).to_contain_text("Hello, Ada! Hello, Ada!")
    assert "`Hello, Ada! Hello, Ada!`" in text
