"""The root ``visionloop`` group, its context, the output helpers every command module uses, and
``main``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click
from rich.console import Console

from visionloop import __version__
from visionloop.core.services import Services
from visionloop.errors import InvalidInput, VisionloopError
from visionloop.settings import Settings, load_settings

console = Console()
err_console = Console(stderr=True)


class Context:
    def __init__(self, overrides: dict[str, Any], config: str | None) -> None:
        self.overrides = overrides
        self.config = config
        self._services: Services | None = None

    @property
    def settings(self) -> Settings:
        return load_settings(self.overrides, config_file=self.config)

    @property
    def services(self) -> Services:
        if self._services is None:
            from visionloop.bootstrap import build_services

            self._services = build_services(self.settings)
        return self._services

    @property
    def analysers(self) -> Callable[[str], Any]:
        """The analysers by kind as the settings choose them (the faces' ``face_landmarks``)."""
        from visionloop.bootstrap import analyser_factory

        return analyser_factory(self.settings)

    def close(self) -> None:
        """Close the repository the command opened, if any (PostgreSQL connections are not left open)."""
        if self._services is not None:
            self._services.close()
            self._services = None


pass_ctx = click.make_pass_decorator(Context)


def emit(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        render()


@click.group()
@click.version_option(__version__, prog_name="visionloop")
@click.option("--data-dir", envvar="VISIONLOOP_DATA_DIR", help="Data folder (default ./var).")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="TOML config file.")
@click.pass_context
def cli(ctx: click.Context, data_dir: str | None, config: str | None) -> None:
    """visionloop: self-hosted custom labels, image analysis and human review."""
    ctx.obj = Context({"data_dir": data_dir}, config)
    ctx.call_on_close(ctx.obj.close)


GLOBAL_OPTIONS = ("data_dir", "config")  # the root group's options that every subcommand accepts too


def _set_global(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """A global option given after a subcommand's name: it sets what the root group's would have."""
    if value is None or param.name is None:
        return
    found = ctx.find_object(Context)
    if found is None:
        return
    if param.name == "config":
        found.config = value
    else:
        found.overrides[param.name] = value


def share_global_options(group: click.Group) -> None:
    """Let every subcommand of ``group`` (nested groups included) accept the root group's options, so
    ``visionloop user add olga --data-dir X`` works like ``visionloop --data-dir X user add olga``. A
    command with an option of its own under the same name (``serve --data-dir``) keeps its own."""
    shared = [p for p in cli.params if isinstance(p, click.Option) and p.name in GLOBAL_OPTIONS]
    for command in group.commands.values():
        taken = {p.name for p in command.params}
        for option in shared:
            if option.name not in taken:
                command.params.append(
                    click.Option(
                        option.opts,
                        type=option.type,
                        expose_value=False,
                        callback=_set_global,
                        help=f"{option.help} Also accepted before the command.",
                    )
                )
        if isinstance(command, click.Group):
            share_global_options(command)


def parse_when(value: str | None, option: str) -> datetime | None:
    """The time an ISO 8601 option gives (None when not given); a bad one names the option."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{option} must be an ISO 8601 time such as 2026-03-01T09:00, not {value!r}"
        ) from None


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(1)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except VisionloopError as e:
        click.echo(f"error: {e.message}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
