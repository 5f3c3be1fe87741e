"""SessionManager semantics, run on every store."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import timezone

import pytest

from aiosessions import (
    InvalidIdentifierError,
    InvalidMetadataError,
    InvalidTTLError,
    InvalidValueTypeError,
    SessionManager,
    SessionMetadata,
)
from aiosessions.security.ids import looks_like_session_id
from aiosessions.stores import Store

from .spy import CountingStore


def manager(store: Store, sandbox: str = "app", **options: object) -> SessionManager:
    return SessionManager(sandbox, store=store, **options)  # type: ignore[arg-type]


class TestAllocate:
    async def test_new_ids_are_random_and_url_safe(self, store: Store) -> None:
        mgr = manager(store)
        ids = {await mgr.allocate_session(user_id="alice") for _ in range(50)}
        assert len(ids) == 50
        for sid in ids:
            assert looks_like_session_id(sid)
            assert "alice" not in sid

    async def test_new_session_is_valid_with_user_and_metadata(
        self, store: Store
    ) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session(
            user_id="alice", custom_metadata={"role": "admin", "tags": [1, "x"]}
        )
        info = await mgr.get_session_info(sid)
        assert await mgr.validate_session(sid)
        assert info is not None
        assert info["user_id"] == "alice"
        assert info["sandbox_id"] == "app"
        assert info["custom_metadata"] == {"role": "admin", "tags": [1, "x"]}

    async def test_ttl_hours_sets_the_lifetime(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session(ttl_hours=0.5)
        meta = await mgr.get_session_metadata(sid)
        assert meta is not None
        left = meta.ttl_seconds()
        assert 1790 < left <= 1800

    async def test_client_chosen_id_is_never_adopted(self, store: Store) -> None:
        mgr = manager(store)
        chosen = "A" * 32  # right shape, never issued
        sid = await mgr.allocate_session(session_id=chosen)
        assert sid != chosen
        assert not await mgr.validate_session(chosen)
        for junk in ["attacker", "", "x" * 10_000, "a:b*{c}"]:
            assert await mgr.allocate_session(session_id=junk) != junk

    async def test_live_id_of_the_same_user_is_refreshed(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session(user_id="alice", ttl_hours=0.01)
        again = await mgr.allocate_session(
            session_id=sid, user_id="alice", custom_metadata={"k": 1}
        )
        meta = await mgr.get_session_metadata(sid)
        assert again == sid
        assert meta is not None
        assert meta.ttl_seconds() > 3600 * 23
        assert meta.custom_metadata == {"k": 1}

    async def test_live_id_of_another_user_gets_a_new_session(
        self, store: Store
    ) -> None:
        mgr = manager(store)
        mine = await mgr.allocate_session(user_id="mallory")
        anonymous = await mgr.allocate_session()
        assert await mgr.allocate_session(session_id=mine, user_id="alice") != mine
        assert (
            await mgr.allocate_session(session_id=anonymous, user_id="a") != anonymous
        )
        meta = await mgr.get_session_metadata(mine)
        assert meta is not None and meta.user_id == "mallory"

    async def test_id_of_another_sandbox_is_not_reused(self, store: Store) -> None:
        other = await manager(store, "other").allocate_session()
        sid = await manager(store, "app").allocate_session(session_id=other)
        assert sid != other


class TestIsolation:
    async def test_another_sandbox_cannot_touch_the_session(self, store: Store) -> None:
        a, b = manager(store, "tenant-a"), manager(store, "tenant-b")
        sid = await a.allocate_session(user_id="alice")

        assert not await b.validate_session(sid)
        assert await b.get_session_info(sid) is None
        assert not await b.update_session_metadata(sid, {"x": 1})
        assert await b.increment_metadata(sid, "n") is None
        assert not await b.extend_session_ttl(sid, 5)
        assert not await b.delete_session(sid)

        info = await a.get_session_info(sid)
        assert info is not None and info["custom_metadata"] == {}
        assert await a.validate_session(sid)

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            ("a", "a:s:a"),
            ("a:", "a"),
            ("*", "a"),
            ("a{b}", "a"),
            ("tenant", "tenant%3A"),
            ("é", "e"),
            ("a b", "a+b"),
        ],
    )
    async def test_hostile_sandbox_names_stay_apart(
        self, store: Store, first: str, second: str
    ) -> None:
        one, two = manager(store, first), manager(store, second)
        sid = await one.allocate_session()
        await two.allocate_session()

        assert not await two.validate_session(sid)
        assert (await one.get_cache_stats())["active_sessions"] == 1
        assert (await two.get_cache_stats())["active_sessions"] == 1

    @pytest.mark.parametrize(
        "bad", ["", "x" * 257, "tab\there", "nul\x00", "bidi\u202e", 42, None]
    )
    def test_unusable_sandbox_ids_are_refused(self, store: Store, bad: object) -> None:
        with pytest.raises((InvalidIdentifierError, InvalidValueTypeError)):
            manager(store, bad)  # type: ignore[arg-type]

    async def test_no_local_cache_between_managers(self, store: Store) -> None:
        worker1, worker2 = manager(store), manager(store)
        sid = await worker1.allocate_session()
        assert await worker2.validate_session(sid)
        assert await worker1.delete_session(sid)
        assert not await worker2.validate_session(sid)
        assert await worker2.get_session_info(sid) is None


class TestValidate:
    @pytest.mark.parametrize(
        "bad",
        ["", "short", "x" * 10_000_000, "A" * 31 + "*", "A" * 31 + "\n", 123, None],
    )
    async def test_malformed_ids_are_false_without_a_store_call(
        self, store: Store, bad: object
    ) -> None:
        spy = CountingStore(store)
        mgr = manager(spy)
        assert await mgr.validate_session(bad) is False  # type: ignore[arg-type]
        assert await mgr.get_session_info(bad) is None  # type: ignore[arg-type]
        assert await mgr.delete_session(bad) is False  # type: ignore[arg-type]
        assert spy.calls == []

    async def test_validate_is_one_store_call(self, store: Store) -> None:
        spy = CountingStore(store)
        mgr = manager(spy, idle_timeout=60)
        sid = await mgr.allocate_session()
        spy.calls.clear()
        assert await mgr.validate_session(sid)
        assert spy.calls == ["session_touch"]

    async def test_idle_timeout_slides_on_validate(self, store: Store) -> None:
        mgr = manager(store, idle_timeout=0.4)
        sid = await mgr.allocate_session()
        for _ in range(4):
            await asyncio.sleep(0.2)
            assert await mgr.validate_session(sid)
        await asyncio.sleep(0.6)
        assert not await mgr.validate_session(sid)

    async def test_idle_sliding_stops_at_max_lifetime(self, store: Store) -> None:
        mgr = manager(store, idle_timeout=0.4, max_lifetime=0.7)
        sid = await mgr.allocate_session()
        alive = []
        for _ in range(6):
            await asyncio.sleep(0.2)
            alive.append(await mgr.validate_session(sid))
        assert alive[:3] == [True, True, True]
        assert alive[-1] is False

    async def test_info_shows_both_deadlines(self, store: Store) -> None:
        mgr = manager(store, idle_timeout=60, max_lifetime=600)
        sid = await mgr.allocate_session()
        meta = await mgr.get_session_metadata(sid)
        assert meta is not None
        assert meta.idle_timeout == 60
        assert 0 < (meta.expires_at - meta.created_at).total_seconds() <= 60.01
        span = meta.absolute_expires_at - meta.created_at
        assert math.isclose(span.total_seconds(), 600, abs_tol=0.01)


class TestInfo:
    async def test_info_is_json_safe_and_rebuilds_the_model(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session(user_id="u", custom_metadata={"a": {"b": 1}})
        info = await mgr.get_session_info(sid)
        assert info is not None
        json.dumps(info)
        model = SessionMetadata(**info)
        assert model == await mgr.get_session_metadata(sid)
        assert model.created_at.tzinfo == timezone.utc
        assert model.expires_at > model.created_at

    async def test_reading_info_does_not_slide_the_idle_timeout(
        self, store: Store
    ) -> None:
        mgr = manager(store, idle_timeout=0.3)
        sid = await mgr.allocate_session()
        for _ in range(3):
            await asyncio.sleep(0.15)
            await mgr.get_session_info(sid)
        assert await mgr.get_session_info(sid) is None


class TestUpdate:
    async def test_merge_keeps_other_keys(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session(custom_metadata={"a": 1})
        assert await mgr.update_session_metadata(sid, {"b": 2})
        info = await mgr.get_session_info(sid)
        assert info is not None and info["custom_metadata"] == {"a": 1, "b": 2}

    async def test_replace_drops_other_keys(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session(user_id="u", custom_metadata={"a": 1})
        assert await mgr.update_session_metadata(sid, {"b": 2}, merge=False)
        info = await mgr.get_session_info(sid)
        assert info is not None
        assert info["custom_metadata"] == {"b": 2}
        assert info["user_id"] == "u"

    async def test_merge_removes_named_keys_in_the_same_step(
        self, store: Store
    ) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session(custom_metadata={"a": 1, "b": 2, "c": 3})
        assert await mgr.update_session_metadata(sid, {"d": 4}, remove=["a", "c"])
        info = await mgr.get_session_info(sid)
        assert info is not None and info["custom_metadata"] == {"b": 2, "d": 4}

    async def test_concurrent_set_and_remove_of_different_keys_both_survive(
        self, store: Store
    ) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session(custom_metadata={"gone": 1, "stays": 2})
        await asyncio.gather(
            mgr.update_session_metadata(sid, {}, remove=["gone"]),
            mgr.update_session_metadata(sid, {"added": 3}),
        )
        info = await mgr.get_session_info(sid)
        assert info is not None
        assert info["custom_metadata"] == {"stays": 2, "added": 3}

    async def test_a_bad_key_to_remove_is_refused_and_nothing_is_written(
        self, store: Store
    ) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session(custom_metadata={"a": 1})
        with pytest.raises(InvalidMetadataError):
            await mgr.update_session_metadata(sid, {"b": 2}, remove=["a", ""])
        info = await mgr.get_session_info(sid)
        assert info is not None and info["custom_metadata"] == {"a": 1}

    async def test_remove_on_an_unknown_id_is_false(self, store: Store) -> None:
        mgr = manager(store)
        assert not await mgr.update_session_metadata("x" * 32, {}, remove=["a"])
        assert not await mgr.update_session_metadata("bad", {}, remove=["a"])

    async def test_update_never_lengthens_the_lifetime(self, store: Store) -> None:
        mgr = manager(store, idle_timeout=30)
        sid = await mgr.allocate_session()
        before = await mgr.get_session_metadata(sid)
        await asyncio.sleep(0.05)
        await mgr.update_session_metadata(sid, {"k": "v"})
        after = await mgr.get_session_metadata(sid)
        assert before is not None and after is not None
        assert after.expires_at <= before.expires_at
        assert after.absolute_expires_at == before.absolute_expires_at

    async def test_concurrent_merges_of_different_keys_all_survive(
        self, store: Store
    ) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session()
        results = await asyncio.gather(
            *(mgr.update_session_metadata(sid, {f"k{i}": i}) for i in range(100))
        )
        info = await mgr.get_session_info(sid)
        assert all(results)
        assert info is not None
        assert info["custom_metadata"] == {f"k{i}": i for i in range(100)}

    async def test_update_racing_delete_never_resurrects(self, store: Store) -> None:
        mgr = manager(store)
        for _ in range(20):
            sid = await mgr.allocate_session()
            await asyncio.gather(
                mgr.update_session_metadata(sid, {"x": 1}),
                mgr.delete_session(sid),
                mgr.update_session_metadata(sid, {"y": 2}),
                mgr.increment_metadata(sid, "n"),
            )
            assert await mgr.get_session_info(sid) is None
            assert not await store.exists(mgr.keys.session(sid))

    @pytest.mark.parametrize(
        "data",
        [
            {"s": {1, 2}},
            {"o": object()},
            {"nan": float("nan")},
            {"inf": float("inf")},
            {"surrogate": "\ud800"},
            {"": 1},
            {"k" * 300: 1},
            {"ctl\n": 1},
            {"big": "x" * 70_000},
            {f"k{i}": i for i in range(300)},
        ],
    )
    async def test_bad_metadata_is_refused_and_nothing_is_written(
        self, store: Store, data: dict[str, object]
    ) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session(custom_metadata={"keep": True})
        with pytest.raises(InvalidMetadataError):
            await mgr.update_session_metadata(sid, data)
        with pytest.raises(InvalidMetadataError):
            await mgr.allocate_session(custom_metadata=data)
        info = await mgr.get_session_info(sid)
        assert info is not None and info["custom_metadata"] == {"keep": True}
        assert (await mgr.get_cache_stats())["active_sessions"] == 1

    async def test_non_str_metadata_key_is_a_type_error(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session()
        with pytest.raises(TypeError, match="int"):
            await mgr.update_session_metadata(sid, {1: "x"})  # type: ignore[dict-item]
        with pytest.raises(TypeError, match="list"):
            await mgr.update_session_metadata(sid, ["x"])  # type: ignore[arg-type]


class TestIncrement:
    async def test_increment_counts_and_returns_the_value(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session()
        assert await mgr.increment_metadata(sid, "hits") == 1
        assert await mgr.increment_metadata(sid, "hits", 9) == 10
        info = await mgr.get_session_info(sid)
        assert info is not None and info["custom_metadata"] == {"hits": 10}

    async def test_concurrent_increments_are_exact(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session()
        await asyncio.gather(*(mgr.increment_metadata(sid, "n") for _ in range(500)))
        info = await mgr.get_session_info(sid)
        assert info is not None and info["custom_metadata"]["n"] == 500

    async def test_increment_of_a_non_counter_is_refused(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session(custom_metadata={"name": "x"})
        with pytest.raises(InvalidMetadataError, match="name"):
            await mgr.increment_metadata(sid, "name")

    @pytest.mark.parametrize("amount", [True, 1.5, "1", 2**63])
    async def test_bad_amounts_are_refused(self, store: Store, amount: object) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session()
        with pytest.raises(TypeError):
            await mgr.increment_metadata(sid, "n", amount)  # type: ignore[arg-type]


class TestExtendAndDelete:
    async def test_extend_adds_hours(self, store: Store) -> None:
        mgr = manager(store, default_ttl_hours=1)
        sid = await mgr.allocate_session()
        assert await mgr.extend_session_ttl(sid, additional_hours=2)
        meta = await mgr.get_session_metadata(sid)
        assert meta is not None and meta.ttl_seconds() > 3 * 3600 - 5

    async def test_extend_never_passes_max_lifetime(self, store: Store) -> None:
        mgr = manager(store, default_ttl_hours=1, max_lifetime=5400)
        sid = await mgr.allocate_session()
        assert await mgr.extend_session_ttl(sid, additional_hours=10)
        meta = await mgr.get_session_metadata(sid)
        assert meta is not None
        assert meta.ttl_seconds() <= 5400

    async def test_delete_ends_the_session(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session()
        assert await mgr.delete_session(sid)
        assert not await mgr.delete_session(sid)
        assert not await mgr.validate_session(sid)
        assert not await mgr.extend_session_ttl(sid, 1)
        assert not await mgr.update_session_metadata(sid, {"x": 1})


BAD_HOURS = (0, -1, float("nan"), float("inf"), -float("inf"), 10**9, 1e20)


class TestBadDurations:
    @pytest.mark.parametrize("hours", BAD_HOURS)
    async def test_bad_ttl_hours_write_nothing(
        self, store: Store, hours: float
    ) -> None:
        mgr = manager(store)
        with pytest.raises(InvalidTTLError, match="ttl_hours"):
            await mgr.allocate_session(ttl_hours=hours)
        assert (await mgr.get_cache_stats())["active_sessions"] == 0

    @pytest.mark.parametrize("hours", BAD_HOURS)
    async def test_bad_extensions_change_nothing(
        self, store: Store, hours: float
    ) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session()
        before = await mgr.get_session_metadata(sid)
        with pytest.raises(InvalidTTLError, match="additional_hours"):
            await mgr.extend_session_ttl(sid, hours)
        after = await mgr.get_session_metadata(sid)
        assert before is not None and after is not None
        assert before.absolute_expires_at == after.absolute_expires_at

    @pytest.mark.parametrize("option", ["idle_timeout", "max_lifetime"])
    @pytest.mark.parametrize("value", [0, -5, float("nan"), True])
    def test_bad_manager_durations_are_refused(
        self, store: Store, option: str, value: object
    ) -> None:
        with pytest.raises((InvalidTTLError, InvalidValueTypeError), match=option):
            manager(store, **{option: value})

    @pytest.mark.parametrize("user", ["", "u" * 300, "a\x00b", 7])
    async def test_bad_user_ids_write_nothing(self, store: Store, user: object) -> None:
        mgr = manager(store)
        with pytest.raises((InvalidIdentifierError, InvalidValueTypeError)):
            await mgr.allocate_session(user_id=user)  # type: ignore[arg-type]
        assert (await mgr.get_cache_stats())["active_sessions"] == 0


class TestHousekeeping:
    async def test_stats_count_live_sessions_of_this_sandbox(
        self, store: Store
    ) -> None:
        mine, theirs = manager(store, "mine"), manager(store, "theirs")
        for _ in range(3):
            await mine.allocate_session()
        await theirs.allocate_session()
        await mine.allocate_session(ttl_hours=0.05 / 3600)
        await asyncio.sleep(0.2)

        stats = await mine.get_cache_stats()
        assert stats["sandbox_id"] == "mine"
        assert stats["active_sessions"] == 3
        assert stats["cache_size"] == 0
        json.dumps(stats)

    async def test_cleanup_expired_sessions_returns_a_count(self, store: Store) -> None:
        mgr = manager(store)
        await mgr.allocate_session(ttl_hours=0.05 / 3600)
        await asyncio.sleep(0.15)
        reclaimed = await mgr.cleanup_expired_sessions()
        assert reclaimed >= 0
        assert (await mgr.get_cache_stats())["active_sessions"] == 0
