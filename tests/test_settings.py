from pathlib import Path

import pytest

from visionloop.errors import InvalidInput
from visionloop.settings import SETTINGS, Settings, load_settings


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


def test_settings_are_the_fields_of_settings() -> None:
    """Each setting is declared once, as a field of Settings; SETTINGS is read from those fields."""
    assert [s.name for s in SETTINGS] == list(Settings.model_fields)
    assert [s.default for s in SETTINGS] == [f.default for f in Settings.model_fields.values()]
    assert [s.help for s in SETTINGS] == [f.description for f in Settings.model_fields.values()]
    assert all(s.help for s in SETTINGS)
    assert load_settings(environ={}) == Settings()
    secrets = {"access_keys", "session_secret", "smtp_password", "s3_secret_access_key"}
    assert {s.name for s in SETTINGS if s.secret} == secrets
    assert {s.name for s in SETTINGS if s.structured} == {"access_keys", "import_roots", "trusted_proxies"}


def test_secret_strings_stay_out_of_the_repr() -> None:
    s = load_settings(environ={"VISIONLOOP_SESSION_SECRET": "k" * 32, "VISIONLOOP_SMTP_PASSWORD": "pw-42"})
    assert (s.session_secret, s.smtp_password) == ("k" * 32, "pw-42")
    assert "k" * 32 not in repr(s) and "pw-42" not in repr(s)


def test_a_bad_secret_is_not_echoed() -> None:
    with pytest.raises(InvalidInput, match="setting session_secret from option: the value is not valid"):
        load_settings({"session_secret": "sEcReT"}, environ={})


KEYS = "AKID1:abcdefghijklmnop, AKID_2:0123456789/+ABCDEF=:x"


def test_access_keys_from_env_and_config_file(tmp_path: Path) -> None:
    assert load_settings(environ={}).access_keys == ()
    assert load_settings(environ={"VISIONLOOP_ACCESS_KEYS": " "}).access_keys == ()
    s = load_settings(environ={"VISIONLOOP_ACCESS_KEYS": KEYS})
    assert [(k.id, k.secret) for k in s.access_keys] == [
        ("AKID1", "abcdefghijklmnop"),
        ("AKID_2", "0123456789/+ABCDEF=:x"),
    ]
    assert "abcdefghijklmnop" not in repr(s)
    for text in (
        f'access_keys = "{KEYS}"',
        'access_keys = ["AKID1:abcdefghijklmnop", "AKID_2:0123456789/+ABCDEF=:x"]',
        '[visionloop.access_keys]\nAKID1 = "abcdefghijklmnop"\nAKID_2 = "0123456789/+ABCDEF=:x"',
    ):
        cfg = tmp_path / "keys.toml"
        cfg.write_text(f"[visionloop]\n{text}\n" if text.startswith("access") else text + "\n")
        assert load_settings(environ={}, config_file=str(cfg)).access_keys == s.access_keys


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("AKID1", "entry 1 has no ':'"),
        ("AKID1:sEcReTsEcReTsEcReT,", "entry 2 is not of the form AKID:SECRET"),
        ("AKID1:sEcReT", "the secret of AKID1 is shorter than 16 characters"),
        ("AKID1:sEcReT sEcReTsEcReT", "the secret of AKID1 must be printable ASCII without spaces"),
        ("AKID1:sEcReTsEcReTsEcReT,AKID1:sEcReTsEcReTsEcReT", "AKID1 is given twice"),
        ("sEcReTsEcReTsEcReT/x:AKID1", "the access key id of entry 1 must be"),
    ],
)
def test_bad_access_keys_fail_without_echoing_secrets(value: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as e:
        load_settings(environ={"VISIONLOOP_ACCESS_KEYS": value})
    assert "VISIONLOOP_ACCESS_KEYS" in e.value.message and "sEcReT" not in e.value.message


def test_bad_access_keys_in_a_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "keys.toml"
    cfg.write_text("access_keys = [1, 2]\n")
    with pytest.raises(InvalidInput, match="entry 1 is not of the form"):
        load_settings(environ={}, config_file=str(cfg))
    cfg.write_text("[access_keys]\nAKID1 = 12345678901234567890\n")
    with pytest.raises(InvalidInput, match="the secret of AKID1 must be printable ASCII"):
        load_settings(environ={}, config_file=str(cfg))


def test_settings_in_code_never_read_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Settings(...)`` and ``environ={}`` ignore the process environment; load_settings() reads it."""
    monkeypatch.setenv("VISIONLOOP_PORT", "9001")
    assert Settings().port == 8080 and load_settings(environ={}).port == 8080
    assert load_settings().port == 9001


def test_environment_names_match_exactly() -> None:
    assert load_settings(environ={"visionloop_port": "1", "VISIONLOOP_Port": "2"}).port == 8080


def test_list_settings_from_the_environment_are_comma_lists_never_json() -> None:
    s = load_settings(environ={"VISIONLOOP_IMPORT_ROOTS": " /a, /b ,", "VISIONLOOP_TRUSTED_PROXIES": '["x"]'})
    assert (s.import_roots, s.trusted_proxies) == (("/a", "/b"), ('["x"]',))


def test_unknown_and_unset_options_are_ignored() -> None:
    assert load_settings({"colour": "blue", "port": None}, environ={}) == Settings()


def test_replace_returns_a_changed_copy_checked_by_the_field_types() -> None:
    s = load_settings(environ={})
    changed = s.replace(port=9000, import_roots=("/srv",), split_by_scene="yes")
    assert (changed.port, changed.import_roots, changed.split_by_scene) == (9000, ("/srv",), True)
    assert (s.port, s.import_roots, s.split_by_scene) == (8080, (), False)
    with pytest.raises(ValueError, match="between 0 and 65535"):
        s.replace(port="70000")
    with pytest.raises(ValueError, match="frozen"):
        s.port = 1


def test_face_landmarks() -> None:
    assert load_settings(environ={}).face_landmarks == "68"
    assert load_settings(environ={"VISIONLOOP_FACE_LANDMARKS": " 5 "}).face_landmarks == "5"
    assert load_settings({"face_landmarks": 5}, environ={}).face_landmarks == "5"
    with pytest.raises(
        InvalidInput, match="setting face_landmarks from option: '7' is not valid .must be 68 or 5"
    ):
        load_settings({"face_landmarks": "7"}, environ={})


def test_face_landmarks_reach_the_face_analyser() -> None:
    """The server's and the CLI's analysers (bootstrap.analyser_factory) get the setting; other kinds
    ignore it, and each landmark model has its own analyser."""
    from visionloop.bootstrap import analyser_factory

    five = analyser_factory(load_settings({"face_landmarks": "5"}, environ={}))("faces")
    default = analyser_factory(load_settings(environ={}))("faces")
    assert (five.landmarks, default.landmarks) == ("5", "68")
    assert analyser_factory(load_settings({"face_landmarks": "5"}, environ={}))("faces") is five
    assert five.version != default.version
