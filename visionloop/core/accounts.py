"""Reviewer accounts and their sign-in sessions: the people who answer human-review items in the browser.

An operator creates accounts (``visionloop user add``, or ``visionloop reviewer add``); a person signs
in with name and password and gets a session. What this module decides, with no web or database framework:

    roles          operator (the whole web console, the review pages included) or reviewer (the review
                   pages only); a session carries its account's role as stored now, so a changed role
                   takes effect on the next request
    names          1-64 characters: lower-case letters, digits, '.', '_', '-', '@' (names are
                   case-insensitive: they are stored in lower case)
    passwords      8-1024 characters, stored only as a hash made by a PasswordHasher (the port; argon2
                   in visionloop.passwords); a name that does not exist costs the same hashing work as a
                   wrong password, so the answer's timing does not tell which names exist
    sessions       a random token known only to the browser (its SHA-256 is the stored key), a CSRF token,
                   an absolute lifetime and an idle timeout; changing a password or removing an account
                   ends that reviewer's sessions
    throttling     SignInThrottle refuses sign-in for a while after repeated failures for one name from
                   one address, or many failures from one address
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from visionloop.core.ports import Clock, SystemClock

# the records live in core/records/accounts.py (so storage imports records only); named here again for the
# interfaces that import them with the use cases
from visionloop.core.records.accounts import Reviewer as Reviewer
from visionloop.core.records.accounts import ReviewerSession as ReviewerSession
from visionloop.core.records.accounts import Role as Role
from visionloop.errors import InvalidInput, TooManyAttempts, Unauthenticated

NAME = re.compile(r"[a-z0-9._@-]{1,64}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # hashing cost grows with length: refuse megabyte passwords before hashing them
SIGN_IN_FAILED = "wrong name or password"
TOUCH_EVERY = timedelta(minutes=1)  # a session's last_seen_at is written at most this often


@dataclass(frozen=True)
class SessionPolicy:
    lifetime: timedelta = timedelta(hours=12)  # from sign-in, however active the session is
    idle: timedelta = timedelta(minutes=60)  # without a request


class PasswordHasher(Protocol):
    """Makes and checks password hashes (the encoded string carries its algorithm and parameters)."""

    def hash(self, password: str) -> str: ...

    def verify(self, encoded: str, password: str) -> bool:
        """True when ``password`` matches; False for a wrong password or a malformed hash."""
        ...

    def needs_rehash(self, encoded: str) -> bool:
        """True when ``encoded`` was made with weaker parameters than the hasher's current ones."""
        ...


class AccountStore(Protocol):
    """Where reviewer accounts and sessions are kept (storage.accounts implements it on SQL)."""

    def add_reviewer(
        self, name: str, password_hash: str, now: datetime, role: Role = Role.REVIEWER
    ) -> Reviewer:
        """Raises AlreadyExists when the name is taken."""
        ...

    def has_accounts(self) -> bool:
        """True when at least one account exists."""
        ...

    def set_role(self, reviewer_id: int, role: Role) -> None: ...

    def get_reviewer(self, name: str) -> Reviewer:
        """Raises NotFound."""
        ...

    def find_credentials(self, name: str) -> tuple[Reviewer, str] | None:
        """The reviewer and their password hash, or None."""
        ...

    def list_reviewers(self) -> list[Reviewer]: ...

    def set_password_hash(self, reviewer_id: int, password_hash: str, now: datetime) -> None: ...

    def remove_reviewer(self, reviewer_id: int) -> None:
        """Removes the account and its sessions."""
        ...

    def add_session(self, session: ReviewerSession) -> None: ...

    def get_session(self, key: str) -> ReviewerSession | None: ...

    def touch_session(self, key: str, now: datetime) -> None: ...

    def delete_session(self, key: str) -> None: ...

    def delete_sessions(self, reviewer_id: int) -> int: ...

    def delete_expired_sessions(self, now: datetime, idle_since: datetime) -> int:
        """Deletes sessions that expired before ``now`` or were last seen before ``idle_since``."""
        ...


