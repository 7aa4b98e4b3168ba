"""A Task Starter deployed over several hosts: database and broker, web, task handlers, schedulers.

Every process runs in its host's namespace and reaches the others by their addresses only. The
database host has one address per service (PostgreSQL on the first, RabbitMQ on the second), so
a test can take one path away from one host and leave the other.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.cluster import services
from tests.cluster.network import Network, remove_leftovers

PROJECT_DIR = Path(__file__).resolve().parents[2]
APPLICATION = "cluster"
TASKS = "tests.cluster.solution.tasks.cluster_tasks"
# How the cluster keeps its history honest: a handler marks itself alive every second; one
# silent for 20 s is lost and its STARTED runs end as FAILURE. Longer than the database outage
# the test rides out (10 s), as the default (60 s) is longer than the outages it should ride out.
HEARTBEAT_INTERVAL = 1.0
WORKER_LOST_AFTER = 20.0
SCHEDULER_LEASE_SECONDS = 3.0
HOSTS = {"data": 2, "web": 1, "handler1": 1, "handler2": 1, "scheduler1": 1, "scheduler2": 1}


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"Timed out after {timeout:g} s waiting for {what}")


@dataclass
class Process:
    host: str
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)


@dataclass
class Cluster:
    network: Network
    directory: Path
    token: str = ""
    processes: dict[str, Process] = field(default_factory=dict)

    # --- Addresses --------------------------------------------------------------------------

    @property
    def database_address(self) -> str:
        return self.network.hosts["data"].addresses[0]

    @property
    def broker_address(self) -> str:
        return self.network.hosts["data"].addresses[1]

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@{self.database_address}:5432/taskstarter"

    @property
    def web_url(self) -> str:
        return f"http://{self.network.hosts['web'].address}:8000"

    def environment(self, **extra: str) -> dict[str, str]:
        """What every process of the cluster is started with: addresses, never 127.0.0.1."""
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(self.directory),
            "DJANGO_SETTINGS_MODULE": "taskstarter.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "cluster-test-only-" + "k" * 40,
            "DJANGO_ALLOWED_HOSTS": self.network.hosts["web"].address,
            "TASKSTARTER_VAR_DIR": str(self.directory / "var"),
            "DJANGO_STATIC_ROOT": str(PROJECT_DIR / "var" / "staticfiles"),
            "DATABASE_URL": self.database_url,
            "BROKER_URL": f"amqp://guest:guest@{self.broker_address}:5672//",
            "LIME_CONFIG": str(self.directory / "lime.yaml"),
            "LIME_TASK_EVENTS": "0",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }

    # --- Starting things --------------------------------------------------------------------

    def start_process(self, host: str, name: str, argv: list[str], **env: str) -> Process:
        log_path = self.directory / f"{name}.log"
        popen = self.network.start(
            host, argv, log=log_path, env=self.environment(**env), cwd=PROJECT_DIR
        )
        process = Process(host, name, popen, log_path)
        self.processes[name] = process
        return process

    def manage(self, host: str, *args: str) -> str:
        done = subprocess.run(
            self.network.command(host, [sys.executable, "manage.py", *args]),
            env=self.environment(),
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} on {host}:\n{done.stderr}")
        return done.stdout

    def start_web(self) -> Process:
        process = self.start_process(
            "web",
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "taskstarter.wsgi",
                "--bind",
                f"{self.network.hosts['web'].address}:8000",
                "--workers",
                "2",
            ],
        )
        wait_until(lambda: self._answers("/api/v1/openapi.json"), 60, "the web host to answer")
        return process

    def start_handler(self, host: str, *, concurrency: int = 2) -> Process:
        name = f"{host}-{len([p for p in self.processes if p.startswith(host)])}"
        process = self.start_process(
            host,
            name,
            [
                sys.executable,
                "manage.py",
                "taskhandler",
                "--hostname",
                f"{host}@{self.network.hosts[host].address}",
                "--concurrency",
                str(concurrency),
                "--prefetch-multiplier",
                "1",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
            ],
        )
        return process

    def wait_for_handlers(self, *hosts: str, timeout: float = 60) -> None:
        names = [f"{host}@{self.network.hosts[host].address}" for host in hosts]
        wait_until(
            lambda: (
                self.scalar(
                    "SELECT count(*) FROM limepkg_task_starter_workerheartbeat "
                    "WHERE hostname = ANY(%s) AND last_seen > now() - interval '3 seconds'",
                    (names,),
                )
                == len(names)
            ),
            timeout,
            f"task handlers {', '.join(hosts)} to mark themselves alive",
        )

    def start_scheduler(self, host: str) -> Process:
        return self.start_process(
            host,
            host,
            [sys.executable, "-m", "celery", "-A", "taskstarter", "beat", "--loglevel", "INFO"],
            LIME_SCHEDULER_LEASE_SECONDS=str(SCHEDULER_LEASE_SECONDS),
        )

    def _answers(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(self.web_url + path, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    # --- Using it ---------------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            f"{self.web_url}/api/v1{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def start_run(self, task: str, arguments: dict[str, Any]) -> str:
        answer = self.api(
            "POST",
            f"/applications/{APPLICATION}/tasks/{TASKS}.{task}/runs",
            {"arguments": arguments},
        )
        return str(answer["id"])

    @contextmanager
    def database(self) -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
            yield conn

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.database() as conn:
            return conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Any = None) -> None:
        with self.database() as conn:
            conn.execute(sql, params)

    def scalar(self, sql: str, params: Any = None) -> Any:
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def runs(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        with self.database() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
            cursor.execute(
                "SELECT id, status, worker, reason, started_at, finished_at, reconciled_at, "
                "later_reports "
                "FROM limepkg_task_starter_taskrun WHERE id = ANY(%s)",
                (ids,),
            )
            return {row["id"]: row for row in cursor.fetchall()}

    def destroy(self) -> None:
        for process in self.processes.values():
            process.stop()
        self.network.destroy()


def build_cluster(*, handlers: tuple[str, ...] = ("handler1", "handler2")) -> Cluster:
    """Hosts, database and broker, the web host and the task handlers, ready for runs."""
    remove_leftovers()
    directory = Path(tempfile.mkdtemp(prefix="taskstarter-cluster-"))
    directory.chmod(0o755)
    network = Network.create(HOSTS)
    cluster = Cluster(network, directory)
    try:
        services.start_postgres(network, "data", cluster.database_address, directory / "pg")
        services.start_rabbitmq(network, "data", cluster.broker_address, directory / "rabbitmq")
        with psycopg.connect(
            f"postgres://postgres@{cluster.database_address}:5432/postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE taskstarter")
        (directory / "lime.yaml").write_text(
            "tasks:\n"
            "  backend_connection_string: None\n"
            f"  heartbeat_interval: {HEARTBEAT_INTERVAL}\n"
            f"  worker_lost_after: {WORKER_LOST_AFTER}\n"
            "packages:\n"
            "  - tests.cluster.solution\n"
        )
        cluster.manage("web", "migrate", "--noinput", "-v0")
        done = subprocess.run(
            network.command("web", [sys.executable, "-m", "tests.cluster.prepare", APPLICATION]),
            env=cluster.environment(),
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        cluster.token = json.loads(done.stdout.strip().splitlines()[-1])["token"]
        cluster.start_web()
        for host in handlers:
            cluster.start_handler(host)
        cluster.wait_for_handlers(*handlers)
    except BaseException:
        cluster.destroy()
        raise
    return cluster
