"""The server hands its resolved settings to its worker processes through the environment; every setting
must come back as it was (access keys included: str() of their tuple is not a valid value)."""

from __future__ import annotations

import subprocess
import sys

from visionloop.settings import AccessKey, Settings, load_settings
from visionloop.workflows.supervisor import WorkerPool, worker_env


def test_worker_environment_round_trips_every_setting(settings: Settings) -> None:
    assert load_settings(environ=worker_env(settings)) == settings
    changed = settings.replace(
        access_keys=(AccessKey("AK1", "s" * 16), AccessKey("AK2", "t" * 20)),
        workers=3,
        inference_restore=False,
        workflow_poll_seconds=0.25,
        import_roots=("/srv/photos", "/mnt/shared"),
        trusted_proxies=("10.0.0.2",),
        webhook_allow_private=True,
    )
    assert load_settings(environ=worker_env(changed)) == changed


def test_a_dead_worker_is_reaped_reported_and_replaced_with_backoff() -> None:
    clock = [0.0]
    deaths: list[tuple[int, str]] = []

    def crashing() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])

    pool = WorkerPool(crashing, 1, lambda pid, msg: deaths.append((pid, msg)), 3600, lambda: clock[0])
    pool.start()  # the watching thread waits an hour: the test drives check() itself
    try:
        delays = []
        for _ in range(4):
            pid = pool._slots[0].proc.pid
            pool._slots[0].proc.wait(10)
            pool.check()  # reaped: its jobs are failed, and it is due again after the backoff
            assert deaths[-1][0] == pid and "died (pid" in deaths[-1][1] and "exit code 3" in deaths[-1][1]
            assert pool.health() == {"expected": 1, "alive": 0, "replaced": len(delays)}
            due = pool._slots[0].restart_at
            assert due is not None
            delays.append(due - clock[0])
            clock[0] = due
            pool.check()
        assert delays == [1.0, 2.0, 4.0, 8.0]  # a crash loop does not spin
        clock[0] += WorkerPool.STABLE_SECONDS + 1  # one that lived a while starts the backoff over
        pool._slots[0].proc.wait(10)
        pool.check()
        assert pool._slots[0].restart_at == clock[0] + 1.0
    finally:
        pool.stop()
