"""The key-value facade: get_session() on every store."""

from __future__ import annotations

import asyncio

import pytest

from aiosessions import (
    InvalidKeyError,
    InvalidTTLError,
    InvalidValueTypeError,
    KeyValueSession,
    SessionManager,
    get_session,
    session,
)
from aiosessions.stores import MemoryStore, Store, set_default_store


class TestValues:
    async def test_setex_then_get_in_the_next_context(self, store: Store) -> None:
        async with get_session(store) as s:
            await s.setex("otp", 60, "123456")
        async with get_session(store) as s:
            assert await s.get("otp") == "123456"
            assert await s.exists("otp")
            assert 59 <= await s.ttl("otp") <= 60

    async def test_delete_returns_a_bool(self, store: Store) -> None:
        async with get_session(store) as s:
            await s.set("k", "v", ttl=30)
            assert await s.delete("k") is True
            assert await s.delete("k") is False
            assert await s.get("k") is None

    async def test_ttl_follows_the_redis_convention(self, store: Store) -> None:
        async with get_session(store) as s:
            assert await s.ttl("missing") == -2
            await s.setex("k", 10, "v")
            assert await s.ttl("k") == 10
            assert await s.expire("k", 100)
            assert await s.ttl("k") == 100
            assert not await s.expire("missing", 100)

    async def test_values_expire(self, store: Store) -> None:
        async with get_session(store) as s:
            await s.setex("k", 0.05, "v")
            await asyncio.sleep(0.15)
            assert await s.get("k") is None
            assert not await s.exists("k")

    async def test_set_without_ttl_uses_the_default(
        self, store: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SESSION_DEFAULT_TTL", "120")
        async with get_session(store) as s:
            await s.set("k", "v")
            assert 119 <= await s.ttl("k") <= 120
        async with get_session(store, default_ttl=7) as s:
            await s.set("k", "v")
            assert await s.ttl("k") == 7

    async def test_facade_keys_never_reach_session_records(self, store: Store) -> None:
        mgr = SessionManager("app", store=store)
        sid = await mgr.allocate_session()
        async with get_session(store) as s:
            assert await s.get(mgr.keys.session(sid)) is None
            assert not await s.delete(mgr.keys.session(sid))
        assert await mgr.validate_session(sid)

    @pytest.mark.parametrize("value", [1, 1.5, b"bytes", None, ["x"], {"a": 1}])
    async def test_non_str_values_are_a_type_error(
        self, store: Store, value: object
    ) -> None:
        async with get_session(store) as s:
            with pytest.raises(TypeError, match=type(value).__name__):
                await s.setex("k", 10, value)  # type: ignore[arg-type]
            with pytest.raises(InvalidValueTypeError):
                await s.set("k", value)  # type: ignore[arg-type]
            assert not await s.exists("k")

    @pytest.mark.parametrize("key", ["", "x" * 1025, "a\nb", "nul\x00"])
    async def test_bad_keys_are_refused(self, store: Store, key: str) -> None:
        async with get_session(store) as s:
            with pytest.raises(InvalidKeyError):
                await s.setex(key, 10, "v")
            with pytest.raises(InvalidKeyError):
                await s.get(key)

    async def test_non_str_key_is_a_type_error(self, store: Store) -> None:
        async with get_session(store) as s:
            with pytest.raises(TypeError, match="bytes"):
                await s.get(b"k")  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "ttl", [0, -1, float("nan"), float("inf"), 10**12, True, "10", None]
    )
    async def test_bad_ttls_write_nothing(self, store: Store, ttl: object) -> None:
        async with get_session(store) as s:
            with pytest.raises((InvalidTTLError, InvalidValueTypeError)):
                await s.setex("k", ttl, "v")  # type: ignore[arg-type]
            assert not await s.exists("k")
            await s.set("k", "v", ttl=5)
            if ttl is not None:
                with pytest.raises((InvalidTTLError, InvalidValueTypeError)):
                    await s.expire("k", ttl)  # type: ignore[arg-type]
            assert await s.ttl("k") == 5

    async def test_glob_and_brace_keys_are_plain_keys(self, store: Store) -> None:
        async with get_session(store) as s:
            await s.setex("a*", 10, "star")
            await s.setex("a{b}:c", 10, "brace")
            assert await s.get("a*") == "star"
            assert await s.get("a{b}:c") == "brace"
            assert await s.get("ab") is None


class TestSharedStore:
    async def test_default_store_is_shared_and_lazy(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SESSION_PROVIDER", "memory")
        set_default_store(None)
        try:
            first, second = get_session(), session()
            assert isinstance(first, KeyValueSession)
            assert first.store is second.store
            assert isinstance(first.store, MemoryStore)
            async with first as s:
                await s.setex("k", 10, "v")
            async with second as s:
                assert await s.get("k") == "v"
        finally:
            set_default_store(None)

    def test_session_is_an_alias(self) -> None:
        assert session is get_session
