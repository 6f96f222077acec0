"""Read-then-write transactions of the stores, run by several threads at once on SQLite and PostgreSQL:
what SQLite's one writer orders by itself must hold on PostgreSQL too, where writers run side by side."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from visionloop.core.entities import ImageInfo, TaskType
from visionloop.core.records.review import FlowSettings, HumanLoop, Lease, LoopPurpose, NewLoop
from visionloop.core.records.schedules import Schedule
from visionloop.storage.sql import SqlRepository

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T = TypeVar("T")


def at_once(n: int, fn: Callable[[int], T]) -> list[T]:
    """``fn(0..n-1)`` in n threads released together."""
    start = threading.Barrier(n)

    def run(i: int) -> T:
        start.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def new_loop(flow_id: int, i: int) -> NewLoop:
    image = ImageInfo("JPEG", 10, 10, 100, f"{i:064x}")
    return NewLoop(
        name=f"loop-{i}",
        flow_id=flow_id,
        purpose=LoopPurpose.EXPLICIT,
        expires_at=NOW + timedelta(days=1),
        image=image,
        source_ref=f"s3://b/{i}.jpg",
        input_content="{}",
        input_hash=f"{i:064x}",
        answers_needed=1,
    )


def lease(repo: SqlRepository, rnd: int, i: int) -> tuple[HumanLoop, Lease] | None:
    return repo.lease_next_loop(f"r{rnd}-{i}", NOW, NOW)


def create_schedule(repo: SqlRepository, project_id: int, rnd: int, i: int) -> Schedule:
    return repo.create_schedule(project_id, f"kind{rnd}", NOW, interval_minutes=float(i + 1))


def test_a_loop_is_leased_to_as_many_reviewers_as_it_needs(repo: SqlRepository) -> None:
    p = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    flow = repo.create_flow(p.id, "f", "arn:f", FlowSettings(labels=("a", "b")), NOW)
    for rnd in range(4):  # each round: 3 new loops, 8 new reviewers asking at once
        for i in range(3):
            repo.create_loop(new_loop(flow.id, rnd * 3 + i), NOW)
        leased = at_once(8, functools.partial(lease, repo, rnd))
        loops = sorted(got[0].id for got in leased if got is not None)
        assert len(loops) == 3 and len(set(loops)) == 3, loops


def test_a_schedule_created_at_once_is_one_schedule(repo: SqlRepository) -> None:
    p = repo.create_project("p", TaskType.CLASSIFICATION, NOW)
    for rnd in range(4):
        at_once(6, functools.partial(create_schedule, repo, p.id, rnd))
        (schedule,) = [s for s in repo.list_schedules(p.id) if s.kind == f"kind{rnd}"]
        assert schedule.interval_minutes in {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}
