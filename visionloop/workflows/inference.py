"""Inference hosting: each started model version gets a pool of inference units, each unit a worker
process that loads the model once and predicts the batches it is sent (implements
core.ports.InferenceHost).

Process model::

    server process                                       unit processes (forkserver children)
    ┌──────────────────────────────────────────────┐
    │ submit() → pool queue ─┬→ unit thread 1 ─ pipe ─┼→ unit 1: engine.load(artifact) once, predict(batch)
    │  (Future per request)  └→ unit thread 2 ─ pipe ─┼→ unit 2: …
    └──────────────────────────────────────────────┘

A unit thread takes the next request from its version's queue, adds whatever else is waiting (up to
``max_batch`` images), sends the batch down its pipe and resolves the requests' futures with the
answer, so callers (the async API among them) wait on futures and never block the event loop. A
version's CPU threads are split between its units. A unit that dies is replaced by its thread; the
requests it held fail with Unavailable. Starting a version happens on background threads and takes no
lock that requests of other versions need.
"""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from visionloop import errors
from visionloop.core.ports import (
    ImageOutput,
    LoadedDetector,
    LoadedModel,
    PoolStats,
    StartedFn,
    TrainingEngine,
)
from visionloop.core.scoring import model_outputs
from visionloop.errors import Conflict, NotReady, Unavailable, VisionloopError

log = logging.getLogger("visionloop.inference")

EngineFactory = Callable[[int], TrainingEngine]  # threads -> engine; picklable (a module-level function
# or a functools.partial of one), since every unit process builds its own engine
_POLL = 0.2  # seconds between checks of a unit thread for retirement or a dead process
_RESTART_LIMIT = 3  # a unit that fails to load again this many times in a row gives up


class _LoadError(Exception):
    pass


@dataclass
class _Request:
    images: Sequence[bytes]
    future: Future[list[ImageOutput]]


# --- the unit process ----------------------------------------------------------------------------------


def _unit_main(conn: Connection, factory: EngineFactory, threads: int, files: Mapping[str, bytes]) -> None:
    """Body of a unit process: load once, then answer ("predict", images) messages until None or EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when units stop
    try:
        model = factory(threads).load(files)
        _warm_up(model)
        conn.send(("ready",))
    except BaseException as e:  # report why loading failed, whatever it was
        message = e.message if isinstance(e, VisionloopError) else f"{type(e).__name__}: {e}"
        with contextlib.suppress(OSError):
            conn.send(("error", type(e).__name__, message))
        return
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if msg is None:
            return
        try:
            conn.send(("ok", model_outputs(model, msg[1])))
        except VisionloopError as e:
            conn.send(("error", type(e).__name__, e.message))
        except Exception as e:  # an engine bug: report it, keep serving
            conn.send(("error", "InternalError", f"{type(e).__name__}: {e}"))


def _warm_up(model: LoadedModel | LoadedDetector) -> None:
    """One prediction on a blank image, so that lazy sessions exist before the first request."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (96, 96), (128, 128, 128)).save(buf, "PNG")
    model_outputs(model, [buf.getvalue()])


def _remote_error(name: str, message: str) -> Exception:
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, VisionloopError):
        return cls(message)
    return RuntimeError(f"inference failed: {message}")


# --- the server side: one thread per unit --------------------------------------------------------------


