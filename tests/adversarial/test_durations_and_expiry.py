"""Durations on every API, and expiry: idle sliding, caps, reclaiming.

Invariants 5, 6 and 8 of DESIGN.md; README "Key-value facade" (TTL rules),
"SessionManager" (idle_timeout, max_lifetime, extend_session_ttl).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from aiosessions import (
    ConfigurationError,
    InvalidInputError,
    InvalidTTLError,
    InvalidValueTypeError,
    KeyValueSession,
    MemoryStore,
    SessionManager,
    Settings,
    Store,
    create_store,
    get_session,
    set_default_store,
)

BAD_DURATIONS: list[tuple[object, type[Exception]]] = [
    (0, InvalidTTLError),
    (0.0, InvalidTTLError),
    (-0.0, InvalidTTLError),
    (-1, InvalidTTLError),
    (-1e-300, InvalidTTLError),
    (math.nan, InvalidTTLError),
    (math.inf, InvalidTTLError),
    (-math.inf, InvalidTTLError),
    (10**400, InvalidTTLError),
    (1e300, InvalidTTLError),
    (True, InvalidValueTypeError),
    (False, InvalidValueTypeError),
    ("5", InvalidValueTypeError),
    (b"5", InvalidValueTypeError),
    (5j, InvalidValueTypeError),
]


async def _call(call: Callable[[], object]) -> object:
    """Call *call*, awaiting its result when it is a coroutine."""
    result = call()
    if asyncio.iscoroutine(result):
        return await result
    return result


@pytest.mark.parametrize(("bad", "error"), BAD_DURATIONS, ids=repr)
async def test_every_duration_is_checked(
    any_store: Store, bad: object, error: type[Exception]
) -> None:
    kv = KeyValueSession(any_store)
    mgr = SessionManager("ttl", store=any_store)
    sid = await mgr.allocate_session()
    await kv.set("k", "v", 60)
    calls: list[Callable[[], object]] = [
        lambda: kv.set("new", "v", bad),  # type: ignore[arg-type]
        lambda: kv.setex("new", bad, "v"),  # type: ignore[arg-type]
        lambda: kv.expire("k", bad),  # type: ignore[arg-type]
        lambda: KeyValueSession(any_store, default_ttl=bad),  # type: ignore[arg-type]
        lambda: get_session(any_store, default_ttl=bad),  # type: ignore[arg-type]
        lambda: SessionManager("t", store=any_store, idle_timeout=bad),  # type: ignore[arg-type]
        lambda: SessionManager("t", store=any_store, max_lifetime=bad),  # type: ignore[arg-type]
        lambda: mgr.allocate_session(ttl_hours=bad),  # type: ignore[arg-type]
        lambda: mgr.allocate_session(session_id=sid, ttl_hours=bad),  # type: ignore[arg-type]
        lambda: mgr.extend_session_ttl(sid, bad),  # type: ignore[arg-type]
    ]
    calls.append(lambda: SessionManager("t", default_ttl_hours=bad))  # type: ignore[arg-type]
    for call in calls:
        with pytest.raises(error):
            await _call(call)
    # Nothing was written, nothing moved.
    assert await kv.exists("new") is False
    assert 59 <= await kv.ttl("k") <= 60
    assert (await mgr.get_cache_stats())["active_sessions"] == 1


async def test_tiny_and_largest_durations(any_store: Store) -> None:
    kv = KeyValueSession(any_store)
    await kv.set("tiny", "v", 5e-324)  # rounds up to one millisecond
    await kv.set("max", "v", 100 * 365 * 24 * 3600)
    assert await kv.ttl("max") == 100 * 365 * 24 * 3600
    with pytest.raises(InvalidTTLError):
        await kv.set("over", "v", 100 * 365 * 24 * 3600 + 0.001)
    await asyncio.sleep(0.01)
    assert await kv.get("tiny") is None
    mgr = SessionManager("ttl", store=any_store, default_ttl_hours=1e-300)
    sid = await mgr.allocate_session()
    await asyncio.sleep(0.01)
    assert await mgr.validate_session(sid) is False


async def test_idle_sliding_never_passes_max_lifetime(any_store: Store) -> None:
    mgr = SessionManager("exp", store=any_store, idle_timeout=0.3, max_lifetime=0.8)
    sid = await mgr.allocate_session(user_id="alice")
    info = await mgr.get_session_info(sid)
    assert info is not None
    created = datetime.fromisoformat(info["created_at"].replace("Z", "+00:00"))
    cap = created + timedelta(seconds=0.8)
    start = time.monotonic()
    last_valid = 0.0
    while time.monotonic() - start < 1.3:
        # Every way of keeping a session alive, in turn.
        await mgr.extend_session_ttl(sid, 24)
        await mgr.allocate_session(session_id=sid, user_id="alice", ttl_hours=24)
        if await mgr.validate_session(sid):
            last_valid = time.monotonic() - start
            meta = await mgr.get_session_metadata(sid)
            if meta is not None:
                assert meta.absolute_expires_at <= cap
                assert meta.expires_at <= cap
        await asyncio.sleep(0.05)
    assert last_valid < 0.85
    assert await mgr.validate_session(sid) is False


async def test_idle_timeout_expires_a_quiet_session(any_store: Store) -> None:
    mgr = SessionManager("exp", store=any_store, idle_timeout=0.2)
    sid = await mgr.allocate_session()
    for _ in range(5):
        await asyncio.sleep(0.1)
        assert await mgr.validate_session(sid)
    # Reads do not slide the idle timeout.
    for _ in range(3):
        await asyncio.sleep(0.1)
        await mgr.get_session_info(sid)
    assert await mgr.validate_session(sid) is False


async def test_memory_store_reclaims_unread_entries() -> None:
    store = MemoryStore()
    mgr = SessionManager("gc", store=store, default_ttl_hours=0.05 / 3600)
    kv = KeyValueSession(store)
    for i in range(500):
        await mgr.allocate_session()
        await kv.set(f"k{i}", "v", 0.05)
    assert len(store) == 1000
    await asyncio.sleep(1.1)  # one-second buckets: wait past the bucket
    for i in range(20):  # bounded sweeps on writes, never a full scan
        await kv.set(f"live{i}", "v", 60)
    assert len(store) == 20
    assert (await mgr.get_cache_stats())["active_sessions"] == 0


async def test_memory_cap_evicts_closest_to_expiry_first() -> None:
    store = MemoryStore(max_entries=10)
    kv = KeyValueSession(store)
    await kv.set("long", "v", 3600)
    for i in range(30):
        await kv.set(f"short{i}", "v", 60 + i)
    assert len(store) == 10
    assert await kv.get("long") == "v"


# -- findings ---------------------------------------------------------------


async def test_extending_never_makes_a_session_unreadable(any_store: Store) -> None:
    mgr = SessionManager("ttl", store=any_store)
    sid = await mgr.allocate_session()
    for _ in range(90):
        await mgr.extend_session_ttl(sid, 876_000)  # 100 years, the maximum
    assert await mgr.validate_session(sid)
    info = await mgr.get_session_info(sid)
    assert info is not None


async def test_settings_default_ttl_given_in_code_is_used() -> None:
    set_default_store(create_store(Settings(provider="memory", default_ttl=60)))
    try:
        kv = get_session()
        await kv.set("k", "v")
        assert await kv.ttl("k") == 60
    finally:
        set_default_store(None)


async def test_session_default_ttl_is_capped_like_every_ttl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SESSION_DEFAULT_TTL", "9999999999999")
    with pytest.raises((InvalidInputError, ConfigurationError)):
        await _call(lambda: KeyValueSession(MemoryStore()).set("k", "v"))
