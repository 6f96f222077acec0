"""Sending notifications: the webhook and e-mail senders (core.notifications.Sender) and the Notifier, the
background thread that delivers what core.notifications.deliver_due finds due.

Webhook request (POST, no redirects followed, ``webhook_timeout_seconds``)::

    Content-Type: application/json
    User-Agent: visionloop/<version>
    X-Visionloop-Event: training_completed
    X-Visionloop-Delivery: 42                (the same for every attempt of one delivery)
    X-Visionloop-Signature: sha256=<hex HMAC-SHA256 of the body under the channel's secret>

    {"id": 17, "project": "logos", "type": "training_completed", "payload": {...},
     "created_at": "2026-03-01T09:00:00+00:00"}

A 2xx answer delivers it; anything else (another status, a timeout, a refused connection) is a failed
attempt, tried again with exponential backoff (RetryPolicy).

E-mail: one message per event, subject ``[visionloop] <project>: <type>``, the event as indented JSON in
the body, through the SMTP server of the ``smtp_*`` settings (STARTTLS, SSL or plain; login when a user
name is set).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import smtplib
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Self

from visionloop import __version__
from visionloop.core.events import Event
from visionloop.core.notifications import (
    SIGNATURE_HEADER,
    Channel,
    ChannelKind,
    RetryPolicy,
    Sender,
    SendResult,
    deliver_due,
    next_due,
    webhook_addresses,
)
from visionloop.core.services import Services
from visionloop.errors import InvalidInput
from visionloop.workflows.background import Ticker

log = logging.getLogger("visionloop.notifications")
MAX_ERROR = 500  # characters of an error kept with an attempt


def event_body(event: Event) -> bytes:
    """The JSON document a webhook receives (and an e-mail shows)."""
    return json.dumps(event.to_dict(), separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: compare the header with the body's signature in constant time."""
    return hmac.compare_digest(sign(secret, body), header)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is an answer like any other: not followed, the attempt fails


def _guarded_connect(allow_private: bool) -> Callable[..., socket.socket]:
    """socket.create_connection for webhook connections: the host is resolved and its addresses are
    checked (core.notifications.webhook_addresses) at each connection, and the socket connects to one
    of exactly those addresses, so a DNS answer that changes after the check cannot lead elsewhere."""

    def connect(address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
        host, port = address
        error: OSError = OSError(f"{host} has no address")
        for family, kind, proto, _, sockaddr in webhook_addresses(host, port, allow_private):
            sock = socket.socket(family, kind, proto)
            try:
                if isinstance(timeout, int | float):
                    sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as e:
                sock.close()
                error = e
        raise error

    return connect


class _GuardedHTTP(urllib.request.HTTPHandler):
    def __init__(self, connect: Callable[..., socket.socket]) -> None:
        super().__init__()
        self._connect = connect

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        def connection(host: str, **kwargs: Any) -> http.client.HTTPConnection:
            conn = http.client.HTTPConnection(host, **kwargs)
            conn._create_connection = self._connect  # type: ignore[attr-defined]  # the socket it opens
            return conn

        return self.do_open(connection, req)


class _GuardedHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, connect: Callable[..., socket.socket]) -> None:
        super().__init__()
        self._connect = connect
        self._tls = ssl.create_default_context()

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        def connection(host: str, **kwargs: Any) -> http.client.HTTPSConnection:
            conn = http.client.HTTPSConnection(host, context=self._tls, **kwargs)
            conn._create_connection = self._connect  # type: ignore[attr-defined]
            return conn

        return self.do_open(connection, req)


