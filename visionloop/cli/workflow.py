"""``visionloop workflow``: continuous improvement's runs, rollbacks, schedules, inbox scans, sampling
and agreement."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.table import Table

from visionloop.cli.app import Context, cli, console, emit, parse_when, pass_ctx


@cli.group()
def workflow() -> None:
    """Continuous improvement: training checks, rollbacks, their run history and the schedules; the
    watched inboxes, human sampling and the drift signal."""


def _run_row(r: Any) -> list[str]:
    seconds = (
        ""
        if r.started_at is None or r.ended_at is None
        else f"{(r.ended_at - r.started_at).total_seconds():.0f} s"
    )
    note = r.error or r.reason or ""
    return [
        str(r.id),
        r.kind,
        r.status.value,
        r.trigger,
        r.current_step or "",
        r.outcome or "",
        r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        seconds,
        note,
    ]


@workflow.command("runs")
@click.argument("project_name", metavar="PROJECT")
@click.option("--status", help="Only runs with this status (QUEUED, RUNNING, SUCCEEDED, FAILED).")
@click.option("--kind", help="Only runs of this kind (training_check, rollback).")
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def workflow_runs(
    ctx: Context, project_name: str, status: str | None, kind: str | None, limit: int, as_json: bool
) -> None:
    """List PROJECT's workflow runs, newest first."""
    from visionloop.core.runs import list_runs

    items = list_runs(ctx.services, project_name, status=status, kind=kind, limit=limit)

    def render() -> None:
        table = Table("id", "kind", "status", "trigger", "step", "outcome", "created", "took", "reason")
        for r in items:
            table.add_row(*_run_row(r))
        console.print(table)

    emit([r.to_dict() for r in items], as_json, render)


