"""Fixtures of the adversarial suite: each attack runs on memory and on our Redis.

The Redis is the suite's own throwaway ``redis-server`` (``redis_url`` from
tests/conftest.py, flushed per test); nothing here touches any other server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aiosessions import MemoryStore, RedisStore, Store


@pytest.fixture(params=["memory", "redis"])
async def any_store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A fresh, empty store: the memory store, then a flushed Redis of ours."""
    if request.param == "memory":
        yield MemoryStore()
        return
    store = RedisStore(request.getfixturevalue("redis_url"))
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
async def both_stores(redis_url: str) -> AsyncIterator[tuple[Store, Store]]:
    """A memory store and a flushed Redis of ours, to compare side by side."""
    redis_store = RedisStore(redis_url)
    try:
        yield MemoryStore(), redis_store
    finally:
        await redis_store.aclose()
