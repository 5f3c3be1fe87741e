"""Rotation, renewal, per-user indexes, limits, timeouts and cleanup.

Every test runs on the memory store and on a real Redis (``store``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator

import pytest

from aiosessions import (
    BackendUnavailableError,
    ConfigurationError,
    InvalidIdentifierError,
    InvalidTTLError,
    InvalidValueTypeError,
    SessionManager,
)
from aiosessions.models import CleanupReport
from aiosessions.stores import MemoryStore, RedisStore, Store
from tests.conftest import fresh_redis

from .faults import FaultyStore
from .spy import CountingStore


def manager(store: Store, sandbox: str = "app", **options: object) -> SessionManager:
    return SessionManager(sandbox, store=store, **options)  # type: ignore[arg-type]


async def index_size(mgr: SessionManager, user_id: str) -> int:
    return (await mgr.store.index_read(mgr.keys.user_index(user_id))).size


async def index_members(mgr: SessionManager, user_id: str) -> set[str]:
    state = await mgr.store.index_read(mgr.keys.user_index(user_id))
    return {member for member, _ in state.members}


@pytest.fixture
async def big_store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A fresh store of one kind, for the tests too slow to run on all five.

    TLS and Sentinel change only how the client reaches the server, and the
    ``store`` fixture runs everything else on them.
    """
    if request.param == "memory":
        yield MemoryStore()
        return
    setup = fresh_redis(request, request.param)
    redis_store = RedisStore(setup.url, **setup.options)
    try:
        yield redis_store
    finally:
        await redis_store.aclose()


def second_worker(store: Store) -> Store:
    """Another store object on the same data, as a second process would have."""
    url = getattr(store, "url", None)
    if url is None:
        return store  # the in-process store is one per process by design
    ca_file = store.target.ssl_ca_certs  # type: ignore[attr-defined]
    return RedisStore(url, tls_ca_file=ca_file)


