"""Sphinx configuration of the Task Starter documentation (built strictly by ``bin/test``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS.parent), str(DOCS / "_ext")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskstarter.settings")

project = "Task Starter"
author = "The Task Starter team"
copyright = "2026, the Task Starter team"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "generated_reference",
]
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "README.md"]
nitpicky = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}
suppress_warnings = ["myst.header"]

html_theme = "furo"
html_title = "Task Starter"
html_static_path: list[str] = []
