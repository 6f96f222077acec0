"""The runners of batch inference (core.batch): who turns chunks of image keys into answer lines.

``LocalRunner``: worker processes on this machine (forkserver children, as the inference units), each
loading the model once and answering whole chunks on one CPU thread. ``RayRunner``: one Ray actor per
CPU of a Ray cluster (``ray`` is an optional extra, imported only here and only when asked for), each
loading the model once; the artifact goes to the cluster once through Ray's object store. Either way a
worker reads the images itself from the product's buckets (the settings' ``buckets_url``: with S3 every
node reads S3 directly) and only the answer lines come back to the process that writes the parts.

``run_batch_job`` is what the CLI and the REST API call; ``BatchJobs`` runs them in threads of the server.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from visionloop.core import analyzing
from visionloop.core.batch import (
    CUSTOM_LABELS,
    DEFAULT_PART_SIZE,
    BatchModel,
    BatchProgress,
    Chunk,
    ChunkRunner,
    Line,
    answer_each,
    read_progress,
    resolve_model,
    run_batch,
)
from visionloop.core.images import check_image
from visionloop.core.keys import ObjectRef, parse_s3_prefix
from visionloop.core.scoring import model_outputs, output_predictions
from visionloop.core.services import Services
from visionloop.core.serving import StoredImage, read_image
from visionloop.errors import Conflict, NotFound, Unavailable
from visionloop.settings import Settings
from visionloop.workflows.inference import EngineFactory

log = logging.getLogger("visionloop.batch")


class ImageAnswerer:
    """Answers a chunk's images with one loaded model or analyser (one per worker process or actor)."""

    def __init__(self, settings: Settings, model: BatchModel, engine_factory: EngineFactory) -> None:
        from visionloop.bootstrap import analyser_factory, build_services

        self.svc: Services = build_services(settings)
        self.model = model
        self.loaded: Any = None
        self.analysers: analyzing.AnalyserSource | None = None
        if model.kind == CUSTOM_LABELS:
            self.loaded = engine_factory(1).load(model.files)
        else:
            self.analysers = analyser_factory(settings, 1)

    def __call__(self, chunk: Chunk) -> list[Line]:
        if self.loaded is None:
            return answer_each(chunk.keys, functools.partial(self._analyse, chunk.bucket))
        return self._custom_labels(chunk)

    def _custom_labels(self, chunk: Chunk) -> list[Line]:
        """Read and check every image (each one's error its own), then predict the good ones together;
        should the batch fail, one at a time, so that only the bad image gets the error."""
        images: dict[str, bytes] = {}

        def read(key: str) -> dict[str, Any]:
            data, limits = read_image(self.svc, StoredImage(chunk.bucket, key))
            check_image(data, self.svc.inspector, limits)
            images[key] = data
            return {}

        lines = {line["key"]: line for line in answer_each(chunk.keys, read)}
        good = [k for k in chunk.keys if k in images]
        try:
            outputs = dict(zip(good, model_outputs(self.loaded, [images[k] for k in good]), strict=True))
        except Exception:
            outputs = {}
        for line in answer_each(good, lambda k: self._shape(outputs.get(k) or self._one(images[k]))):
            lines[line["key"]] = line
        return [lines[k] for k in chunk.keys]

    def _one(self, data: bytes) -> Any:
        return model_outputs(self.loaded, [data])[0]

    def _shape(self, output: Any) -> dict[str, Any]:
        from visionloop.aws.shapes import custom_labels

        m = self.model
        return custom_labels(output_predictions(output, m.thresholds, m.min_confidence, None))

    def _analyse(self, bucket: str, key: str) -> dict[str, Any]:
        from visionloop.aws import analysis as shapes

        assert self.analysers is not None
        ref, kind, low = ObjectRef(bucket, key), self.model.kind, self.model.min_confidence
        if kind == "labels":
            o = analyzing.LabelOptions() if low is None else analyzing.LabelOptions(min_confidence=low)
            return shapes.labels_answer(analyzing.detect_labels(self.svc, self.analysers, ref, o), True)
        if kind == "text":
            t = analyzing.TextOptions() if low is None else analyzing.TextOptions(min_confidence=low)
            return shapes.text_answer(analyzing.detect_text(self.svc, self.analysers, ref, t))
        m = analyzing.ModerationOptions() if low is None else analyzing.ModerationOptions(min_confidence=low)
        return shapes.moderation_answer(analyzing.detect_moderation_labels(self.svc, self.analysers, ref, m))

    def close(self) -> None:
        self.svc.close()


