"""Documentation gaps fail the build: every setting and every CLI command is documented."""

import re
from pathlib import Path
from typing import Any

import click
import pytest

from visionloop.cli import cli
from visionloop.settings import SETTINGS, Setting

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _commands(group: click.Group, prefix: str = "visionloop") -> list[str]:
    out = []
    for name, cmd in group.commands.items():
        path = f"{prefix} {name}"
        out.extend(_commands(cmd, path) if isinstance(cmd, click.Group) else [path])
    return out


def _documented_defaults() -> dict[str, str]:
    """The settings table of docs/settings.md: setting name → its default cell, as written."""
    rows = re.findall(r"^\| `(\w+)` \| (.*?) \| ", (DOCS / "settings.md").read_text(), re.MULTILINE)
    assert len(rows) == len(dict(rows)), "a setting has two rows"
    return dict(rows)


def _shown(default: Any) -> str:
    """A default as the docs write it: empty values in words, numbers without a needless ``.0``."""
    if default in ("", ()):
        return "*(empty)*"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    return f"`{default:g}`" if isinstance(default, float) else f"`{default}`"


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_setting_is_documented_with_its_default(setting: Setting) -> None:
    documented = _documented_defaults()
    assert setting.name in documented, f"{setting.name} has no row in docs/settings.md"
    assert documented[setting.name] == _shown(setting.default)


def test_every_documented_setting_exists() -> None:
    assert list(_documented_defaults()) == [s.name for s in SETTINGS]


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
