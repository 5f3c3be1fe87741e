"""Workloads: what is timed, and how.

Every call is timed in one pass over prepared arguments. With ``tasks`` > 1
the pass is split over that many tasks started at once with
:func:`asyncio.gather`, so up to ``tasks`` calls are in flight together.
A call that raises, or answers what the library promises not to (a live
session reported invalid, a stored value not found), counts as an error.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .libs import Lib

__all__ = ["bytes_suite", "ops_suite", "scale_suite"]

VALUE = "v" * 64
KV_TTL = 600  # seconds
METADATA = {"role": "member", "theme": "dark"}
Check = Callable[[Any], bool]


def _user(i: int) -> str:
    return f"user{i:07d}"


@dataclass
class Sample:
    """One timed pass."""

    workload: str
    lib: str
    backend: str
    tasks: int
    ops: int
    seconds: float
    errors: int

    @property
    def ops_per_sec(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ops_per_sec": self.ops_per_sec}


async def timed(
    call: Callable[..., Awaitable[Any]],
    args: Sequence[tuple[Any, ...]],
    tasks: int,
    check: Check | None = None,
) -> tuple[float, int, list[Any]]:
    """Await ``call(*args[i])`` for every i over *tasks* tasks.

    Returns the seconds taken, the error count and the results.
    """
    n = len(args)
    results: list[Any] = [None] * n
    failures = 0

    async def worker(first: int) -> None:
        nonlocal failures
        for i in range(first, n, tasks):
            try:
                results[i] = await call(*args[i])
            except Exception:
                failures += 1

    start = time.perf_counter()
    if tasks == 1:
        await worker(0)
    else:
        await asyncio.gather(*(worker(t) for t in range(min(tasks, n))))
    seconds = time.perf_counter() - start
    if check is not None:
        failures += sum(1 for r in results if not check(r))
    return seconds, failures, results


def _is_value(result: Any) -> bool:
    return result == VALUE


def _truthy(result: Any) -> bool:
    return bool(result)


def _anything(result: Any) -> bool:
    return True


async def kv_passes(lib: Lib, n: int, tasks: int) -> list[Sample]:
    """setex, get, then delete, each over the same *n* distinct keys."""
    run = random.getrandbits(32)
    keys = [f"bench:{run:x}:{i}" for i in range(n)]
    passes: list[tuple[str, Callable[..., Awaitable[Any]], list[Any], Check]] = [
        ("kv setex", lib.kv_setex, [(k, KV_TTL, VALUE) for k in keys], _anything),
        ("kv get", lib.kv_get, [(k,) for k in keys], _is_value),
        ("kv delete", lib.kv_delete, [(k,) for k in keys], _truthy),
    ]
    samples = []
    for name, call, args, check in passes:
        seconds, errors, _ = await timed(call, args, tasks, check)
        samples.append(Sample(name, lib.name, lib.backend, tasks, n, seconds, errors))
    return samples


async def manager_passes(lib: Lib, n: int, tasks: int) -> list[Sample]:
    """allocate *n* sessions, then validate, read, update, count, delete each."""
    samples = []

    def record(name: str, seconds: float, errors: int) -> None:
        samples.append(Sample(name, lib.name, lib.backend, tasks, n, seconds, errors))

    users = [(_user(i), METADATA) for i in range(n)]
    seconds, errors, ids = await timed(lib.allocate, users, tasks, _truthy)
    record("allocate", seconds, errors)
    one = [(sid,) for sid in ids if sid]

    passes: list[tuple[str, Callable[..., Awaitable[Any]] | None, list[Any]]] = [
        ("validate", lib.validate, one),
        ("get_info", lib.get_info, one),
        ("update", lib.update, [(sid, {"cart": i}) for i, (sid,) in enumerate(one)]),
        ("increment", lib.increment, [(sid, "hits") for (sid,) in one]),
        ("delete", lib.delete, one),
    ]
    for name, call, args in passes:
        if call is None:
            continue  # the library has no such operation
        seconds, errors, _ = await timed(call, args, tasks, _truthy)
        record(name, seconds, errors + n - len(args))
    return samples


async def _group(
    lib: Lib, passes: Any, tasks: int, budget: float, limits: tuple[int, int]
) -> list[Sample]:
    """Warm up, size the pass to about *budget* seconds, then measure."""
    low, high = limits
    warm = max(tasks, 200)
    trial = await passes(lib, warm, tasks)
    per_op = max(s.seconds / s.ops for s in trial)
    n = int(budget / per_op) if per_op > 0 else high
    n = max(low, min(high, n))
    n = -(-n // tasks) * tasks  # whole rounds of tasks
    gc.collect()
    samples: list[Sample] = await passes(lib, n, tasks)
    return samples


async def ops_suite(
    lib: Lib, budget: float, concurrency: int, limits: tuple[int, int]
) -> list[dict[str, Any]]:
    """Key-value and manager calls, one at a time and *concurrency* at once."""
    samples: list[Sample] = []
    for tasks in (1, concurrency):
        for passes in (kv_passes, manager_passes):
            samples += await _group(lib, passes, tasks, budget, limits)
    return [s.as_dict() for s in samples]


def rss_bytes() -> int:
    """Resident set size of this process (Linux ``/proc``; else peak RSS)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def bytes_suite(lib: Lib, n: int) -> dict[str, Any]:
    """Bytes per session with a user id and two metadata fields.

    Memory: Python heap growth traced by :mod:`tracemalloc`, divided by
    *n*. Redis: the mean ``MEMORY USAGE`` of the session keys, and the growth
    of ``used_memory`` divided by *n*.
    """
    if lib.backend == "memory":
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            await lib.allocate(_user(i), METADATA)  # ids dropped: not counted
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return {"sessions": n, "bytes_per_session": (after - before) / n}

    import redis

    assert lib.url is not None
    client = redis.Redis.from_url(lib.url, decode_responses=True)
    try:
        before = int(client.info("memory")["used_memory"])
        ids = [await lib.allocate(_user(i), METADATA) for i in range(n)]
        after = int(client.info("memory")["used_memory"])
        sample = ids[:: max(1, n // 500)]
        usage = [client.memory_usage(lib.store_key(s), samples=0) for s in sample]
        client.delete(*(lib.store_key(s) for s in ids))
    finally:
        client.close()
    return {
        "sessions": n,
        "bytes_per_session": sum(usage) / len(usage),
        "used_memory_per_session": (after - before) / n,
        "key_example_length": len(lib.store_key(ids[0])),
    }


async def _per_op(
    call: Callable[..., Awaitable[Any]], args: list[tuple[Any, ...]]
) -> float:
    seconds, errors, _ = await timed(call, args, 1)
    if errors:
        raise RuntimeError(f"{errors} errors while timing at scale")
    return seconds / len(args) * 1e6


async def scale_suite(
    lib: Lib, sizes: Sequence[int], probe: int, progress: Any
) -> dict[str, Any]:
    """Per-call cost and RSS as the memory store grows to each of *sizes*."""
    rng = random.Random(7)
    ids: list[str] = []
    points = []
    with progress(total=max(sizes), desc=f"{lib.name}: sessions", unit="") as bar:
        for size in sizes:
            while len(ids) < size:
                ids.append(await lib.allocate(_user(len(ids)), METADATA))
                bar.update()
            gc.collect()
            rss = rss_bytes()
            picked = [(sid,) for sid in rng.sample(ids, min(probe, size))]
            validate_us = await _per_op(lib.validate, picked)
            get_us = await _per_op(lib.get_info, picked)
            extra = [(_user(len(ids) + i), METADATA) for i in range(probe)]
            allocate_us = await _per_op(lib.allocate, extra)
            points.append(
                {
                    "sessions": size,
                    "validate_us": validate_us,
                    "get_info_us": get_us,
                    "allocate_us": allocate_us,
                    "rss_mb": rss / 2**20,
                    "rss_bytes_per_session": rss / size,
                }
            )
    result: dict[str, Any] = {"points": points}
    if lib.name == "aiosessions":
        result["reclaim"] = await _reclaim(lib, max(10_000, max(sizes) // 10))
    return result


async def _reclaim(lib: Lib, expiring: int) -> dict[str, Any]:
    """Show that expired entries go without a full scan.

    *expiring* sessions with a 1 s idle timeout are added to the full store;
    once they are expired, timed key-value writes reclaim them as they go.
    The same number of writes timed before they were added is the baseline.
    """
    from aiosessions import MemoryStore, SessionManager

    store = getattr(lib, "store", None)
    assert isinstance(store, MemoryStore)
    writes = expiring // 32
    setex = lib.kv_setex
    base = await _per_op(setex, [(f"base:{i}", KV_TTL, VALUE) for i in range(writes)])

    short = SessionManager("bench-expiring", store=store, idle_timeout=1)
    for i in range(expiring):
        await short.allocate_session(user_id=_user(i))
    held = len(store)
    await asyncio.sleep(2.1)  # past the last one-second bucket

    start = time.perf_counter()
    during = await _per_op(
        setex, [(f"after:{i}", KV_TTL, VALUE) for i in range(writes)]
    )
    left = len(store) - writes
    cleanup_start = time.perf_counter()
    swept = await store.cleanup()
    cleanup_ms = (time.perf_counter() - cleanup_start) * 1000
    return {
        "expired_sessions": expiring,
        "entries_before": held,
        "writes": writes,
        "reclaimed_by_writes": held - left,
        "write_us_baseline": base,
        "write_us_while_reclaiming": during,
        "writes_seconds": time.perf_counter() - start,
        "reclaimed_by_cleanup": swept,
        "cleanup_ms": cleanup_ms,
    }


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import platform

    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        model = platform.processor()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }
