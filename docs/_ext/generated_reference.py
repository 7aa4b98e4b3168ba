"""Reference pages written from the code at build time, so they cannot drift from it.

Before Sphinx reads the sources this writes ``reference/generated/*.md``: the task handler
configuration keys from the pydantic schema (``lime_task.config``), every management command
from its own argument parser, and the HTTP API from its OpenAPI description. The pages under
``reference/`` include them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

GENERATED = Path(__file__).resolve().parent.parent / "reference" / "generated"


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", _write_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def _write_pages(app: Sphinx) -> None:
    import django

    django.setup()
    GENERATED.mkdir(parents=True, exist_ok=True)
    pages = {
        "configuration.md": configuration_page(),
        "application-config.md": application_config_page(),
        "commands.md": commands_page(),
        "http-api.md": http_api_page(),
    }
    for name, text in pages.items():
        path = GENERATED / name
        # Unchanged pages keep their time stamp, so Sphinx does not rebuild them.
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("NoneType", "None")


def _fields_table(model: Any, prefix: str, environment: str | None) -> list[str]:
    from pydantic_core import PydanticUndefined

    header = "| key | type | default |" + (" environment |" if environment else "") + " meaning |"
    lines = [header, "| --- | --- | --- |" + (" --- |" if environment else "") + " --- |"]
    for name, field in model.model_fields.items():
        if field.default_factory is not None:
            default = field.default_factory()
        elif field.default is PydanticUndefined:
            default = "(required)"
        else:
            default = field.default
        if hasattr(default, "model_dump"):
            default = default.model_dump()
        shown = json.dumps(default) if not isinstance(default, str) else default or '""'
        row = f"| `{prefix}{name}` | `{_cell(_type_name(field.annotation))}` | `{_cell(shown)}` |"
        if environment:
            row += f" `{environment}{name.upper()}` |"
        row += f" {_cell(field.description or '')} |"
        lines.append(row)
    return lines


def configuration_page() -> str:
    from lime_task.config import ENV_PREFIX, RoutingConfig, TasksConfig

    lines = [
        "The `tasks:` section of the file `LIME_CONFIG` names, key by key, as "
        "`lime_task.config.TasksConfig` declares it. Each key can be set from the environment "
        "with the variable beside it; `BROKER_URL` and `RESULT_BACKEND_URL` also set the broker "
        "and the result backend.",
        "",
        *_fields_table(TasksConfig, "tasks.", ENV_PREFIX),
        "",
        "`tasks.routing`:",
        "",
        *_fields_table(RoutingConfig, "tasks.routing.", None),
        "",
    ]
    return "\n".join(lines)


def application_config_page() -> str:
    from lime_task.config import ApplicationConfig, TaskStarterSection

    lines = [
        "An application's config (its `config:` mapping), as `lime_task.config.ApplicationConfig` "
        "declares it. Keys it does not know are kept for solution code.",
        "",
        *_fields_table(ApplicationConfig, "", None),
        "",
        "`limepkg_task_starter`:",
        "",
        *_fields_table(TaskStarterSection, "limepkg_task_starter.", None),
        "",
    ]
    return "\n".join(lines)


def commands_page() -> str:
    from django.core.management import load_command_class

    import limepkg_task_starter.management.commands as package

    lines: list[str] = []
    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__)):
        command = load_command_class("limepkg_task_starter", module)
        parser = command.create_parser("manage.py", module)
        usage = ["```text", _usage(parser), "```"]
        lines += [f"## `{module}`", "", _cell(command.help), "", *usage, ""]
    return "\n".join(lines)


def _usage(parser: argparse.ArgumentParser) -> str:
    # Django's common options (--settings, --traceback, ...) are the same for every command.
    common = {
        "--version",
        "--verbosity",
        "--settings",
        "--pythonpath",
        "--traceback",
        "--no-color",
        "--force-color",
        "--skip-checks",
    }
    for action in list(parser._actions):
        if common.intersection(action.option_strings):
            parser._remove_action(action)
            for group in parser._action_groups:
                if action in group._group_actions:
                    group._group_actions.remove(action)
    return parser.format_help().strip()


def http_api_page() -> str:
    api = importlib.import_module("limepkg_task_starter.api").api
    schema = api.get_openapi_schema()
    lines = [
        f"{schema['info'].get('description') or schema['info']['title']}",
        "",
        "The whole description is served at `/api/v1/openapi.json`, with interactive docs at "
        "`/api/v1/docs`.",
        "",
    ]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            lines += [f"## `{method.upper()} /api/v1{path.removeprefix('/api/v1')}`", ""]
            if operation.get("summary"):
                lines += [_cell(operation["summary"]), ""]
            if operation.get("description"):
                lines += [operation["description"], ""]
            parameters = operation.get("parameters", [])
            if parameters:
                lines += ["| parameter | in | required | meaning |", "| --- | --- | --- | --- |"]
                lines += [
                    f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} | "
                    f"{_cell(p.get('description', p.get('schema', {}).get('title', '')))} |"
                    for p in parameters
                ]
                lines.append("")
            lines += ["| answer | meaning |", "| --- | --- |"]
            lines += [
                f"| {code} | {_cell(response.get('description', ''))} |"
                for code, response in operation.get("responses", {}).items()
            ]
            lines.append("")
    return "\n".join(lines)
