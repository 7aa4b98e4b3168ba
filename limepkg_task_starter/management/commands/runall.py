from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run web, task handler and scheduler together (the embedded default) until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", default="2")

    def handle(self, *args: Any, addrport: str, concurrency: str, **options: Any) -> None:
        # Stopped with SIGTERM (a service manager, ``timeout``): stop the children too.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        manage = [sys.executable, "manage.py"]
        processes = [
            subprocess.Popen([*manage, "runserver", "--noreload", "--insecure", addrport]),
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