class _Unit(threading.Thread):
    """Owns one unit process: starts it, feeds it batches from the pool's queue, replaces it if it dies."""

    def __init__(self, pool: _Pool, threads: int, number: int) -> None:
        super().__init__(name=f"visionloop-unit-{pool.version_id}-{number}", daemon=True)
        self.pool, self.threads = pool, threads
        self.loaded = threading.Event()
        self.retire = threading.Event()
        self.error: str | None = None
        self.busy = False
        self.proc: Any = None
        self.conn: Connection | None = None

    @property
    def serving(self) -> bool:
        return self.loaded.is_set() and self.error is None and not self.retire.is_set()

    def run(self) -> None:
        try:
            self._boot()
        except _LoadError as e:
            self.error = str(e)
            self.loaded.set()
            self.pool.forget(self)
            if self.pool.ready.is_set():  # a unit added by scaling: leave the count to the autoscaler
                log.warning("an added unit of model version %s failed: %s", self.pool.version_id, e)
                self.pool.target = max(1, len(self.pool.live()))
            return
        self.loaded.set()
        failures = 0
        while not self.retire.is_set():
            if self.proc is None or not self.proc.is_alive():
                if self.proc is not None:
                    self.pool.restarts += 1
                    log.warning(
                        "an inference unit of model version %s died; replacing it", self.pool.version_id
                    )
                    self._close_process()
                try:
                    self._boot()
                    failures = 0
                except _LoadError as e:
                    failures += 1
                    if failures >= _RESTART_LIMIT:
                        self.error = f"the unit could not be restarted: {e}"
                        break
                    self.retire.wait(min(2.0**failures, 10.0))
                continue
            batch = self._take()
            if batch:
                try:
                    self._run(batch)
                except Exception as e:  # a bug here must not leave callers waiting forever
                    log.exception("inference unit %s failed on a batch", self.name)
                    for r in batch:
                        if not r.future.done():
                            r.future.set_exception(e)
        self._close_process()
        self.pool.forget(self)

    def _boot(self) -> None:
        try:
            self._spawn()
        except _LoadError:
            self._close_process()
            raise
        except Exception as e:  # the process could not even be started
            self._close_process()
            raise _LoadError(f"the unit process could not be started: {type(e).__name__}: {e}") from e

    def _spawn(self) -> None:
        host = self.pool.host
        parent, child = host.context.Pipe()
        proc = host.context.Process(
            target=_unit_main,
            args=(child, host.engine_factory, self.threads, self.pool.files),
            name=self.name,
            daemon=True,
        )
        proc.start()
        child.close()
        self.proc, self.conn = proc, parent
        deadline = time.monotonic() + host.start_timeout
        while not parent.poll(_POLL):
            if not proc.is_alive():
                raise _LoadError(f"the unit process exited while loading (exit code {proc.exitcode})")
            if time.monotonic() > deadline or self.retire.is_set():
                reason = "it was stopped" if self.retire.is_set() else f"over {host.start_timeout:g} s"
                raise _LoadError(f"loading the model took too long ({reason})")
        try:
            msg = parent.recv()
        except (EOFError, OSError) as e:
            raise _LoadError(f"the unit process exited while loading ({e})") from None
        if msg[0] != "ready":
            raise _LoadError(msg[2])

    def _take(self) -> list[_Request]:
        try:
            first = self.pool.queue.get(timeout=_POLL)
        except queue.Empty:
            return []
        batch, n = [first], len(first.images)
        while n < self.pool.host.max_batch:
            try:
                more = self.pool.queue.get_nowait()
            except queue.Empty:
                break
            batch.append(more)
            n += len(more.images)
        return [r for r in batch if r.future.set_running_or_notify_cancel()]

    def _run(self, batch: list[_Request]) -> None:
        images = [img for r in batch for img in r.images]
        self.busy = True
        try:
            reply = self._call(images)
        except _LoadError as e:  # the process died under this batch
            for r in batch:
                r.future.set_exception(Unavailable(f"the inference unit stopped unexpectedly ({e}); retry"))
            return
        finally:
            self.busy = False
        if reply[0] == "ok":
            start = 0
            for r in batch:
                r.future.set_result(reply[1][start : start + len(r.images)])
                start += len(r.images)
            self.pool.served += len(images)
        elif len(batch) > 1:  # one bad image must not fail the others: retry one request at a time
            for r in batch:
                self._run_alone(r)
        else:
            batch[0].future.set_exception(_remote_error(reply[1], reply[2]))

    def _run_alone(self, request: _Request) -> None:
        retry: Future[list[ImageOutput]] = Future()
        retry.set_running_or_notify_cancel()
        inner = _Request(request.images, retry)
        self._run([inner])
        exc = retry.exception()
        if exc is not None:
            request.future.set_exception(exc)
        else:
            request.future.set_result(retry.result())

    def _call(self, images: list[bytes]) -> Any:
        assert self.conn is not None
        try:
            self.conn.send(("predict", images))
            while not self.conn.poll(_POLL):
                if not self.proc.is_alive():
                    raise _LoadError(f"exit code {self.proc.exitcode}")
            return self.conn.recv()
        except (EOFError, OSError, BrokenPipeError) as e:
            raise _LoadError(str(e) or type(e).__name__) from None

    def _close_process(self) -> None:
        proc, conn = self.proc, self.conn
        self.proc, self.conn = None, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send(None)
        if proc is not None:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
            proc.close()
        if conn is not None:
            conn.close()