# --- local worker processes ----------------------------------------------------------------------------

_answerer: ImageAnswerer | None = None  # the worker process's own, built by _start_worker


def _start_worker(settings: Settings, model: BatchModel, engine_factory: EngineFactory) -> None:
    global _answerer
    _answerer = ImageAnswerer(settings, model, engine_factory)


def _answer(chunk: Chunk) -> list[Line]:
    assert _answerer is not None, "the worker process was not started by LocalRunner"
    return _answerer(chunk)


class LocalRunner:
    """``workers`` processes (0: one per CPU), each loading the model once; at most two chunks per
    worker are in flight, so that a kill loses little and memory stays flat on long listings."""

    def __init__(
        self, settings: Settings, model: BatchModel, engine_factory: EngineFactory, workers: int = 0
    ) -> None:
        self.settings, self.model, self.engine_factory = settings, model, engine_factory
        self.workers = workers or os.cpu_count() or 1

    def __call__(self, chunks: Sequence[Chunk]) -> Iterator[list[Line]]:
        if not chunks:
            return
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        workers = min(self.workers, len(chunks))
        args = (self.settings, self.model, self.engine_factory)
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=args)
        with pool:
            pending: set[Future[list[Line]]] = set()
            todo = iter(chunks)
            for chunk in todo:
                pending.add(pool.submit(_answer, chunk))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                    nxt = next(todo, None)
                    if nxt is not None:
                        pending.add(pool.submit(_answer, nxt))


# --- Ray -----------------------------------------------------------------------------------------------


def import_ray() -> Any:
    """The ``ray`` module, or a clear error naming the extra that brings it."""
    try:
        import ray
    except ImportError as e:
        raise Unavailable("batch inference on Ray needs the ray extra: pip install 'visionloop[ray]'") from e
    return ray


class _RayWorker:
    """A Ray actor around an ImageAnswerer (wrapped with ray.remote when the runner starts)."""

    def __init__(self, settings: Settings, model: BatchModel, engine_factory: EngineFactory) -> None:
        self.answerer = ImageAnswerer(settings, model, engine_factory)

    def answer(self, chunk: Chunk) -> list[Line]:
        return self.answerer(chunk)


class RayRunner:
    """One actor per worker (0: one per CPU of the cluster) on the Ray cluster at ``address`` ("local" or
    None: a Ray started in this process; an address already connected to is reused)."""

    def __init__(
        self,
        settings: Settings,
        model: BatchModel,
        engine_factory: EngineFactory,
        address: str | None,
        workers: int = 0,
        init_options: dict[str, Any] | None = None,
    ) -> None:
        # actors may start in another folder: a relative data folder is made absolute
        self.settings = settings.replace(data_dir=str(settings.data_path.resolve()))
        self.model, self.engine_factory = model, engine_factory
        self.address, self.workers, self.init_options = address, workers, init_options or {}
        import_ray()  # missing: say so before any work

    def __call__(self, chunks: Sequence[Chunk]) -> Iterator[list[Line]]:
        if not chunks:
            return
        ray = import_ray()
        from ray.util import ActorPool

        if not ray.is_initialized():
            address = None if self.address in (None, "", "local") else self.address
            ray.init(address=address, **self.init_options)
        workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        # an actor lost with its node comes back elsewhere and its chunk in flight is retried
        actor = ray.remote(num_cpus=1, max_restarts=2, max_task_retries=2)(_RayWorker)
        model_ref = ray.put(self.model)  # the artifact travels to the cluster once
        count = min(workers, len(chunks))
        actors = [actor.remote(self.settings, model_ref, self.engine_factory) for _ in range(count)]
        try:
            yield from ActorPool(actors).map_unordered(lambda a, c: a.answer.remote(c), list(chunks))
        finally:
            for a in actors:
                ray.kill(a)