class TestRotation:
    async def test_rotation_keeps_data_and_deadline(self, store: Store) -> None:
        mgr = manager(store, idle_timeout=600, max_lifetime=7200)
        old = await mgr.allocate_session(user_id="alice", custom_metadata={"r": 1})
        before = await mgr.get_session_metadata(old)
        await asyncio.sleep(0.02)

        new = await mgr.rotate_session(old)
        after = await mgr.get_session_metadata(new or "")

        assert new is not None and new != old
        assert before is not None and after is not None
        assert after.user_id == "alice"
        assert after.custom_metadata == {"r": 1}
        assert after.created_at == before.created_at
        assert after.absolute_expires_at == before.absolute_expires_at
        assert after.max_expires_at == before.max_expires_at
        assert after.idle_timeout == 600
        assert after.last_accessed > before.last_accessed

    async def test_old_id_stops_working_at_once(self, store: Store) -> None:
        mgr = manager(store)
        old = await mgr.allocate_session(user_id="alice")
        new = await mgr.rotate_session(old)
        assert new is not None
        assert not await mgr.validate_session(old)
        assert await mgr.get_session_info(old) is None
        assert await mgr.validate_session(new)

    async def test_old_id_works_for_the_grace_period(self, store: Store) -> None:
        mgr = manager(store)
        old = await mgr.allocate_session(user_id="alice")
        new = await mgr.rotate_session(old, grace_seconds=0.3)
        assert new is not None

        meta = await mgr.get_session_metadata(old)
        assert await mgr.validate_session(old)
        assert meta is not None and meta.rotated_at is not None
        assert meta.ttl_seconds() <= 0.3
        await asyncio.sleep(0.45)
        assert not await mgr.validate_session(old)
        assert await mgr.validate_session(new)

    async def test_grace_never_lengthens_the_old_id(self, store: Store) -> None:
        mgr = manager(store)
        old = await mgr.allocate_session(ttl_hours=0.3 / 3600)
        new = await mgr.rotate_session(old, grace_seconds=60)
        assert new is not None
        await asyncio.sleep(0.45)
        assert not await mgr.validate_session(old)
        assert not await mgr.validate_session(new)  # same deadline

    async def test_nothing_lengthens_an_id_in_its_grace_period(
        self, store: Store
    ) -> None:
        mgr = manager(store)
        old = await mgr.allocate_session(user_id="alice")
        await mgr.rotate_session(old, grace_seconds=0.3)
        assert await mgr.extend_session_ttl(old, 5)
        refreshed = await mgr.allocate_session(session_id=old, user_id="alice")
        assert refreshed != old  # a replaced id is not refreshed: a new session
        await asyncio.sleep(0.45)
        assert not await mgr.validate_session(old)

    async def test_an_id_is_rotated_once(self, store: Store) -> None:
        mgr = manager(store)
        old = await mgr.allocate_session(user_id="alice")
        new = await mgr.rotate_session(old, grace_seconds=5)
        assert await mgr.rotate_session(old, grace_seconds=5) is None
        assert new is not None
        assert await mgr.rotate_session(new) is not None

    async def test_concurrent_rotations_make_one_successor(self, store: Store) -> None:
        mgr = manager(store)
        old = await mgr.allocate_session(user_id="alice")
        results = await asyncio.gather(
            *(mgr.rotate_session(old, grace_seconds=5) for _ in range(10))
        )
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        assert [s.session_id for s in await mgr.list_user_sessions("alice")] == winners

    async def test_anonymous_sessions_rotate_too(self, store: Store) -> None:
        mgr = manager(store)
        old = await mgr.allocate_session(custom_metadata={"cart": [1]})
        new = await mgr.rotate_session(old)
        info = await mgr.get_session_info(new or "")
        assert info is not None and info["custom_metadata"] == {"cart": [1]}
        assert info["user_id"] is None
        assert not await mgr.validate_session(old)

    async def test_rotation_of_a_dead_or_foreign_id_is_none(self, store: Store) -> None:
        mgr, other = manager(store), manager(store, "other")
        theirs = await other.allocate_session(user_id="alice")
        assert await mgr.rotate_session("A" * 32) is None
        assert await mgr.rotate_session(theirs) is None
        assert await other.validate_session(theirs)

    @pytest.mark.parametrize("bad", ["", "x" * 1000, None, 42])
    async def test_malformed_ids_rotate_to_none_without_a_store_call(
        self, store: Store, bad: object
    ) -> None:
        spy = CountingStore(store)
        mgr = manager(spy)
        assert await mgr.rotate_session(bad) is None  # type: ignore[arg-type]
        assert await mgr.validate_and_renew(bad) is None  # type: ignore[arg-type]
        assert spy.calls == []

    @pytest.mark.parametrize(
        ("grace", "error"),
        [
            (-1, InvalidTTLError),
            (float("nan"), InvalidTTLError),
            (float("inf"), InvalidTTLError),
            (1e20, InvalidTTLError),
            ("5", InvalidValueTypeError),
            (True, InvalidValueTypeError),
        ],
    )
    async def test_bad_grace_periods_are_refused(
        self, store: Store, grace: object, error: type[Exception]
    ) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session()
        with pytest.raises(error, match="grace_seconds"):
            await mgr.rotate_session(sid, grace_seconds=grace)  # type: ignore[arg-type]
        assert await mgr.validate_session(sid)

    async def test_rotation_moves_the_index_entry(self, store: Store) -> None:
        mgr = manager(store)
        old = await mgr.allocate_session(user_id="alice")
        new = await mgr.rotate_session(old)
        assert await index_members(mgr, "alice") == {new}
        listed = await mgr.list_user_sessions("alice")
        assert [s.session_id for s in listed] == [new]

    async def test_rotation_with_grace_lists_only_the_successor(
        self, store: Store
    ) -> None:
        mgr = manager(store)
        old = await mgr.allocate_session(user_id="alice")
        new = await mgr.rotate_session(old, grace_seconds=30)
        listed = await mgr.list_user_sessions("alice")
        assert [s.session_id for s in listed] == [new]
        assert await index_members(mgr, "alice") == {old, new}
        assert await mgr.revoke_user_sessions("alice") == 2
        assert not await mgr.validate_session(old)


