"""Notifications end to end: channels (core.notifications), a real HTTP webhook receiver on a free port
checking the HMAC signature, retries with backoff under a fake clock, the Notifier thread, and e-mail
through a small SMTP server written here (smtplib talks to it over a real socket)."""

from __future__ import annotations

import hmac
import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.factories import make_project
from visionloop.bootstrap import build_services
from visionloop.core import events, notifications
from visionloop.core.events import EventType
from visionloop.core.notifications import ChannelKind, DeliveryStatus, RetryPolicy
from visionloop.core.ports import SystemClock
from visionloop.core.services import Services
from visionloop.errors import AlreadyExists, InvalidInput, NotFound
from visionloop.settings import Settings
from visionloop.workflows.notifications import (
    EmailSender,
    Notifier,
    SmtpConfig,
    WebhookSender,
    event_body,
    sign,
    verify,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SECRET = "s3cret-s3cret-s3cret"


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


# --- a webhook receiver -------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.body)
        return doc


@dataclass
class Receiver:
    url: str
    statuses: list[int]  # answers to give, in order; then 200
    got: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.got) >= n, f"only {len(self.got)} of {n} requests arrived"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver("", [])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.got.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


# --- a minimal SMTP server ----------------------------------------------------------------------------


@dataclass
class Mailbox:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)  # from, to, data


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough of RFC 5321 for smtplib: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        box: Mailbox = self.server.mailbox  # type: ignore[attr-defined]
        sender, rcpts = "", []
        self.reply("220 test ESMTP")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode().strip()
            verb = cmd[:4].upper()
            if verb == "EHLO":
                self.reply("250-test")
                self.reply("250 8BITMIME")
            elif verb == "HELO" or verb in ("RSET", "NOOP"):
                self.reply("250 ok")
            elif verb == "MAIL":
                sender = cmd.split(":", 1)[1].split()[0].strip("<>")
                self.reply("250 ok")
            elif verb == "RCPT":
                rcpts.append(cmd.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                data = b""
                while (chunk := self.rfile.readline()) != b".\r\n":
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                box.messages.append((sender, rcpts, data))
                rcpts = []
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
    server.daemon_threads = True
    box = Mailbox(port=server.server_address[1])
    server.mailbox = box  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()
    thread.join()


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
def svc(services: Services) -> Services:
    services.clock = Clock()
    make_project(services, "logos")
    return services


def senders(mailbox: Mailbox | None = None) -> dict[ChannelKind, notifications.Sender]:
    smtp = SmtpConfig("127.0.0.1", mailbox.port, "none") if mailbox else SmtpConfig("")
    # the receivers listen on 127.0.0.1: a loopback address, allowed with webhook_allow_private
    webhook = WebhookSender(timeout=5, allow_private=True)
    return {ChannelKind.WEBHOOK: webhook, ChannelKind.EMAIL: EmailSender(smtp)}


POLICY = RetryPolicy(max_attempts=4, base_seconds=10, max_seconds=25, lease_seconds=60)


# --- tests --------------------------------------------------------------------------------------------


def test_a_webhook_gets_a_signed_json_post(svc: Services, receiver: Receiver) -> None:
    channel = notifications.add_channel(
        svc, "logos", "ops", "webhook", url=receiver.url, secret=SECRET, allow_private=True
    )
    event = events.publish(svc, "logos", EventType.TRAINING_COMPLETED, {"version": "v2", "f1": 0.93})
    assert event is not None
    [done] = notifications.deliver_due(svc, senders(), POLICY)
    assert done.status is DeliveryStatus.DELIVERED and done.attempts == 1
    [got] = receiver.got
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-visionloop-event"] == "training_completed"
    assert got.headers["x-visionloop-delivery"] == str(done.id)
    assert got.headers["user-agent"].startswith("visionloop/")
    expected = "sha256=" + hmac.new(SECRET.encode(), got.body, "sha256").hexdigest()
    assert got.headers["x-visionloop-signature"] == expected
    assert verify(SECRET, got.body, got.headers["x-visionloop-signature"])
    assert not verify("another-secret-of-16", got.body, got.headers["x-visionloop-signature"])
    assert got.doc == {
        "id": event.id,
        "project": "logos",
        "type": "training_completed",
        "payload": {"version": "v2", "f1": 0.93},
        "created_at": "2026-03-01T09:00:00+00:00",
    }
    assert got.body == event_body(event)
    [attempt] = notifications.list_attempts(svc, "logos", done.id)
    assert attempt.ok and attempt.status_code == 200 and attempt.number == 1
    assert notifications.deliver_due(svc, senders(), POLICY) == []  # nothing left
    assert channel.secret == SECRET


def test_retries_with_backoff_until_delivered(svc: Services, receiver: Receiver) -> None:
    receiver.statuses = [500, 503]  # fails twice, then 200
    notifications.add_channel(
        svc, "logos", "ops", "webhook", url=receiver.url, secret=SECRET, allow_private=True
    )
    events.publish(svc, "logos", EventType.VERSION_DEPLOYED, {"version": "v2"})
    [first] = notifications.deliver_due(svc, senders(), POLICY)
    assert first.status is DeliveryStatus.PENDING and first.attempts == 1
    assert first.last_error == "HTTP 500 Internal Server Error"
    assert first.next_attempt_at == T0 + timedelta(seconds=10)
    assert notifications.next_due(svc) == T0 + timedelta(seconds=10)
    svc.clock.advance(seconds=9)  # type: ignore[attr-defined]
    assert notifications.deliver_due(svc, senders(), POLICY) == []  # not due yet
    svc.clock.advance(seconds=1)  # type: ignore[attr-defined]
    [second] = notifications.deliver_due(svc, senders(), POLICY)
    assert second.attempts == 2 and second.next_attempt_at == T0 + timedelta(seconds=30)  # 10 + 20
    svc.clock.advance(seconds=20)  # type: ignore[attr-defined]
    [third] = notifications.deliver_due(svc, senders(), POLICY)
    assert third.status is DeliveryStatus.DELIVERED and third.last_error is None
    assert [r.doc["id"] for r in receiver.got] == [first.event.id] * 3
    assert len({r.headers["x-visionloop-delivery"] for r in receiver.got}) == 1
    attempts = notifications.list_attempts(svc, "logos", third.id)
    assert [(a.number, a.ok, a.status_code) for a in attempts] == [
        (1, False, 500),
        (2, False, 503),
        (3, True, 200),
    ]
    assert notifications.next_due(svc) is None


def test_gives_up_after_max_attempts(svc: Services) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    notifications.add_channel(
        svc, "logos", "dead", "webhook", url=f"http://127.0.0.1:{port}/", secret=SECRET, allow_private=True
    )
    events.publish(svc, "logos", EventType.TRAINING_FAILED, {"error": "boom"})
    for n in range(1, 5):
        [d] = notifications.deliver_due(svc, senders(), POLICY)
        assert d.attempts == n
        svc.clock.advance(seconds=25)  # type: ignore[attr-defined]
    assert d.status is DeliveryStatus.FAILED and d.finished_at is not None
    assert "Connection refused" in (d.last_error or "") or "URLError" in (d.last_error or "")
    assert notifications.deliver_due(svc, senders(), POLICY) == []
    assert notifications.list_deliveries(svc, "logos", status="failed")[0].id == d.id


def test_redirects_are_not_followed(svc: Services, receiver: Receiver) -> None:
    receiver.statuses = [302]
    notifications.add_channel(
        svc, "logos", "ops", "webhook", url=receiver.url, secret=SECRET, allow_private=True
    )
    events.publish(svc, "logos", EventType.VERSION_REJECTED, {"version": "v3"})
    [d] = notifications.deliver_due(svc, senders(), POLICY)
    assert d.status is DeliveryStatus.PENDING and "302" in (d.last_error or "")
    assert len(receiver.got) == 1


def test_channels_get_only_the_events_they_want(svc: Services, receiver: Receiver) -> None:
    events.publish(svc, "logos", EventType.TRAINING_STARTED, {})  # before any channel: not sent
    notifications.add_channel(
        svc,
        "logos",
        "deploys",
        "webhook",
        url=receiver.url,
        events=["version_deployed", "version_rolled_back"],
        allow_private=True,
    )
    notifications.add_channel(
        svc, "logos", "off", "webhook", url=receiver.url, enabled=False, allow_private=True
    )
    notifications.add_channel(svc, "logos", "all", "webhook", url=receiver.url, allow_private=True)
    for kind in (EventType.TRAINING_STARTED, EventType.VERSION_DEPLOYED, EventType.HUMAN_LOOP_CREATED):
        events.publish(svc, "logos", kind, {})
    done = notifications.deliver_due(svc, senders(), POLICY)
    assert sorted((d.channel, d.event.type.value) for d in done) == [
        ("all", "human_loop_created"),
        ("all", "training_started"),
        ("all", "version_deployed"),
        ("deploys", "version_deployed"),
    ]
    assert len(receiver.got) == 4
    listed = notifications.list_deliveries(svc, "logos", channel="deploys")
    assert [d.event.type for d in listed] == [EventType.VERSION_DEPLOYED]


def test_a_disabled_channel_keeps_its_pending_deliveries_until_enabled(
    svc: Services, receiver: Receiver
) -> None:
    notifications.add_channel(svc, "logos", "ops", "webhook", url=receiver.url, allow_private=True)
    events.publish(svc, "logos", EventType.TRAINING_STARTED, {})
    notifications.update_channel(svc, "logos", "ops", enabled=False)
    events.publish(svc, "logos", EventType.TRAINING_COMPLETED, {})  # not for a disabled channel
    assert notifications.deliver_due(svc, senders(), POLICY) == []
    assert notifications.next_due(svc) is None
    notifications.update_channel(svc, "logos", "ops", enabled=True)
    [d] = notifications.deliver_due(svc, senders(), POLICY)
    assert d.event.type is EventType.TRAINING_STARTED
    changed = notifications.update_channel(svc, "logos", "ops", events="training_failed")
    assert changed.events == (EventType.TRAINING_FAILED,)


def test_a_claimed_delivery_is_leased(svc: Services, receiver: Receiver) -> None:
    notifications.add_channel(svc, "logos", "ops", "webhook", url=receiver.url, allow_private=True)
    events.publish(svc, "logos", EventType.TRAINING_STARTED, {})
    now = svc.clock.now()
    [(claimed, channel)] = svc.repo.claim_deliveries(now, now + timedelta(seconds=60), 10)
    assert channel.name == "ops"
    assert svc.repo.claim_deliveries(now, now + timedelta(seconds=60), 10) == []  # another worker: none
    svc.clock.advance(seconds=61)  # type: ignore[attr-defined]
    [d] = notifications.deliver_due(svc, senders(), POLICY)  # the first worker died: tried again
    assert d.id == claimed.id and d.status is DeliveryStatus.DELIVERED


def test_email_goes_through_smtp(svc: Services, mailbox: Mailbox) -> None:
    notifications.add_channel(svc, "logos", "team", "email", addresses="a@example.com, b@example.org")
    event = events.publish(svc, "logos", EventType.HUMAN_LOOP_COMPLETED, {"loop": "review-1", "agrees": True})
    assert event is not None
    [d] = notifications.deliver_due(svc, senders(mailbox), POLICY)
    assert d.status is DeliveryStatus.DELIVERED
    [(sender, rcpts, data)] = mailbox.messages
    assert sender == "visionloop@localhost" and rcpts == ["a@example.com", "b@example.org"]
    msg = message_from_bytes(data)
    assert msg["Subject"] == "[visionloop] logos: human_loop_completed"
    assert msg["To"] == "a@example.com, b@example.org"
    body = msg.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert '"loop": "review-1"' in body.decode() and f'"id": {event.id}' in body.decode()


def test_email_failures_are_clear_attempts(svc: Services, mailbox: Mailbox) -> None:
    notifications.add_channel(svc, "logos", "team", "email", addresses=["a@example.com"])
    events.publish(svc, "logos", EventType.TRAINING_STARTED, {})
    [d] = notifications.deliver_due(svc, senders(None), POLICY)  # no smtp_host
    assert d.status is DeliveryStatus.PENDING
    assert d.last_error == "no SMTP server is configured (setting smtp_host)"
    svc.clock.advance(seconds=10)  # type: ignore[attr-defined]
    starttls = {ChannelKind.EMAIL: EmailSender(SmtpConfig("127.0.0.1", mailbox.port, "starttls"))}
    [d] = notifications.deliver_due(svc, starttls, POLICY)  # the server offers no STARTTLS
    assert "STARTTLS" in (d.last_error or "") and mailbox.messages == []


def test_the_notifier_thread_delivers_in_the_background(
    svc: Services, settings: Settings, receiver: Receiver
) -> None:
    svc.clock = SystemClock()
    receiver.statuses = [500, 500]
    notifications.add_channel(
        svc, "logos", "ops", "webhook", url=receiver.url, secret=SECRET, allow_private=True
    )
    policy = RetryPolicy(max_attempts=5, base_seconds=0.05, lease_seconds=5)
    notifier = Notifier(svc, senders(), policy, poll_seconds=0.2).start()
    try:
        started = time.monotonic()
        event = events.publish(svc, "logos", EventType.VERSION_DEPLOYED, {"version": "v2"})
        assert time.monotonic() - started < 0.5  # publishing does not wait for the receiver
        assert event is not None
        receiver.wait_for(3)
        deadline = time.monotonic() + 5
        while notifications.list_deliveries(svc, "logos")[0].status is not DeliveryStatus.DELIVERED:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert all(verify(SECRET, r.body, r.headers["x-visionloop-signature"]) for r in receiver.got)
        # an event another process stored (no bus here) is found by polling
        other = build_services(settings)
        try:
            events.publish(other, "logos", EventType.TRAINING_STARTED, {"from": "worker"})
        finally:
            other.repo.close()
        receiver.wait_for(4)
        assert receiver.got[-1].doc["payload"] == {"from": "worker"}
    finally:
        notifier.stop()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": "Ops!", "kind": "webhook", "url": "http://x"}, InvalidInput, "invalid channel name"),
        ({"name": "ops", "kind": "sms", "url": "http://x"}, InvalidInput, "unknown channel kind 'sms'"),
        ({"name": "ops", "kind": "webhook"}, InvalidInput, "a webhook needs a url"),
        ({"name": "ops", "kind": "webhook", "url": "ftp://x/"}, InvalidInput, "must be http:// or https://"),
        ({"name": "ops", "kind": "webhook", "url": "http://"}, InvalidInput, "with a host"),
        ({"name": "ops", "kind": "webhook", "url": "http://u:p@x/"}, InvalidInput, "user name or password"),
        ({"name": "ops", "kind": "webhook", "url": "http://x:99999/"}, InvalidInput, "invalid webhook url"),
        ({"name": "ops", "kind": "webhook", "url": "http://x/", "secret": "short"}, InvalidInput, "16-256"),
        (
            {"name": "ops", "kind": "webhook", "url": "http://x/", "addresses": ["a@b.c"]},
            InvalidInput,
            "not addresses",
        ),
        (
            {"name": "ops", "kind": "webhook", "url": "http://x/", "events": ["nope"]},
            InvalidInput,
            "unknown event type",
        ),
        (
            {"name": "ops", "kind": "webhook", "url": "http://x/", "events": []},
            InvalidInput,
            "at least one event",
        ),
        ({"name": "ops", "kind": "email"}, InvalidInput, "at least one address"),
        ({"name": "ops", "kind": "email", "addresses": ["not-an-address"]}, InvalidInput, "invalid e-mail"),
        (
            {"name": "ops", "kind": "email", "addresses": ["a@b.c"], "url": "http://x/"},
            InvalidInput,
            "not a url",
        ),
        ({"name": "ops", "kind": "email", "addresses": ["a@b.c"] * 21}, InvalidInput, "at most 20"),
    ],
)
def test_bad_channels_are_refused(
    svc: Services, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    name, kind = kwargs.pop("name"), kwargs.pop("kind")
    with pytest.raises(error, match=message):
        notifications.add_channel(svc, "logos", name, kind, **kwargs)
    assert notifications.list_channels(svc, "logos") == []


def test_channel_lifecycle(svc: Services, receiver: Receiver) -> None:
    made = notifications.add_channel(svc, "logos", "ops", "webhook", url=receiver.url, allow_private=True)
    assert made.secret is not None and len(made.secret) >= 32  # generated
    assert made.events == tuple(t for t in EventType if t is not EventType.DETECTION)
    assert "secret" not in made.to_dict() and made.to_dict(with_secret=True)["secret"] == made.secret
    assert made.secret not in repr(made)
    with pytest.raises(AlreadyExists):
        notifications.add_channel(svc, "logos", "ops", "email", addresses=["a@b.c"])
    make_project(svc, "other")
    notifications.add_channel(svc, "other", "ops", "email", addresses=["a@b.c"])  # another project: fine
    events.publish(svc, "logos", EventType.TRAINING_STARTED, {})
    [d] = notifications.list_deliveries(svc, "logos")
    with pytest.raises(NotFound):
        notifications.list_attempts(svc, "other", d.id)  # not that project's delivery
    with pytest.raises(NotFound):
        notifications.get_delivery(svc, "logos", 2**70)
    notifications.remove_channel(svc, "logos", "ops")
    assert notifications.list_deliveries(svc, "logos") == []
    with pytest.raises(NotFound):
        notifications.remove_channel(svc, "logos", "ops")
    with pytest.raises(NotFound):
        notifications.list_channels(svc, "nope")
    with pytest.raises(InvalidInput, match="unknown delivery status"):
        notifications.list_deliveries(svc, "logos", status="lost")


def test_the_signature_helpers() -> None:
    assert sign("k" * 16, b"{}") == sign("k" * 16, b"{}")
    assert sign("k" * 16, b"{}") != sign("k" * 16, b"{ }")


def test_a_receiver_answering_garbage_is_a_failed_attempt(svc: Services) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer_garbage() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/"
    notifications.add_channel(svc, "logos", "odd", "webhook", url=url, allow_private=True)
    events.publish(svc, "logos", EventType.TRAINING_STARTED, {})
    try:
        [d] = notifications.deliver_due(svc, senders(), POLICY)
    finally:
        thread.join(5)
        server.close()
    assert d.status is DeliveryStatus.PENDING and d.attempts == 1
    assert "BadStatusLine" in (d.last_error or "")


def test_a_sender_that_raises_is_recorded_as_a_failed_attempt(svc: Services) -> None:
    class Broken:
        def send(self, channel: notifications.Channel, event: events.Event, delivery_id: int) -> Any:
            raise RuntimeError("sender bug")

    notifications.add_channel(svc, "logos", "ops", "webhook", url="http://127.0.0.1:9/", allow_private=True)
    events.publish(svc, "logos", EventType.TRAINING_STARTED, {})
    [d] = notifications.deliver_due(svc, {ChannelKind.WEBHOOK: Broken()}, POLICY)
    assert d.status is DeliveryStatus.PENDING and d.last_error == "RuntimeError: sender bug"


@pytest.mark.parametrize(
    ("url", "allow_private", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", True, "link-local or cloud metadata"),
        ("http://[fe80::1]:8080/", True, "link-local or cloud metadata"),
        ("http://100.100.100.200/", True, "link-local or cloud metadata"),
        ("http://[fd00:ec2::254]/", True, "link-local or cloud metadata"),
        ("http://[::ffff:169.254.169.254]/", True, "link-local or cloud metadata"),
        ("http://127.0.0.1:8080/hook", False, "webhook_allow_private"),
        ("http://localhost/hook", False, "webhook_allow_private"),  # a name: resolved
        ("http://2130706433/", False, "webhook_allow_private"),  # 127.0.0.1 written as a number
        ("https://10.1.2.3/hook", False, "webhook_allow_private"),
        ("http://192.168.0.10/", False, "webhook_allow_private"),
        ("http://[::1]/", False, "webhook_allow_private"),
        ("http://0.0.0.0:9/", False, "webhook_allow_private"),
    ],
)
def test_webhooks_to_internal_addresses_are_refused(
    svc: Services, url: str, allow_private: bool, why: str
) -> None:
    with pytest.raises(InvalidInput, match=why):
        notifications.add_channel(svc, "logos", "ops", "webhook", url=url, allow_private=allow_private)
    assert notifications.list_channels(svc, "logos") == []


def test_private_webhooks_when_allowed_and_a_name_that_does_not_resolve_yet(svc: Services) -> None:
    notifications.add_channel(svc, "logos", "lan", "webhook", url="http://10.1.2.3/", allow_private=True)
    notifications.add_channel(svc, "logos", "public", "webhook", url="https://8.8.8.8/hook")
    # a name that does not resolve now is checked at each delivery
    notifications.add_channel(svc, "logos", "later", "webhook", url="https://hooks.invalid/x")
    assert sorted(c.name for c in notifications.list_channels(svc, "logos")) == ["lan", "later", "public"]


def test_delivery_checks_the_address_again(svc: Services, receiver: Receiver) -> None:
    """What the host resolves to is checked at each attempt (DNS, or the setting, may have changed since
    the channel was added): the attempt fails, saying why, and nothing is sent."""
    notifications.add_channel(svc, "logos", "ops", "webhook", url=receiver.url, allow_private=True)
    events.publish(svc, "logos", EventType.TRAINING_STARTED, {})
    strict = {ChannelKind.WEBHOOK: WebhookSender(timeout=5)}  # webhook_allow_private off
    [d] = notifications.deliver_due(svc, strict, POLICY)
    assert d.status is DeliveryStatus.PENDING and d.attempts == 1
    assert "127.0.0.1 is a loopback, private or reserved address" in (d.last_error or "")
    assert receiver.got == []
    svc.clock.advance(seconds=60)  # type: ignore[attr-defined]
    [d] = notifications.deliver_due(svc, senders(), POLICY)
    assert d.status is DeliveryStatus.DELIVERED and len(receiver.got) == 1
