"""``visionloop version copy`` and ``visionloop policy …``: copying a trained model version into a project,
and the project policies that decide copies into other projects (core.copies, core.policies)."""

from __future__ import annotations

from pathlib import Path

import click

from visionloop.cli.app import Context, cli, console, emit, pass_ctx


@cli.group()
def version() -> None:
    """Model versions."""


@version.command("copy")
@click.argument("source", metavar="PROJECT/VERSION")
@click.argument("destination", metavar="DESTINATION")
@click.argument("name", metavar="NAME")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def version_copy(ctx: Context, source: str, destination: str, name: str, as_json: bool) -> None:
    """Copy a trained version into DESTINATION (a project, this one or another) as NAME."""
    from visionloop.core import copies, ids
    from visionloop.core.training import get_version
    from visionloop.errors import InvalidInput

    project, _, version_name = source.partition("/")
    if not version_name:
        raise InvalidInput(f"{source!r}: name the version to copy as PROJECT/VERSION")
    svc, settings = ctx.services, ctx.settings
    original = get_version(svc, project, version_name)
    arn = ids.version_arn(settings.region, settings.account_id, project, version_name, original.created_at)
    copy = copies.copy_version(svc, copies.CopyRequest(project, version_name, destination, name, arn))
    data = {"project": destination, "version": copy.name, "status": copy.status.value, "copied_from": arn}
    emit(data, as_json, lambda: console.print(f"copied {source} to {destination}/{copy.name} (f1 {copy.f1})"))


@cli.group()
def policy() -> None:
    """Project policies: which copies of a project's versions into other projects are allowed."""


@policy.command("list")
@click.argument("project_name", metavar="PROJECT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def policy_list(ctx: Context, project_name: str, as_json: bool) -> None:
    """The project's policies with their revisions and documents."""
    from visionloop.core import project_policies
    from visionloop.core.projects import get_project

    svc = ctx.services
    found = project_policies.list_policies(svc, get_project(svc, project_name))
    data = [
        {
            "name": p.name,
            "revision_id": p.revision_id,
            "updated_at": p.updated_at.isoformat(),
            "document": p.document,
        }
        for p in found
    ]

    def render() -> None:
        for p in found:
            console.print(f"{p.name}  revision {p.revision_id}  updated {p.updated_at:%Y-%m-%d %H:%M}")
            console.print(p.document, markup=False, highlight=False)
        if not found:
            console.print("(no policy: copies into other projects are allowed)")

    emit(data, as_json, render)


@policy.command("put")
@click.argument("project_name", metavar="PROJECT")
@click.argument("name", metavar="NAME")
@click.argument("document", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--revision", help="The policy's current revision id, to replace it.")
@pass_ctx
def policy_put(ctx: Context, project_name: str, name: str, document: Path, revision: str | None) -> None:
    """Attach the IAM policy document in FILE to PROJECT as NAME (or replace it, given --revision)."""
    from visionloop.core import project_policies
    from visionloop.core.projects import get_project

    svc = ctx.services
    text = document.read_text(encoding="utf-8")
    p = project_policies.put_policy(svc, get_project(svc, project_name), name, text, revision)
    console.print(f"policy {p.name} of {project_name}: revision {p.revision_id}")


@policy.command("delete")
@click.argument("project_name", metavar="PROJECT")
@click.argument("name", metavar="NAME")
@click.option("--revision", help="Refuse unless this is the policy's current revision id.")
@pass_ctx
def policy_delete(ctx: Context, project_name: str, name: str, revision: str | None) -> None:
    """Delete a project policy."""
    from visionloop.core import project_policies
    from visionloop.core.projects import get_project

    svc = ctx.services
    project_policies.delete_policy(svc, get_project(svc, project_name), name, revision)
    console.print(f"deleted policy {name} of {project_name}")
