"""The web app served as in production: static files collected, gunicorn, DEBUG off."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

from tests.support.worker import PROJECT_DIR, database_url, wait_for


@dataclass
class ProductionServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_production_server(
    work_dir: Path, *, env: dict[str, str] | None = None, workers: int = 2
) -> ProductionServer:
    """gunicorn on the test database, serving the static files ``collectstatic`` wrote, as the
    production how-to (docs/how-to/production.md) runs it (without the HTTPS switch: the tests
    speak plain HTTP on loopback)."""
    if not (Path(settings.STATIC_ROOT) / "staticfiles.json").exists():
        raise RuntimeError("Run `manage.py collectstatic` first (bin/test does).")
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "BROKER_URL": settings.CELERY_BROKER_URL,
        "DJANGO_DEBUG": "0",
        "LIME_PACKAGES": "tests.reference_solution",
        **(env or {}),
    }
    port = _free_port()
    log_path = work_dir / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "taskstarter.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--access-logfile",
                "-",
            ],
            cwd=PROJECT_DIR,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ProductionServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_for(
            lambda: process.poll() is not None or _answers(f"{server.url}/admin/login/"),
            60,
            what="gunicorn to answer",
        )
    except TimeoutError:
        server.stop()
        raise RuntimeError(f"gunicorn did not start:\n{server.log()}") from None
    if process.poll() is not None:
        raise RuntimeError(f"gunicorn exited at start:\n{server.log()}")
    return server