class _Pool:
    """One version's units and request queue."""

    def __init__(self, host: ProcessInferenceHost, version_id: int) -> None:
        self.host, self.version_id = host, version_id
        self.files: Mapping[str, bytes] = {}
        self.queue: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self.units: list[_Unit] = []
        self.target = 0
        self.ready = threading.Event()  # set once the start ended, either way
        self.accepting = False  # every unit of the start has loaded
        self.failed: str | None = None
        self.closed = False
        self.lock = threading.Lock()
        self.last_request = host.clock()
        self.served = 0
        self.restarts = 0
        self._numbers = 0

    def add(self, threads: int) -> _Unit | None:
        """A new unit, booting on its own thread; None once the pool is closed."""
        with self.lock:
            if self.closed:
                return None
            self._numbers += 1
            unit = _Unit(self, threads, self._numbers)
            # started before another thread can see it in units: a stop joins every unit it finds there
            # (joining one not started yet raised, and the version stayed STOPPING)
            unit.start()
            self.units.append(unit)
        return unit

    def forget(self, unit: _Unit) -> None:
        with self.lock:
            if unit in self.units:
                self.units.remove(unit)

    def live(self) -> list[_Unit]:
        with self.lock:
            return [u for u in self.units if not u.retire.is_set()]

    def put(self, request: _Request) -> None:
        with self.lock:
            if self.closed:
                raise NotReady(f"model version {self.version_id} is stopping")
            self.queue.put(request)
            self.last_request = self.host.clock()

    def fail_queued(self, message: str) -> None:
        while True:
            try:
                r = self.queue.get_nowait()
            except queue.Empty:
                return
            if r.future.set_running_or_notify_cancel():
                r.future.set_exception(NotReady(message))


