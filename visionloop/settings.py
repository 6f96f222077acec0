"""Every setting, declared once with its default and help (datasette's SETTINGS): a field of the frozen
pydantic-settings model ``Settings``, whose type says how its value is read from text (``Parse``).
``SETTINGS`` (the CLI's and the docs' list) is derived from those fields. ``load_settings`` resolves
them from, in order of precedence: explicit arguments (CLI flags), environment variables
``VISIONLOOP_<NAME>``, a TOML config file (``--config`` or ``VISIONLOOP_CONFIG``), then the defaults.
Values are cast to their type and a bad value fails at start with a message naming the setting and
where its value came from (a secret's value is never echoed)."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, GetCoreSchemaHandler, ValidationError
from pydantic_core import CoreSchema, core_schema
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

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


@dataclass(frozen=True)
class Parse:
    """How a setting's value is read from text (an option, the environment, the config file): metadata
    of its field's type that pydantic runs as a before-validator. ``structured`` settings also take TOML
    arrays and tables; a ``secret`` one is reported without its value. A value that is already typed
    (``Settings(...)`` or ``replace`` in code) is left to the field's type."""

    cast: Callable[[Any], Any] = str
    structured: bool = False
    secret: bool = False

    def read(self, value: Any) -> Any:
        if isinstance(value, str) or (self.structured and isinstance(value, list | dict)):
            return self.cast(value)
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self.read, handler(source))


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


def _endpoint(value: str) -> str:
    """An S3 endpoint: empty (AWS) or an http(s) URL with a host; boto3 refuses anything else only later."""
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if value and not (parts.scheme in ("http", "https") and parts.hostname):
        raise ValueError("must be empty or an http:// or https:// URL, like http://minio.internal:9000")
    return value


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


def _face_landmarks(value: str) -> str:
    landmarks = value.strip()
    if landmarks not in {"68", "5"}:
        raise ValueError("must be 68 or 5")
    return landmarks


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


def setting(default: Any, help: str, *, repr: bool = True) -> Any:
    """A field of ``Settings``: its default and its help (the field's description); ``repr=False`` keeps a
    secret string out of the repr."""
    return Field(default, description=help, repr=repr)


# The types of the settings: each says how its value is read from text.
Port = Annotated[int, Parse(_port)]
Endpoint = Annotated[str, Parse(_endpoint)]
AccountId = Annotated[str, Parse(_account)]
Bucket = Annotated[str, Parse(_bucket)]
LogLevel = Annotated[str, Parse(_level)]
Flag = Annotated[bool, Parse(_bool)]
Count = Annotated[int, Parse(int)]
PositiveInt = Annotated[int, Parse(_positive_int)]
NonNegativeInt = Annotated[int, Parse(_non_negative_int)]
Positive = Annotated[float, Parse(_positive)]
NonNegative = Annotated[float, Parse(_non_negative)]
SmtpSecurity = Annotated[str, Parse(_smtp_security)]
FaceLandmarks = Annotated[Literal["68", "5"], Parse(_face_landmarks)]
Texts = Annotated[tuple[str, ...], Parse(_string_list, structured=True)]
Password = Annotated[str, Parse(str, secret=True)]
SessionSecret = Annotated[str, Parse(_session_secret, secret=True)]
AccessKeys = Annotated[tuple[AccessKey, ...], Parse(_access_keys, structured=True, secret=True)]

# The sources load_settings adds after the explicit arguments (environment, config file); none outside it.
_SOURCES: ContextVar[tuple[PydanticBaseSettingsSource, ...]] = ContextVar("settings_sources", default=())


