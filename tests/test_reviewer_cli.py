"""`visionloop reviewer …`: accounts made by an operator from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from visionloop.bootstrap import build_accounts, build_services
from visionloop.cli import cli
from visionloop.core.accounts import authenticate
from visionloop.errors import AlreadyExists, InvalidInput, NotFound, Unauthenticated
from visionloop.settings import load_settings


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "var"


def run(data: Path, *args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--data-dir", str(data), *args], input=input, catch_exceptions=False)
    return result.exit_code, result.output


def check_password(data: Path, name: str, password: str) -> bool:
    settings = load_settings({"data_dir": str(data)}, environ={})
    services = build_services(settings)
    try:
        authenticate(build_accounts(services, settings), name, password)
        return True
    except Unauthenticated:
        return False
    finally:
        services.repo.close()


def test_add_list_passwd_remove(data: Path) -> None:
    code, out = run(data, "reviewer", "add", "Alice", input="correct horse\ncorrect horse\n")
    assert code == 0 and "created reviewer alice" in out and "correct horse" not in out.split("\n", 2)[-1]
    code, out = run(data, "reviewer", "add", "bob", "--password-stdin", input="battery staple\n")
    assert code == 0
    code, out = run(data, "reviewer", "list", "--json")
    assert [r["name"] for r in json.loads(out)] == ["alice", "bob"]
    assert "password" not in json.loads(out)[0] or "hash" not in out
    code, out = run(data, "reviewer", "list")
    assert "alice" in out and "bob" in out and "argon2" not in out
    assert check_password(data, "alice", "correct horse")

    code, out = run(data, "reviewer", "passwd", "alice", "--password-stdin", input="new password 1\n")
    assert code == 0 and "sessions have ended" in out
    assert check_password(data, "alice", "new password 1")
    assert not check_password(data, "alice", "correct horse")

    assert run(data, "reviewer", "remove", "bob", input="n\n")[0] == 1  # asks first
    code, out = run(data, "reviewer", "remove", "bob", "--yes")
    assert code == 0 and "removed reviewer bob" in out
    code, out = run(data, "reviewer", "list", "--json")
    assert [r["name"] for r in json.loads(out)] == ["alice"]


def test_prompt_asks_twice(data: Path) -> None:
    code, out = run(
        data, "reviewer", "add", "alice", input="correct horse\ncorrect hose\ncorrect horse\ncorrect horse\n"
    )
    assert code == 0 and "do not match" in out
    assert check_password(data, "alice", "correct horse")


def test_errors(data: Path) -> None:
    with pytest.raises(InvalidInput, match="too short"):
        run(data, "reviewer", "add", "alice", "--password-stdin", input="short\n")
    with pytest.raises(InvalidInput, match="not valid"):
        run(data, "reviewer", "add", "two words", "--password-stdin", input="long enough\n")
    run(data, "reviewer", "add", "alice", "--password-stdin", input="long enough\n")
    with pytest.raises(AlreadyExists):
        run(data, "reviewer", "add", "alice", "--password-stdin", input="long enough\n")
    with pytest.raises(NotFound, match="'carol' does not exist"):
        run(data, "reviewer", "passwd", "carol", "--password-stdin", input="long enough\n")
    with pytest.raises(NotFound):
        run(data, "reviewer", "remove", "carol", "--yes")


def test_user_commands_with_roles(data: Path) -> None:
    code, out = run(
        data, "user", "add", "Olga", "--role", "operator", "--password-stdin", input="long enough\n"
    )
    assert code == 0 and "created operator olga: they sign in at /console/" in out
    code, out = run(data, "reviewer", "add", "rita", "--password-stdin", input="long enough\n")
    assert code == 0 and "created reviewer rita" in out
    code, out = run(data, "user", "list", "--json")
    assert [(r["name"], r["role"]) for r in json.loads(out)] == [("olga", "operator"), ("rita", "reviewer")]
    code, out = run(data, "reviewer", "list")
    assert "operator" in out and "reviewer" in out
    code, out = run(data, "user", "role", "rita", "operator")
    assert code == 0 and "rita is now an operator" in out
    code, out = run(data, "user", "role", "olga", "REVIEWER")
    assert code == 0 and "olga is now a reviewer" in out
    code, out = run(data, "user", "list", "--json")
    assert [r["role"] for r in json.loads(out)] == ["reviewer", "operator"]
    assert run(data, "user", "role", "rita", "admin")[0] == 2  # not a role: a usage error
    with pytest.raises(NotFound):
        run(data, "user", "role", "carol", "operator")
    code, out = run(data, "user", "passwd", "rita", "--password-stdin", input="new password 2\n")
    assert code == 0 and check_password(data, "rita", "new password 2")
    code, out = run(data, "user", "remove", "rita", "--yes")
    assert code == 0 and "removed operator rita" in out
