"""``visionloop review``: human review's flow definition, loops and agreement."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from visionloop.cli.app import Context, cli, console, emit, pass_ctx


@cli.group()
def review() -> None:
    """Human review: a project's flow definition, its human loops, human vs model agreement."""


@review.command("flow")
@click.argument("project_name", metavar="PROJECT")
@click.option("--min-confidence", type=float, help="0-100: detections below start a loop.")
@click.option("--no-rule", is_flag=True, help="Detections start no loops (clears --min-confidence).")
@click.option("--audit-rate", type=float, help="0-1: share of confident detections sampled for audit.")
@click.option("--reviewers", type=int, help="Answers each item needs (1-9).")
@click.option("--instructions", help="Text shown to reviewers.")
@click.option("--labels", help="Comma-separated label choices (default: the project's labels).")
@click.option("--lease-minutes", type=float, help="An abandoned item is free again after this.")
@click.option("--time-limit-hours", type=float, help="An unanswered item expires after this.")
@click.option("--order", type=click.Choice(["oldest", "lowest_margin"]), help="Queue order.")
@click.option("--daily-budget", type=int, help="Items handed out per UTC day; 0: no cap.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def review_flow(ctx: Context, /, project_name: str, as_json: bool, no_rule: bool, **options: Any) -> None:
    """Show PROJECT's flow definition; with options, create it or change those settings."""
    from dataclasses import replace

    from visionloop.api.review import flow_json
    from visionloop.core import review as rv
    from visionloop.core.records.review import FlowSettings, QueueOrder

    svc = ctx.services
    current = rv.find_flow(svc, project_name)
    given = {k: v for k, v in options.items() if v is not None}
    if given or no_rule or current is None:
        s = current.settings if current is not None else FlowSettings()
        changes: dict[str, Any] = {}
        if no_rule:
            changes["min_confidence"] = None
        for option, field, convert in (
            ("min_confidence", "min_confidence", float),
            ("audit_rate", "audit_rate", float),
            ("reviewers", "reviewers_per_item", int),
            ("instructions", "instructions", str),
            ("order", "queue_order", QueueOrder),
        ):
            if option in given:
                changes[field] = convert(given[option])
        if "labels" in given:
            changes["labels"] = tuple(x.strip() for x in given["labels"].split(",") if x.strip())
        if "lease_minutes" in given:
            changes["lease_seconds"] = round(given["lease_minutes"] * 60)
        if "time_limit_hours" in given:
            changes["time_limit_seconds"] = round(given["time_limit_hours"] * 3600)
        if "daily_budget" in given:
            changes["daily_budget"] = given["daily_budget"] or None
        region, account = ctx.settings.region, ctx.settings.account_id
        current = rv.put_flow(svc, project_name, replace(s, **changes), region=region, account=account)
    doc = flow_json(current, rv.flow_choices(svc, current))

    def render() -> None:
        table = Table("setting", "value", title=f"flow {current.name}")
        for key, value in doc.items():
            table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
        console.print(table)

    emit(doc, as_json, render)


@review.command("loops")
@click.argument("project_name", metavar="PROJECT")
@click.option(
    "--status",
    type=click.Choice(["InProgress", "Completed", "Failed", "Stopping", "Stopped"]),
    help="Only these.",
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def review_loops(ctx: Context, project_name: str, status: str | None, limit: int, as_json: bool) -> None:
    """PROJECT's human loops, newest first."""
    from visionloop.api.review import loop_json
    from visionloop.core import review as rv
    from visionloop.core.records.review import LoopStatus

    flow = rv.find_flow(ctx.services, project_name)
    state = LoopStatus(status) if status else None
    loops = [] if flow is None else rv.list_loops(ctx.services, flow, status=state, limit=limit)

    def render() -> None:
        table = Table("name", "status", "purpose", "created", "model", "human", "result")
        for lp in loops:
            table.add_row(
                lp.name,
                lp.status.value,
                lp.purpose.value,
                f"{lp.created_at:%Y-%m-%d %H:%M}",
                lp.model_answer or "",
                lp.human_answer or "",
                lp.result.value if lp.result else "",
            )
        console.print(table)

    emit([loop_json(lp) for lp in loops], as_json, render)


@review.command("agreement")
@click.argument("project_name", metavar="PROJECT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def review_agreement(ctx: Context, project_name: str, as_json: bool) -> None:
    """How often reviewers agreed with the model, per label (Completed loops)."""
    from visionloop.core import review as rv

    rows = rv.agreement_by_label(ctx.services, project_name)

    def render() -> None:
        table = Table("label", "model said", "human agreed", "rate", "human said")
        for a in rows:
            rate = "" if a.rate is None else f"{100 * a.rate:.0f}%"
            table.add_row(a.label, str(a.model_said), str(a.agreed), rate, str(a.human_said))
        console.print(table)

    emit([a.__dict__ for a in rows], as_json, render)
