"""One protocol for everything a process runs in the background, and the two threads they are made of.

Background     what the composition root (bootstrap) starts and stops: ``start()`` returns the component,
               ``flush(timeout)`` waits until the work handed in so far is done, ``stop(timeout)`` flushes
               and ends it. All three are idempotent; stop of a component never started does nothing.
QueueWorker    a thread that hands queued items to a function in batches (the detection log, the review
               hook): a bounded queue, never blocking whoever queues.
Ticker         a thread that does one pass every ``interval`` seconds or when woken (the inbox watcher,
               the notifier, the workflow runner, the serving maintenance, the worker pool).
Step           a start and/or stop action as a component (recover state at start, close a pool at stop).
BackgroundGroup  starts components in order, flushes and stops them in reverse order; one component's
               failure to flush or stop is logged, never raised, so that the others still stop. A
               failure to start stops those already started and is raised: a process that cannot start
               its parts does not run without them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, Self, TypeVar

log = logging.getLogger("visionloop.background")
T = TypeVar("T")


class Background(Protocol):
    def start(self) -> Self: ...

    def flush(self, timeout: float | None = 30.0) -> bool: ...

    def stop(self, timeout: float | None = 30.0) -> None: ...


class QueueWorker(Generic[T]):
    """Queued items go to ``handle`` on a thread of its own (started on the first ``put`` or by
    ``start``), up to ``batch`` at a time; after an item arrives the thread waits up to ``linger``
    seconds for others to join its batch. ``put`` refuses (returns False) when ``max_pending`` items or
    ``max_bytes`` of ``size(item)`` are waiting, or once stopped: the caller decides what a refusal costs.
    ``housekeeping`` runs on the same thread at start, after each batch and when it is due: it returns
    the seconds until it is due again (None: never). An exception in ``handle`` is logged; the thread
    goes on."""

    def __init__(
        self,
        name: str,
        handle: Callable[[list[T]], None],
        *,
        batch: int = 1,
        linger: float = 0.0,
        max_pending: int = 1000,
        max_bytes: int | None = None,
        size: Callable[[T], int] = lambda _: 0,
        housekeeping: Callable[[], float | None] | None = None,
    ) -> None:
        self.name, self.handle, self.batch, self.linger = name, handle, batch, linger
        self.max_pending, self.max_bytes, self.size = max_pending, max_bytes, size
        self.housekeeping = housekeeping
        self._items: deque[T] = deque()
        self._bytes = 0
        self._working = 0  # items handed to ``handle`` and not done yet
        self._flushing = 0
        self._stopped = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def pending(self) -> int:
        """Items queued or being handled now."""
        with self._cond:
            return len(self._items) + self._working

    def put(self, item: T) -> bool:
        size = self.size(item)
        with self._cond:
            if (
                self._stopped
                or len(self._items) >= self.max_pending
                or (self.max_bytes is not None and self._bytes + size > self.max_bytes)
            ):
                return False
            self._items.append(item)
            self._bytes += size
            self._cond.notify()
            started = self._thread is not None
        if not started:
            self.start()
        return True

    def start(self) -> Self:
        with self._cond:
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        return self

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every queued item was handled; False on timeout."""
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: not self._items and not self._working, timeout)
            finally:
                self._flushing -= 1

    def stop(self, timeout: float | None = 30.0) -> None:
        """Handle what is queued, then end the thread; later items are refused."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        wait = self._housekeep()
        while True:
            with self._cond:
                while not self._items and not self._stopped:
                    if not self._cond.wait(timeout=wait):
                        break  # housekeeping is due
                if self._items and self.linger > 0:  # let a batch gather
                    self._cond.wait_for(
                        lambda: len(self._items) >= self.batch or self._stopped or self._flushing,
                        timeout=self.linger,
                    )
                items = [self._items.popleft() for _ in range(min(self.batch, len(self._items)))]
                self._bytes -= sum(self.size(i) for i in items)
                self._working = len(items)
                done = self._stopped and not items
            if items:
                try:
                    self.handle(items)
                except Exception:
                    log.exception("%s: %d queued items could not be handled", self.name, len(items))
            with self._cond:
                self._working = 0
                self._cond.notify_all()
            wait = self._housekeep()
            if done:
                return

    def _housekeep(self) -> float | None:
        if self.housekeeping is None:
            return None
        try:
            return self.housekeeping()
        except Exception:
            log.exception("%s: housekeeping failed", self.name)
            return None


class Ticker:
    """Calls ``tick`` on a thread of its own, again after the pause it returns (None: ``interval``
    seconds) or at once when ``wake()`` is called; with ``delay_first`` the first pass waits too.
    ``wait(event, seconds)`` is the pause (threading.Event.wait; tests may shorten it). A failing pass
    is logged and the next one comes after ``interval``. ``flush`` waits for the pass in progress."""

    def __init__(
        self,
        name: str,
        tick: Callable[[], float | None],
        interval: float,
        *,
        delay_first: bool = False,
        wait: Callable[[threading.Event, float], bool] | None = None,
    ) -> None:
        self.name, self.tick, self.interval, self.delay_first = name, tick, interval, delay_first
        self._wait = wait or (lambda event, seconds: event.wait(seconds))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pass = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> Self:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until no pass is running; False on timeout."""
        if not self._pass.acquire(timeout=-1 if timeout is None else timeout):
            return False
        self._pass.release()
        return True

    def stop(self, timeout: float | None = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        pause = self.interval if self.delay_first else 0.0
        while True:
            if pause > 0:
                self._wait(self._wake, pause)
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._pass:
                try:
                    found = self.tick()
                    pause = self.interval if found is None else found
                except Exception:
                    log.exception("%s: a pass failed", self.name)
                    pause = self.interval


class Step:
    """An action at start and/or at stop, as a component of a BackgroundGroup (e.g. bring back the
    versions a previous server left running; close the inference units). Each runs once."""

    def __init__(
        self, name: str, start: Callable[[], object] | None = None, stop: Callable[[], object] | None = None
    ) -> None:
        self.name = name
        self._start, self._stop = start, stop
        self._started = self._stopped = False

    def start(self) -> Self:
        if not self._started:
            self._started = True
            if self._start is not None:
                self._start()
        return self

    def flush(self, timeout: float | None = 30.0) -> bool:
        return True  # nothing is queued in a step

    def stop(self, timeout: float | None = 30.0) -> None:
        if not self._stopped:
            self._stopped = True
            if self._stop is not None:
                self._stop()


class BackgroundGroup:
    """Components started in the order given and stopped in the reverse order, each flushed first (so
    what depends on an earlier one, e.g. the inference units on the detection log, ends before it). A
    component that fails to flush or stop is logged and the others go on; one that fails to start stops
    those started before it, and its exception is raised. Stop stops only those started."""

    def __init__(self, components: Sequence[tuple[str, Background]] = (), timeout: float = 30.0) -> None:
        self.components = list(components)
        self.timeout = timeout
        self._started: list[tuple[str, Background]] = []
        self._lock = threading.Lock()

    @property
    def started(self) -> list[str]:
        """The names of the components started and not stopped, in start order."""
        return [name for name, _ in self._started]

    def add(self, name: str, component: Background) -> None:
        self.components.append((name, component))

    def start(self) -> Self:
        with self._lock:
            for name, component in self.components:
                if any(c is component for _, c in self._started):
                    continue
                try:
                    component.start()
                except Exception:
                    log.exception("background: %s did not start; stopping the others", name)
                    self._stop_started(self.timeout)
                    raise
                self._started.append((name, component))
        return self

    def flush(self, timeout: float | None = None) -> bool:
        limit = self.timeout if timeout is None else timeout
        failed = [name for name, c in reversed(self._started) if not _quietly(name, "flush", c.flush, limit)]
        return not failed

    def stop(self, timeout: float | None = None) -> None:
        with self._lock:
            self._stop_started(self.timeout if timeout is None else timeout)

    def _stop_started(self, limit: float) -> None:
        started, self._started = self._started, []
        for name, component in reversed(started):
            _quietly(name, "flush", component.flush, limit)
            _quietly(name, "stop", component.stop, limit)


def _quietly(name: str, what: str, fn: Callable[[float], object], timeout: float) -> bool:
    """``fn(timeout)``; True unless it raised (logged) or answered False (a flush that timed out)."""
    started = time.monotonic()
    try:
        answer = fn(timeout)
    except Exception:
        log.exception("background: %s failed to %s", name, what)
        return False
    if answer is False:
        log.warning("background: %s did not %s within %.0f s", name, what, time.monotonic() - started)
        return False
    return True
