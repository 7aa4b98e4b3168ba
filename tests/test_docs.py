"""The documentation says what the code does: every environment variable the settings read is
in the configuration reference."""

from __future__ import annotations

import re
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SETTINGS = PROJECT / "taskstarter" / "settings.py"
REFERENCE = PROJECT / "docs" / "reference" / "configuration.md"
READ = re.compile(r"""(?:environ\.get|_env_flag|_env_list)\(\s*["']([A-Z][A-Z0-9_]+)["']""")


def test_every_environment_variable_of_the_settings_is_in_the_configuration_reference() -> None:
    read = set(READ.findall(SETTINGS.read_text()))
    documented = REFERENCE.read_text()
    assert len(read) > 20  # the pattern still finds what the settings read
    assert sorted(name for name in read if f"`{name}" not in documented) == []
