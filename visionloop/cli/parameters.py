"""``visionloop params``: a project's continuous-improvement parameters."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from visionloop.cli.app import Context, cli, console, emit, pass_ctx
from visionloop.errors import InvalidInput


def _who() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:128]
    except (OSError, KeyError):  # no user name in this environment
        return "cli"


def _print_parameters(project_name: str, values: dict[str, Any]) -> None:
    from visionloop.core.records.parameters import SPECS

    table = Table("parameter", "value", "default", title=f"parameters of {project_name}")
    for key, value in values.items():
        table.add_row(key, json.dumps(value), json.dumps(SPECS[key].default))
    console.print(table)


@cli.group()
def params() -> None:
    """A project's parameters: the rules of continuous improvement (docs/workflow.md)."""


@params.command("show")
@click.argument("project_name", metavar="PROJECT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def params_show(ctx: Context, project_name: str, as_json: bool) -> None:
    """Every parameter of PROJECT, with its default."""
    from visionloop.core import parameters

    values = parameters.get_parameters(ctx.services, project_name).to_dict()
    emit(values, as_json, lambda: _print_parameters(project_name, values))


@params.command("set")
@click.argument("project_name", metavar="PROJECT")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def params_set(ctx: Context, project_name: str, assignments: tuple[str, ...], as_json: bool) -> None:
    """Change parameters of PROJECT, e.g. min_confidence=70 human_review_enabled=true. Every value is
    checked before any is changed."""
    from visionloop.core import parameters

    changes: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for item in assignments:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise InvalidInput(f"{item[:80]!r} is not KEY=VALUE")
        if key in changes or key in errors:
            raise InvalidInput(f"{key} is given twice")
        try:
            changes[key] = parameters.parse_value(key, text)
        except InvalidInput as e:
            errors[key] = e.message
    if errors:
        raise InvalidInput("; ".join(errors.values()), errors=errors)
    done = parameters.update_parameters(ctx.services, project_name, changes, changed_by=_who())

    def render() -> None:
        for c in done.changes:
            console.print(f"{c.key}: {json.dumps(c.old)} → {json.dumps(c.new)}")
        if not done.changes:
            console.print("nothing changed: every value was already set")

    emit([c.to_dict() for c in done.changes], as_json, render)


@params.command("history")
@click.argument("project_name", metavar="PROJECT")
@click.option("--key", help="Only this parameter's changes.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def params_history(ctx: Context, project_name: str, key: str | None, limit: int, as_json: bool) -> None:
    """The recorded changes of PROJECT's parameters, newest first: who, when, old and new value."""
    from visionloop.core import parameters

    found = parameters.parameter_history(ctx.services, project_name, key=key, limit=limit)

    def render() -> None:
        table = Table("when", "who", "parameter", "old", "new", title=f"parameter changes of {project_name}")
        for c in found:
            table.add_row(
                c.changed_at.isoformat(timespec="seconds"),
                c.changed_by,
                c.key,
                json.dumps(c.old),
                json.dumps(c.new),
            )
        console.print(table)

    emit([c.to_dict() for c in found], as_json, render)
