"""Loops, threads and bursts: invariants 3 and 9 of DESIGN.md.

README "Behaviour on Redis": "a store built at import time works across
several asyncio.run calls and in threads with loops of their own".
"""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest
import redis

from aiosessions import MemoryStore, RedisStore, SessionManager, Store


def run_in_threads(store: Store, sid: str, threads: int, calls: int) -> list[str]:
    mgr = SessionManager("conc", store=store)
    errors: list[str] = []

    def worker(index: int) -> None:
        async def go() -> None:
            await asyncio.gather(
                *(mgr.increment_metadata(sid, "n") for _ in range(calls)),
                *(
                    mgr.update_session_metadata(sid, {f"t{index}-{j}": j})
                    for j in range(10)
                ),
            )

        try:
            asyncio.run(go())
        except Exception as exc:  # reported below, not swallowed
            errors.append(repr(exc))

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(60)
    return errors


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_threads_with_their_own_loops_share_one_store(
    kind: str, request: pytest.FixtureRequest
) -> None:
    store: Store = (
        MemoryStore()
        if kind == "memory"
        else RedisStore(request.getfixturevalue("redis_url"))
    )
    mgr = SessionManager("conc", store=store)
    sid = asyncio.run(mgr.allocate_session())
    assert run_in_threads(store, sid, threads=8, calls=100) == []
    info = asyncio.run(mgr.get_session_info(sid))
    assert info is not None
    assert info["custom_metadata"]["n"] == 800
    assert len(info["custom_metadata"]) == 1 + 8 * 10


async def test_a_burst_beyond_the_pool_waits(redis_url: str) -> None:
    store = RedisStore(redis_url, max_connections=4)
    try:
        mgr = SessionManager("burst", store=store)
        ids = await asyncio.gather(*(mgr.allocate_session() for _ in range(2000)))
        assert len(set(ids)) == 2000
        assert all(await asyncio.gather(*(mgr.validate_session(sid) for sid in ids)))
        assert (await mgr.get_cache_stats())["active_sessions"] == 2000
    finally:
        await store.aclose()


# -- findings ---------------------------------------------------------------


def test_asyncio_run_calls_do_not_leak_connections(redis_url: str) -> None:
    store = RedisStore(redis_url)
    mgr = SessionManager("loops", store=store)
    sid = asyncio.run(mgr.allocate_session())
    for _ in range(30):
        assert asyncio.run(mgr.validate_session(sid))
    gc.collect()
    admin = redis.Redis.from_url(redis_url)
    try:
        mine = [c for c in admin.client_list() if c.get("name") == "aiosessions"]
    finally:
        admin.close()
    # One live loop at most needs a connection; the 30 finished ones do not.
    assert len(mine) <= 2, f"{len(mine)} connections left open by finished loops"


def test_finished_threads_release_their_clients(redis_url: str) -> None:
    store = RedisStore(redis_url)
    mgr = SessionManager("threads", store=store)
    sid = asyncio.run(mgr.allocate_session())

    def worker() -> None:
        asyncio.run(mgr.validate_session(sid))

    for _ in range(20):
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(30)
    gc.collect()
    assert len(store._bound) <= 1, f"{len(store._bound)} loops still bound"