class TestRenewal:
    async def test_without_renew_after_the_id_stays(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session(user_id="alice")
        assert await mgr.validate_and_renew(sid) == sid
        assert await mgr.validate_and_renew("A" * 32) is None

    async def test_an_old_enough_id_is_renewed(self, store: Store) -> None:
        mgr = manager(store, renew_after=0.2, renew_grace=0.3)
        sid = await mgr.allocate_session(user_id="alice", custom_metadata={"k": 1})
        assert await mgr.validate_and_renew(sid) == sid
        await asyncio.sleep(0.25)

        renewed = await mgr.validate_and_renew(sid)
        assert renewed is not None and renewed != sid
        assert await mgr.validate_and_renew(renewed) == renewed  # a young id
        assert await mgr.validate_and_renew(sid) == sid  # in its grace period
        info = await mgr.get_session_info(renewed)
        assert info is not None and info["custom_metadata"] == {"k": 1}
        await asyncio.sleep(0.4)
        assert await mgr.validate_and_renew(sid) is None
        assert await mgr.validate_session(renewed)

    async def test_renewal_age_counts_from_the_last_rotation(
        self, store: Store
    ) -> None:
        mgr = manager(store, renew_after=0.3, renew_grace=0)
        sid = await mgr.allocate_session()
        await asyncio.sleep(0.35)
        first = await mgr.validate_and_renew(sid)
        assert first is not None and first != sid
        assert await mgr.validate_and_renew(first) == first

    async def test_concurrent_renewals_agree(self, store: Store) -> None:
        mgr = manager(store, renew_after=0.1, renew_grace=5)
        sid = await mgr.allocate_session(user_id="alice")
        await asyncio.sleep(0.15)
        results = await asyncio.gather(*(mgr.validate_and_renew(sid) for _ in range(8)))
        assert None not in results
        assert len(set(results) - {sid}) == 1
        assert len(await mgr.list_user_sessions("alice")) == 1

    async def test_validate_session_never_rotates(self, store: Store) -> None:
        mgr = manager(store, renew_after=0.05)
        sid = await mgr.allocate_session()
        await asyncio.sleep(0.1)
        assert await mgr.validate_session(sid) is True
        assert await mgr.validate_and_renew(sid) != sid

    def test_bad_renewal_options_are_refused(self, store: Store) -> None:
        with pytest.raises(InvalidTTLError, match="renew_after"):
            manager(store, renew_after=0)
        with pytest.raises(InvalidTTLError, match="renew_grace"):
            manager(store, renew_grace=-1)


class TestUserIndex:
    async def test_list_shows_the_users_sessions_newest_first(
        self, store: Store
    ) -> None:
        mgr = manager(store)
        ids = []
        for i in range(3):
            ids.append(
                await mgr.allocate_session(user_id="alice", custom_metadata={"n": i})
            )
            await asyncio.sleep(0.005)
        await mgr.allocate_session(user_id="bob")
        await manager(store, "other").allocate_session(user_id="alice")
        await mgr.allocate_session()

        listed = await mgr.list_user_sessions("alice")
        assert [s.session_id for s in listed] == ids[::-1]
        assert [s.custom_metadata["n"] for s in listed] == [2, 1, 0]
        assert all(s.user_id == "alice" and s.sandbox_id == "app" for s in listed)

    async def test_list_of_an_unknown_user_is_empty(self, store: Store) -> None:
        assert await manager(store).list_user_sessions("nobody") == []

    async def test_listing_is_not_an_access(self, store: Store) -> None:
        mgr = manager(store, idle_timeout=0.3)
        await mgr.allocate_session(user_id="alice")
        for _ in range(3):
            await asyncio.sleep(0.15)
            await mgr.list_user_sessions("alice")
        assert await mgr.list_user_sessions("alice") == []

    async def test_deleted_sessions_leave_the_index(self, store: Store) -> None:
        mgr = manager(store)
        keep = await mgr.allocate_session(user_id="alice")
        gone = await mgr.allocate_session(user_id="alice")
        assert await mgr.delete_session(gone)
        assert await index_members(mgr, "alice") == {keep}

    async def test_expired_sessions_are_pruned_when_listed(self, store: Store) -> None:
        mgr = manager(store)
        await mgr.allocate_session(user_id="alice", ttl_hours=0.1 / 3600)
        live = await mgr.allocate_session(user_id="alice")
        await asyncio.sleep(0.2)
        assert [s.session_id for s in await mgr.list_user_sessions("alice")] == [live]
        assert await index_members(mgr, "alice") == {live}

    async def test_new_sessions_prune_the_dead_ones(self, store: Store) -> None:
        mgr = manager(store)
        for _ in range(5):
            await mgr.allocate_session(user_id="alice", ttl_hours=0.1 / 3600)
        await asyncio.sleep(0.2)
        live = await mgr.allocate_session(user_id="alice")
        assert await index_members(mgr, "alice") == {live}

    async def test_idle_sliding_keeps_a_session_listed(self, store: Store) -> None:
        mgr = manager(store, idle_timeout=0.3)
        sid = await mgr.allocate_session(user_id="alice")
        for _ in range(4):  # past the score it was indexed with
            await asyncio.sleep(0.15)
            assert await mgr.validate_session(sid)
        report = await mgr.cleanup_report()
        assert report.members_rechecked == 1 and report.members_pruned == 0
        assert [s.session_id for s in await mgr.list_user_sessions("alice")] == [sid]
        state = await store.index_read(mgr.keys.user_index("alice"))
        assert state.members[0][1] > state.now_ms  # the stale score was renewed

    @pytest.mark.slow
    @pytest.mark.parametrize(
        ("big_store", "prune_by"),
        [
            ("memory", "list"),
            ("memory", "cleanup"),
            ("redis", "list"),
            ("redis", "cleanup"),
            ("redis-cluster", "cleanup"),
        ],
        indirect=["big_store"],
    )
    async def test_ten_thousand_expired_sessions_leave_an_empty_index(
        self, big_store: Store, prune_by: str
    ) -> None:
        mgr = manager(big_store)
        ttl_hours = 1.5 / 3600
        for _ in range(20):
            await asyncio.gather(
                *(
                    mgr.allocate_session(user_id="alice", ttl_hours=ttl_hours)
                    for _ in range(500)
                )
            )
        await asyncio.sleep(1.6)

        if prune_by == "cleanup":
            assert await mgr.cleanup_expired_sessions() >= 1
            assert await index_size(mgr, "alice") == 0
        assert await mgr.list_user_sessions("alice") == []
        assert await index_size(mgr, "alice") == 0
        assert not await big_store.exists(mgr.keys.user_index("alice"))

    async def test_the_index_outlives_its_sessions(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session(user_id="alice", ttl_hours=1)
        index = mgr.keys.user_index("alice")
        session_left = await store.pttl(mgr.keys.session(sid))
        index_left = await store.pttl(index)
        assert session_left is not None and index_left is not None
        assert index_left > session_left

        assert await mgr.extend_session_ttl(sid, 10)
        grown = await store.pttl(index)
        assert grown is not None and grown >= index_left + 10 * 3600_000 - 1000
        await mgr.allocate_session(session_id=sid, user_id="alice", ttl_hours=100)
        refreshed = await store.pttl(index)
        assert refreshed is not None and refreshed > 100 * 3600_000

    async def test_refresh_makes_the_member_due(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session(user_id="alice")
        await mgr.allocate_session(
            session_id=sid, user_id="alice", ttl_hours=0.1 / 3600
        )
        await asyncio.sleep(0.2)
        report = await mgr.cleanup_report()
        assert report.members_pruned == 1
        assert await index_size(mgr, "alice") == 0

    async def test_another_users_id_never_enters_the_index(self, store: Store) -> None:
        mgr = manager(store)
        bobs = await mgr.allocate_session(user_id="bob")
        mine = await mgr.allocate_session(session_id=bobs, user_id="alice")
        assert mine != bobs
        assert await index_members(mgr, "alice") == {mine}
        assert await mgr.revoke_user_sessions("alice") == 1
        assert await mgr.validate_session(bobs)

    async def test_a_foreign_member_is_dropped_not_revoked(self, store: Store) -> None:
        mgr = manager(store)
        bobs = await mgr.allocate_session(user_id="bob")
        index = mgr.keys.user_index("alice")
        await store.index_update(index, add={bobs: 0})  # a corrupted index
        assert await mgr.revoke_user_sessions("alice") == 0
        assert await mgr.validate_session(bobs)
        assert await index_size(mgr, "alice") == 0

    @pytest.mark.parametrize(
        ("first", "second"),
        [("a", "a}"), ("a", "{a}"), ("*", "a"), ("a:b", "a%3Ab"), ("é", "e")],
    )
    async def test_hostile_user_ids_stay_apart(
        self, store: Store, first: str, second: str
    ) -> None:
        mgr = manager(store)
        one = await mgr.allocate_session(user_id=first)
        two = await mgr.allocate_session(user_id=second)
        assert [s.session_id for s in await mgr.list_user_sessions(first)] == [one]
        assert await mgr.revoke_user_sessions(second) == 1
        assert await mgr.validate_session(one)
        assert not await mgr.validate_session(two)
        assert mgr.keys.user_of_index(mgr.keys.user_index(first)) == first

    @pytest.mark.parametrize("bad", ["", "u" * 300, "a\x00b", 7, None])
    async def test_bad_user_ids_are_refused(self, store: Store, bad: object) -> None:
        mgr = manager(store)
        with pytest.raises((InvalidIdentifierError, InvalidValueTypeError)):
            await mgr.list_user_sessions(bad)  # type: ignore[arg-type]
        with pytest.raises((InvalidIdentifierError, InvalidValueTypeError)):
            await mgr.revoke_user_sessions(bad)  # type: ignore[arg-type]

    async def test_stats_count_indexed_users(self, store: Store) -> None:
        mgr = manager(store)
        await mgr.allocate_session(user_id="alice")
        await mgr.allocate_session(user_id="alice")
        await mgr.allocate_session(user_id="bob")
        await mgr.allocate_session()
        stats = await mgr.get_cache_stats()
        assert stats["active_sessions"] == 4
        assert stats["indexed_users"] == 2


class TestRevoke:
    async def test_revoke_ends_every_session_of_the_user(self, store: Store) -> None:
        mgr = manager(store)
        alice = [await mgr.allocate_session(user_id="alice") for _ in range(4)]
        bob = await mgr.allocate_session(user_id="bob")

        assert await mgr.revoke_user_sessions("alice") == 4
        for sid in alice:
            assert not await mgr.validate_session(sid)
        assert await mgr.validate_session(bob)
        assert await mgr.list_user_sessions("alice") == []
        assert await index_size(mgr, "alice") == 0
        assert await mgr.revoke_user_sessions("alice") == 0

    async def test_revoke_can_spare_the_current_session(self, store: Store) -> None:
        mgr = manager(store)
        others = [await mgr.allocate_session(user_id="alice") for _ in range(3)]
        current = await mgr.allocate_session(user_id="alice")
        assert await mgr.revoke_user_sessions("alice", except_session_id=current) == 3
        assert await mgr.validate_session(current)
        assert not any([await mgr.validate_session(s) for s in others])
        assert await index_members(mgr, "alice") == {current}

    async def test_revoke_is_seen_at_once_by_every_worker(self, store: Store) -> None:
        other_store = second_worker(store)
        worker1, worker2 = manager(store), manager(other_store)
        try:
            ids = [await worker1.allocate_session(user_id="alice") for _ in range(3)]
            assert all([await worker2.validate_session(s) for s in ids])

            assert await worker2.revoke_user_sessions("alice") == 3
            assert not any([await worker1.validate_session(s) for s in ids])
            assert not any([await worker2.validate_session(s) for s in ids])
            assert await worker1.list_user_sessions("alice") == []
        finally:
            if other_store is not store:
                await other_store.aclose()

    async def test_revoke_of_the_other_sandbox_changes_nothing(
        self, store: Store
    ) -> None:
        a, b = manager(store, "a"), manager(store, "b")
        sid = await a.allocate_session(user_id="alice")
        assert await b.revoke_user_sessions("alice") == 0
        assert await a.validate_session(sid)

    async def test_revoke_spares_a_session_still_being_written(
        self, store: Store
    ) -> None:
        mgr = manager(store)
        pending = "P" * 32
        await store.index_update(mgr.keys.user_index("alice"), add={pending: 60_000})
        assert await mgr.revoke_user_sessions("alice") == 0
        assert await index_members(mgr, "alice") == {pending}

    async def test_except_must_be_a_string(self, store: Store) -> None:
        with pytest.raises(InvalidValueTypeError, match="except_session_id"):
            await manager(store).revoke_user_sessions("a", except_session_id=5)  # type: ignore[arg-type]

    async def test_rotation_after_revocation_began_ends_the_successor(
        self, store: Store
    ) -> None:
        faulty = FaultyStore(store)
        mgr = manager(faulty)
        sid = await mgr.allocate_session(user_id="alice")
        faulty.run_after(
            "session_retire", lambda: manager(store).revoke_user_sessions("alice")
        )
        assert await mgr.rotate_session(sid, grace_seconds=5) is None
        assert await mgr.list_user_sessions("alice") == []
        assert (await mgr.get_cache_stats())["active_sessions"] == 0

    async def test_revocation_during_a_rotation_ends_the_successor(
        self, store: Store
    ) -> None:
        faulty = FaultyStore(store)
        mgr = manager(faulty)
        sid = await mgr.allocate_session(user_id="alice")
        revoked: list[int] = []

        async def revoke() -> None:
            revoked.append(await manager(store).revoke_user_sessions("alice"))

        faulty.run_after("session_clone", revoke)
        assert await mgr.rotate_session(sid) is None
        assert revoked == [1]  # the successor was written after the read
        assert (await mgr.get_cache_stats())["active_sessions"] == 0
        assert await index_size(mgr, "alice") == 0

    async def test_revoking_the_spared_session_during_its_rotation(
        self, store: Store
    ) -> None:
        faulty = FaultyStore(store)
        mgr = manager(faulty)
        sid = await mgr.allocate_session(user_id="alice")
        faulty.run_after(
            "session_clone",
            lambda: manager(store).revoke_user_sessions("alice", except_session_id=sid),
        )
        # Fail closed: the successor of the spared id was marked with the rest.
        assert await mgr.rotate_session(sid) is None


class TestLimit:
    async def test_the_limit_evicts_the_oldest(self, store: Store) -> None:
        mgr = manager(store, max_sessions_per_user=3)
        ids = []
        for _ in range(5):
            ids.append(await mgr.allocate_session(user_id="alice"))
            await asyncio.sleep(0.005)
        bob = await mgr.allocate_session(user_id="bob")

        listed = [s.session_id for s in await mgr.list_user_sessions("alice")]
        assert listed == ids[:1:-1]
        assert not await mgr.validate_session(ids[0])
        assert not await mgr.validate_session(ids[1])
        assert await mgr.validate_session(bob)
        assert await index_size(mgr, "alice") == 3

    async def test_a_limit_of_one_keeps_the_latest_login(self, store: Store) -> None:
        mgr = manager(store, max_sessions_per_user=1)
        first = await mgr.allocate_session(user_id="alice")
        await asyncio.sleep(0.005)
        second = await mgr.allocate_session(user_id="alice")
        assert not await mgr.validate_session(first)
        assert await mgr.validate_session(second)

    async def test_concurrent_logins_respect_the_limit(self, store: Store) -> None:
        mgr = manager(store, max_sessions_per_user=3)
        ids = await asyncio.gather(
            *(mgr.allocate_session(user_id="alice") for _ in range(20))
        )
        live = [s for s in ids if await mgr.validate_session(s)]
        listed = await mgr.list_user_sessions("alice")
        assert 1 <= len(live) <= 3
        assert sorted(s.session_id for s in listed) == sorted(live)
        assert await index_size(mgr, "alice") == len(live)

    async def test_rotation_and_refresh_do_not_count_twice(self, store: Store) -> None:
        mgr = manager(store, max_sessions_per_user=2)
        a = await mgr.allocate_session(user_id="alice")
        await asyncio.sleep(0.005)
        b = await mgr.allocate_session(user_id="alice")
        a2 = await mgr.rotate_session(a, grace_seconds=30)
        assert await mgr.allocate_session(session_id=b, user_id="alice") == b
        assert sorted(
            s.session_id for s in await mgr.list_user_sessions("alice")
        ) == sorted([a2, b])

    async def test_dead_sessions_do_not_count(self, store: Store) -> None:
        mgr = manager(store, max_sessions_per_user=2)
        await mgr.allocate_session(user_id="alice", ttl_hours=0.05 / 3600)
        await mgr.allocate_session(user_id="alice", ttl_hours=0.05 / 3600)
        await asyncio.sleep(0.15)
        a = await mgr.allocate_session(user_id="alice")
        b = await mgr.allocate_session(user_id="alice")
        assert await mgr.validate_session(a) and await mgr.validate_session(b)

    @pytest.mark.parametrize("bad", [0, -1, True, 1.5, "3"])
    def test_bad_limits_are_refused(self, store: Store, bad: object) -> None:
        with pytest.raises(ConfigurationError, match="max_sessions_per_user"):
            manager(store, max_sessions_per_user=bad)


class TestTimeouts:
    async def test_per_session_idle_timeout(self, store: Store) -> None:
        mgr = manager(store, idle_timeout=60)
        short = await mgr.allocate_session(user_id="a", idle_timeout=0.2)
        normal = await mgr.allocate_session(user_id="a")
        meta = await mgr.get_session_metadata(short)
        assert meta is not None and meta.idle_timeout == 0.2
        await asyncio.sleep(0.3)
        assert not await mgr.validate_session(short)
        assert await mgr.validate_session(normal)

    async def test_per_session_max_lifetime_caps_extension(self, store: Store) -> None:
        mgr = manager(store, max_lifetime=86_400)
        sid = await mgr.allocate_session(user_id="a", max_lifetime=600)
        assert await mgr.extend_session_ttl(sid, 48)
        meta = await mgr.get_session_metadata(sid)
        assert meta is not None and meta.max_expires_at is not None
        assert meta.absolute_expires_at == meta.max_expires_at
        span = meta.max_expires_at - meta.created_at
        assert math.isclose(span.total_seconds(), 600, abs_tol=0.01)

    async def test_both_timeouts_hold_together(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session(idle_timeout=0.3, max_lifetime=0.5)
        alive = []
        for _ in range(5):
            await asyncio.sleep(0.15)
            alive.append(await mgr.validate_session(sid))
        assert alive[:3] == [True, True, True]
        assert alive[-1] is False

    async def test_info_shows_every_deadline(self, store: Store) -> None:
        mgr = manager(store, idle_timeout=60, max_lifetime=600)
        sid = await mgr.allocate_session()
        info = await mgr.get_session_info(sid)
        assert info is not None
        assert (
            info["expires_at"] < info["absolute_expires_at"] == info["max_expires_at"]
        )
        assert info["rotated_at"] is None

    async def test_without_a_cap_there_is_no_hard_cap(self, store: Store) -> None:
        mgr = manager(store)
        meta = await mgr.get_session_metadata(await mgr.allocate_session())
        assert meta is not None and meta.max_expires_at is None

    @pytest.mark.parametrize("option", ["idle_timeout", "max_lifetime"])
    @pytest.mark.parametrize("value", [0, -5, float("nan"), True])
    async def test_bad_overrides_write_nothing(
        self, store: Store, option: str, value: object
    ) -> None:
        mgr = manager(store)
        with pytest.raises((InvalidTTLError, InvalidValueTypeError), match=option):
            await mgr.allocate_session(user_id="a", **{option: value})  # type: ignore[arg-type]
        assert (await mgr.get_cache_stats())["active_sessions"] == 0


class TestCleanup:
    async def test_cleanup_prunes_every_index_of_the_sandbox(
        self, store: Store
    ) -> None:
        mgr, other = manager(store), manager(store, "other")
        for user in ("alice", "bob", "carol"):
            for _ in range(3):
                await mgr.allocate_session(user_id=user, ttl_hours=0.1 / 3600)
        await other.allocate_session(user_id="alice", ttl_hours=0.1 / 3600)
        live = await mgr.allocate_session(user_id="alice")
        await asyncio.sleep(0.2)

        report = await mgr.cleanup_report(batch_size=2)
        assert report.indexes_scanned == 3
        assert report.members_pruned == 9
        assert report.total >= 9
        assert await index_members(mgr, "alice") == {live}
        assert await index_size(mgr, "bob") == 0
        assert await index_size(other, "alice") == 1  # another sandbox: untouched

    async def test_cleanup_reports_progress(self, store: Store) -> None:
        mgr = manager(store)
        for i in range(5):
            await mgr.allocate_session(user_id=f"u{i}", ttl_hours=0.1 / 3600)
        await asyncio.sleep(0.2)
        seen: list[CleanupReport] = []
        seen_async: list[int] = []

        async def record(progress: CleanupReport) -> None:
            seen_async.append(progress.indexes_scanned)

        total = await mgr.cleanup_expired_sessions(on_progress=seen.append)
        assert total >= 5
        assert seen and seen[-1].members_pruned == 5
        assert [p.indexes_scanned for p in seen] == sorted(
            p.indexes_scanned for p in seen
        )
        await mgr.cleanup_report(on_progress=record)
        assert seen_async == []  # nothing left to walk: the indexes are gone

    async def test_cleanup_of_many_members_runs_in_batches(self, store: Store) -> None:
        mgr = manager(store)
        await asyncio.gather(
            *(
                mgr.allocate_session(user_id="alice", ttl_hours=0.2 / 3600)
                for _ in range(25)
            )
        )
        await asyncio.sleep(0.3)
        report = await mgr.cleanup_report(batch_size=10)
        assert report.members_pruned + 0 <= 25
        assert await index_size(mgr, "alice") == 0

    @pytest.mark.parametrize("bad", [0, -1, True, 2.5])
    async def test_bad_batch_sizes_are_refused(self, store: Store, bad: object) -> None:
        with pytest.raises(ConfigurationError, match="batch_size"):
            await manager(store).cleanup_report(batch_size=bad)  # type: ignore[arg-type]


class TestInterruptedSteps:
    """A step that fails leaves nothing a revocation cannot find."""

    async def test_allocate_failing_after_the_write(self, store: Store) -> None:
        faulty = FaultyStore(store)
        mgr = manager(faulty)
        await mgr.allocate_session(user_id="alice")
        # The settle step, right after the write, fails before it runs.
        faulty.run_after("session_create", lambda: _arm(faulty))
        with pytest.raises(BackendUnavailableError):
            await mgr.allocate_session(user_id="alice")
        assert len(await mgr.list_user_sessions("alice")) == 2
        assert await mgr.revoke_user_sessions("alice") == 2
        assert (await mgr.get_cache_stats())["active_sessions"] == 0

    async def test_allocate_failing_before_the_write(self, store: Store) -> None:
        faulty = FaultyStore(store)
        mgr = manager(faulty)
        faulty.fail_on("session_create", before=True)
        with pytest.raises(BackendUnavailableError):
            await mgr.allocate_session(user_id="alice")
        assert await mgr.list_user_sessions("alice") == []
        assert await index_size(mgr, "alice") == 1  # a ghost, due later

    async def test_rotation_failing_after_the_retirement(self, store: Store) -> None:
        faulty = FaultyStore(store)
        mgr = manager(faulty)
        sid = await mgr.allocate_session(user_id="alice")
        faulty.fail_on("session_clone", before=True)
        with pytest.raises(BackendUnavailableError):
            await mgr.rotate_session(sid)
        assert not await mgr.validate_session(sid)  # failed closed
        assert await mgr.list_user_sessions("alice") == []

    async def test_rotation_failing_after_the_new_write(self, store: Store) -> None:
        faulty = FaultyStore(store)
        mgr = manager(faulty)
        sid = await mgr.allocate_session(user_id="alice")
        faulty.fail_on("session_clone")
        with pytest.raises(BackendUnavailableError):
            await mgr.rotate_session(sid)
        assert not await mgr.validate_session(sid)
        assert await mgr.revoke_user_sessions("alice") == 1  # the orphan is found
        assert (await mgr.get_cache_stats())["active_sessions"] == 0

    async def test_delete_failing_after_the_record(self, store: Store) -> None:
        faulty = FaultyStore(store)
        mgr = manager(faulty)
        sid = await mgr.allocate_session(user_id="alice")
        faulty.fail_on("index_update", before=True)
        with pytest.raises(BackendUnavailableError):
            await mgr.delete_session(sid)
        assert not await mgr.validate_session(sid)
        assert await mgr.list_user_sessions("alice") == []

    async def test_revoke_failing_half_way_can_be_repeated(self, store: Store) -> None:
        faulty = FaultyStore(store)
        mgr = manager(faulty)
        for _ in range(3):
            await mgr.allocate_session(user_id="alice")
        faulty.fail_on("session_delete_owned", before=True)
        with pytest.raises(BackendUnavailableError):
            await mgr.revoke_user_sessions("alice")
        assert await mgr.revoke_user_sessions("alice") == 3
        assert await index_size(mgr, "alice") == 0


async def _arm(faulty: FaultyStore) -> None:
    faulty.fail_on("index_update", before=True)


def test_memory_store_is_its_own_second_worker() -> None:
    store = MemoryStore()
    assert second_worker(store) is store


class TestCreationRaces:
    """Sessions still being written are covered by evictions and revocations."""

    async def test_revocation_during_a_login_ends_the_new_session(
        self, store: Store
    ) -> None:
        faulty = FaultyStore(store)
        mgr = manager(faulty)
        faulty.run_after(
            "index_update", lambda: manager(store).revoke_user_sessions("a")
        )
        sid = await mgr.allocate_session(user_id="a")
        assert not await mgr.validate_session(sid)
        assert await index_size(mgr, "a") == 0

    async def test_a_login_being_written_counts_against_the_limit(
        self, store: Store
    ) -> None:
        faulty = FaultyStore(store)
        mgr = manager(faulty, max_sessions_per_user=1)
        newer: list[str] = []

        async def login_meanwhile() -> None:
            newer.append(
                await manager(store, max_sessions_per_user=1).allocate_session(
                    user_id="a"
                )
            )

        faulty.run_after("index_update", login_meanwhile)
        older = await mgr.allocate_session(user_id="a")
        assert not await mgr.validate_session(older)
        assert await mgr.validate_session(newer[0])
        assert [s.session_id for s in await mgr.list_user_sessions("a")] == newer


class TestLogging:
    async def test_lifecycle_logs_neither_ids_nor_user_ids(
        self, store: Store, caplog: pytest.LogCaptureFixture
    ) -> None:
        mgr = manager(store, max_sessions_per_user=2, renew_after=0.05)
        user = "alice@example.org"
        with caplog.at_level(logging.DEBUG, logger="aiosessions"):
            ids = [await mgr.allocate_session(user_id=user) for _ in range(3)]
            await asyncio.sleep(0.1)
            renewed = await mgr.validate_and_renew(ids[-1])
            rotated = await mgr.rotate_session(renewed or "", grace_seconds=1)
            await mgr.extend_session_ttl(rotated or "", 1)
            await mgr.list_user_sessions(user)
            await mgr.revoke_user_sessions(user)
            await mgr.cleanup_report()
        text = caplog.text
        assert "rotated" in text and "revoked" in text and "evicted" in text
        for secret in [*ids, renewed, rotated, user]:
            assert secret is not None and secret not in text