class Settings(BaseSettings):
    """The resolved settings: a frozen value object (change one with ``replace``). Each field is one
    setting: its default, its help (the description), how it is read (``Parse`` in its type) and whether
    it is secret (a secret string stays out of the repr). ``Settings(...)`` in code takes its arguments
    and the defaults only; ``load_settings`` also reads the environment and the config file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, enable_decoding=False, validate_default=False
    )

    data_dir: str = setting("./var", "Folder for all embedded data: database, object store, buckets, caches.")
    host: str = setting("127.0.0.1", "Address the server listens on.")
    port: Port = setting(8080, "Port the server listens on.")
    database_url: str = setting("", "Metadata database URL; empty means sqlite:///<data_dir>/visionloop.db.")
    store_url: str = setting(
        "", "Internal object store (images by content hash, model artifacts); empty means <data_dir>/store."
    )
    buckets_url: str = setting(
        "", "Where user buckets live; empty means <data_dir>/buckets (a bucket is a folder)."
    )
    s3_endpoint_url: Endpoint = setting(
        "",
        "S3 API address for s3:// store_url and buckets_url (MinIO, Ceph: http://host:9000); empty means "
        "AWS S3 (or AWS_ENDPOINT_URL).",
    )
    s3_region: str = setting(
        "", "S3 region; empty means boto3's default (AWS_DEFAULT_REGION, ~/.aws/config)."
    )
    s3_access_key_id: str = setting(
        "", "S3 access key id; empty (with the secret empty too) means boto3's default credential chain."
    )
    s3_secret_access_key: Password = setting(
        "", "S3 secret access key; empty means boto3's default credential chain.", repr=False
    )
    cache_dir: str = setting("", "Model and embedding caches; empty means <data_dir>/cache.")
    region: str = setting("us-east-1", "AWS region written into ARNs of the Rekognition-compatible API.")
    account_id: AccountId = setting("123456789012", "12-digit AWS account id written into ARNs.")
    log_level: LogLevel = setting("INFO", "Log level: DEBUG, INFO, WARNING or ERROR.")
    workers: Count = setting(
        1, "Job worker processes the server starts (0: none; run `visionloop worker` yourself)."
    )
    inference_threads: NonNegativeInt = setting(
        0,
        "CPU threads for the inference units of one model version, shared equally between its units "
        "(at least 1 each); 0 means one per core.",
    )
    inference_max_batch: PositiveInt = setting(
        8, "Most images an inference unit predicts in one batch when requests queue up."
    )
    split_by_scene: Flag = setting(
        False,
        "Automatic TRAIN/TEST splits hold out whole scenes: each label's groups of similar photos are "
        "clustered by what they look like (EfficientNet-Lite0 embeddings) and TEST takes whole clusters, "
        "so the evaluation judges photos unlike the training ones (false: groups only).",
    )
    inference_restore: Flag = setting(
        True,
        "At start, load again the versions that were RUNNING or STARTING when the server stopped "
        "(false: mark them STOPPED).",
    )
    inference_scale_up_seconds: NonNegative = setting(
        2.0,
        "A version with MaxInferenceUnits above its units gets one more unit when its queue stays "
        "deep (2 waiting requests per unit) this long.",
    )
    inference_scale_down_seconds: NonNegative = setting(
        60.0, "A version above MinInferenceUnits gives back a unit after it had one to spare this long."
    )
    inference_idle_minutes: NonNegative = setting(
        0.0,
        "Default idle timeout: stop (scale to zero) a version nobody called for this many minutes; "
        "0 means never. A start request can set its own.",
    )
    inference_auto_start: Flag = setting(
        False,
        "Default for starts: a detection request to a version stopped by the idle timeout starts it "
        "again and waits for it.",
    )
    inference_start_timeout: NonNegative = setting(
        300.0, "Seconds an inference unit may take to load its model before the start is FAILED."
    )
    workflow_enabled: Flag = setting(
        True,
        "Run the workflow runner in the server: the schedules of the training and sampling checks and "
        "the workflow runs (training checks, rollbacks). Off: runs queued by the CLI or API wait.",
    )
    workflow_poll_seconds: Positive = setting(
        1.0,
        "How often the workflow runner moves the active runs on (they poll training jobs and starting "
        "versions); schedules are looked at every 5 seconds and at once when a parameter changes.",
    )
    workflow_step_timeout_minutes: Positive = setting(
        120.0,
        "A run's step that waits longer than this (for a training job, a comparison, a version to "
        "start) fails the run.",
    )
    workflow_bucket: Bucket = setting(
        "visionloop",
        "Bucket of the watched inboxes: images put under <project>/images_for_detection/ are detected "
        "with the project's serving version, those under <project>/images_labeled_by_folder/<label>/ "
        "join its TRAIN dataset.",
    )
    inbox_poll_seconds: NonNegative = setting(
        5.0,
        "How often the server looks into the watched inboxes; 0 means it does not (run `visionloop "
        "workflow scan` yourself).",
    )
    inbox_settle_seconds: NonNegative = setting(
        2.0,
        "An inbox image written less than this many seconds ago is left for the next look (it may still "
        "be being copied in).",
    )
    detection_log_days: NonNegative = setting(
        0.0, "Delete logged detections older than this many days; 0 means keep them all."
    )
    detection_log_max_rows: NonNegativeInt = setting(
        0, "Keep at most this many logged detections per project (the newest); 0 means no limit."
    )
    access_keys: AccessKeys = setting(
        (),
        "Access key pairs AKID:SECRET,AKID2:SECRET2 (secrets of 16+ printable characters). When set, "
        "AWS-API requests must carry a SigV4 signature by one of them, the native API needs the header "
        "'Authorization: Bearer <a secret>', and the server may listen on any address; when empty, "
        "nothing is checked and the server listens on loopback only.",
    )
    import_roots: Texts = setting(
        (),
        "Server folders that imports requested over HTTP (native API, console) may read, as a comma list "
        "or TOML array; empty: over HTTP only buckets (s3://bucket/prefix) can be imported. The CLI, run "
        "by someone on the server, may import any path it can read.",
    )
    max_import_file_mb: Positive = setting(
        64.0, "Largest manifest or COCO file an import reads, in MB (regular files only)."
    )
    trusted_proxies: Texts = setting(
        (),
        "Addresses of reverse proxies (comma list or TOML array) whose X-Forwarded-For and "
        "X-Forwarded-Proto headers are believed; empty: those headers are ignored and the client is the "
        "peer address.",
    )
    webhook_allow_private: Flag = setting(
        False,
        "Let webhook channels call loopback and private-network addresses (10/8, 172.16/12, 192.168/16, "
        "fc00::/7, 127/8, ::1). Link-local and cloud metadata addresses (169.254/16, fe80::/10) are always "
        "refused.",
    )
    session_secret: SessionSecret = setting(
        "",
        "Key (32+ characters) that signs the cookies of reviewers' sign-in sessions; empty means a random "
        "one generated once and kept in <data_dir>/session_secret. Changing it signs everyone out.",
        repr=False,
    )
    session_hours: Positive = setting(12.0, "A reviewer's sign-in lasts this many hours at most.")
    session_idle_minutes: Positive = setting(
        60.0, "A reviewer who made no request for this many minutes must sign in again."
    )
    secure_cookies: Flag = setting(
        False,
        "Mark session cookies Secure (sent over HTTPS only) on every request; without it they are Secure "
        "when the request came over HTTPS. Set it when a TLS proxy on another machine serves the pages.",
    )
    smtp_host: str = setting(
        "",
        "SMTP server that sends the e-mail notification channels' messages; empty: e-mail channels "
        "cannot deliver (their attempts fail with a message saying so).",
    )
    smtp_port: Port = setting(587, "Port of the SMTP server.")
    smtp_security: SmtpSecurity = setting(
        "starttls",
        "How to talk to the SMTP server: starttls (upgrade the connection), ssl (TLS from the start, "
        "usually port 465) or none (plain text; only for a relay on a trusted network).",
    )
    smtp_username: str = setting("", "User name to log in to the SMTP server; empty: no login.")
    smtp_password: Password = setting("", "Password to log in to the SMTP server.", repr=False)
    smtp_from: str = setting("visionloop@localhost", "The From address of notification e-mails.")
    notify_timeout_seconds: Positive = setting(
        10.0,
        "Seconds a webhook receiver or the SMTP server has to answer one notification before the attempt "
        "fails.",
    )
    notify_max_attempts: PositiveInt = setting(
        6, "Attempts to deliver one notification before it is marked failed."
    )
    notify_retry_seconds: Positive = setting(
        5.0,
        "Wait after the first failed attempt of a notification; it doubles after each further failure, "
        "up to one hour.",
    )

    face_landmarks: FaceLandmarks = setting(
        "68",
        "The faces' landmark model: 68 (dlib's 68 points, trained on iBUG 300-W, whose licence excludes "
        "commercial use: all landmarks, EyesOpen, MouthOpen) or 5 (dlib's public-domain 5 points: eye "
        "corners and nose only, a coarser pose). Identity vectors of the two do not compare: a "
        "collection indexed with one is refused by a server running the other.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit arguments first, then what ``load_settings`` reads (the environment it is given,
        then the config file); never the process environment behind a caller's back, nor a .env file."""
        return (init_settings, *_SOURCES.get())

    def replace(self, **changes: Any) -> Self:
        """A copy with some settings changed (typed values, checked by the fields' types)."""
        return type(self)(**{**dict(self), **changes})

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


