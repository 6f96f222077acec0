"""Notification channels: where a project's events (core.events) are sent, and the record of each
delivery and attempt.

Records
    Channel     one per destination, named within its project (1-64 of a-z 0-9 _ -):
                WEBHOOK   an http(s) URL; each event is POSTed as JSON, the body signed with
                          HMAC-SHA256 under the channel's ``secret`` (generated when not given) in the
                          header ``X-Visionloop-Signature: sha256=<hex>``
                EMAIL     1-20 e-mail addresses; each event is one message through the SMTP server of
                          the settings (smtp_*)
                ``events``: the event types it wants (default: every type but ``detection``);
                ``enabled``: a disabled channel gets no new deliveries.
    Delivery    one event to one channel: PENDING (due at ``next_attempt_at``) → DELIVERED, or FAILED
                after ``RetryPolicy.max_attempts`` attempts. Created with the event, in the same
                transaction (core.events.publish), so none is lost when the server stops.
    Attempt     one try: when, how long, ok, the HTTP status (webhooks), the error.

Use cases
    add_channel, list_channels, get_channel, update_channel (enabled, events), remove_channel,
    list_deliveries, list_attempts, and deliver_due(svc, senders, policy): claim the deliveries that
    are due (a lease of ``policy.lease_seconds``, so a worker that dies mid-send leaves them to be
    tried again), send each with the channel kind's Sender, record the attempt, and either finish the
    delivery or schedule the next attempt with exponential backoff. The Notifier thread
    (visionloop.workflows.notifications) calls deliver_due; the senders live there too.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import secrets
import socket
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from visionloop.core.projects import get_project
from visionloop.core.records.events import Event, EventType, event_type
from visionloop.core.records.notifications import (
    Attempt,
    Channel,
    ChannelKind,
    Delivery,
    DeliveryStatus,
    NewChannel,
)
from visionloop.core.services import Services
from visionloop.errors import InvalidInput, NotFound

SIGNATURE_HEADER = "X-Visionloop-Signature"
MAX_ADDRESSES = 20
MAX_URL = 2048
MIN_SECRET = 16
MAX_SECRET = 256
MAX_LIST = 1000
DEFAULT_EVENTS = tuple(t for t in EventType if t is not EventType.DETECTION)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_ADDRESS = re.compile(r"^[^@\s<>(),;:\"\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?$")
_SECRET = re.compile(r"^[\x21-\x7e]+$")
# webhooks never call these: link-local addresses (where cloud metadata services answer, 169.254.169.254)
# and the metadata addresses outside them (Alibaba Cloud's, and AWS's over IPv6)
_NEVER = tuple(
    ipaddress.ip_network(n)
    for n in ("169.254.0.0/16", "fe80::/10", "100.100.100.200/32", "fd00:ec2::254/128")
)
AddrInfo = tuple[
    socket.AddressFamily,
    socket.SocketKind,
    int,
    str,
    tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes],
]


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status_code: int | None = None
    error: str | None = None


class Sender(Protocol):
    """Sends one event to one channel; never raises (a failure is a SendResult with ok False)."""

    def send(self, channel: Channel, event: Event, delivery_id: int) -> SendResult: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Attempt n (n ≥ 1) that fails is followed by attempt n + 1 after
    ``min(base_seconds * 2 ** (n - 1), max_seconds)``; after ``max_attempts`` the delivery FAILED."""

    max_attempts: int = 6
    base_seconds: float = 5.0
    max_seconds: float = 3600.0
    lease_seconds: float = 120.0  # a claimed delivery is due again after this (a worker died mid-send)

    def delay(self, attempt: int) -> timedelta:
        return timedelta(seconds=min(self.base_seconds * 2 ** (attempt - 1), self.max_seconds))


# --- validation ----------------------------------------------------------------------------------------


def check_channel_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"invalid channel name {str(name)[:80]!r}: 1-64 of a-z, 0-9, '_' and '-', starting with a "
            "letter or digit"
        )
    return name


