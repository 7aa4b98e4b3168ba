from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


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
        # Stopped with SIGTERM (a service manager, ``timeout``): stop the children too.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        call_command("collectstatic", interactive=False, verbosity=0)
        manage = [sys.executable, "manage.py"]
        web = [sys.executable, "-m", "gunicorn", "taskstarter.wsgi", "--bind", addrport]
        processes = [
            subprocess.Popen([*web, "--workers", web_workers, "--access-logfile", "-"]),
            subprocess.Popen(
                [
                    *manage,
                    "taskhandler",
                    "--beat",
                    "--concurrency",
                    concurrency,
                    "--loglevel",
                    "INFO",
                    "--without-mingle",
                    "--without-gossip",
                ]
            ),
        ]
        self.stdout.write(self.style.SUCCESS(f"Task starter: http://{addrport}/admin/"))
        try:
            while all(process.poll() is None for process in processes):
                time.sleep(0.5)
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(timeout=30)
        failed = [p.returncode for p in processes if p.returncode not in (0, -signal.SIGTERM)]
        if failed:
            sys.exit(1)
