"""Start and stop real task handler processes for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from limepkg_task_starter.models import WorkerHeartbeat

PROJECT_DIR = Path(settings.BASE_DIR)


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """A DATABASE_URL for the database this test process is using (the test database)."""
    name = settings_dict["NAME"]
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(name).resolve()}"
    user = settings_dict.get("USER") or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{name}"


def wait_for(predicate: Any, timeout: float, interval: float = 0.05, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"Timed out after {timeout}s waiting for {what or predicate}")


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    hostname: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def pool_child_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def kill(self, sig: int = signal.SIGKILL) -> None:
        os.killpg(self.process.pid, sig)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def start_worker(
    log_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    concurrency: int = 2,
    queues: str | None = None,
    pool: str | None = None,
    ready_timeout: float = 60,
) -> WorkerProcess:
    hostname = f"test-{uuid.uuid4().hex[:8]}@localhost"
    log_path = log_dir / f"{hostname.split('@')[0]}.log"
    worker_env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "BROKER_URL": settings.CELERY_BROKER_URL,
        "LIME_TASKS_HEARTBEAT_INTERVAL": "0.5",
        "LIME_PACKAGES": "tests.reference_solution",
        **(env or {}),
    }
    command = [
        sys.executable,
        "manage.py",
        "taskhandler",
        "--concurrency",
        str(concurrency),
        "--hostname",
        hostname,
        "--loglevel",
        "INFO",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
        *(["--queues", queues] if queues else []),
        *(["--pool", pool] if pool else []),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env=worker_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = WorkerProcess(process, hostname, log_path)
    try:
        wait_for(
            lambda: (
                not worker.alive() or WorkerHeartbeat.objects.filter(hostname=hostname).exists()
            ),
            ready_timeout,
            what=f"worker {hostname} to start",
        )
    except TimeoutError:
        worker.kill()
        raise RuntimeError(f"Worker did not start:\n{worker.log()}") from None
    if not worker.alive():
        raise RuntimeError(f"Worker exited at start:\n{worker.log()}")
    return worker
