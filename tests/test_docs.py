"""Documentation gaps fail the build: every setting and every CLI command is documented."""

from pathlib import Path

import click
import pytest

from visionloop.cli import cli
from visionloop.settings import SETTINGS

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _commands(group: click.Group, prefix: str = "visionloop") -> list[str]:
    out = []
    for name, cmd in group.commands.items():
        path = f"{prefix} {name}"
        out.extend(_commands(cmd, path) if isinstance(cmd, click.Group) else [path])
    return out


@pytest.mark.parametrize("setting", [s.name for s in SETTINGS])
def test_setting_is_documented(setting: str) -> None:
    assert f"`{setting}`" in (DOCS / "settings.md").read_text()


@pytest.mark.parametrize("command", _commands(cli))
def test_command_is_documented(command: str) -> None:
    assert f"`{command}" in (DOCS / "cli.md").read_text()


def test_readme_quick_start_is_two_commands() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("```", 2)[1]
    assert [line.split("#")[0].strip() for line in quick.strip().splitlines()[1:]] == [
        "make serve",
        "make test",
    ]
