"""Request bodies through a real server (uvicorn on a free port, access keys set, so nothing here is
authenticated): per-route size limits applied before the body is read, strict JSON on the three APIs,
bounded integer ids, and errors that do not echo the request (issue 15, findings 3, 7 and 9c)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.servers import serve_in_thread
from visionloop.api.app import create_app
from visionloop.api.limits import A2I_LIMIT, AWS_LIMIT, JSON_LIMIT
from visionloop.core.services import Services
from visionloop.settings import AccessKey, Settings

KEY = AccessKey("AKIDLIMITS", "limits-secret-0123456789")
BEARER = {"Authorization": f"Bearer {KEY.secret}"}
AWS = {"Content-Type": "application/x-amz-json-1.1"}
TOO_BIG = 2**63


@pytest.fixture
def url(services: Services, settings: Settings) -> Iterator[str]:
    app = create_app(services, settings.replace(access_keys=(KEY,)))
    with serve_in_thread(app) as base:
        yield base


def send_raw(url: str, head: str, chunks: Iterable[bytes] = ()) -> tuple[int, bytes]:
    """Sends a request by hand (so a body can be declared larger than what is sent, or streamed without
    a length) while reading the answer: (status, body). Sending stops when the server closes its side."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as s:

        def write() -> None:
            try:
                s.sendall(head.encode("latin-1"))
                for chunk in chunks:
                    s.sendall(chunk)
            except OSError:
                pass

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        answer = b""
        try:
            while data := s.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
        writer.join(20)
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def chunked(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = b"x" * size
        sent += size
        yield f"{size:x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def head(method: str, path: str, **headers: str) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n"


# --- finding 3: body limits before the body is read --------------------------------------------------------


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(url: str) -> None:
    """300 MB declared, 1 KB sent: the answer comes without waiting for the rest (no key needed)."""
    status, body = send_raw(
        url, head("POST", "/", Content_Length="300000000", X_Amz_Target="RekognitionService.DetectLabels")
    )
    assert status == 400
    assert json.loads(body)["__type"] == "ImageTooLargeException"
    status, body = send_raw(
        url,
        head("POST", "/", Content_Length=str(AWS_LIMIT + 1), X_Amz_Target="RekognitionService.CreateProject"),
    )
    assert (status, json.loads(body)["__type"]) == (413, "ValidationException")
    status, body = send_raw(url, head("POST", "/human-loops", Content_Length=str(A2I_LIMIT + 1)))
    assert (status, json.loads(body)["__type"]) == (413, "ValidationException")
    status, body = send_raw(url, head("POST", "/api/v1/projects", Content_Length=str(JSON_LIMIT + 1)))
    assert (status, json.loads(body)["error"]["code"]) == (413, "RequestTooLarge")
    status, _ = send_raw(url, head("POST", "/console/projects", Content_Length=str(JSON_LIMIT + 1)))
    assert status == 413


@pytest.mark.parametrize(
    ("path", "target", "limit"),
    [("/", "RekognitionService.DetectLabels", AWS_LIMIT), ("/human-loops", "", A2I_LIMIT)],
)
def test_a_streamed_body_is_cut_at_the_limit(url: str, path: str, target: str, limit: int) -> None:
    """Without a Content-Length the body is counted as it arrives: an unsigned stream twice the limit
    gets the API's own error, not a 403 after the whole body was read and hashed."""
    status, body = send_raw(
        url, head("POST", path, Transfer_Encoding="chunked", X_Amz_Target=target), chunked(2 * limit)
    )
    assert status in (400, 413)
    assert json.loads(body)["__type"] in ("ImageTooLargeException", "ValidationException")


def test_a_streamed_native_body_is_cut_at_the_limit(url: str) -> None:
    status, body = send_raw(
        url,
        head(
            "POST",
            "/api/v1/projects",
            Transfer_Encoding="chunked",
            Content_Type="application/json",
            Authorization=BEARER["Authorization"],
        ),
        chunked(4 * JSON_LIMIT),
    )
    assert (status, json.loads(body)["error"]["code"]) == (413, "RequestTooLarge")


def test_bodies_within_the_limits_still_pass(url: str) -> None:
    """A 5 MiB + 1 image (about 7 MB of JSON) reaches the operation, which names the image's limit."""
    import base64

    doc = {"Image": {"Bytes": base64.b64encode(b"\xff" * (5 * 1024 * 1024 + 1)).decode()}}
    r = httpx.post(
        url + "/", content=json.dumps(doc), headers={**AWS, "X-Amz-Target": "RekognitionService.DetectLabels"}
    )
    assert r.status_code == 403  # within the limit, so the (missing) signature is what is refused
    r = httpx.post(url + "/api/v1/projects", json={"name": "fine", "task": "classification"}, headers=BEARER)
    assert r.status_code == 201, r.text


# --- finding 7: JSON that used to answer 500 ---------------------------------------------------------------


def _native(url: str, body: bytes, path: str = "/api/v1/projects") -> httpx.Response:
    return httpx.post(url + path, content=body, headers={**BEARER, "Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b'{"name": "p\\ud800", "task": "classification"}', "'name'"),
        (b'{"name": "p", "task": "classification", "x": [{"\\udfff": 1}]}', "member name"),
        (b'{"name": "p", "seed": 1' + b"0" * 400 + b"}", "'seed'"),
        (b'{"name": "p", "f": 1e400}', "'f'"),
        (b'{"name": "p", "f": NaN}', "'f'"),
        (b"[" * 5000 + b"]" * 5000, "nested"),
        (b'{"a":' * 100 + b"1" + b"}" * 100, "nested"),
    ],
)
def test_native_json_that_cannot_be_stored_is_a_400_naming_the_member(
    url: str, body: bytes, named: str
) -> None:
    r = _native(url, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "InvalidInput"
    assert named in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"ProjectName": "p\\ud800"}', "SerializationException"),
        (b"[" * 5000 + b"]" * 5000, "SerializationException"),
        (b'{"Image": {"Bytes": "AAAA"}, "MinConfidence": 1' + b"0" * 400 + b"}", "InvalidParameterException"),
        (b'{"Image": {"Bytes": "AAAA"}, "MinConfidence": 1e999}', "InvalidParameterException"),
    ],
)
def test_aws_json_that_used_to_fail_is_the_right_4xx(
    services: Services, settings: Settings, body: bytes, code: str
) -> None:
    """Unsigned dev mode (no access keys), so the body is what is judged."""
    with serve_in_thread(create_app(services, settings)) as base:
        r = httpx.post(
            base + "/", content=body, headers={**AWS, "X-Amz-Target": "RekognitionService.DetectLabels"}
        )
        assert r.status_code == 400, r.text
        assert r.json()["__type"] == code
        if code == "InvalidParameterException":
            assert "MinConfidence" in r.json()["Message"]
        a2i = httpx.post(base + "/human-loops", content=body)
        assert (a2i.status_code, a2i.json()["__type"]) == (400, "ValidationException")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/projects/p/entries/{id}",
        "/api/v1/projects/p/entries/{id}/image",
        "/api/v1/projects/p/detections/{id}",
        "/api/v1/projects/p/detections/{id}/image",
        "/api/v1/projects/p/deliveries/{id}",
        "/api/v1/jobs/{id}",
        "/api/v1/projects/p/runs/{id}",
        "/api/v1/projects/p/datasets/train/entries?offset={id}",
        "/api/v1/projects/p/loops?offset={id}",
        "/api/v1/projects/p/runs?offset={id}",
    ],
)
def test_ids_beyond_sqlite_integers_are_refused(url: str, path: str) -> None:
    httpx.post(url + "/api/v1/projects", json={"name": "p", "task": "classification"}, headers=BEARER)
    method = httpx.patch if path.endswith("/entries/{id}") else httpx.get
    for value in (TOO_BIG, 2**64, -1):
        kwargs = {"json": {"labels": ["a"]}} if method is httpx.patch else {}
        r = method(url + path.format(id=value), headers=BEARER, **kwargs)  # type: ignore[operator]
        assert r.status_code in (400, 404, 422), (path, value, r.text)