class ProcessInferenceHost:
    """Implements core.ports.InferenceHost with worker processes.

    ``threads`` CPU threads (0: one per core) are split between the units of a version, at least 1
    each; ``start_method`` defaults to forkserver (spawn where there is none); ``clock`` measures idle
    time (tests inject one)."""

    def __init__(
        self,
        engine_factory: EngineFactory,
        *,
        threads: int = 0,
        max_batch: int = 8,
        start_timeout: float = 300.0,
        start_method: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine_factory = engine_factory
        self.threads = threads or os.cpu_count() or 1
        self.max_batch = max(1, max_batch)
        self.start_timeout = start_timeout
        self.clock = clock
        methods = multiprocessing.get_all_start_methods()
        method = start_method or ("forkserver" if "forkserver" in methods else "spawn")
        self.context: Any = multiprocessing.get_context(method)
        if method == "forkserver":
            # units fork from a clean process that has already imported the heavy modules
            # (a missing optional module is skipped by the forkserver)
            self.context.set_forkserver_preload(
                [
                    "visionloop.workflows.inference",
                    "PIL.Image",
                    "visionloop.engines.classification",
                    "onnxruntime",
                ]
            )
        self._pools: dict[int, _Pool] = {}
        self._lock = threading.Lock()

    def threads_per_unit(self, units: int) -> int:
        return max(1, self.threads // max(1, units))

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(
        self, version_id: int, files: Callable[[], Mapping[str, bytes]], units: int, started: StartedFn
    ) -> None:
        with self._lock:
            if version_id in self._pools:
                raise Conflict(f"model version {version_id} already has inference units here")
            pool = self._pools[version_id] = _Pool(self, version_id)
        pool.target = units
        threading.Thread(
            target=self._start, args=(pool, files, units, started), name=f"visionloop-start-{version_id}"
        ).start()

    def _start(
        self, pool: _Pool, files: Callable[[], Mapping[str, bytes]], units: int, started: StartedFn
    ) -> None:
        began = time.perf_counter()
        error: str | None = None
        try:
            pool.files = dict(files())
            threads = self.threads_per_unit(units)
            first = pool.add(threads)  # alone first: it fills shared caches (e.g. an ONNX export)
            if first is not None:
                first.loaded.wait()
                error = first.error
            if error is None:
                rest = [pool.add(threads) for _ in range(units - 1)]
                for unit in rest:
                    if unit is not None:
                        unit.loaded.wait()
                error = next((u.error for u in rest if u is not None and u.error), None)
        except Exception as e:  # e.g. a corrupt artifact
            error = e.message if isinstance(e, VisionloopError) else f"{type(e).__name__}: {e}"
        if pool.closed:
            error = "it was stopped while starting"
        if error is not None:
            pool.failed = error
            self._discard(pool)
            self._notify(started, None, error)
            pool.ready.set()
            return
        pool.last_request = self.clock()
        pool.accepting = True  # before the callback: whoever sees RUNNING recorded can submit
        self._notify(started, time.perf_counter() - began, None)
        pool.ready.set()  # after it: whoever waited sees RUNNING recorded

    @staticmethod
    def _notify(started: StartedFn, seconds: float | None, error: str | None) -> None:
        try:
            started(seconds, error)
        except Exception:
            log.exception("recording the start of a model version failed")

    def _discard(self, pool: _Pool) -> None:
        with self._lock:
            if self._pools.get(pool.version_id) is pool:
                del self._pools[pool.version_id]
        with pool.lock:
            pool.closed = True
        pool.fail_queued(f"model version {pool.version_id} is stopping")
        for unit in pool.live():
            unit.retire.set()

    def scale(self, version_id: int, units: int) -> None:
        pool = self._pools.get(version_id)
        if pool is None or pool.closed or units < 1:
            return
        pool.target = units
        live = pool.live()
        for _ in range(units - len(live)):
            if pool.add(self.threads_per_unit(units)) is None:
                return
        for unit in live[units:]:  # the newest go first
            unit.retire.set()

    def stop(self, version_id: int, stopped: Callable[[], None] | None = None) -> None:
        with self._lock:
            pool = self._pools.get(version_id)
        if pool is None:
            if stopped is not None:
                stopped()
            return
        self._discard(pool)
        pool.ready.set()

        def finish() -> None:
            with pool.lock:
                units = list(pool.units)
            for unit in units:
                unit.join()
            pool.fail_queued(f"model version {version_id} is stopped")
            if stopped is not None:
                try:
                    stopped()
                except Exception:
                    log.exception("recording the stop of model version %s failed", version_id)

        threading.Thread(target=finish, name=f"visionloop-stop-{version_id}").start()

    def close(self) -> None:
        """Stop every pool and wait for its processes."""
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            self._discard(pool)
            pool.ready.set()
        for pool in pools:
            with pool.lock:
                units = list(pool.units)
            for unit in units:
                unit.join()

    # --- requests ----------------------------------------------------------------------------------

    def submit(self, version_id: int, images: Sequence[bytes]) -> Future[list[ImageOutput]]:
        pool = self._pools.get(version_id)
        if pool is None or not pool.accepting or pool.failed is not None:
            raise NotReady(f"model version {version_id} has no inference units serving here")
        future: Future[list[ImageOutput]] = Future()
        pool.put(_Request(list(images), future))
        return future

    def stats(self, version_id: int) -> PoolStats | None:
        pool = self._pools.get(version_id)
        if pool is None:
            return None
        units = pool.live()
        return PoolStats(
            units=sum(u.serving for u in units),
            loading=sum(not u.loaded.is_set() for u in units),
            target=pool.target,
            busy=sum(u.busy for u in units),
            queued=pool.queue.qsize(),
            idle_seconds=max(0.0, self.clock() - pool.last_request),
            served=pool.served,
            restarts=pool.restarts,
        )

    def versions(self) -> list[int]:
        with self._lock:
            return list(self._pools)

    def wait_ready(self, version_id: int, timeout: float) -> bool:
        pool = self._pools.get(version_id)
        if pool is None:
            return False
        return pool.ready.wait(timeout) and pool.failed is None and not pool.closed

    def unit_pids(self, version_id: int) -> list[int]:
        """Process ids of the version's serving units (for tests and diagnostics)."""
        pool = self._pools.get(version_id)
        return [u.proc.pid for u in pool.live() if u.proc is not None] if pool else []