def _parse(name: str) -> Parse:
    return next((m for m in Settings.model_fields[name].metadata if isinstance(m, Parse)), Parse())


def _setting(name: str) -> Setting:
    f, parse = Settings.model_fields[name], _parse(name)
    return Setting(name, f.default, f.description or "", parse.cast, parse.secret, parse.structured)


SETTINGS: tuple[Setting, ...] = tuple(_setting(name) for name in Settings.model_fields)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


def _as_read(s: Setting, value: Any) -> Any:
    """A value as the setting's cast takes it: text, or a TOML array or table for a structured one."""
    return value if s.structured and isinstance(value, list | dict) else str(value)


class _Environment(EnvSettingsSource):
    """The ``VISIONLOOP_<NAME>`` variables of the environment ``load_settings`` is given, names matched
    exactly (upper case); list and table settings are read by their cast, never as JSON."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self.environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self.environ.items() if k.startswith(ENV_PREFIX) and k == k.upper()}


class _ConfigFile(InitSettingsSource):
    """The TOML config file: its ``[visionloop]`` table, or the whole file; an unknown setting fails."""

    def __init__(self, settings_cls: type[BaseSettings], path: str) -> None:
        self.path = path
        self.values = _read_config(path)
        read = {k: _as_read(SETTINGS_BY_NAME[k], v) for k, v in self.values.items()}
        super().__init__(settings_cls, read)


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Settings:
    """Resolve every setting; raise InvalidInput naming the first bad one."""
    env = os.environ if environ is None else environ
    config_file = config_file or env.get(f"{ENV_PREFIX}CONFIG") or None
    config = _ConfigFile(Settings, config_file) if config_file else None
    options = {k: v for k, v in (overrides or {}).items() if v is not None and k in SETTINGS_BY_NAME}
    try:
        with _reading(_Environment(Settings, env), *([config] if config else [])):
            return Settings(**{k: _as_read(SETTINGS_BY_NAME[k], v) for k, v in options.items()})
    except ValidationError as e:
        error = e.errors()[0]
        name = str(error["loc"][0])
        origin, raw = _origin(name, options, env, config)
        reason = error["ctx"]["error"] if error["type"] == "value_error" else error["msg"]
        shown = "the value" if SETTINGS_BY_NAME[name].secret else repr(raw)
        raise InvalidInput(f"setting {name} from {origin}: {shown} is not valid ({reason})") from None


@contextmanager
def _reading(*sources: PydanticBaseSettingsSource) -> Iterator[None]:
    token = _SOURCES.set(sources)
    try:
        yield
    finally:
        _SOURCES.reset(token)


def _origin(
    name: str, options: Mapping[str, Any], env: Mapping[str, str], config: _ConfigFile | None
) -> tuple[str, Any]:
    """Where the value of a setting came from, and the value as given there (for the error message)."""
    env_name = f"{ENV_PREFIX}{name.upper()}"
    if name in options:
        return "option", options[name]
    if env_name in env:
        return f"environment variable {env_name}", env[env_name]
    assert config is not None and name in config.values, name  # a default is never invalid
    return f"config file {config.path}", config.values[name]


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
