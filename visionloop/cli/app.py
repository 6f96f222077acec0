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