@dataclass
class Accounts:
    """The ports the account use cases need, bundled (bootstrap.build_accounts fills it)."""

    store: AccountStore
    hasher: PasswordHasher
    clock: Clock = field(default_factory=SystemClock)
    policy: SessionPolicy = field(default_factory=SessionPolicy)
    _dummy_hash: str | None = field(default=None, repr=False)

    def dummy_hash(self) -> str:
        """A hash of a random password, checked when a name does not exist (same work, same timing)."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash


# --- accounts ------------------------------------------------------------------------------------------


def normalize_name(name: str) -> str:
    return name.strip().lower()


def check_name(name: str) -> str:
    """The stored form of a reviewer name, or InvalidInput saying what is wrong with it."""
    normal = normalize_name(name)
    if not NAME.fullmatch(normal):
        raise InvalidInput(
            f"reviewer name {name!r} is not valid: use 1-64 letters, digits, '.', '_', '-' or '@'"
        )
    return normal


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the password is too short: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"the password is too long: use at most {MAX_PASSWORD} characters")
    return password


def parse_role(role: str | Role) -> Role:
    try:
        return Role(str(role).strip().lower())
    except ValueError:
        raise InvalidInput(f"unknown role {role!r}: choose operator or reviewer") from None


def add_reviewer(accounts: Accounts, name: str, password: str, role: str | Role = Role.REVIEWER) -> Reviewer:
    """Create an account (a reviewer unless ``role`` says operator)."""
    normal = check_name(name)
    chosen = parse_role(role)
    hashed = accounts.hasher.hash(check_password(password))
    return accounts.store.add_reviewer(normal, hashed, accounts.clock.now(), chosen)


def has_accounts(accounts: Accounts) -> bool:
    return accounts.store.has_accounts()


def has_operator(accounts: Accounts) -> bool:
    """True when an operator account exists (until then the server offers a one-time setup link)."""
    return any(r.role is Role.OPERATOR for r in accounts.store.list_reviewers())


def set_role(accounts: Accounts, name: str, role: str | Role) -> Reviewer:
    """Give an account another role; its sessions keep going with the new role from the next request."""
    reviewer = accounts.store.get_reviewer(normalize_name(name))
    chosen = parse_role(role)
    accounts.store.set_role(reviewer.id, chosen)
    return accounts.store.get_reviewer(reviewer.name)


def list_reviewers(accounts: Accounts) -> list[Reviewer]:
    return accounts.store.list_reviewers()


def change_password(accounts: Accounts, name: str, password: str) -> Reviewer:
    """Sets a new password and ends the reviewer's sessions (signed-in browsers must sign in again)."""
    reviewer = accounts.store.get_reviewer(normalize_name(name))
    hashed = accounts.hasher.hash(check_password(password))
    accounts.store.set_password_hash(reviewer.id, hashed, accounts.clock.now())
    accounts.store.delete_sessions(reviewer.id)
    return reviewer


def remove_reviewer(accounts: Accounts, name: str) -> Reviewer:
    """Removes the account; its sessions end at once."""
    reviewer = accounts.store.get_reviewer(normalize_name(name))
    accounts.store.remove_reviewer(reviewer.id)
    return reviewer


def authenticate(accounts: Accounts, name: str, password: str) -> Reviewer:
    """The reviewer whose name and password these are, or Unauthenticated (the same message for an
    unknown name and a wrong password, after the same hashing work)."""
    found = None
    if NAME.fullmatch(normalize_name(name)) and len(password) <= MAX_PASSWORD:
        found = accounts.store.find_credentials(normalize_name(name))
    encoded = found[1] if found else accounts.dummy_hash()
    matches = accounts.hasher.verify(encoded, password[:MAX_PASSWORD])
    if found is None or not matches:
        raise Unauthenticated(SIGN_IN_FAILED)
    reviewer, encoded = found
    if accounts.hasher.needs_rehash(encoded):
        accounts.store.set_password_hash(
            reviewer.id, accounts.hasher.hash(password), reviewer.password_changed_at
        )
    return reviewer


# --- sessions ------------------------------------------------------------------------------------------


