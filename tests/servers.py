"""Real servers for tests: a free loopback port, and an ASGI app served by uvicorn in a thread (httpx's
``serve_in_thread`` habit) so boto3, the AWS CLI and browsers talk to it over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
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


@contextmanager
def serve_process(data: Path, env: dict[str, str] | None = None, start_timeout: float = 30) -> Iterator[str]:
    """``visionloop serve`` in its own process on a free port until the block ends; yields its base URL.
    Its settings come from the data folder, ``env`` and defaults, not from this machine's VISIONLOOP_*;
    its output goes to ``<data>/../server-<port>.log``, shown when it does not start."""
    port = free_port()
    cmd = [sys.executable, "-m", "visionloop", "serve", "--port", str(port), "--data-dir", str(data)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VISIONLOOP_")}
    log = data.parent / f"server-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**clean, **(env or {})})
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
