"""Every setting, declared once with its default and help (datasette's SETTINGS): a field of the frozen
``Settings`` dataclass, made with ``setting()``. ``SETTINGS`` (the CLI's and the docs' list) is derived
from those fields. Values come from, in order of precedence: explicit arguments (CLI flags), environment
variables ``VISIONLOOP_<NAME>``, a TOML config file (``--config`` or ``VISIONLOOP_CONFIG``), then the
defaults. Values are cast to their type and a bad value fails at start with a message naming the
setting."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, overload

from visionloop.errors import InvalidInput

ENV_PREFIX = "VISIONLOOP_"


@dataclass(frozen=True)
class Setting:
    """One setting as the loader, the CLI and the docs see it; derived from a field of ``Settings``."""

    name: str
    default: Any
    help: str
    cast: Callable[[Any], Any] = str
    secret: bool = False  # a bad value is reported without echoing it
    structured: bool = False  # cast also takes TOML arrays and tables (others get str(value))


T = TypeVar("T")


@overload
def setting(default: str, help: str, *, secret: bool = ..., repr: bool | None = ...) -> str: ...
@overload
def setting(
    default: T,
    help: str,
    cast: Callable[[Any], T],
    *,
    secret: bool = ...,
    structured: bool = ...,
    repr: bool | None = ...,
) -> T: ...
def setting(
    default: Any,
    help: str,
    cast: Callable[[Any], Any] = str,
    *,
    secret: bool = False,
    structured: bool = False,
    repr: bool | None = None,
) -> Any:
    """A field of ``Settings``: its default, and in its metadata the help, the cast (from a string, or
    with ``structured`` also a TOML array or table) and whether it is secret. A secret is left out of
    the repr unless ``repr=True`` (its value hides the secret itself)."""
    metadata = {"help": help, "cast": cast, "secret": secret, "structured": structured}
    return field(default=default, repr=not secret if repr is None else repr, metadata=metadata)


@dataclass(frozen=True)
class AccessKey:
    """An access key id and its secret: signs AWS-API requests (SigV4) and, sent as a bearer token,
    authenticates native-API requests. The secret never appears in a repr."""

    id: str
    secret: str = field(repr=False)


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError("must be between 0 and 65535")
    return port


def _account(value: str) -> str:
    if not (len(value) == 12 and value.isdigit()):
        raise ValueError("must be 12 digits")
    return value


def _bucket(value: str) -> str:
    from visionloop.core.keys import check_bucket
    from visionloop.errors import InvalidKey

    try:
        return check_bucket(value)
    except InvalidKey:
        raise ValueError("must be 3-255 letters, digits, '.', '-' or '_'") from None


def _level(value: str) -> str:
    level = value.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level


def _bool(value: str) -> bool:
    low = value.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _non_negative(value: str) -> float:
    number = float(value)
    if not number >= 0:
        raise ValueError("must be a number ≥ 0")
    return number


def _positive(value: str) -> float:
    number = float(value)
    if not number > 0 or number == float("inf"):
        raise ValueError("must be a number > 0")
    return number


MIN_SESSION_SECRET = 32


def _session_secret(value: str) -> str:
    if value and len(value) < MIN_SESSION_SECRET:
        raise ValueError(f"must be at least {MIN_SESSION_SECRET} characters (or empty: generated)")
    return value


def _smtp_security(value: str) -> str:
    low = value.strip().lower()
    if low not in {"starttls", "ssl", "none"}:
        raise ValueError("must be starttls, ssl or none")
    return low


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be ≥ 1")
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be ≥ 0")
    return number


def _string_list(value: str | list[Any]) -> tuple[str, ...]:
    """``a,b,c`` (environment, option or TOML string; empty: none) or a TOML array of strings."""
    items = value.split(",") if isinstance(value, str) else value
    out: list[str] = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, str):
            raise ValueError(f"entry {n} is not a string")
        if item.strip():
            out.append(item.strip())
    return tuple(out)


ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
SECRET = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces
MIN_SECRET_LENGTH = 16


def _access_keys(value: str | list[Any] | dict[str, Any]) -> tuple[AccessKey, ...]:
    """``AKID:SECRET,AKID2:SECRET2`` (environment, option or TOML string; empty: no keys), a TOML array
    of ``AKID:SECRET`` strings, or a TOML table ``{AKID = "SECRET"}``. Errors name the key id, never
    the secret."""
    if isinstance(value, dict):
        pairs: list[tuple[str, Any]] = [(str(k), v) for k, v in value.items()]
    else:
        if isinstance(value, str):
            value = value.split(",") if value.strip() else []
        pairs = []
        for n, entry in enumerate(value, 1):
            if not isinstance(entry, str) or not entry.strip():
                raise ValueError(f"entry {n} is not of the form AKID:SECRET")
            key_id, colon, secret = entry.strip().partition(":")
            if not colon:
                raise ValueError(f"entry {n} has no ':' between the access key id and the secret")
            pairs.append((key_id, secret))
    keys: dict[str, AccessKey] = {}
    for n, (key_id, secret) in enumerate(pairs, 1):
        if not ACCESS_KEY_ID.fullmatch(key_id):  # not echoed: it may be a misplaced secret
            raise ValueError(
                f"the access key id of entry {n} must be 1-128 letters, digits, '_' or '-' "
                "(expected AKID:SECRET,AKID2:SECRET2)"
            )
        if key_id in keys:
            raise ValueError(f"access key id {key_id} is given twice")
        if not isinstance(secret, str) or not SECRET.fullmatch(secret):
            raise ValueError(f"the secret of {key_id} must be printable ASCII without spaces")
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"the secret of {key_id} is shorter than {MIN_SECRET_LENGTH} characters")
        keys[key_id] = AccessKey(key_id, secret)
    return tuple(keys.values())


@dataclass(frozen=True)
class Settings:
    """The resolved settings: a frozen value object (change one with ``dataclasses.replace``). Each
    field is one setting; its help, cast and secrecy travel in the field's metadata (see ``setting``)."""

    data_dir: str = setting("./var", "Folder for all embedded data: database, object store, buckets, caches.")
    host: str = setting("127.0.0.1", "Address the server listens on.")
    port: int = setting(8080, "Port the server listens on.", _port)
    database_url: str = setting("", "Metadata database URL; empty means sqlite:///<data_dir>/visionloop.db.")
    store_url: str = setting(
        "", "Internal object store (images by content hash, model artifacts); empty means <data_dir>/store."
    )
    buckets_url: str = setting(
        "", "Where user buckets live; empty means <data_dir>/buckets (a bucket is a folder)."
    )
    cache_dir: str = setting("", "Model and embedding caches; empty means <data_dir>/cache.")
    region: str = setting("us-east-1", "AWS region written into ARNs of the Rekognition-compatible API.")
    account_id: str = setting("123456789012", "12-digit AWS account id written into ARNs.", _account)
    log_level: str = setting("INFO", "Log level: DEBUG, INFO, WARNING or ERROR.", _level)
    workers: int = setting(
        1, "Job worker processes the server starts (0: none; run `visionloop worker` yourself).", int
    )
    inference_threads: int = setting(
        0,
        "CPU threads for the inference units of one model version, shared equally between its units "
        "(at least 1 each); 0 means one per core.",
        _non_negative_int,
    )
    inference_max_batch: int = setting(
        8, "Most images an inference unit predicts in one batch when requests queue up.", _positive_int
    )
    split_by_scene: bool = setting(
        False,
        "Automatic TRAIN/TEST splits hold out whole scenes: each label's groups of similar photos are "
        "clustered by what they look like (EfficientNet-Lite0 embeddings) and TEST takes whole clusters, "
        "so the evaluation judges photos unlike the training ones (false: groups only).",
        _bool,
    )
    inference_restore: bool = setting(
        True,
        "At start, load again the versions that were RUNNING or STARTING when the server stopped "
        "(false: mark them STOPPED).",
        _bool,
    )
    inference_scale_up_seconds: float = setting(
        2.0,
        "A version with MaxInferenceUnits above its units gets one more unit when its queue stays "
        "deep (2 waiting requests per unit) this long.",
        _non_negative,
    )
    inference_scale_down_seconds: float = setting(
        60.0,
        "A version above MinInferenceUnits gives back a unit after it had one to spare this long.",
        _non_negative,
    )
    inference_idle_minutes: float = setting(
        0.0,
        "Default idle timeout: stop (scale to zero) a version nobody called for this many minutes; "
        "0 means never. A start request can set its own.",
        _non_negative,
    )
    inference_auto_start: bool = setting(
        False,
        "Default for starts: a detection request to a version stopped by the idle timeout starts it "
        "again and waits for it.",
        _bool,
    )
    inference_start_timeout: float = setting(
        300.0,
        "Seconds an inference unit may take to load its model before the start is FAILED.",
        _non_negative,
    )
    workflow_enabled: bool = setting(
        True,
        "Run the workflow runner in the server: the schedules of the training and sampling checks and "
        "the workflow runs (training checks, rollbacks). Off: runs queued by the CLI or API wait.",
        _bool,
    )
    workflow_poll_seconds: float = setting(
        1.0,
        "How often the workflow runner moves the active runs on (they poll training jobs and starting "
        "versions); schedules are looked at every 5 seconds and at once when a parameter changes.",
        _positive,
    )
    workflow_step_timeout_minutes: float = setting(
        120.0,
        "A run's step that waits longer than this (for a training job, a comparison, a version to "
        "start) fails the run.",
        _positive,
    )
    workflow_bucket: str = setting(
        "visionloop",
        "Bucket of the watched inboxes: images put under <project>/images_for_detection/ are detected "
        "with the project's serving version, those under <project>/images_labeled_by_folder/<label>/ "
        "join its TRAIN dataset.",
        _bucket,
    )
    inbox_poll_seconds: float = setting(
        5.0,
        "How often the server looks into the watched inboxes; 0 means it does not (run `visionloop "
        "workflow scan` yourself).",
        _non_negative,
    )
    inbox_settle_seconds: float = setting(
        2.0,
        "An inbox image written less than this many seconds ago is left for the next look (it may still "
        "be being copied in).",
        _non_negative,
    )
    detection_log_days: float = setting(
        0.0, "Delete logged detections older than this many days; 0 means keep them all.", _non_negative
    )
    detection_log_max_rows: int = setting(
        0,
        "Keep at most this many logged detections per project (the newest); 0 means no limit.",
        _non_negative_int,
    )
    access_keys: tuple[AccessKey, ...] = setting(
        (),
        "Access key pairs AKID:SECRET,AKID2:SECRET2 (secrets of 16+ printable characters). When set, "
        "AWS-API requests must carry a SigV4 signature by one of them, the native API needs the header "
        "'Authorization: Bearer <a secret>', and the server may listen on any address; when empty, "
        "nothing is checked and the server listens on loopback only.",
        _access_keys,
        secret=True,
        structured=True,
        repr=True,
    )
    import_roots: tuple[str, ...] = setting(
        (),
        "Server folders that imports requested over HTTP (native API, console) may read, as a comma list "
        "or TOML array; empty: over HTTP only buckets (s3://bucket/prefix) can be imported. The CLI, run "
        "by someone on the server, may import any path it can read.",
        _string_list,
        structured=True,
    )
    max_import_file_mb: float = setting(
        64.0, "Largest manifest or COCO file an import reads, in MB (regular files only).", _positive
    )
    trusted_proxies: tuple[str, ...] = setting(
        (),
        "Addresses of reverse proxies (comma list or TOML array) whose X-Forwarded-For and "
        "X-Forwarded-Proto headers are believed; empty: those headers are ignored and the client is the "
        "peer address.",
        _string_list,
        structured=True,
    )
    webhook_allow_private: bool = setting(
        False,
        "Let webhook channels call loopback and private-network addresses (10/8, 172.16/12, 192.168/16, "
        "fc00::/7, 127/8, ::1). Link-local and cloud metadata addresses (169.254/16, fe80::/10) are always "
        "refused.",
        _bool,
    )
    session_secret: str = setting(
        "",
        "Key (32+ characters) that signs the cookies of reviewers' sign-in sessions; empty means a random "
        "one generated once and kept in <data_dir>/session_secret. Changing it signs everyone out.",
        _session_secret,
        secret=True,
    )
    session_hours: float = setting(12.0, "A reviewer's sign-in lasts this many hours at most.", _positive)
    session_idle_minutes: float = setting(
        60.0, "A reviewer who made no request for this many minutes must sign in again.", _positive
    )
    secure_cookies: bool = setting(
        False,
        "Mark session cookies Secure (sent over HTTPS only) on every request; without it they are Secure "
        "when the request came over HTTPS. Set it when a TLS proxy on another machine serves the pages.",
        _bool,
    )
    smtp_host: str = setting(
        "",
        "SMTP server that sends the e-mail notification channels' messages; empty: e-mail channels "
        "cannot deliver (their attempts fail with a message saying so).",
    )
    smtp_port: int = setting(587, "Port of the SMTP server.", _port)
    smtp_security: str = setting(
        "starttls",
        "How to talk to the SMTP server: starttls (upgrade the connection), ssl (TLS from the start, "
        "usually port 465) or none (plain text; only for a relay on a trusted network).",
        _smtp_security,
    )
    smtp_username: str = setting("", "User name to log in to the SMTP server; empty: no login.")
    smtp_password: str = setting("", "Password to log in to the SMTP server.", secret=True)
    smtp_from: str = setting("visionloop@localhost", "The From address of notification e-mails.")
    notify_timeout_seconds: float = setting(
        10.0,
        "Seconds a webhook receiver or the SMTP server has to answer one notification before the attempt "
        "fails.",
        _positive,
    )
    notify_max_attempts: int = setting(
        6, "Attempts to deliver one notification before it is marked failed.", _positive_int
    )
    notify_retry_seconds: float = setting(
        5.0,
        "Wait after the first failed attempt of a notification; it doubles after each further failure, "
        "up to one hour.",
        _positive,
    )

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


SETTINGS: tuple[Setting, ...] = tuple(Setting(f.name, f.default, **f.metadata) for f in fields(Settings))
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


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
            values[s.name] = s.cast(raw if s.structured and isinstance(raw, list | dict) else str(raw))
        except ValueError as e:
            shown = "the value" if s.secret else repr(raw)
            raise InvalidInput(f"setting {s.name} from {origin}: {shown} is not valid ({e})") from None
    return Settings(**values)


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
