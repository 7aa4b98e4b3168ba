"""Run django-celery-beat's own scheduler tests against TaskStarterScheduler.

    .venv/bin/python -m tests.upstream_beat.run

Takes the source distribution of the installed django-celery-beat from the package registry (it
ships its tests in ``t/``; only ``t/`` is unpacked, into ``var/``, nothing into the repository),
runs ``t/unit/test_schedulers.py`` with the stock ``DatabaseScheduler``, and with
``schedulers.DatabaseScheduler`` and ``schedulers.ModelEntry`` pointed at this project's classes
(with the defaults, and with the one-second change check at 0), the three at once (the suite
mostly sleeps), and checks that exactly the tests in ``differences.py`` fail with ours. Exit
status 1 otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path
from xml.etree import ElementTree

from tests.upstream_beat.differences import DIFFERENCES, DIFFERENCES_WITHOUT_THROTTLE

PROJECT_DIR = Path(__file__).resolve().parents[2]
WORK_DIR = PROJECT_DIR / "var" / "upstream-beat"
PACKAGE = "django-celery-beat"
TESTS = "t/unit/test_schedulers.py"


def upstream_tests(release: str) -> Path:
    """``t/`` of the release's sdist, downloaded once per release."""
    unpacked = WORK_DIR / release
    if (unpacked / TESTS).exists():
        return unpacked
    dist = WORK_DIR / "dist"
    downloaded = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--dest",
            str(dist),
            f"{PACKAGE}=={release}",
        ],
        capture_output=True,  # pip warns about this machine's local indexes: shown on failure
        text=True,
        timeout=300,
    )
    if downloaded.returncode:
        raise RuntimeError(f"pip download failed:\n{downloaded.stdout}{downloaded.stderr}")
    [archive] = dist.glob(f"django_celery_beat-{release}.tar.gz")
    with tarfile.open(archive) as sdist:
        prefix = f"django_celery_beat-{release}/"
        members = [m for m in sdist.getmembers() if m.name.startswith(f"{prefix}t/")]
        for member in members:
            member.name = member.name.removeprefix(prefix)
        sdist.extractall(unpacked, members=members, filter="data")
    return unpacked


def start(
    scheduler: str, tests_dir: Path, report: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """pytest on upstream's scheduler tests with ``scheduler`` = stock or ours."""
    report.unlink(missing_ok=True)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(PROJECT_DIR / "tests" / "upstream_beat" / "pytest.ini"),
            "--rootdir",
            str(tests_dir),
            f"--junitxml={report}",
            str(tests_dir / TESTS),
        ],
        cwd=PROJECT_DIR,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(PROJECT_DIR), str(tests_dir)]),
            "UPSTREAM_BEAT_SCHEDULER": scheduler,
            **(extra_env or {}),
        },
        stdout=subprocess.DEVNULL if os.environ.get("UPSTREAM_BEAT_QUIET", "1") == "1" else None,
    )


def outcomes(report: Path) -> dict[str, str]:
    """Each test's outcome (passed, failed, skipped) in a JUnit report; empty if none."""
    found: dict[str, str] = {}
    if not report.exists():
        return found
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            found[name] = "failed"
        elif case.find("skipped") is not None:
            found[name] = "skipped"
        else:
            found[name] = "passed"
    return found


def summary(label: str, results: dict[str, str]) -> str:
    counts = {what: sum(1 for r in results.values() if r == what) for what in ("passed", "failed")}
    return f"  {label}: {counts['passed']} passed, {counts['failed']} failed"


def compare(label: str, results: dict[str, str], expected: dict[str, str]) -> bool:
    """Print how ``results`` stand against the expected differences; True when they match."""
    print(summary(label, results))
    failed = {name for name, outcome in results.items() if outcome == "failed"}
    for name in sorted(failed & set(expected)):
        print(f"    differs by design: {name}")
    unexpected = sorted(failed - set(expected))
    no_longer = sorted(set(expected) - failed)
    for name in unexpected:
        print(f"    !!! fails, and is not a known difference: {name}")
    for name in no_longer:
        print(f"    !!! listed as a difference but passes (or is gone): {name}")
    if not results:
        print("    !!! no test ran")
    return bool(results) and not unexpected and not no_longer


def main() -> int:
    release = version(PACKAGE)
    tests_dir = upstream_tests(release)
    runs = {
        "stock DatabaseScheduler": ("stock", {}),
        "TaskStarterScheduler": ("ours", {}),
        "TaskStarterScheduler, change check 0 s": (
            "ours",
            {"LIME_SCHEDULER_CHANGE_CHECK_SECONDS": "0"},
        ),
    }
    reports = {label: WORK_DIR / f"report-{n}.xml" for n, label in enumerate(runs)}
    processes = [
        start(scheduler, tests_dir, reports[label], env) for label, (scheduler, env) in runs.items()
    ]
    for process in processes:
        process.wait(timeout=900)
    results = {label: outcomes(report) for label, report in reports.items()}

    stock, ours, unthrottled = results.values()
    print(f"{PACKAGE} {release}, {TESTS}: {len(stock)} tests")
    print(summary("stock DatabaseScheduler", stock))
    matches = compare("TaskStarterScheduler", ours, DIFFERENCES)
    matches &= compare(
        "TaskStarterScheduler, change check 0 s", unthrottled, DIFFERENCES_WITHOUT_THROTTLE
    )
    for reason in sorted(set(DIFFERENCES.values())):
        print(f"  why: {reason}")
    return 0 if matches else 1


if __name__ == "__main__":
    sys.exit(main())
