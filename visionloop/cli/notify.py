"""``visionloop events`` and ``visionloop notify``: what continuous improvement did, and the channels
that hear of it."""

from __future__ import annotations

import json
import sys

import click
from rich.table import Table

from visionloop.cli.app import Context, cli, console, emit, pass_ctx
from visionloop.errors import InvalidInput


@cli.command()
@click.argument("project_name", metavar="PROJECT")
@click.option("--type", "type_", help="Only events of this type (e.g. training_completed).")
@click.option("--since", help="Only events at or after this ISO 8601 time.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="The newest N.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def events(
    ctx: Context, project_name: str, type_: str | None, since: str | None, limit: int, as_json: bool
) -> None:
    """PROJECT's events (what continuous improvement did), oldest first."""
    from visionloop.api.parameters import parse_time
    from visionloop.core import events as ev

    svc = ctx.services
    when = parse_time(since, "--since")
    found = ev.list_events(svc, project_name, type=type_, since=when, limit=ev.MAX_LIST)[-limit:]

    def render() -> None:
        table = Table("id", "when", "type", "payload", title=f"events of {project_name}")
        for e in found:
            payload = json.dumps(dict(e.payload), sort_keys=True)
            table.add_row(str(e.id), e.created_at.isoformat(timespec="seconds"), e.type.value, payload)
        console.print(table)

    emit([e.to_dict() for e in found], as_json, render)


@cli.group()
def notify() -> None:
    """A project's notification channels (webhooks, e-mail) and their deliveries."""


@notify.command("add")
@click.argument("project_name", metavar="PROJECT")
@click.argument("name")
@click.option("--webhook", "url", help="Send events as signed JSON POSTs to this http(s) URL.")
@click.option("--email", "addresses", help="Send events as e-mails to these comma-separated addresses.")
@click.option("--events", "event_types", help="Comma-separated event types (default: all but detection).")
@click.option("--secret-stdin", is_flag=True, help="Read the webhook's HMAC secret from standard input.")
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def notify_add(
    ctx: Context,
    project_name: str,
    name: str,
    url: str | None,
    addresses: str | None,
    event_types: str | None,
    secret_stdin: bool,
    disabled: bool,
    as_json: bool,
) -> None:
    """Add channel NAME to PROJECT: --webhook URL or --email ADDRESSES. A webhook's secret (generated
    unless read with --secret-stdin) is printed once."""
    from visionloop.core import notifications

    if (url is None) == (addresses is None):
        raise InvalidInput("give either --webhook URL or --email ADDRESSES")
    secret = sys.stdin.readline().strip() if secret_stdin else None
    channel = notifications.add_channel(
        ctx.services,
        project_name,
        name,
        "webhook" if url is not None else "email",
        url=url,
        addresses=addresses,
        events=event_types,
        secret=secret,
        enabled=not disabled,
        allow_private=ctx.settings.webhook_allow_private,
    )
    doc = channel.to_dict(with_secret=True)

    def render() -> None:
        console.print(
            f"channel {channel.name} added ({channel.kind.value}: {channel.url or doc['addresses']})"
        )
        if channel.secret is not None:
            console.print(f"secret (shown once): {channel.secret}", markup=False)

    emit(doc, as_json, render)


@notify.command("list")
@click.argument("project_name", metavar="PROJECT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def notify_list(ctx: Context, project_name: str, as_json: bool) -> None:
    """PROJECT's notification channels."""
    from visionloop.core import notifications

    found = notifications.list_channels(ctx.services, project_name)

    def render() -> None:
        table = Table("name", "kind", "target", "events", "enabled", title=f"channels of {project_name}")
        for c in found:
            target = c.url or ", ".join(c.addresses)
            table.add_row(c.name, c.kind.value, target, ", ".join(c.events), "yes" if c.enabled else "no")
        console.print(table)

    emit([c.to_dict() for c in found], as_json, render)


@notify.command("set")
@click.argument("project_name", metavar="PROJECT")
@click.argument("name")
@click.option("--enable/--disable", "enabled", default=None, help="Start or stop sending to it.")
@click.option("--events", "event_types", help="Comma-separated event types it wants.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def notify_set(
    ctx: Context, project_name: str, name: str, enabled: bool | None, event_types: str | None, as_json: bool
) -> None:
    """Enable or disable channel NAME, or change the events it wants."""
    from visionloop.core import notifications

    channel = notifications.update_channel(
        ctx.services, project_name, name, enabled=enabled, events=event_types
    )
    doc = channel.to_dict()
    emit(
        doc,
        as_json,
        lambda: console.print(
            f"channel {channel.name}: enabled={channel.enabled}, events={', '.join(channel.events)}"
        ),
    )


@notify.command("remove")
@click.argument("project_name", metavar="PROJECT")
@click.argument("name")
@pass_ctx
def notify_remove(ctx: Context, project_name: str, name: str) -> None:
    """Remove channel NAME with its delivery records."""
    from visionloop.core import notifications

    notifications.remove_channel(ctx.services, project_name, name)
    console.print(f"channel {name} removed")


@notify.command("deliveries")
@click.argument("project_name", metavar="PROJECT")
@click.option("--channel", help="Only this channel's deliveries.")
@click.option("--status", type=click.Choice(["pending", "delivered", "failed"]), help="Only these.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def notify_deliveries(
    ctx: Context, project_name: str, channel: str | None, status: str | None, limit: int, as_json: bool
) -> None:
    """PROJECT's notification deliveries, newest first, with their attempts."""
    from visionloop.core import notifications

    svc = ctx.services
    found = notifications.list_deliveries(svc, project_name, channel=channel, status=status, limit=limit)
    docs = [
        {
            **d.to_dict(),
            "attempts": [a.to_dict() for a in notifications.list_attempts(svc, project_name, d.id)],
        }
        for d in found
    ]

    def render() -> None:
        table = Table(
            "id",
            "channel",
            "event",
            "status",
            "attempts",
            "last error",
            title=f"deliveries of {project_name}",
        )
        for d in found:
            table.add_row(
                str(d.id), d.channel, d.event.type.value, d.status.value, str(d.attempts), d.last_error or ""
            )
        console.print(table)

    emit(docs, as_json, render)


@notify.command("deliver")
@pass_ctx
def notify_deliver(ctx: Context) -> None:
    """Send the notifications due now, here and once (the server sends them by itself)."""
    from visionloop.bootstrap import build_notifier

    made = build_notifier(ctx.services, ctx.settings).run_once()
    console.print(f"{made} attempt(s) made")
