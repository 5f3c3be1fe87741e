"""Faults under load: restarts, failovers and killed connections.

Each test runs workers against a real set-up, breaks it, and checks that
operations in flight either succeed or raise ``BackendUnavailableError``,
that later operations succeed, and that no record is corrupted. Every loop
is bounded by a deadline and an iteration cap, so a test ends by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from aiosessions import BackendUnavailableError, RedisStore, SessionManager
from tests.conftest import fresh_redis
from tests.servers import RedisCluster, RedisSentinel, RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

WORKERS = 24
MAX_ITERATIONS = 20_000  # per worker: a cap far above what a run reaches


@dataclass
class Worker:
    """One session, incremented in a loop; what happened to each increment."""

    session_id: str
    confirmed: int = 0
    unknown: int = 0  # failed increments: they may or may not have counted


@dataclass
class Load:
    """Outcomes of every operation, with their times (monotonic seconds)."""

    successes: list[float] = field(default_factory=list)
    failures: list[float] = field(default_factory=list)
    unexpected: list[BaseException] = field(default_factory=list)

    @property
    def gap(self) -> float:
        """Seconds from the first failure to the first success after the last."""
        if not self.failures:
            return 0.0
        after = [t for t in self.successes if t > self.failures[-1]]
        end = after[0] if after else self.failures[-1]
        return end - self.failures[0]

    def report(self, what: str) -> str:
        total = len(self.successes) + len(self.failures)
        return (
            f"\n{what}: {len(self.failures)} of {total} operations failed "
            f"(BackendUnavailableError), gap {self.gap:.2f} s"
        )


async def run_load(
    mgr: SessionManager,
    fault: Callable[[], Awaitable[None]],
    *,
    settle: float = 1.0,
    deadline: float = 60.0,
) -> tuple[Load, list[Worker]]:
    """Run workers; after *settle* s run *fault*; stop *settle* s after it.

    Each worker validates its session and increments a counter in it, over
    and over. Returns the outcomes and the workers.
    """
    workers = [Worker(await mgr.allocate_session()) for _ in range(WORKERS)]
    load = Load()
    done = asyncio.Event()
    started = time.monotonic()

    async def work(worker: Worker) -> None:
        for _ in range(MAX_ITERATIONS):
            if done.is_set() or time.monotonic() - started > deadline:
                return
            try:
                assert await mgr.validate_session(worker.session_id)
                load.successes.append(time.monotonic())
            except BackendUnavailableError:
                load.failures.append(time.monotonic())
                await asyncio.sleep(0.02)
            try:
                await mgr.increment_metadata(worker.session_id, "n")
                worker.confirmed += 1
                load.successes.append(time.monotonic())
            except BackendUnavailableError:
                worker.unknown += 1
                load.failures.append(time.monotonic())
                await asyncio.sleep(0.02)
            except Exception as exc:  # anything else fails the test
                load.unexpected.append(exc)
                return

    async def break_it() -> None:
        await asyncio.sleep(settle)
        await fault()
        await asyncio.sleep(settle)
        done.set()

    await asyncio.gather(break_it(), *(work(w) for w in workers))
    return load, workers


async def check_records(
    mgr: SessionManager, workers: list[Worker], *, durable: bool
) -> None:
    """Every record parses; no counter passed what was attempted.

    With *durable* storage, no confirmed increment was lost either (Redis
    replication is asynchronous: a failover may lose the last writes).
    """
    for worker in workers:
        info = await mgr.get_session_info(worker.session_id)
        assert info is not None, "a live session vanished"
        count = info["custom_metadata"].get("n", 0)
        assert count <= worker.confirmed + worker.unknown
        if durable:
            assert count >= worker.confirmed


def assert_recovered(load: Load, since: float) -> None:
    assert not load.unexpected, load.unexpected[:3]
    later = [t for t in load.successes if t > since]
    assert later, "nothing succeeded after the fault"
    assert not [t for t in load.failures if t > later[0] + 0.5], (
        "failures went on after the store recovered"
    )


async def test_standalone_restart_under_load(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory(
        extra_args=["--appendonly", "yes", "--appendfsync", "always"]
    )
    store = RedisStore(server.url, retries=3, retry_backoff=0.05, socket_timeout=2)
    mgr = SessionManager("restart", store=store)
    back = 0.0

    async def restart() -> None:
        nonlocal back
        await asyncio.to_thread(server.restart)
        back = time.monotonic()

    load, workers = await run_load(mgr, restart)

    print(load.report("standalone restart"))
    assert_recovered(load, back)
    await check_records(mgr, workers, durable=True)
    await store.aclose()


async def test_cluster_primary_killed_under_load(redis_cluster: RedisCluster) -> None:
    redis_cluster.flushall()
    store = RedisStore(redis_cluster.url, retries=3, retry_backoff=0.05)
    mgr = SessionManager("cluster-kill", store=store)
    promoted = 0.0

    async def kill_a_primary() -> None:
        nonlocal promoted
        victim = redis_cluster.kill_primary()
        report = await store.health()
        assert report["ok"] is False
        assert report["error"]
        try:
            await asyncio.to_thread(redis_cluster.wait_ok, 30)
        finally:
            promoted = time.monotonic()
        assert victim not in redis_cluster.primaries()

    try:
        load, workers = await run_load(mgr, kill_a_primary, settle=1.5)
        print(load.report("Cluster primary killed"))
        assert_recovered(load, promoted)
        await check_records(mgr, workers, durable=False)
        assert (await store.health())["ok"] is True
    finally:
        await store.aclose()
        redis_cluster.restore()


async def test_sentinel_failover_under_load(redis_sentinel: RedisSentinel) -> None:
    store = RedisStore(redis_sentinel.url, retries=3, retry_backoff=0.05)
    mgr = SessionManager("sentinel-kill", store=store)
    promoted = 0.0

    async def kill_the_primary() -> None:
        nonlocal promoted
        victim = redis_sentinel.kill_primary()
        try:
            await asyncio.to_thread(redis_sentinel.wait_for_new_primary, victim, 30)
        finally:
            promoted = time.monotonic()

    try:
        load, workers = await run_load(mgr, kill_the_primary, settle=1.5)
        print(load.report("Sentinel failover"))
        assert_recovered(load, promoted)
        await check_records(mgr, workers, durable=False)
        report = await store.health()
        assert report["nodes"][0]["address"] == "{}:{}".format(
            *redis_sentinel.current_primary().address
        )
    finally:
        await store.aclose()
        redis_sentinel.restore()


@pytest.mark.parametrize("kind", ["redis", "redis-cluster"])
async def test_client_kill_of_the_library_connections(
    request: pytest.FixtureRequest, kind: str
) -> None:
    setup = fresh_redis(request, kind)
    store = RedisStore(setup.url, retries=3, retry_backoff=0.01)
    mgr = SessionManager("client-kill", store=store)
    killed = 0
    last_kill = 0.0

    async def kill_connections() -> None:
        nonlocal killed, last_kill
        for _ in range(10):
            for server in setup.servers:
                with server.connect() as admin:
                    for client in admin.client_list():
                        if client["name"] == "aiosessions":
                            killed += admin.client_kill_filter(_id=client["id"])
            last_kill = time.monotonic()
            await asyncio.sleep(0.1)

    load, workers = await run_load(mgr, kill_connections)

    print(load.report(f"CLIENT KILL of {killed} connections on {kind}"))
    assert killed > 0
    assert_recovered(load, last_kill)
    await check_records(mgr, workers, durable=True)
    await store.aclose()
