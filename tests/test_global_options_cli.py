"""The root group's options (--data-dir, --config) accepted after any subcommand too (issue 18, item 1):
`visionloop user add olga --data-dir X` works like `visionloop --data-dir X user add olga`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from visionloop.cli import cli
from visionloop.cli.app import GLOBAL_OPTIONS
from visionloop.errors import InvalidInput


def invoke(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.output


def test_data_dir_after_a_nested_subcommand(tmp_path: Path) -> None:
    data = tmp_path / "var"
    code, out = invoke(
        "user", "add", "olga", "--role", "operator", "--password-stdin", "--data-dir", str(data),
        input="correct horse\n",
    )  # fmt: skip
    assert code == 0 and "created operator olga" in out, out
    assert (data / "visionloop.db").exists()
    code, out = invoke("user", "list", f"--data-dir={data}", "--json")
    assert [u["name"] for u in json.loads(out)] == ["olga"]
    code, out = invoke(
        "--data-dir", str(tmp_path / "elsewhere"), "user", "list", "--data-dir", str(data), "--json"
    )
    assert [u["name"] for u in json.loads(out)] == ["olga"]  # the later one wins
    assert not (tmp_path / "elsewhere").exists()


def test_config_after_a_subcommand(tmp_path: Path) -> None:
    data = tmp_path / "from-config"
    config = tmp_path / "visionloop.toml"
    config.write_text(f'data_dir = "{data}"\n')
    code, out = invoke("project", "create", "fruit", "--config", str(config))
    assert code == 0, out
    code, out = invoke("--config", str(config), "project", "list", "--json")
    assert code == 0 and "fruit" in out
    with pytest.raises(InvalidInput, match="missing.toml' does not exist"):
        invoke("project", "list", "--config", str(tmp_path / "missing.toml"))


def _commands(group: click.Group) -> list[click.Command]:
    found: list[click.Command] = []
    for command in group.commands.values():
        found.append(command)
        if isinstance(command, click.Group):
            found.extend(_commands(command))
    return found


@pytest.mark.parametrize("command", _commands(cli), ids=lambda c: c.name)
def test_every_subcommand_lists_the_global_options_in_its_help(command: click.Command) -> None:
    names = {p.name for p in command.params}
    assert set(GLOBAL_OPTIONS) <= names
    help_text = command.get_help(click.Context(command, info_name=command.name))
    assert "--data-dir" in help_text and "--config" in help_text


def test_serve_keeps_its_own_data_dir_and_the_root_help_is_unchanged() -> None:
    serve = cli.commands["serve"]
    assert [p.name for p in serve.params].count("data_dir") == 1
    code, out = invoke("--help")
    assert code == 0 and "--data-dir" in out and "Commands:" in out


def test_as_a_process(tmp_path: Path) -> None:
    data = tmp_path / "var"
    cmd = [sys.executable, "-m", "visionloop", "reviewer", "add", "ann", "--password-stdin"]
    proc = subprocess.run(
        [*cmd, "--data-dir", str(data)], input="battery staple\n", capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "created reviewer ann" in proc.stdout, proc.stderr
    assert "No such option" not in proc.stderr