@workflow.command("show")
@click.argument("project_name", metavar="PROJECT")
@click.argument("run_id", type=int, metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def workflow_show(ctx: Context, project_name: str, run_id: int, as_json: bool) -> None:
    """Show one run with every step: status, times, output and error."""
    from visionloop.core.runs import get_run, run_steps

    svc = ctx.services
    run = get_run(svc, project_name, run_id)
    steps = run_steps(svc, run)

    def render() -> None:
        console.print(
            f"run {run.id} ({run.kind}, {run.trigger}): [bold]{run.status.value}[/] {run.outcome or ''}"
        )
        if run.reason or run.error:
            console.print(run.error or run.reason, highlight=False)
        table = Table("#", "step", "status", "started", "took", "output / error")
        for s in steps:
            took = "" if s.ended_at is None else f"{(s.ended_at - s.started_at).total_seconds():.1f} s"
            shown = s.error or json.dumps(s.output, default=str)
            table.add_row(
                str(s.seq), s.name, s.status.value, s.started_at.strftime("%H:%M:%S"), took, shown[:200]
            )
        console.print(table)

    emit({**run.to_dict(), "steps": [s.to_dict() for s in steps]}, as_json, render)


def _queued(ctx: Context, run: Any, wait: bool, timeout: float, as_json: bool) -> None:
    import time

    from visionloop.core.records.runs import ACTIVE
    from visionloop.core.runs import reload_run

    svc = ctx.services
    if wait:
        deadline = time.monotonic() + timeout
        while run.status in ACTIVE and time.monotonic() < deadline:
            time.sleep(0.5)
            run = reload_run(svc, run)
    data = run.to_dict()

    def render() -> None:
        if run.status in ACTIVE:
            hint = "" if not wait else " (still; is `visionloop serve` running?)"
            console.print(
                f"run {run.id} is {run.status.value}{hint}: the server's workflow runner executes it"
            )
        else:
            console.print(f"run {run.id} {run.status.value}: {run.outcome} — {run.error or run.reason or ''}")

    emit(data, as_json, render)
    if wait and run.status.value == "FAILED":
        sys.exit(1)


@workflow.command("check")
@click.argument("project_name", metavar="PROJECT")
@click.option("--wait", is_flag=True, help="Wait until the run ends (the server executes it).")
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Seconds to wait at most.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def workflow_check(ctx: Context, project_name: str, wait: bool, timeout: float, as_json: bool) -> None:
    """Queue a training check now: train, evaluate and deploy if PROJECT's parameters say so."""
    from visionloop.core.retraining import request_check

    _queued(ctx, request_check(ctx.services, project_name), wait, timeout, as_json)


@workflow.command("rollback")
@click.argument("project_name", metavar="PROJECT")
@click.option("--to", "to_version", help="Go back to this version (default: the one deployed before).")
@click.option("--wait", is_flag=True, help="Wait until the run ends (the server executes it).")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds to wait at most.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def workflow_rollback(
    ctx: Context, project_name: str, to_version: str | None, wait: bool, timeout: float, as_json: bool
) -> None:
    """Switch PROJECT back to the version deployed before the current one (started if needed)."""
    from visionloop.core.deployments import request_rollback

    _queued(ctx, request_rollback(ctx.services, project_name, to_version), wait, timeout, as_json)


@workflow.command("status")
@click.argument("project_name", metavar="PROJECT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def workflow_status(ctx: Context, project_name: str, as_json: bool) -> None:
    """PROJECT's serving version, deployment log, schedules and active run."""
    from visionloop.core.deployments import deployments, serving_version
    from visionloop.core.projects import get_project
    from visionloop.core.runkinds import active_run
    from visionloop.core.schedules import list_schedules

    svc = ctx.services
    serving = serving_version(svc, project_name)
    log = deployments(svc, project_name, 10)
    plans = list_schedules(svc, project_name)
    active = active_run(svc, get_project(svc, project_name).id)
    data = {
        "serving": serving.name if serving else None,
        "deployments": [d.to_dict() for d in log],
        "schedules": [s.to_dict() for s in plans],
        "active_run": active.to_dict() if active else None,
    }

    def render() -> None:
        console.print(f"serving version: [bold]{data['serving'] or '(none)'}[/]")
        if active:
            console.print(
                f"active run: {active.id} ({active.kind}) {active.status.value} at {active.current_step}"
            )
        table = Table("deployed", "version", "previous", "reason", "run")
        for d in log:
            table.add_row(
                d.deployed_at.strftime("%Y-%m-%d %H:%M:%S"),
                d.version,
                d.previous or "",
                d.reason,
                str(d.run_id or ""),
            )
        console.print(table)
        table = Table("check", "enabled", "every", "next run", "last run", "last result")
        for s in plans:
            nxt = s.next_run_at.strftime("%Y-%m-%d %H:%M:%S") if s.next_run_at and s.enabled else ""
            last = s.last_run_at.strftime("%Y-%m-%d %H:%M:%S") if s.last_run_at else ""
            every = f"{s.interval_minutes:g} min"
            table.add_row(s.kind, "yes" if s.enabled else "no", every, nxt, last, s.last_result or "")
        console.print(table)

    emit(data, as_json, render)


@workflow.command("scan")
@click.argument("project_name", metavar="PROJECT")
@click.option("--version", "version_name", help="Detect with this version (default: the serving one).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def workflow_scan(ctx: Context, project_name: str, version_name: str | None, as_json: bool) -> None:
    """Take what waits in PROJECT's inboxes now, detecting in this process (no server needed)."""
    from visionloop.bootstrap import build_detection_log, build_engine, build_review_hook, inbox_settings
    from visionloop.core.inbox import scan_inbox
    from visionloop.workflows.background import BackgroundGroup
    from visionloop.workflows.inbox import LocalDetector

    svc, settings = ctx.services, ctx.settings
    log, hook = build_detection_log(svc, settings), build_review_hook(svc, settings)
    background = BackgroundGroup([("review hook", hook), ("detection log", log)]).start()
    detector = LocalDetector(svc, lambda: build_engine(settings), log, hook)
    try:
        report = scan_inbox(svc, project_name, detector, inbox_settings(settings), version=version_name)
    finally:
        background.stop(60)  # writes the detection log, then considers what waits for review

    def render() -> None:
        for item in report.items:
            where = item.get("result_key") or item.get("moved_to") or ""
            why = f" ({item['message']})" if item.get("message") else ""
            click.echo(f"{item['key']}: {item['outcome']} → {where}{why}")
        for note in report.notes:
            click.echo(note)
        click.echo(
            f"{report.detected} detected, {report.added} added to TRAIN, {report.duplicates} already there, "
            f"{report.failed} failed (see errors/), {report.waiting} waiting"
        )

    emit(report.to_dict(), as_json, render)


@workflow.command("inbox")
@click.argument("project_name", metavar="PROJECT")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def workflow_inbox(ctx: Context, project_name: str, limit: int, as_json: bool) -> None:
    """What PROJECT's inboxes took, newest first."""
    from visionloop.core.inbox import list_items

    items = list_items(ctx.services, project_name, limit=limit)

    def render() -> None:
        for i in items:
            when = f"{i.finished_at:%Y-%m-%d %H:%M:%S}" if i.finished_at else "(working)"
            where = f" → {i.moved_to}" if i.moved_to else ""
            why = f" ({i.message})" if i.message else ""
            click.echo(f"{i.id} {when} {i.kind.value} {i.status.value}: {i.key}{where}{why}")

    emit([i.to_dict() for i in items], as_json, render)


@workflow.command("sample")
@click.argument("project_name", metavar="PROJECT")
@pass_ctx
def workflow_sample(ctx: Context, project_name: str) -> None:
    """Run PROJECT's sampling check now (the server runs it every human_sampling_minutes)."""
    from visionloop.core.sampling import run_sampling_check

    settings = ctx.settings
    result = run_sampling_check(
        ctx.services, project_name, region=settings.region, account=settings.account_id
    )
    click.echo(result.message)


@workflow.command("agreement")
@click.argument("project_name", metavar="PROJECT")
@click.option("--bucket", type=click.Choice(["day", "week"]), default="day", show_default=True)
@click.option("--since", help="ISO 8601 time: loops completed from then.")
@click.option("--until", help="ISO 8601 time, exclusive.")
@click.option(
    "--purpose", type=click.Choice(["audit", "low_confidence", "explicit"]), help="Only these loops."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def workflow_agreement(
    ctx: Context,
    project_name: str,
    bucket: str,
    since: str | None,
    until: str | None,
    purpose: str | None,
    as_json: bool,
) -> None:
    """The drift signal: how often reviewers agreed with the model, per day or week and label."""
    from visionloop.core.sampling import agreement_over_time

    found = agreement_over_time(
        ctx.services,
        project_name,
        bucket=bucket,
        since=parse_when(since, "--since"),
        until=parse_when(until, "--until"),
        purpose=purpose,
    )

    def render() -> None:
        table = Table(bucket, "loops", "agreed", "rate", "per label (model said: agreed)")
        for b in found:
            rate = "" if b.rate is None else f"{100 * b.rate:.0f}%"
            per = ", ".join(f"{c.label} {c.model_said}:{c.agreed}" for c in b.labels if c.model_said)
            table.add_row(f"{b.start:%Y-%m-%d}", str(b.loops), str(b.agreed), rate, per)
        console.print(table)

    emit([b.to_dict() for b in found], as_json, render)
