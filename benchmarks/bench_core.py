"""Throughput of the core operations, on the memory store and on Redis.

Measures key-value ``get`` and ``setex`` and ``SessionManager.validate_session``
and prints a Markdown table. A benchmark, not a test: numbers depend on the
machine, the Python build and, for Redis, the network round trip.

    python benchmarks/bench_core.py                       # memory store only
    python benchmarks/bench_core.py --start-redis         # + a throwaway Redis
    python benchmarks/bench_core.py --redis-url redis://127.0.0.1:6380/0

Against an existing Redis it writes only under a random prefix and deletes
what it wrote before leaving.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from aiosessions import KeyValueSession, MemoryStore, SessionManager, Store

DESCRIPTION = "Throughput of aiosessions' core operations."
KEY_POOL = 1024  # distinct keys that setex cycles through
VALUE = "x" * 64


@dataclass
class Result:
    operation: str
    store: str
    ops: int
    seconds: float

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.seconds

    @property
    def micros_per_op(self) -> float:
        return self.seconds / self.ops * 1e6


async def measure(
    call: Callable[[int], Awaitable[object]], ops: int, concurrency: int
) -> float:
    """Run *call* ``ops`` times over *concurrency* tasks; return seconds."""

    async def worker(first: int) -> None:
        for i in range(first, ops, concurrency):
            await call(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return time.perf_counter() - start


async def bench_store(
    store: Store, label: str, ops: int, concurrency: int, warmup: int
) -> list[Result]:
    run = secrets.token_hex(4)
    kv = KeyValueSession(store, namespace=f"aiosessions:bench:{run}:")
    manager = SessionManager(f"bench-{run}", default_ttl_hours=1, store=store)
    keys = [f"k{i}" for i in range(KEY_POOL)]

    async def kv_setex(i: int) -> None:
        await kv.setex(keys[i % KEY_POOL], 60, VALUE)

    async def kv_get(i: int) -> None:
        await kv.get(keys[i % KEY_POOL])

    session_id = await manager.allocate_session(user_id="bench")

    async def validate(i: int) -> None:
        if not await manager.validate_session(session_id):
            raise RuntimeError("the benchmark session expired")

    calls = [
        ("kv setex", kv_setex),
        ("kv get", kv_get),
        ("validate_session", validate),
    ]
    results = []
    try:
        for name, call in calls:
            await measure(call, warmup, concurrency)
            seconds = await measure(call, ops, concurrency)
            results.append(Result(name, label, ops, seconds))
    finally:
        await manager.delete_session(session_id)
        for key in keys:
            await kv.delete(key)
    return results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def own_redis() -> Iterator[str]:
    """Start a throwaway redis-server on a free loopback port; yield its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("--start-redis needs redis-server on PATH")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="aiosessions-bench-") as workdir:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", workdir]
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for_port(port, process)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"redis-server exited with code {process.returncode}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        time.sleep(0.05)
    raise SystemExit(f"redis-server did not listen on port {port} within 10 s")


def table(results: list[Result]) -> str:
    lines = [
        "| operation | store | ops/sec | µs/op |",
        "|---|---|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.operation} | {r.store} | {r.ops_per_second:,.0f}"
            f" | {r.micros_per_op:.1f} |"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace, redis_url: str | None) -> list[Result]:
    results = await bench_store(
        MemoryStore(), "memory", args.ops, args.concurrency, args.warmup
    )
    if redis_url is not None:
        from aiosessions import RedisStore

        async with RedisStore(redis_url) as store:
            await store.ping()
            results += await bench_store(
                store, "redis", args.redis_ops, args.concurrency, args.warmup
            )
    return results


def positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument(
        "--ops",
        type=positive,
        default=50_000,
        help="operations per measurement on the memory store (default 50000)",
    )
    parser.add_argument(
        "--redis-ops",
        type=positive,
        default=10_000,
        help="operations per measurement on Redis (default 10000)",
    )
    parser.add_argument(
        "--concurrency",
        type=positive,
        default=1,
        help="tasks issuing operations at once (default 1: one after another)",
    )
    parser.add_argument(
        "--warmup",
        type=positive,
        default=200,
        help="untimed operations before each measurement (default 200)",
    )
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
        f"aiosessions core benchmark: Python {python},"
        f" concurrency {args.concurrency}, memory {args.ops} ops,"
        f" redis {args.redis_ops} ops per operation\n"
    )

    with contextlib.ExitStack() as stack:
        redis_url = args.redis_url
        if args.start_redis:
            redis_url = stack.enter_context(own_redis())
        results = asyncio.run(run(args, redis_url))

    print(table(results))


if __name__ == "__main__":
    main()
