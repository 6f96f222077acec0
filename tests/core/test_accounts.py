"""Reviewer accounts and sessions (core.accounts) on the real SQL store and argon2 hasher."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from visionloop.core.accounts import (
    Accounts,
    SessionPolicy,
    SignInThrottle,
    ThrottlePolicy,
    add_reviewer,
    authenticate,
    change_password,
    end_session,
    list_reviewers,
    purge_sessions,
    remove_reviewer,
    resume_session,
    session_key,
    sign_in,
    start_session,
)
from visionloop.core.services import Services
from visionloop.errors import AlreadyExists, InvalidInput, NotFound, TooManyAttempts, Unauthenticated
from visionloop.passwords import Argon2Hasher
from visionloop.storage.accounts import SqlAccountStore
from visionloop.storage.sql import SqlRepository


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)


CHEAP = Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(services: Services, clock: Clock) -> Iterator[Accounts]:
    assert isinstance(services.repo, SqlRepository)
    yield Accounts(SqlAccountStore(services.repo.engine), CHEAP, clock, SessionPolicy())


def test_add_list_authenticate(accounts: Accounts) -> None:
    r = add_reviewer(accounts, " Alice@Example.org ", "correct horse")
    assert r.name == "alice@example.org"
    stored = accounts.store.find_credentials("alice@example.org")
    assert stored is not None and stored[1].startswith("$argon2id$") and "correct horse" not in stored[1]
    assert authenticate(accounts, "ALICE@example.org", "correct horse").id == r.id
    add_reviewer(accounts, "bob", "another password")
    assert [x.name for x in list_reviewers(accounts)] == ["alice@example.org", "bob"]
    with pytest.raises(AlreadyExists, match="alice@example.org"):
        add_reviewer(accounts, "alice@example.org", "whatever123")


@pytest.mark.parametrize(
    "name, password, message",
    [
        ("", "long enough", "not valid"),
        ("has space", "long enough", "not valid"),
        ("x" * 65, "long enough", "not valid"),
        ("ok", "short", "too short"),
        ("ok", "p" * 1025, "too long"),
    ],
)
def test_bad_names_and_passwords(accounts: Accounts, name: str, password: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        add_reviewer(accounts, name, password)


def test_wrong_password_and_unknown_name_say_the_same(accounts: Accounts) -> None:
    add_reviewer(accounts, "alice", "correct horse")
    for name, password in [("alice", "wrong horse"), ("nobody", "correct horse"), ("bad name", "x")]:
        with pytest.raises(Unauthenticated) as e:
            authenticate(accounts, name, password)
        assert e.value.message == "wrong name or password"


def test_weaker_hash_is_upgraded_at_sign_in(accounts: Accounts) -> None:
    r = add_reviewer(accounts, "alice", "correct horse")
    accounts.hasher = Argon2Hasher(time_cost=2, memory_cost=2048, parallelism=1)
    authenticate(accounts, "alice", "correct horse")
    found = accounts.store.find_credentials("alice")
    assert found is not None and "m=2048,t=2" in found[1] and found[0].id == r.id


def test_sessions_expire_when_idle_and_after_their_lifetime(accounts: Accounts, clock: Clock) -> None:
    r = add_reviewer(accounts, "alice", "correct horse")
    token, session = start_session(accounts, r)
    assert session.key == session_key(token) and token not in session.key
    assert resume_session(accounts, token).reviewer == "alice"
    clock.advance(minutes=59)
    resume_session(accounts, token)  # activity keeps it alive ...
    clock.advance(minutes=59)
    resume_session(accounts, token)
    clock.advance(minutes=60)  # ... idleness ends it
    with pytest.raises(Unauthenticated, match="expired"):
        resume_session(accounts, token)
    with pytest.raises(Unauthenticated, match="not signed in"):  # and it is gone
        resume_session(accounts, token)

    token, _ = start_session(accounts, r)
    for _ in range(12):
        clock.advance(minutes=59)
        resume_session(accounts, token)
    clock.advance(minutes=59)  # 12 h 59 min after sign-in: past the lifetime
    with pytest.raises(Unauthenticated, match="expired"):
        resume_session(accounts, token)


def test_sign_out_password_change_and_removal_end_sessions(accounts: Accounts, clock: Clock) -> None:
    r = add_reviewer(accounts, "alice", "correct horse")
    first, _ = start_session(accounts, r)
    second, _ = start_session(accounts, r)
    end_session(accounts, first)
    with pytest.raises(Unauthenticated):
        resume_session(accounts, first)
    resume_session(accounts, second)
    change_password(accounts, "alice", "battery staple")
    with pytest.raises(Unauthenticated):
        resume_session(accounts, second)
    with pytest.raises(Unauthenticated):
        authenticate(accounts, "alice", "correct horse")
    third, _ = start_session(accounts, authenticate(accounts, "alice", "battery staple"))
    remove_reviewer(accounts, "alice")
    with pytest.raises(Unauthenticated):
        resume_session(accounts, third)
    with pytest.raises(NotFound, match="alice"):
        remove_reviewer(accounts, "alice")
    with pytest.raises(NotFound):
        change_password(accounts, "alice", "battery staple")


def test_purge_deletes_only_dead_sessions(accounts: Accounts, clock: Clock) -> None:
    r = add_reviewer(accounts, "alice", "correct horse")
    old, _ = start_session(accounts, r)
    clock.advance(minutes=90)
    live, _ = start_session(accounts, r)
    assert purge_sessions(accounts) == 1
    resume_session(accounts, live)


def test_throttle_per_name_and_address(accounts: Accounts, clock: Clock) -> None:
    add_reviewer(accounts, "alice", "correct horse")
    throttle = SignInThrottle(clock, ThrottlePolicy(failures_per_name=3, failures_per_address=5))
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            sign_in(accounts, throttle, "alice", "wrong", "10.0.0.1")
    with pytest.raises(TooManyAttempts, match="try again in 15 minutes") as e:
        sign_in(accounts, throttle, "alice", "correct horse", "10.0.0.1")  # even the right password
    assert 800 < e.value.details["retry_after"] <= 901
    sign_in(accounts, throttle, "alice", "correct horse", "10.0.0.2")  # not locked out from elsewhere
    for name in ("bob", "carol"):  # 5 failures from one address, any names
        with pytest.raises(Unauthenticated):
            sign_in(accounts, throttle, name, "wrong", "10.0.0.1")
    with pytest.raises(TooManyAttempts):
        sign_in(accounts, throttle, "dave", "wrong", "10.0.0.1")
    clock.advance(minutes=15)
    token, session = sign_in(accounts, throttle, "alice", "correct horse", "10.0.0.1")
    assert session.reviewer == "alice"


def test_throttle_forgets_the_oldest_keys(clock: Clock) -> None:
    throttle = SignInThrottle(clock, ThrottlePolicy(max_tracked=10))
    for i in range(50):
        throttle.failed(f"user{i}", f"10.0.0.{i}")
    assert len(throttle._failures) == 10