def check_url(url: object) -> str:
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise InvalidInput(f"a webhook needs a url of 1-{MAX_URL} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        raise InvalidInput(f"invalid webhook url {url[:80]!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"a webhook url must be http:// or https:// with a host, not {url[:80]!r}")
    if parts.username or parts.password:
        raise InvalidInput("a webhook url must not carry a user name or password; the secret signs it")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInput("a webhook url must not contain spaces or control characters")
    return url


def address_refusal(address: str, allow_private: bool) -> str | None:
    """Why a webhook may not call the IP ``address`` (None: it may). Link-local and cloud metadata
    addresses are always refused; loopback, private and other non-global ones unless ``allow_private``."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope (fe80::1%eth0) does not matter
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_link_local or any(ip in net for net in _NEVER if net.version == ip.version):
        return f"{ip} is a link-local or cloud metadata address"
    if not allow_private and not ip.is_global:
        return (
            f"{ip} is a loopback, private or reserved address (the setting webhook_allow_private allows "
            "those)"
        )
    return None


def webhook_addresses(host: str, port: int, allow_private: bool) -> list[AddrInfo]:
    """The addresses ``host`` resolves to now, for connecting to ``port``; InvalidInput when any of them is
    refused (address_refusal: a name with one bad address among good ones is refused too, since DNS
    answers rotate). socket.gaierror when the name does not resolve."""
    found: list[AddrInfo] = list(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    for *_, sockaddr in found:
        reason = address_refusal(str(sockaddr[0]), allow_private)
        if reason is not None:
            raise InvalidInput(f"the webhook host {host} is refused: {reason}")
    return found


def check_webhook_target(url: str, allow_private: bool) -> str:
    """``url`` if its host is allowed now (a name that does not resolve yet passes: each delivery resolves
    it again and checks the addresses it gets)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with contextlib.suppress(socket.gaierror, UnicodeError):
        webhook_addresses(parts.hostname or "", port, allow_private)
    return url


def check_addresses(addresses: object) -> tuple[str, ...]:
    if isinstance(addresses, str):
        addresses = [a.strip() for a in addresses.split(",") if a.strip()]
    if not isinstance(addresses, Sequence) or not addresses:
        raise InvalidInput("an email channel needs at least one address")
    if len(addresses) > MAX_ADDRESSES:
        raise InvalidInput(f"an email channel has at most {MAX_ADDRESSES} addresses")
    out: list[str] = []
    for a in addresses:
        if not isinstance(a, str) or not _ADDRESS.match(a):
            raise InvalidInput(f"invalid e-mail address {str(a)[:80]!r}")
        if a not in out:
            out.append(a)
    return tuple(out)


def check_events(events: object) -> tuple[EventType, ...]:
    if events is None:
        return DEFAULT_EVENTS
    if isinstance(events, str):
        events = [e.strip() for e in events.split(",") if e.strip()]
    if not isinstance(events, Collection) or not events:
        raise InvalidInput("events must name at least one event type")
    wanted = {event_type(e) for e in events}  # raises InvalidInput for an unknown type
    return tuple(t for t in EventType if t in wanted)


def check_secret(secret: object) -> str:
    if (
        not isinstance(secret, str)
        or not MIN_SECRET <= len(secret) <= MAX_SECRET
        or not _SECRET.match(secret)
    ):
        raise InvalidInput(
            f"a webhook secret is {MIN_SECRET}-{MAX_SECRET} printable ASCII characters without spaces"
        )
    return secret


# --- use cases -----------------------------------------------------------------------------------------


def add_channel(
    svc: Services,
    project: str,
    name: str,
    kind: ChannelKind | str,
    *,
    url: str | None = None,
    addresses: Sequence[str] | str | None = None,
    events: Collection[EventType | str] | str | None = None,
    secret: str | None = None,
    enabled: bool = True,
    allow_private: bool = False,
) -> Channel:
    """A new channel; AlreadyExists when the project has one of that name. A webhook without a secret
    gets a random one (Channel.secret: show it once to whoever adds the channel). A webhook's host must
    not be a link-local or metadata address, nor (unless ``allow_private``, the setting
    webhook_allow_private) a loopback or private one: check_webhook_target."""
    name = check_channel_name(name)
    try:
        kind = ChannelKind(kind)
    except ValueError:
        raise InvalidInput(f"unknown channel kind {str(kind)[:40]!r}: use webhook or email") from None
    if not isinstance(enabled, bool):
        raise InvalidInput("enabled must be true or false")
    wanted = check_events(events)
    target_url: str | None
    target_addresses: tuple[str, ...]
    if kind is ChannelKind.WEBHOOK:
        if addresses:
            raise InvalidInput("a webhook channel takes a url, not addresses")
        target_url, target_addresses = check_webhook_target(check_url(url), allow_private), ()
        key: str | None = secrets.token_urlsafe(32) if secret is None else check_secret(secret)
    else:
        if url is not None or secret is not None:
            raise InvalidInput("an email channel takes addresses, not a url or secret")
        target_url, target_addresses, key = None, check_addresses(addresses), None
    found = get_project(svc, project)
    new = NewChannel(found.id, name, kind, target_url, target_addresses, key, wanted, enabled)
    return svc.repo.create_channel(new, svc.clock.now())


def list_channels(svc: Services, project: str) -> list[Channel]:
    return svc.repo.list_channels(get_project(svc, project).id)


def get_channel(svc: Services, project: str, name: str) -> Channel:
    found = svc.repo.find_channel(get_project(svc, project).id, check_channel_name(name))
    if found is None:
        raise NotFound(f"project {project!r} has no notification channel {name!r}")
    return found


def update_channel(
    svc: Services,
    project: str,
    name: str,
    *,
    enabled: bool | None = None,
    events: Collection[EventType | str] | str | None = None,
) -> Channel:
    """Enable or disable a channel, or change the event types it wants (the others are kept)."""
    if enabled is not None and not isinstance(enabled, bool):
        raise InvalidInput("enabled must be true or false")
    changes: dict[str, object] = {}
    if enabled is not None:
        changes["enabled"] = enabled
    if events is not None:
        changes["events"] = check_events(events)
    channel = get_channel(svc, project, name)
    if not changes:
        return channel
    return svc.repo.update_channel(channel.id, svc.clock.now(), **changes)


def remove_channel(svc: Services, project: str, name: str) -> None:
    """Removes the channel with its deliveries and their attempts."""
    svc.repo.delete_channel(get_channel(svc, project, name).id)


def list_deliveries(
    svc: Services,
    project: str,
    *,
    channel: str | None = None,
    status: DeliveryStatus | str | None = None,
    limit: int = 100,
) -> list[Delivery]:
    """Newest first."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"limit must be an integer between 1 and {MAX_LIST}")
    state = None
    if status is not None and status != "":
        try:
            state = DeliveryStatus(status)
        except ValueError:
            raise InvalidInput(
                f"unknown delivery status {str(status)[:40]!r}: pending, delivered or failed"
            ) from None
    channel_id = None if channel is None else get_channel(svc, project, channel).id
    return svc.repo.list_deliveries(
        get_project(svc, project).id, channel_id=channel_id, status=state, limit=limit
    )


def get_delivery(svc: Services, project: str, delivery_id: int) -> Delivery:
    found = get_project(svc, project)
    if isinstance(delivery_id, bool) or not isinstance(delivery_id, int) or not 1 <= delivery_id < 2**63:
        raise NotFound(f"project {project!r} has no delivery {str(delivery_id)[:40]}")
    try:
        delivery = svc.repo.get_delivery(delivery_id)
    except NotFound:
        delivery = None
    if delivery is None or delivery.event.project_id != found.id:
        raise NotFound(f"project {project!r} has no delivery {delivery_id}")
    return delivery


def list_attempts(svc: Services, project: str, delivery_id: int) -> list[Attempt]:
    """The delivery's attempts, first first."""
    return svc.repo.list_attempts(get_delivery(svc, project, delivery_id).id)


def deliver_due(
    svc: Services,
    senders: Mapping[ChannelKind, Sender],
    policy: RetryPolicy | None = None,
    *,
    limit: int = 20,
) -> list[Delivery]:
    """Send the deliveries due now (at most ``limit``); the deliveries as they are after their attempt."""
    policy = policy or RetryPolicy()
    now = svc.clock.now()
    claimed = svc.repo.claim_deliveries(now, now + timedelta(seconds=policy.lease_seconds), limit)
    done = []
    for delivery, channel in claimed:
        sender = senders.get(channel.kind)
        started = svc.clock.now()
        result = _send(sender, channel, delivery)
        finished = svc.clock.now()
        number = delivery.attempts + 1
        attempt = Attempt(
            delivery.id,
            number,
            started,
            (finished - started).total_seconds() * 1000,
            result.ok,
            result.status_code,
            result.error,
        )
        if result.ok:
            status, next_at = DeliveryStatus.DELIVERED, finished
        elif number >= policy.max_attempts:
            status, next_at = DeliveryStatus.FAILED, finished
        else:
            status, next_at = DeliveryStatus.PENDING, finished + policy.delay(number)
        done.append(svc.repo.record_attempt(attempt, status, next_at, finished))
    return done


def _send(sender: Sender | None, channel: Channel, delivery: Delivery) -> SendResult:
    if sender is None:
        return SendResult(False, error=f"no sender for {channel.kind.value} channels is configured")
    try:
        return sender.send(channel, delivery.event, delivery.id)
    except Exception as e:  # a sender that raises anyway: recorded like any failed attempt
        return SendResult(False, error=f"{type(e).__name__}: {e}"[:500])


def next_due(svc: Services) -> datetime | None:
    """When the earliest pending delivery is due (None: nothing pending)."""
    return svc.repo.next_delivery_due()


__all__ = [
    "Attempt",
    "Channel",
    "ChannelKind",
    "Delivery",
    "DeliveryStatus",
    "RetryPolicy",
    "SendResult",
    "Sender",
    "add_channel",
    "deliver_due",
    "get_channel",
    "get_delivery",
    "list_attempts",
    "list_channels",
    "list_deliveries",
    "next_due",
    "remove_channel",
    "update_channel",
]
