from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management.base import BaseCommand, CommandError, CommandParser

# The task handler stops within its own deadline (``shutdown_grace`` + 5 s, 13 s by default):
# this one is the last resort, and keeps the whole stop within 15 s.
STOP_DEADLINE_SECONDS = 14.0


def static_sources_fingerprint() -> str:
    """A digest of every static file's path, size and time stamp, as the finders find them.

    Collecting (hashing and compressing every file, the admin's included) takes many seconds on
    a busy machine; a restart with unchanged sources need not do it again.
    """
    digest = hashlib.sha256()
    for finder in finders.get_finders():
        for path, storage in finder.list([]):
            stat = os.stat(storage.path(path))
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _fingerprint_path() -> Path:
    return Path(settings.STATIC_ROOT) / ".sources-fingerprint"


def _collected_fingerprint() -> str | None:
    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    if not manifest.exists() or not _fingerprint_path().exists():
        return None
    return _fingerprint_path().read_text()


class Command(BaseCommand):
    help = (
        "Run web (gunicorn, static files collected and served by WhiteNoise), task handler and "
        "scheduler together until Ctrl-C: the embedded default, served as in production."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", default="2", help="task handler processes")
        parser.add_argument("--web-workers", default="2", help="gunicorn worker processes")

    def handle(
        self, *args: Any, addrport: str, concurrency: str, web_workers: str, **options: Any
    ) -> None:
        # Stopped with SIGTERM (a service manager, ``timeout``) as with Ctrl-C: stop the children.
        signal.signal(signal.SIGTERM, _stop_requested)
        signal.signal(signal.SIGINT, _stop_requested)
        manage = [sys.executable, "manage.py"]
        web = [sys.executable, "-m", "gunicorn", "taskstarter.wsgi", "--bind", addrport]
        commands = {
            # A request in flight (a status wait, a long page) may hold gunicorn's graceful
            # stop for its default 30 s: keep it inside the 15 s a stop may take.
            "web": [
                *web,
                "--workers",
                web_workers,
                "--graceful-timeout",
                "10",
                "--access-logfile",
                "-",
            ],
            "task handler": [
                *manage,
                "taskhandler",
                "--beat",
                "--concurrency",
                concurrency,
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
            ],
        }
        # Each child leads its own process group: a terminal's Ctrl-C reaches this process only,
        # which stops each child once, and a child that overstays is killed with its own children.
        processes: dict[str, subprocess.Popen[bytes]] = {}
        try:
            # In a process of its own: WhiteNoise compresses the files in threads, and a signal
            # that lands in one of them would wait for the whole collection to be handled here.
            # Stopped, it is killed (subprocess.run does that); the next start collects again.
            collect = [*manage, "collectstatic", "--noinput", "--verbosity", "0"]
            sources = static_sources_fingerprint()
            if sources != _collected_fingerprint():
                if subprocess.run(collect, process_group=0).returncode != 0:
                    raise CommandError("Collecting the static files failed (see above).")
                _fingerprint_path().write_text(sources)
            for name, command in commands.items():
                processes[name] = subprocess.Popen(command, process_group=0)
            self.stdout.write(self.style.SUCCESS(f"Task starter: http://{addrport}/admin/"))
            while all(process.poll() is None for process in processes.values()):
                time.sleep(0.5)
        except StopRequestedError:
            self.stdout.write("Stopping…")
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            _wait_or_kill(processes, deadline=time.monotonic() + STOP_DEADLINE_SECONDS)
        if any(p.returncode not in (0, -signal.SIGTERM) for p in processes.values()):
            sys.exit(1)


class StopRequestedError(Exception):
    """Ctrl-C or SIGTERM: stop the children, then exit."""


def _stop_requested(*_: object) -> None:
    raise StopRequestedError


def _wait_or_kill(processes: dict[str, subprocess.Popen[bytes]], *, deadline: float) -> None:
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            sys.stderr.write(
                f"The {name} did not stop within {STOP_DEADLINE_SECONDS:g} s; killed.\n"
            )
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
