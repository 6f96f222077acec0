"""Real servers for tests: a free loopback port, and an ASGI app served by uvicorn in a thread (httpx's
``serve_in_thread`` habit) so boto3, the AWS CLI and browsers talk to it over HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any, start_timeout: float = 20) -> Iterator[str]:
    """Serve ``app`` on a free loopback port until the block ends; yields its base URL. The app's lifespan
    is off: callers close what it would have closed."""
    port = free_port()
    http = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=http.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not http.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        http.should_exit = True
        thread.join(10)
