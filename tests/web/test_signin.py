"""Signing in and out of the reviewer pages: cookies, CSRF, throttling, expiry, and what a session opens."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from tests.servers import serve_process
from tests.web.conftest import PASSWORD, Clock, csrf_of, sign_in
from visionloop.api.app import create_app
from visionloop.cli import cli
from visionloop.core.accounts import Accounts, change_password
from visionloop.core.services import Services
from visionloop.settings import AccessKey, Settings
from visionloop.web.sessions import CSRF_COOKIE, SESSION_COOKIE, load_session_secret


def test_sign_in_page_sets_a_strict_csrf_cookie_and_safe_headers(client: TestClient) -> None:
    r = client.get("/review/")
    assert r.status_code == 303 and r.headers["location"] == "/review/sign-in?next=/review/"
    r = client.get("/review/sign-in")
    assert r.status_code == 200 and "Sign in to review" in r.text
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{CSRF_COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    assert "http://" not in r.text.replace("http://www.w3.org", "")  # nothing from another site
    css = client.get("/static/visionloop.css")
    assert css.status_code == 200 and "font-family" in css.text
    assert client.get("/static/review.js").status_code == 200


def test_wrong_password_then_sign_in_and_out(client: TestClient) -> None:
    token = csrf_of(client.get("/review/sign-in").text)
    for name, password in [("alice", "wrong password"), ("nobody", PASSWORD), ("", "")]:
        r = client.post("/review/sign-in", data={"name": name, "password": password, "csrf_token": token})
        assert r.status_code == 401 and "wrong name or password" in r.text
        assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    assert 'value="alice"' not in r.text or 'value=""' in r.text
    r = client.post(
        "/review/sign-in",
        data={"name": "Alice", "password": PASSWORD, "csrf_token": token, "next": "/review/queue"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/review/queue"
    cookie = [c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)][0]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    page = client.get("/review/")
    assert page.status_code == 200 and "signed in as <strong>alice</strong>" in page.text
    assert client.get("/review/sign-in").status_code == 303  # already signed in

    r = client.post("/review/sign-out", data={"csrf_token": "wrong"})
    assert r.status_code == 403 and "Form refused" in r.text
    assert client.get("/review/").status_code == 200  # still signed in
    r = client.post("/review/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/review/sign-in"
    assert client.get("/review/").status_code == 303


def test_next_never_leaves_the_review_pages(client: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/review/", "/api/v1/projects", "/review/\\x"):
        client.cookies.delete(SESSION_COOKIE)
        token = csrf_of(client.get("/review/sign-in").text)
        r = client.post(
            "/review/sign-in",
            data={"name": "alice", "password": PASSWORD, "csrf_token": token, "next": target},
        )
        assert r.status_code == 303 and r.headers["location"] == "/review/"


def test_sign_in_without_the_csrf_cookie_is_refused(client: TestClient, app: object) -> None:
    token = csrf_of(client.get("/review/sign-in").text)
    other = TestClient(client.app, follow_redirects=False)  # another browser: no CSRF cookie
    r = other.post("/review/sign-in", data={"name": "alice", "password": PASSWORD, "csrf_token": token})
    assert (
        r.status_code == 403 and "expired" in r.text and SESSION_COOKIE not in r.headers.get("set-cookie", "")
    )
    r = client.post("/review/sign-in", data={"name": "alice", "password": PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 403


def test_secure_cookie_over_https(app: object) -> None:
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:  # type: ignore[arg-type]
        page = c.get("/review/sign-in")
        assert "Secure" in page.headers["set-cookie"]
        r = c.post(
            "/review/sign-in", data={"name": "alice", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
        )
        assert "Secure" in [h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)][0]


def test_secure_cookies_setting_marks_them_secure_over_http(
    services: Services, settings: Settings, accounts: Accounts
) -> None:
    app = create_app(services, settings.replace(secure_cookies=True), accounts=accounts)
    with TestClient(app, follow_redirects=False) as c:
        page = c.get("/review/sign-in")
        set_cookie = page.headers["set-cookie"]
        assert "Secure" in set_cookie
        c.cookies.clear()  # an HTTP client keeps no Secure cookie: send it by hand
        r = c.post(
            "/review/sign-in",
            data={"name": "alice", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
            headers={"Cookie": set_cookie.split(";", 1)[0]},
        )
        assert "Secure" in [h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)][0]


def test_review_without_a_slash_with_access_keys(
    services: Services, settings: Settings, accounts: Accounts
) -> None:
    key = AccessKey("AKIDOPERATOR", "operator-secret-0123456789")
    app = create_app(services, settings.replace(access_keys=(key,)), accounts=accounts)
    with TestClient(app, follow_redirects=False) as c:
        r = c.get("/review")
        assert r.status_code in (307, 308) and r.headers["location"].endswith("/review/")


def test_tampered_or_foreign_cookie_signs_nobody_in(client: TestClient) -> None:
    sign_in(client)
    good = client.cookies[SESSION_COOKIE]
    token, _, mac = good.rpartition(".")
    for bad in (f"{token}.{mac[:-1]}A" if mac[-1] != "A" else f"{token}.{mac[:-1]}B", token, "x.y", ""):
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, bad)
        assert client.get("/review/").status_code == 303
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, good)
    assert client.get("/review/").status_code == 200


def test_session_expiry_sends_back_to_sign_in(client: TestClient, clock: Clock) -> None:
    sign_in(client)
    clock.advance(minutes=61)  # idle longer than session_idle_minutes
    r = client.get("/review/queue")
    assert r.status_code == 303 and r.headers["location"] == "/review/sign-in?next=/review/queue&ended=1"
    page = client.get(r.headers["location"])
    assert "Your session has ended" in page.text and 'value="/review/queue"' in page.text
    r = client.post("/review/sign-out", data={"csrf_token": "x"})  # a form posted after expiry
    assert r.status_code == 401 and "Sign in" in r.text


def test_password_change_ends_the_session(client: TestClient, accounts: Accounts) -> None:
    sign_in(client)
    change_password(accounts, "alice", "a new password")
    assert client.get("/review/").status_code == 303


def test_throttled_after_repeated_failures(client: TestClient) -> None:
    token = csrf_of(client.get("/review/sign-in").text)
    for _ in range(5):
        r = client.post(
            "/review/sign-in", data={"name": "alice", "password": "nope nope", "csrf_token": token}
        )
        assert r.status_code == 401
    r = client.post("/review/sign-in", data={"name": "alice", "password": PASSWORD, "csrf_token": token})
    assert (
        r.status_code == 429 and "too many failed sign-ins" in r.text and int(r.headers["retry-after"]) > 800
    )
    sign_in(client, "bob")  # another name from the same address still works


def test_a_session_does_not_open_the_operators_api(
    services: Services, settings: Settings, accounts: Accounts
) -> None:
    key = AccessKey("AKIDOPERATOR", "operator-secret-0123456789")
    app = create_app(services, settings.replace(access_keys=(key,)), accounts=accounts)
    with TestClient(app, follow_redirects=False) as c:
        sign_in(c)  # the review pages need no bearer key ...
        assert c.get("/review/").status_code == 200
        # ... and the session opens nothing else
        r = c.get("/api/v1/projects")
        assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthorized"
        assert c.post("/api/v1/projects", json={"name": "x"}).status_code == 401
        r = c.post("/", headers={"X-Amz-Target": "RekognitionService.DescribeProjects"}, content=b"{}")
        assert r.status_code in (400, 403) and "MissingAuthenticationToken" in r.text
        for sneaky in ("/review/../api/v1/projects", "/static/../api/v1/projects", "/reviewx"):
            r = c.get(sneaky)
            assert r.status_code in (401, 404) and "projects" not in r.text.lower().replace(
                "/api/v1/projects", ""
            )
        headers = {"Authorization": f"Bearer {key.secret}"}
        assert c.get("/api/v1/projects", headers=headers).status_code == 200


def test_session_secret_is_generated_once(settings: Settings) -> None:
    first = load_session_secret(settings)
    assert len(first) >= 32 and load_session_secret(settings) == first
    path = settings.data_path / "session_secret"
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_session_secret(settings.replace(session_secret="s" * 32)) == b"s" * 32


@pytest.mark.parametrize("path", ["/review/nothing-here", "/review/items/x/image"])
def test_unknown_pages_are_pages_not_errors(client: TestClient, path: str) -> None:
    sign_in(client)
    r = client.get(path)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")


def failed_sign_ins_until_refused(url: str, spoof: bool) -> int:
    """Wrong passwords for alice, each claiming another client in X-Forwarded-For; then her right
    password: the status of that last attempt."""
    with httpx.Client(base_url=url) as c:
        token = csrf_of(c.get("/review/sign-in").text)
        for i in range(5):
            headers = {"X-Forwarded-For": f"203.0.113.{i}"} if spoof else {}
            r = c.post(
                "/review/sign-in",
                data={"name": "alice", "password": "nope nope", "csrf_token": token},
                headers=headers,
            )
            assert r.status_code == 401
        r = c.post(
            "/review/sign-in",
            data={"name": "alice", "password": PASSWORD, "csrf_token": token},
            headers={"X-Forwarded-For": "203.0.113.99"},
        )
        return r.status_code


def test_a_spoofed_forwarded_for_does_not_escape_the_throttle(tmp_path: Path) -> None:
    """uvicorn believes X-Forwarded-For from 127.0.0.1 by default: each failed sign-in then counted for
    the address the caller claimed. Now the header counts only from trusted_proxies."""
    data = tmp_path / "var"
    code = CliRunner().invoke(
        cli, ["--data-dir", str(data), "reviewer", "add", "alice", "--password-stdin"], input=PASSWORD
    )
    assert code.exit_code == 0, code.output
    with serve_process(data) as url:
        assert failed_sign_ins_until_refused(url, spoof=True) == 429
    with serve_process(
        data, {"VISIONLOOP_TRUSTED_PROXIES": "127.0.0.1"}
    ) as url:  # a proxy on this machine: believed
        assert failed_sign_ins_until_refused(url, spoof=True) == 303
