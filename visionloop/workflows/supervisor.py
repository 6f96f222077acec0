"""Worker processes owned by the server: started with it, stopped with it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import asdict

from visionloop.settings import ENV_PREFIX, Settings


def start_workers(settings: Settings, count: int) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` ``visionloop worker`` processes with the server's resolved settings."""
    env = {**os.environ, **{f"{ENV_PREFIX}{k.upper()}": str(v) for k, v in asdict(settings).items()}}
    cmd = [sys.executable, "-m", "visionloop", "worker", "--no-recover", "--parent-pid", str(os.getpid())]
    return [subprocess.Popen(cmd, env=env) for _ in range(count)]


def stop_workers(procs: list[subprocess.Popen[bytes]], timeout: float = 10.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
