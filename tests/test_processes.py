"""Several processes on one Redis: counters stay exact, deletes seen at once."""

from __future__ import annotations

import asyncio
import multiprocessing

import pytest

from aiosessions import RedisStore, SessionManager

pytestmark = pytest.mark.redis


def _increment(url: str, session_id: str, times: int) -> None:
    async def run() -> None:
        store = RedisStore(url)
        mgr = SessionManager("procs", store=store)
        for _ in range(times):
            await mgr.increment_metadata(session_id, "count")
        await store.aclose()

    asyncio.run(run())


def _delete(url: str, session_id: str) -> None:
    async def run() -> None:
        store = RedisStore(url)
        assert await SessionManager("procs", store=store).delete_session(session_id)
        await store.aclose()

    asyncio.run(run())


async def test_four_processes_increment_to_exactly_one_thousand(
    redis_url: str,
) -> None:
    store = RedisStore(redis_url)
    mgr = SessionManager("procs", store=store)
    sid = await mgr.allocate_session()
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_increment, args=(redis_url, sid, 250)) for _ in range(4)
    ]

    for worker in workers:
        worker.start()
    for worker in workers:
        await asyncio.to_thread(worker.join, 120)

    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    info = await mgr.get_session_info(sid)
    assert info is not None and info["custom_metadata"]["count"] == 1000
    await store.aclose()


async def test_delete_in_another_process_is_seen_at_once(redis_url: str) -> None:
    store = RedisStore(redis_url)
    mgr = SessionManager("procs", store=store)
    sid = await mgr.allocate_session()
    assert await mgr.validate_session(sid)
    worker = multiprocessing.get_context("spawn").Process(
        target=_delete, args=(redis_url, sid)
    )

    worker.start()
    await asyncio.to_thread(worker.join, 60)

    assert worker.exitcode == 0
    assert not await mgr.validate_session(sid)
    assert await mgr.get_session_info(sid) is None
    await store.aclose()
