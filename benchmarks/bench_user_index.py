"""Cost of ``list_user_sessions`` as other users' sessions pile up.

One user keeps a handful of sessions while the store fills with the
sessions of other users, step by step (10,000 to 1,000,000 by default on
the memory store). At each step the benchmark times ``list_user_sessions``
for that one user, and, for contrast, one full count of the sandbox's
session keys (a keyspace scan, what a per-user lookup without an index
would cost). A benchmark, not a test: it prints a Markdown table and
checks nothing but that the listing stays right.

    python -m benchmarks.bench_user_index                   # memory store
    python -m benchmarks.bench_user_index --start-redis     # + a throwaway Redis
    python -m benchmarks.bench_user_index --redis-url redis://127.0.0.1:6380/0

Run it from the repository root: ``--start-redis`` starts a redis-server of
its own on a free loopback port through ``tests/servers.py``.

Against an existing Redis it writes only under a random sandbox and deletes
every key of that sandbox before leaving.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from aiosessions import MemoryStore, SessionManager, Store

DESCRIPTION = "list_user_sessions cost as other users' sessions grow."
MEMORY_STEPS = "10000,100000,1000000"
REDIS_STEPS = "10000,50000,100000"
FILL_CHUNK = 1000  # allocations awaited together while filling


@dataclass
class Row:
    store: str
    others: int
    users: int
    listed: int
    samples: list[float]  # seconds per list_user_sessions call
    scan_seconds: float

    def median_us(self) -> float:
        return statistics.median(self.samples) * 1e6

    def p90_us(self) -> float:
        ordered = sorted(self.samples)
        return ordered[int(0.9 * (len(ordered) - 1))] * 1e6


async def fill(manager: SessionManager, start: int, stop: int, per_user: int) -> None:
    """Create other users' sessions number *start* to *stop* - 1."""
    for first in range(start, stop, FILL_CHUNK):
        last = min(first + FILL_CHUNK, stop)
        await asyncio.gather(
            *(
                manager.allocate_session(user_id=f"user-{n // per_user}")
                for n in range(first, last)
            )
        )


async def bench_store(
    store: Store, label: str, steps: list[int], args: argparse.Namespace
) -> list[Row]:
    manager = SessionManager(
        f"bench-{secrets.token_hex(4)}", default_ttl_hours=2, store=store
    )
    mine = {await manager.allocate_session(user_id="target") for _ in range(args.mine)}
    rows: list[Row] = []
    try:
        filled = 0
        for step in steps:
            started = time.perf_counter()
            await fill(manager, filled, step, args.per_user)
            filled = step
            print(
                f"  {label}: {step:,} other sessions written"
                f" in {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
            for _ in range(args.warmup):
                await manager.list_user_sessions("target")
            samples = []
            for _ in range(args.runs):
                began = time.perf_counter()
                listed = await manager.list_user_sessions("target")
                samples.append(time.perf_counter() - began)
            if {s.session_id for s in listed} != mine:
                raise RuntimeError("list_user_sessions lost or invented a session")
            began = time.perf_counter()
            counted = await store.count(manager.keys.session_prefix)
            scan = time.perf_counter() - began
            if counted != step + len(mine):
                raise RuntimeError(
                    f"expected {step + len(mine)} sessions, saw {counted}"
                )
            users = -(-step // args.per_user)
            rows.append(Row(label, step, users, len(listed), samples, scan))
    finally:
        if not isinstance(store, MemoryStore):
            await drop_sandbox(store, manager)
    return rows


async def drop_sandbox(store: Store, manager: SessionManager) -> None:
    """Delete every key the run wrote (sessions, indexes, marks)."""
    keys = manager.keys
    for prefix in (keys.session_prefix, keys.user_index_prefix, keys.user_marks_prefix):
        async for batch in store.iter_keys(prefix, 1000):
            await asyncio.gather(*(store.delete(key) for key in batch))


def table(rows: list[Row]) -> str:
    lines = [
        "| store | other users' sessions | other users | sessions listed"
        " | list_user_sessions median µs | p90 µs | full scan of the sandbox ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.store} | {r.others:,} | {r.users:,} | {r.listed}"
            f" | {r.median_us():,.0f} | {r.p90_us():,.0f}"
            f" | {r.scan_seconds * 1000:,.0f} |"
        )
    return "\n".join(lines)


def positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


@contextlib.contextmanager
def own_redis() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port; yield its URL."""
    from tests.servers import RedisServer, redis_server_binary

    if redis_server_binary() is None:
        raise SystemExit("--start-redis needs redis-server on PATH")
    with RedisServer(name="bench-user-index") as server:
        yield server.url


def steps_of(text: str) -> list[int]:
    steps = sorted({positive(part) for part in text.split(",") if part.strip()})
    if not steps:
        raise argparse.ArgumentTypeError("give at least one step")
    return steps


async def run(args: argparse.Namespace, redis_url: str | None) -> list[Row]:
    rows: list[Row] = []
    if not args.skip_memory:
        rows += await bench_store(MemoryStore(), "memory", args.steps, args)
    if redis_url is not None:
        from aiosessions import RedisStore

        async with RedisStore(redis_url) as store:
            await store.ping()
            rows += await bench_store(store, "redis", args.redis_steps, args)
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument(
        "--steps",
        type=steps_of,
        default=steps_of(MEMORY_STEPS),
        help=f"other users' sessions to reach, memory store (default {MEMORY_STEPS})",
    )
    parser.add_argument(
        "--redis-steps",
        type=steps_of,
        default=steps_of(REDIS_STEPS),
        help=f"the same on Redis (default {REDIS_STEPS})",
    )
    parser.add_argument(
        "--per-user",
        type=positive,
        default=5,
        help="sessions per other user (default 5)",
    )
    parser.add_argument(
        "--mine",
        type=positive,
        default=10,
        help="sessions of the user who is listed (default 10)",
    )
    parser.add_argument(
        "--runs",
        type=positive,
        default=200,
        help="timed list_user_sessions calls per step (default 200)",
    )
    parser.add_argument(
        "--warmup",
        type=positive,
        default=20,
        help="untimed calls before each step's runs (default 20)",
    )
    parser.add_argument("--skip-memory", action="store_true", help="measure Redis only")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--redis-url", help="also measure this Redis")
    where.add_argument(
        "--start-redis",
        action="store_true",
        help="also measure a redis-server started on a free loopback port",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    python = sys.version.split()[0]
    print(
        f"aiosessions user index benchmark: Python {python}, {args.mine} sessions"
        f" listed, {args.per_user} sessions per other user, {args.runs} runs\n"
    )
    with contextlib.ExitStack() as stack:
        redis_url = args.redis_url
        if args.start_redis:
            redis_url = stack.enter_context(own_redis())
        rows = asyncio.run(run(args, redis_url))
    print(table(rows))


if __name__ == "__main__":
    main()