def session_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def start_session(accounts: Accounts, reviewer: Reviewer) -> tuple[str, ReviewerSession]:
    """A new session: the token for the browser's cookie and the stored session."""
    now = accounts.clock.now()
    token = secrets.token_urlsafe(32)
    session = ReviewerSession(
        key=session_key(token),
        reviewer_id=reviewer.id,
        reviewer=reviewer.name,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + accounts.policy.lifetime,
        role=reviewer.role,
    )
    accounts.store.add_session(session)
    return token, session


def resume_session(accounts: Accounts, token: str) -> ReviewerSession:
    """The live session of this token, or Unauthenticated when there is none or it has expired (then it
    is deleted). Records the request time, at most once a minute."""
    now = accounts.clock.now()
    key = session_key(token)
    session = accounts.store.get_session(key)
    if session is None:
        raise Unauthenticated("you are not signed in")
    if now >= session.expires_at or now - session.last_seen_at >= accounts.policy.idle:
        accounts.store.delete_session(key)
        raise Unauthenticated("your session has expired: sign in again")
    if now - session.last_seen_at >= TOUCH_EVERY:
        accounts.store.touch_session(key, now)
    return session


def end_session(accounts: Accounts, token: str) -> None:
    accounts.store.delete_session(session_key(token))


def purge_sessions(accounts: Accounts) -> int:
    """Deletes every expired or idle session; returns how many."""
    now = accounts.clock.now()
    return accounts.store.delete_expired_sessions(now, now - accounts.policy.idle)


# --- throttling ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThrottlePolicy:
    failures_per_name: int = 5  # for one name from one address, within the window
    failures_per_address: int = 20  # for any names from one address, within the window
    window: timedelta = timedelta(minutes=15)
    max_tracked: int = 10_000  # keys remembered at most (the oldest are forgotten first)


class SignInThrottle:
    """Counts failed sign-ins in memory (per server process) and refuses more attempts for a while.
    Keyed by name and address, so a stranger cannot lock a reviewer out from elsewhere."""

    def __init__(self, clock: Clock, policy: ThrottlePolicy | None = None) -> None:
        self.clock = clock
        self.policy = policy or ThrottlePolicy()
        self._failures: dict[tuple[str, ...], deque[datetime]] = {}
        self._lock = threading.Lock()

    def _keys(self, name: str, address: str) -> list[tuple[tuple[str, ...], int]]:
        return [
            (("name", normalize_name(name)[:64], address), self.policy.failures_per_name),
            (("address", address), self.policy.failures_per_address),
        ]

    def check(self, name: str, address: str) -> None:
        """Raises TooManyAttempts while either limit is reached."""
        now = self.clock.now()
        with self._lock:
            for key, limit in self._keys(name, address):
                times = self._recent(key, now)
                if len(times) >= limit:
                    wait = times[0] + self.policy.window - now
                    minutes = max(1, -(-int(wait.total_seconds()) // 60))
                    raise TooManyAttempts(
                        f"too many failed sign-ins: try again in {minutes} minute{'s' * (minutes > 1)}",
                        retry_after=int(wait.total_seconds()) + 1,
                    )

    def failed(self, name: str, address: str) -> None:
        now = self.clock.now()
        with self._lock:
            for key, _ in self._keys(name, address):
                self._failures.setdefault(key, deque()).append(now)
                self._failures[key] = self._failures.pop(key)  # most recent last
            while len(self._failures) > self.policy.max_tracked:
                del self._failures[next(iter(self._failures))]

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            self._failures.pop(self._keys(name, address)[0][0], None)

    def _recent(self, key: tuple[str, ...], now: datetime) -> deque[datetime]:
        times = self._failures.get(key, deque())
        while times and now - times[0] >= self.policy.window:
            times.popleft()
        return times


def sign_in(
    accounts: Accounts, throttle: SignInThrottle, name: str, password: str, address: str
) -> tuple[str, ReviewerSession]:
    """Check the throttle and the password, then start a session (the token and the session)."""
    throttle.check(name, address)
    try:
        reviewer = authenticate(accounts, name, password)
    except Unauthenticated:
        throttle.failed(name, address)
        raise
    throttle.succeeded(name, address)
    return start_session(accounts, reviewer)
