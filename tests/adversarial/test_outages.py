"""Outages are loud and typed, and the store recovers by itself.

Invariant 8 of DESIGN.md; README "Outages are loud": "the caller gets
BackendUnavailableError, never False or None". Every server here is our own
(redis_server_factory), stopped, frozen and restarted by this test only.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Awaitable, Callable

import pytest

from aiosessions import (
    BackendUnavailableError,
    KeyValueSession,
    RedisStore,
    SessionManager,
)
from tests.servers import RedisServer


def operations(
    mgr: SessionManager, kv: KeyValueSession, sid: str
) -> dict[str, Callable[[], Awaitable[object]]]:
    return {
        "validate": lambda: mgr.validate_session(sid),
        "allocate": lambda: mgr.allocate_session(user_id="alice"),
        "refresh": lambda: mgr.allocate_session(session_id=sid, user_id="alice"),
        "info": lambda: mgr.get_session_info(sid),
        "metadata": lambda: mgr.get_session_metadata(sid),
        "update": lambda: mgr.update_session_metadata(sid, {"a": 1}),
        "replace": lambda: mgr.update_session_metadata(sid, {"a": 1}, merge=False),
        "increment": lambda: mgr.increment_metadata(sid, "n"),
        "extend": lambda: mgr.extend_session_ttl(sid, 1),
        "delete": lambda: mgr.delete_session(sid),
        "stats": lambda: mgr.get_cache_stats(),
        "kv.get": lambda: kv.get("k"),
        "kv.set": lambda: kv.set("k", "v", 60),
        "kv.setex": lambda: kv.setex("k", 60, "v"),
        "kv.delete": lambda: kv.delete("k"),
        "kv.exists": lambda: kv.exists("k"),
        "kv.ttl": lambda: kv.ttl("k"),
        "kv.expire": lambda: kv.expire("k", 60),
    }


async def test_a_stopped_redis_raises_and_recovers(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory(name="review-outage")
    store = RedisStore(server.url, retries=2, retry_backoff=0.01, socket_timeout=1)
    try:
        mgr = SessionManager("out", store=store, idle_timeout=600)
        kv = KeyValueSession(store)
        sid = await mgr.allocate_session(user_id="alice")
        await kv.set("k", "v", 60)

        server.stop()
        for name, call in operations(mgr, kv, sid).items():
            start = time.monotonic()
            with pytest.raises(BackendUnavailableError) as caught:
                await call()
            assert caught.value.attempts >= 1, name
            assert caught.value.operation, name
            assert time.monotonic() - start < 5, name
        health = await mgr.health()
        assert health["ok"] is False
        assert health["store"]["error"]

        server.start()  # same port, empty (no persistence): it recovers
        assert await mgr.validate_session(sid) is False  # data gone, no error
        new = await mgr.allocate_session(user_id="alice")
        assert await mgr.validate_session(new)
        assert (await mgr.health())["ok"] is True
    finally:
        await store.aclose()


async def test_a_frozen_redis_times_out_with_a_typed_error(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory(name="review-frozen")
    store = RedisStore(server.url, retries=1, retry_backoff=0.01, socket_timeout=0.3)
    pid = server.pid
    assert pid is not None
    try:
        mgr = SessionManager("frozen", store=store)
        kv = KeyValueSession(store)
        sid = await mgr.allocate_session()
        os.kill(pid, signal.SIGSTOP)
        try:
            for name, call in operations(mgr, kv, sid).items():
                start = time.monotonic()
                with pytest.raises(BackendUnavailableError):
                    await call()
                assert time.monotonic() - start < 3, name
        finally:
            os.kill(pid, signal.SIGCONT)
        # Connections that were mid-reply are dropped, never reused.
        assert await mgr.validate_session(sid)
        assert await mgr.increment_metadata(sid, "n") == 1
    finally:
        await store.aclose()
