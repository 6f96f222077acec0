"""Every setting, declared once with its default and help (datasette's SETTINGS). Values come from, in
order of precedence: explicit arguments (CLI flags), environment variables ``VISIONLOOP_<NAME>``, a TOML
config file (``--config`` or ``VISIONLOOP_CONFIG``), then the defaults. Values are cast to their type and
a bad value fails at start with a message naming the setting."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from visionloop.errors import InvalidInput

ENV_PREFIX = "VISIONLOOP_"


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    cast: Callable[[str], Any] = str


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError("must be between 0 and 65535")
    return port


def _account(value: str) -> str:
    if not (len(value) == 12 and value.isdigit()):
        raise ValueError("must be 12 digits")
    return value


def _level(value: str) -> str:
    level = value.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level


SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", "./var", "Folder for all embedded data: database, object store, buckets, caches."),
    Setting("host", "127.0.0.1", "Address the server listens on."),
    Setting("port", 8080, "Port the server listens on.", _port),
    Setting("database_url", "", "Metadata database URL; empty means sqlite:///<data_dir>/visionloop.db."),
    Setting(
        "store_url",
        "",
        "Internal object store (images by content hash, model artifacts); empty means <data_dir>/store.",
    ),
    Setting(
        "buckets_url", "", "Where user buckets live; empty means <data_dir>/buckets (a bucket is a folder)."
    ),
    Setting("cache_dir", "", "Model and embedding caches; empty means <data_dir>/cache."),
    Setting("region", "us-east-1", "AWS region written into ARNs of the Rekognition-compatible API."),
    Setting("account_id", "123456789012", "12-digit AWS account id written into ARNs.", _account),
    Setting("log_level", "INFO", "Log level: DEBUG, INFO, WARNING or ERROR.", _level),
    Setting(
        "workers",
        1,
        "Job worker processes the server starts (0: none; run `visionloop worker` yourself).",
        int,
    ),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    data_dir: str = "./var"
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = ""
    store_url: str = ""
    buckets_url: str = ""
    cache_dir: str = ""
    region: str = "us-east-1"
    account_id: str = "123456789012"
    log_level: str = "INFO"
    workers: int = 1

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'visionloop.db'}"

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or str(self.data_path / "store")

    @property
    def resolved_buckets_url(self) -> str:
        return self.buckets_url or str(self.data_path / "buckets")

    @property
    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else self.data_path / "cache"


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Settings:
    """Resolve every setting; raise InvalidInput naming the first bad one."""
    env = os.environ if environ is None else environ
    config_file = config_file or env.get(f"{ENV_PREFIX}CONFIG") or None
    from_file = _read_config(config_file) if config_file else {}
    values: dict[str, Any] = {}
    for s in SETTINGS:
        env_name = f"{ENV_PREFIX}{s.name.upper()}"
        if overrides and overrides.get(s.name) is not None:
            raw, origin = overrides[s.name], "option"
        elif env_name in env:
            raw, origin = env[env_name], f"environment variable {env_name}"
        elif s.name in from_file:
            raw, origin = from_file[s.name], f"config file {config_file}"
        else:
            values[s.name] = s.default
            continue
        try:
            values[s.name] = s.cast(str(raw))
        except ValueError as e:
            raise InvalidInput(f"setting {s.name} from {origin}: {raw!r} is not valid ({e})") from None
    known = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in values.items() if k in known})


def _read_config(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise InvalidInput(f"config file {path!r} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidInput(f"config file {path!r} is not valid TOML: {e}") from None
    section = doc.get("visionloop", doc)
    unknown = sorted(set(section) - set(SETTINGS_BY_NAME))
    if unknown:
        raise InvalidInput(f"config file {path!r} has unknown settings: {', '.join(unknown)}")
    return dict(section)