# --- one batch job --------------------------------------------------------------------------------------


def run_batch_job(
    settings: Settings,
    model: str,
    source: str,
    out: str,
    *,
    engine_factory: EngineFactory | None = None,
    workers: int = 0,
    ray_address: str | None = None,
    part_size: int = DEFAULT_PART_SIZE,
    min_confidence: float | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
) -> BatchProgress:
    """Resolve the model, pick the runner (Ray when ``ray_address`` is given) and run the batch."""
    from visionloop.bootstrap import build_engine, build_services

    factory = engine_factory or functools.partial(build_engine, settings)
    svc = build_services(settings)
    try:
        batch_model = resolve_model(svc, model, min_confidence)
        runner: ChunkRunner
        if ray_address is not None:
            runner = RayRunner(settings, batch_model, factory, ray_address, workers)
        else:
            runner = LocalRunner(settings, batch_model, factory, workers)
        return run_batch(svc, batch_model, source, out, runner, part_size=part_size, on_progress=on_progress)
    finally:
        svc.close()


class BatchJobs:
    """Batch jobs a server runs in threads: one at a time per output prefix."""

    def __init__(self, settings: Settings, engine_factory: EngineFactory | None = None) -> None:
        self.settings, self.engine_factory = settings, engine_factory
        self._running: dict[str, threading.Thread] = {}
        self.errors: dict[str, str] = {}
        self._lock = threading.Lock()

    def start(self, model: str, source: str, out: str, **options: Any) -> None:
        bucket, prefix = parse_s3_prefix(out)
        key = f"{bucket}/{prefix}"
        with self._lock:
            thread = self._running.get(key)
            if thread is not None and thread.is_alive():
                raise Conflict(f"a batch job is already writing to {out}")
            thread = threading.Thread(
                target=self._run,
                args=(key, model, source, out, options),
                name=f"visionloop-batch-{key}",
                daemon=True,
            )
            self._running[key] = thread
            self.errors.pop(key, None)
            thread.start()

    def _run(self, key: str, model: str, source: str, out: str, options: dict[str, Any]) -> None:
        try:
            run_batch_job(self.settings, model, source, out, engine_factory=self.engine_factory, **options)
        except Exception as e:
            log.exception("the batch job writing to %s failed", out)
            self.errors[key] = getattr(e, "message", None) or f"{type(e).__name__}: {e}"

    def running(self, out: str) -> bool:
        bucket, prefix = parse_s3_prefix(out)
        thread = self._running.get(f"{bucket}/{prefix}")
        return thread is not None and thread.is_alive()

    def error(self, out: str) -> str | None:
        bucket, prefix = parse_s3_prefix(out)
        return self.errors.get(f"{bucket}/{prefix}")

    def state(self, svc: Services, out: str) -> dict[str, Any]:
        """The job's progress object, ``running`` (whether this server runs it now) and, for a job
        that stopped on an error, ``state: failed`` and ``error``; NotFound when there is none."""
        try:
            doc = read_progress(svc, out)
        except NotFound:
            if not self.running(out) and self.error(out) is None:
                raise
            doc = {"state": "starting"}
        doc["running"] = self.running(out)
        error = self.error(out)
        if error is not None:
            doc["state"], doc["error"] = "failed", error
        return doc

    def join(self, timeout: float | None = None) -> None:
        for thread in list(self._running.values()):
            thread.join(timeout)