class WebhookSender:
    """POSTs events to webhook URLs. Each connection resolves the host again and refuses link-local and
    metadata addresses, and loopback or private ones unless ``allow_private`` (the setting
    webhook_allow_private): such an attempt fails, saying why. Proxy environment variables are not used
    (the checked address is the one connected to)."""

    def __init__(self, timeout: float = 10.0, allow_private: bool = False) -> None:
        self.timeout = timeout
        connect = _guarded_connect(allow_private)
        self._opener = urllib.request.build_opener(
            _NoRedirects, urllib.request.ProxyHandler({}), _GuardedHTTP(connect), _GuardedHTTPS(connect)
        )

    def send(self, channel: Channel, event: Event, delivery_id: int) -> SendResult:
        if channel.url is None or channel.secret is None:
            return SendResult(False, error="the channel has no url or secret")
        body = event_body(event)
        request = urllib.request.Request(
            channel.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": f"visionloop/{__version__}",
                "X-Visionloop-Event": event.type.value,
                "X-Visionloop-Delivery": str(delivery_id),
                SIGNATURE_HEADER: sign(channel.secret, body),
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = int(response.status)
                response.read(65_536)
        except urllib.error.HTTPError as e:
            e.close()
            return SendResult(False, e.code, f"HTTP {e.code} {e.reason}"[:MAX_ERROR])
        except InvalidInput as e:  # the host resolves to an address webhooks may not call
            return SendResult(False, None, e.message[:MAX_ERROR])
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            return SendResult(False, None, f"{type(e).__name__}: {reason}"[:MAX_ERROR])
        if 200 <= status < 300:
            return SendResult(True, status)
        return SendResult(False, status, f"HTTP {status}")


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    security: str = "starttls"  # starttls | ssl | none
    username: str = ""
    password: str = ""
    sender: str = "visionloop@localhost"
    timeout: float = 10.0


class EmailSender:
    def __init__(self, config: SmtpConfig, ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self.ssl_context = ssl_context

    def message(self, channel: Channel, event: Event) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"[visionloop] {event.project}: {event.type.value}"
        msg["From"] = self.config.sender
        msg["To"] = ", ".join(channel.addresses)
        msg["X-Visionloop-Event"] = event.type.value
        msg.set_content(
            f"Project {event.project}: {event.type.value} at {event.created_at.isoformat()}\n\n"
            + json.dumps(event.to_dict(), indent=2, sort_keys=True)
            + "\n"
        )
        return msg

    def send(self, channel: Channel, event: Event, delivery_id: int) -> SendResult:
        cfg = self.config
        if not cfg.host:
            return SendResult(False, error="no SMTP server is configured (setting smtp_host)")
        if not channel.addresses:
            return SendResult(False, error="the channel has no addresses")
        try:
            context = self.ssl_context or ssl.create_default_context()
            smtp: smtplib.SMTP
            if cfg.security == "ssl":
                smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=context)
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            with smtp:
                if cfg.security == "starttls":
                    smtp.starttls(context=context)
                if cfg.username:
                    smtp.login(cfg.username, cfg.password)
                refused = smtp.send_message(self.message(channel, event))
        except (smtplib.SMTPException, OSError, ValueError) as e:
            return SendResult(False, None, f"{type(e).__name__}: {e}"[:MAX_ERROR])
        if refused:
            return SendResult(False, None, f"refused recipients: {', '.join(sorted(refused))}"[:MAX_ERROR])
        return SendResult(True)


class Notifier:
    """A Ticker thread that delivers due notifications: woken by every published event (svc.bus) and at
    the next delivery's due time, and otherwise every ``poll_seconds`` (events other processes
    published). ``wait(event, seconds)`` is the pause between rounds (threading.Event.wait by default;
    tests may shorten it). A Background component: start, flush, stop."""

    def __init__(
        self,
        svc: Services,
        senders: Mapping[ChannelKind, Sender],
        policy: RetryPolicy | None = None,
        *,
        poll_seconds: float = 5.0,
        wait: Callable[[threading.Event, float], bool] | None = None,
    ) -> None:
        self.svc = svc
        self.senders = dict(senders)
        self.policy = policy or RetryPolicy()
        self.poll_seconds = poll_seconds
        self._ticker = Ticker("notifier", self._round, poll_seconds, wait=wait)
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> Self:
        if self._unsubscribe is None:
            self._unsubscribe = self.svc.bus.subscribe(lambda _event: self._ticker.wake())
        self._ticker.start()
        return self

    def wake(self) -> None:
        self._ticker.wake()

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait for the delivery round in progress."""
        return self._ticker.flush(timeout)

    def stop(self, timeout: float | None = 10.0) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._ticker.stop(timeout)

    def run_once(self) -> int:
        """Deliver everything due now (in rounds of 20); how many attempts were made."""
        made = 0
        while not self._ticker.stopping:
            done = deliver_due(self.svc, self.senders, self.policy)
            made += len(done)
            if len(done) < 20:
                return made
        return made

    def _round(self) -> float:
        """One round on the Ticker's thread; the pause until the next."""
        try:
            self.run_once()
            return self._pause()
        except Exception:  # the store failed: try again later
            log.exception("notifications: delivering failed")
            return self.poll_seconds

    def _pause(self) -> float:
        due = next_due(self.svc)
        if due is None:
            return self.poll_seconds
        return max(0.0, min(self.poll_seconds, (due - self.svc.clock.now()).total_seconds()))


def build_senders(
    webhook_timeout: float = 10.0, smtp: SmtpConfig | None = None, webhook_allow_private: bool = False
) -> dict[ChannelKind, Sender]:
    return {
        ChannelKind.WEBHOOK: WebhookSender(webhook_timeout, webhook_allow_private),
        ChannelKind.EMAIL: EmailSender(smtp or SmtpConfig(host="")),
    }
