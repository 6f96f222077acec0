"""Shared-database benchmark: how fast workers claim jobs and reviewers lease review items, on a SQLite
file and on PostgreSQL, with one server and with two servers on the same database (docs/scale.md).

A "server" is one SqlRepository: its own engine, connection pool and in-process writer, as each
`visionloop serve` process has. ``--jobs`` queued jobs are claimed by ``--threads`` threads in all (split
between the servers) until none is left; then ``--loops`` review items that need one answer each are
leased by as many reviewers, ``--threads`` at a time. Printed per setup: claims/s and leases/s, and the
counts that prove no double work (every job claimed once, every item leased once).

    .venv/bin/python bench/shared_database.py [--jobs 400] [--loops 300] [--threads 8] [--json]

PostgreSQL is a throw-away cluster from Debian's binaries (tests/storage/postgres.py), on a unix socket
with fsync off, so its figures are those of the database's locking, not of a disk; it is skipped with the
reason when the binaries or psycopg are missing. SQLite's figures are with its default settings (WAL,
synchronous=NORMAL) on this machine's disk.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.storage: the cluster, the loops

from tests.storage.postgres import start_cluster, why_unavailable  # noqa: E402
from tests.storage.test_concurrent_stores import NOW, new_loop  # noqa: E402
from visionloop.core.entities import TaskType  # noqa: E402
from visionloop.core.records.review import FlowSettings  # noqa: E402
from visionloop.storage.sql import SqlRepository  # noqa: E402


def drain(threads: int, take: Callable[[int], Any]) -> tuple[list[Any], float]:
    """``threads`` threads call ``take(thread)`` until it answers None; everything taken and the seconds."""
    got: list[Any] = []
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)

    def loop(i: int) -> None:
        start.wait()
        while (item := take(i)) is not None:
            with lock:
                got.append(item)

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(loop, i) for i in range(threads)]
        start.wait()
        t0 = time.perf_counter()
        for f in futures:
            f.result()
    return got, time.perf_counter() - t0


def claims(repos: list[SqlRepository], jobs: int, threads: int) -> dict[str, Any]:
    project = repos[0].create_project("jobs", TaskType.CLASSIFICATION, NOW)
    for _ in range(jobs):
        repos[0].create_job("train", project.id, None, NOW)
    taken, seconds = drain(threads, lambda i: repos[i % len(repos)].claim_job(NOW, worker=f"w{i}"))
    ids = [job.id for job in taken]
    return {"claimed": len(ids), "distinct": len(set(ids)), "per_second": round(len(ids) / seconds, 1)}


def leases(repos: list[SqlRepository], loops: int, threads: int) -> dict[str, Any]:
    project = repos[0].create_project("review", TaskType.CLASSIFICATION, NOW)
    flow = repos[0].create_flow(project.id, "f", "arn:f", FlowSettings(labels=("a", "b")), NOW)
    for i in range(loops):
        repos[0].create_loop(new_loop(flow.id, i), NOW)
    reviewers = iter(range(10**9))  # each lease by a new reviewer: an item is leased once, then it is full
    names = threading.Lock()

    def lease(i: int) -> int | None:
        with names:
            reviewer = f"r{next(reviewers)}"
        got = repos[i % len(repos)].lease_next_loop(reviewer, NOW, NOW)
        return None if got is None else got[0].id

    taken, seconds = drain(threads, lease)
    return {"leased": len(taken), "distinct": len(set(taken)), "per_second": round(len(taken) / seconds, 1)}


def measure(url: str, servers: int, args: argparse.Namespace) -> dict[str, Any]:
    repos = [SqlRepository(url) for _ in range(servers)]
    try:
        return {
            "servers": servers,
            "claims": claims(repos, args.jobs, args.threads),
            "leases": leases(repos, args.loops, args.threads),
        }
    finally:
        for repo in repos:
            repo.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--loops", type=int, default=300)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for servers in (1, 2):
            url = f"sqlite:///{Path(tmp) / f'meta{servers}.db'}"
            results.append({"database": "sqlite", **measure(url, servers, args)})
    reason = why_unavailable()
    if reason is None:
        cluster = start_cluster()
        try:
            for servers in (1, 2):
                results.append({"database": "postgresql", **measure(cluster.fresh_database(), servers, args)})
        finally:
            cluster.stop()
    if args.json:
        print(json.dumps({"results": results, "postgresql_skipped": reason}, indent=2))
        return
    print(f"{args.jobs} jobs, {args.loops} review items, {args.threads} threads")
    print(f"{'database':<11} {'servers':>7} {'claims/s':>9} {'once':>5} {'leases/s':>9} {'once':>5}")
    for r in results:
        c, le = r["claims"], r["leases"]
        c_once = c["claimed"] == c["distinct"] == args.jobs
        l_once = le["leased"] == le["distinct"] == args.loops
        print(
            f"{r['database']:<11} {r['servers']:>7} {c['per_second']:>9} {'yes' if c_once else 'NO':>5} "
            f"{le['per_second']:>9} {'yes' if l_once else 'NO':>5}"
        )
    if reason is not None:
        print(f"PostgreSQL skipped: {reason}")


if __name__ == "__main__":
    main()
