"""The background protocol: a group starts in order and stops in reverse, flushing first, and one
failing component never keeps the others from stopping; the queue worker and the ticker behind the
server's threads."""

from __future__ import annotations

import threading
import time
from typing import Self

import pytest

from visionloop.workflows.background import BackgroundGroup, QueueWorker, Step, Ticker


class Recorder:
    def __init__(self, name: str, calls: list[str], fail: str | None = None) -> None:
        self.name, self.calls, self.fail = name, calls, fail

    def _do(self, what: str) -> None:
        self.calls.append(f"{what} {self.name}")
        if self.fail == what:
            raise RuntimeError(f"{self.name} cannot {what}")

    def start(self) -> Self:
        self._do("start")
        return self

    def flush(self, timeout: float | None = 30.0) -> bool:
        self._do("flush")
        return True

    def stop(self, timeout: float | None = 30.0) -> None:
        self._do("stop")


def test_a_group_starts_in_order_and_stops_in_reverse_after_flushing() -> None:
    calls: list[str] = []
    group = BackgroundGroup([("a", Recorder("a", calls)), ("b", Recorder("b", calls))])
    group.start()
    group.start()  # idempotent
    assert group.started == ["a", "b"]
    group.stop()
    group.stop()
    assert calls == ["start a", "start b", "flush b", "stop b", "flush a", "stop a"]


def test_one_failing_component_does_not_keep_the_others_from_stopping(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    group = BackgroundGroup([("a", Recorder("a", calls)), ("b", Recorder("b", calls, fail="stop"))])
    group.start()
    assert group.flush() is True
    group.stop()
    assert calls[-4:] == ["flush b", "stop b", "flush a", "stop a"]  # b's failure did not keep a running
    assert "b failed to stop" in caplog.text


def test_a_failed_start_stops_those_started_and_is_raised() -> None:
    calls: list[str] = []
    parts = [("a", Recorder("a", calls)), ("broken", Recorder("broken", calls, fail="start"))]
    group = BackgroundGroup([*parts, ("c", Recorder("c", calls))])
    with pytest.raises(RuntimeError, match="broken cannot start"):
        group.start()
    assert calls == ["start a", "start broken", "flush a", "stop a"]  # c never started


def test_steps_run_once_at_start_and_at_stop() -> None:
    calls: list[str] = []
    step = Step("s", start=lambda: calls.append("up"), stop=lambda: calls.append("down"))
    group = BackgroundGroup([("s", step)])
    group.start()
    group.stop()
    step.stop()
    assert calls == ["up", "down"]


def test_the_queue_worker_batches_flushes_and_handles_what_is_queued_at_stop() -> None:
    batches: list[list[int]] = []
    inside, gate = threading.Event(), threading.Event()

    def handle(items: list[int]) -> None:
        inside.set()
        gate.wait(5)
        batches.append(items)

    worker: QueueWorker[int] = QueueWorker("test-queue", handle, batch=3, max_pending=5)
    worker.put(0)
    assert inside.wait(5)  # the thread holds item 0; five more may wait
    assert all(worker.put(i) for i in range(1, 6))
    assert not worker.put(99)  # full: refused, never blocking
    assert worker.pending == 6
    gate.set()
    assert worker.flush(5)
    assert batches == [[0], [1, 2, 3], [4, 5]]
    gate.clear()
    worker.put(6)
    threading.Timer(0.1, gate.set).start()
    worker.stop(5)  # waits for the queued item
    assert batches[-1] == [6] and worker.pending == 0
    assert not worker.put(7)  # stopped


def test_a_failing_handler_is_logged_and_the_worker_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[int] = []

    def handle(items: list[int]) -> None:
        if items == [1]:
            raise RuntimeError("boom")
        seen.extend(items)

    worker: QueueWorker[int] = QueueWorker("test-queue", handle)
    worker.put(1)
    worker.put(2)
    assert worker.flush(5)
    worker.stop()
    assert seen == [2] and "could not be handled" in caplog.text


def test_the_ticker_passes_again_when_woken_and_flush_waits_for_the_pass() -> None:
    passes: list[float] = []
    inside = threading.Event()
    release = threading.Event()

    def tick() -> None:
        passes.append(time.monotonic())
        if len(passes) == 2:
            inside.set()
            release.wait(5)

    ticker = Ticker("test-ticker", tick, 3600).start()
    deadline = time.monotonic() + 5
    while not passes:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    ticker.wake()  # not an hour: now
    assert inside.wait(5)
    assert ticker.flush(0.05) is False  # the second pass is still running
    release.set()
    assert ticker.flush(5)
    ticker.stop(5)
    assert len(passes) == 2 and ticker.stopping
