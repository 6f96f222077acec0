"""``visionloop project``: create, list and delete projects."""

from __future__ import annotations

import click
from rich.table import Table

from visionloop.cli.app import Context, cli, console, emit, pass_ctx


@cli.group()
def project() -> None:
    """Create, list and delete projects."""


@project.command("create")
@click.argument("name")
@click.option(
    "--task",
    type=click.Choice(["classification", "multi_label", "object_detection"]),
    default="classification",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def project_create(ctx: Context, name: str, task: str, as_json: bool) -> None:
    """Create a project."""
    from visionloop.core.projects import create_project

    p = create_project(ctx.services, name, task)
    data = {"name": p.name, "task": p.task.value, "created_at": p.created_at.isoformat()}
    emit(data, as_json, lambda: console.print(f"created project [bold]{p.name}[/] ({p.task.value})"))


@project.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def project_list(ctx: Context, as_json: bool) -> None:
    """List projects."""
    from visionloop.core.projects import list_projects

    items = list_projects(ctx.services)
    data = [{"name": p.name, "task": p.task.value, "created_at": p.created_at.isoformat()} for p in items]

    def render() -> None:
        table = Table("name", "task", "created")
        for p in items:
            table.add_row(p.name, p.task.value, p.created_at.strftime("%Y-%m-%d %H:%M"))
        console.print(table)

    emit(data, as_json, render)


@project.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def project_delete(ctx: Context, name: str, yes: bool) -> None:
    """Delete a project with its datasets."""
    from visionloop.core.projects import delete_project, get_project

    get_project(ctx.services, name)
    if not yes and not click.confirm(f"Delete project {name!r} and all its datasets?", default=False):
        raise click.Abort()
    delete_project(ctx.services, name)
    console.print(f"deleted project {name}")
