"""The processes of a deployment: ``serve`` (the HTTP server and its workers; while no operator exists it
prints the one-time setup link of web/console/setup.py), ``worker`` and ``db migrate``."""

from __future__ import annotations

import ipaddress
from typing import Any

import click

from visionloop import __version__
from visionloop.cli.app import Context, cli, console, err_console, pass_ctx
from visionloop.errors import InvalidInput
from visionloop.settings import Settings, load_settings


@cli.command()
@click.option(
    "--host", help="Address to listen on (default 127.0.0.1; a non-loopback one needs access_keys)."
)
@click.option("--port", type=int, help="Port to listen on (default 8080).")
@click.option("--data-dir", help="Data folder (default ./var).")
@pass_ctx
def serve(ctx: Context, host: str | None, port: int | None, data_dir: str | None) -> None:
    """Run the HTTP server (native API, AWS-compatible API, docs) and its worker processes."""
    import uvicorn

    from visionloop.api.app import server_app
    from visionloop.bootstrap import build_server
    from visionloop.web.console.setup import issue_setup_link

    overrides = {**ctx.overrides, "host": host, "port": port}
    if data_dir:
        overrides["data_dir"] = data_dir
    settings = load_settings(overrides, config_file=ctx.config)
    host = bind_host(settings)
    # the workers start with the app's lifespan: a dead one is replaced; /healthz reports them
    app = server_app(build_server(settings, workers=True))
    base = f"http://{_url_host(host)}:{settings.port}"
    err_console.print(f"visionloop {__version__} on {base}  (data in {settings.data_dir})")
    if host in ("0.0.0.0", "::", "[::]"):  # every address: a link to this machine opens in its browser
        base = f"http://127.0.0.1:{settings.port}"
    err_console.print(auth_summary(settings), highlight=False)
    setup = issue_setup_link(app)
    if setup is not None:  # plain output: a wrapped or coloured link could not be copied whole
        click.echo(f"first run: create the first operator at {base}{setup}", err=True)
        click.echo("  (the link works until an operator exists; each start prints a new one)", err=True)
    uvicorn.run(
        app, host=host, port=settings.port, log_level=settings.log_level.lower(), **proxy_options(settings)
    )


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for X-Forwarded-For / -Proto: believed only from the trusted_proxies. uvicorn's
    own default believes 127.0.0.1, so anyone on this machine could pose as any client (and escape the
    sign-in throttling, which counts per client address)."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(settings.trusted_proxies)}


def bind_host(settings: Settings) -> str:
    """The address ``serve`` listens on. Without access keys nothing checks who calls, so only a loopback
    address is allowed; asking for another one is an error rather than a silent change of address."""
    if settings.access_keys or is_loopback(settings.host):
        return settings.host
    raise InvalidInput(
        f"refusing to listen on {settings.host!r}: no access_keys are set, so the API is unauthenticated "
        "and may listen on a loopback address only (127.0.0.1, ::1 or localhost). Set access_keys "
        "(e.g. VISIONLOOP_ACCESS_KEYS=AKID:SECRET) to listen on other addresses; see docs/security.md."
    )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def auth_summary(settings: Settings) -> str:
    """The line ``serve`` prints at start about authentication."""
    n = len(settings.access_keys)
    if not n:
        return (
            "[yellow]authentication is off[/] (no access_keys): every request is accepted, "
            "so the server listens on this machine only"
        )
    keys = "1 access key" if n == 1 else f"{n} access keys"
    return (
        f"authentication is on ({keys}): the AWS API needs SigV4 signatures by one of them, "
        "the native API 'Authorization: Bearer <secret>'"
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@cli.command()
@click.option(
    "--recover/--no-recover",
    default=True,
    help="First mark jobs left running by a dead worker as failed (run only one recovering worker).",
)
@click.option(
    "--parent-pid", type=int, hidden=True, help="Stop when this process is gone (set by the server)."
)
@pass_ctx
def worker(ctx: Context, recover: bool, parent_pid: int | None) -> None:
    """Run queued jobs until stopped (the server starts its own)."""
    import signal
    import threading

    from visionloop.bootstrap import build_worker

    settings = ctx.settings
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    watch = None
    if parent_pid is not None:
        from visionloop.workflows.worker import stop_when_parent_exits

        watch = stop_when_parent_exits(parent_pid)
    err_console.print(f"worker started (data in {settings.data_dir})")
    try:
        build_worker(ctx.services, settings).run(stop, recover=recover)
    except KeyboardInterrupt:
        stop.set()
    finally:
        if watch is not None:
            watch.stop()


@cli.group()
def db() -> None:
    """Database maintenance."""


@db.command("migrate")
@pass_ctx
def db_migrate(ctx: Context) -> None:
    """Apply the schema migrations (the server and CLI also do this on start)."""
    from visionloop.storage.sql import SqlRepository

    SqlRepository(ctx.settings.resolved_database_url)
    console.print("database is at the newest schema")