# --- finding 9c: no echo of the input ----------------------------------------------------------------------


def test_errors_do_not_echo_the_request(url: str) -> None:
    name = "n" * 900_000  # an invalid project name, within the JSON limit
    r = httpx.post(url + "/api/v1/projects", json={"name": name, "task": "classification"}, headers=BEARER)
    assert r.status_code == 400
    assert len(r.content) < 2000
    r = httpx.post(url + "/api/v1/projects", json={"name": ["x" * 500_000], "task": 1}, headers=BEARER)
    assert r.status_code == 422
    assert len(r.content) < 2000


def test_aws_and_a2i_errors_do_not_echo_the_request(services: Services, settings: Settings) -> None:
    names = json.dumps({"ProjectNames": ["?" * 1_000_000], "HumanLoopName": "?" * 1_000_000})
    with serve_in_thread(create_app(services, settings)) as base:
        target = {"X-Amz-Target": "RekognitionService.DescribeProjects"}
        r = httpx.post(base + "/", content=names, headers={**AWS, **target})
        assert (r.status_code, r.json()["__type"]) == (400, "InvalidParameterException")
        assert len(r.content) < 5000
        r = httpx.post(base + "/human-loops", content=names)
        assert (r.status_code, r.json()["__type"]) == (400, "ValidationException")
        assert len(r.content) < 5000
