"""What each process of the concurrent-writers test runs (a module of its own so that a spawned process
can import it): several threads, each with a repository of its own on the same database, that mix
read-then-write transactions (add_labels adds labels another thread may add at the same time; claim_job
reads the oldest queued job, then updates it; claim_inbox_item reads the open item of a key, then
inserts one)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from visionloop.core.records.inbox import InboxKind
from visionloop.storage.sql import SqlRepository

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def write_concurrently(
    url: str, project_id: int, name: str, threads: int, rounds: int
) -> tuple[list[int], list[int]]:
    """Per round, each thread adds a label of its own and one every thread adds, claims a job and claims
    the inbox key of the round (every thread tries the same key). Returns the ids of the jobs and of the
    inbox items this process claimed; an exception fails the test."""

    def work(thread: int) -> tuple[list[int], list[int]]:
        repo = SqlRepository(url, auto_migrate=False)
        jobs: list[int] = []
        items: list[int] = []
        try:
            for i in range(rounds):
                repo.add_labels(project_id, [f"label-{i}", f"{name}-{thread}-{i}"])
                job = repo.claim_job(NOW, worker=f"{name}-{thread}")
                if job is not None:
                    jobs.append(job.id)
                stale = NOW - timedelta(hours=1)
                item = repo.claim_inbox_item(project_id, InboxKind.DETECT, f"k{i}", "h" * 64, NOW, stale)
                if item is not None:
                    items.append(item.id)
        finally:
            repo.close()
        return jobs, items

    with ThreadPoolExecutor(threads) as pool:
        done = list(pool.map(work, range(threads)))
    return [j for jobs, _ in done for j in jobs], [i for _, items in done for i in items]
