from pathlib import Path

import pytest

from visionloop.errors import InvalidInput
from visionloop.settings import SETTINGS, load_settings


def test_defaults() -> None:
    s = load_settings(environ={})
    assert (s.host, s.port, s.data_dir) == ("127.0.0.1", 8080, "./var")
    assert s.resolved_database_url == "sqlite:///var/visionloop.db"
    assert s.resolved_buckets_url == "var/buckets"


def test_precedence_option_env_file_default(tmp_path: Path) -> None:
    cfg = tmp_path / "vl.toml"
    cfg.write_text('[visionloop]\nport = 9000\nhost = "0.0.0.0"\nregion = "eu-west-1"\n')
    env = {"VISIONLOOP_PORT": "9100", "VISIONLOOP_HOST": "10.0.0.1"}
    s = load_settings({"host": "127.0.0.2"}, environ=env, config_file=str(cfg))
    assert (s.host, s.port, s.region, s.account_id) == ("127.0.0.2", 9100, "eu-west-1", "123456789012")
    s = load_settings(environ={"VISIONLOOP_CONFIG": str(cfg)})
    assert s.port == 9000


@pytest.mark.parametrize(
    "env, message",
    [
        ({"VISIONLOOP_PORT": "x"}, "setting port from environment variable VISIONLOOP_PORT"),
        ({"VISIONLOOP_PORT": "70000"}, "between 0 and 65535"),
        ({"VISIONLOOP_ACCOUNT_ID": "42"}, "12 digits"),
        ({"VISIONLOOP_LOG_LEVEL": "loud"}, "DEBUG, INFO"),
    ],
)
def test_bad_values_fail_loudly(env: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        load_settings(environ=env)


def test_bad_config_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        load_settings(environ={}, config_file=str(tmp_path / "none.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("port = = 1")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        load_settings(environ={}, config_file=str(bad))
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("colour = 'blue'")
    with pytest.raises(InvalidInput, match="unknown settings: colour"):
        load_settings(environ={}, config_file=str(unknown))


def test_every_setting_has_help_and_a_field() -> None:
    from dataclasses import fields

    from visionloop.settings import Settings

    assert [s.name for s in SETTINGS] == [f.name for f in fields(Settings)]
    assert all(s.help for s in SETTINGS)
