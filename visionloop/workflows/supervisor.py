"""Worker processes owned by the server: started with it, stopped with it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import asdict

from visionloop.settings import ENV_PREFIX, AccessKey, Settings


def worker_env(settings: Settings) -> dict[str, str]:
    """The server's resolved settings as the environment variables load_settings reads back."""
    return {f"{ENV_PREFIX}{k.upper()}": _env_value(getattr(settings, k)) for k in asdict(settings)}


def _env_value(value: object) -> str:
    if isinstance(value, tuple):  # lists are written back as a comma list (str() of a tuple is no setting)
        return ",".join(f"{v.id}:{v.secret}" if isinstance(v, AccessKey) else str(v) for v in value)
    return str(value)


def start_workers(settings: Settings, count: int) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` ``visionloop worker`` processes with the server's resolved settings."""
    env = {**os.environ, **worker_env(settings)}
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
