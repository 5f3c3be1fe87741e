"""Lifecycle hooks: the right events, and failures that never break a call."""

from __future__ import annotations

import asyncio
import logging

import pytest

from aiosessions import ConfigurationError, SessionEvent, SessionManager
from aiosessions.hooks import LIFECYCLE_EVENTS, Hooks
from aiosessions.stores import Store


class Recorder:
    """An async hook that keeps what it was told."""

    def __init__(self) -> None:
        self.events: list[SessionEvent] = []

    async def __call__(self, event: SessionEvent) -> None:
        await asyncio.sleep(0)
        self.events.append(event)

    def named(self, name: str) -> list[SessionEvent]:
        return [e for e in self.events if e.event == name]


def watched(store: Store, **options: object) -> tuple[SessionManager, Recorder]:
    recorder = Recorder()
    hooks = dict.fromkeys(LIFECYCLE_EVENTS, recorder)
    mgr = SessionManager("app", store=store, hooks=hooks, **options)  # type: ignore[arg-type]
    return mgr, recorder


class TestEvents:
    async def test_created_for_users_and_anonymous(self, store: Store) -> None:
        mgr, seen = watched(store)
        alice = await mgr.allocate_session(user_id="alice")
        anon = await mgr.allocate_session()
        await mgr.allocate_session(session_id=alice, user_id="alice")  # a refresh
        assert [(e.session_id, e.user_id) for e in seen.named("created")] == [
            (alice, "alice"),
            (anon, None),
        ]
        assert all(e.sandbox_id == "app" for e in seen.events)

    async def test_rotated_names_both_ids(self, store: Store) -> None:
        mgr, seen = watched(store)
        old = await mgr.allocate_session(user_id="alice")
        new = await mgr.rotate_session(old)
        [event] = seen.named("rotated")
        assert (event.session_id, event.new_session_id, event.user_id) == (
            old,
            new,
            "alice",
        )

    async def test_renewal_is_a_rotation(self, store: Store) -> None:
        mgr, seen = watched(store, renew_after=0.05)
        old = await mgr.allocate_session()
        await asyncio.sleep(0.1)
        new = await mgr.validate_and_renew(old)
        assert [(e.session_id, e.new_session_id) for e in seen.named("rotated")] == [
            (old, new)
        ]

    async def test_extended_and_deleted(self, store: Store) -> None:
        mgr, seen = watched(store)
        sid = await mgr.allocate_session(user_id="alice")
        await mgr.extend_session_ttl(sid, 1)
        await mgr.delete_session(sid)
        await mgr.delete_session(sid)  # not live: no second event
        assert [e.event for e in seen.events] == ["created", "extended", "deleted"]
        assert {e.user_id for e in seen.events} == {"alice"}

    async def test_revoked_once_per_session(self, store: Store) -> None:
        mgr, seen = watched(store)
        ids = {await mgr.allocate_session(user_id="alice") for _ in range(3)}
        keep = ids.pop()
        await mgr.revoke_user_sessions("alice", except_session_id=keep)
        assert {e.session_id for e in seen.named("revoked")} == ids
        assert len(seen.named("revoked")) == 2

    async def test_evicted_by_the_limit(self, store: Store) -> None:
        mgr, seen = watched(store, max_sessions_per_user=1)
        first = await mgr.allocate_session(user_id="alice")
        await mgr.allocate_session(user_id="alice")
        assert [e.session_id for e in seen.named("evicted")] == [first]

    async def test_expired_when_a_prune_finds_it_gone(self, store: Store) -> None:
        mgr, seen = watched(store)
        sid = await mgr.allocate_session(user_id="alice", ttl_hours=0.05 / 3600)
        await asyncio.sleep(0.15)
        assert await mgr.list_user_sessions("alice") == []
        await mgr.cleanup_expired_sessions()
        assert [(e.session_id, e.user_id) for e in seen.named("expired")] == [
            (sid, "alice")
        ]

    async def test_expired_found_by_cleanup(self, store: Store) -> None:
        mgr, seen = watched(store)
        sid = await mgr.allocate_session(user_id="bob", ttl_hours=0.05 / 3600)
        await asyncio.sleep(0.15)
        await mgr.cleanup_expired_sessions()
        assert [e.session_id for e in seen.named("expired")] == [sid]

    async def test_no_hooks_no_events(self, store: Store) -> None:
        mgr = SessionManager("app", store=store)
        sid = await mgr.allocate_session(user_id="alice")
        assert await mgr.rotate_session(sid) is not None
        assert not mgr.hooks.wants("rotated")


class TestRegistration:
    async def test_on_and_decorator_and_sync_hooks(self, store: Store) -> None:
        mgr = SessionManager("app", store=store)
        calls: list[str] = []

        @mgr.on("created")
        async def first(event: SessionEvent) -> None:
            calls.append("first")

        def second(event: SessionEvent) -> None:
            calls.append("second")

        assert mgr.on("created", second) is second
        await mgr.allocate_session()
        assert calls == ["first", "second"]

    def test_hooks_mapping_takes_lists(self) -> None:
        hooks = Hooks({"deleted": [print, print], "created": print})
        assert hooks.wants("deleted") and hooks.wants("created")
        assert not hooks.wants("revoked")

    def test_unknown_events_are_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="created"):
            SessionManager("app", hooks={"logout": print})  # type: ignore[dict-item]
        with pytest.raises(ConfigurationError, match="event"):
            SessionManager("app").on("nope", print)  # type: ignore[call-overload]

    def test_uncallable_hooks_are_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="not callable"):
            Hooks().add("created", "print")  # type: ignore[arg-type]

    def test_event_repr_never_shows_ids(self) -> None:
        event = SessionEvent("rotated", "app", "S" * 32, "alice", "N" * 32)
        text = repr(event)
        assert "S" * 32 not in text and "N" * 32 not in text
        assert "rotated" in text and "alice" in text
        assert "S" * 32 not in repr(SessionEvent("created", "app", "S" * 32))


class TestFailures:
    async def test_a_raising_hook_is_logged_and_the_call_succeeds(
        self, store: Store, caplog: pytest.LogCaptureFixture
    ) -> None:
        mgr = SessionManager("app", store=store)
        after: list[str] = []

        async def broken(event: SessionEvent) -> None:
            raise RuntimeError(f"cannot audit {event.session_id}")

        def sync_broken(event: SessionEvent) -> None:
            raise KeyError(event.session_id)

        for name in ("created", "rotated", "deleted", "revoked"):
            mgr.on(name, broken)  # type: ignore[call-overload]
            mgr.on(name, sync_broken)  # type: ignore[call-overload]
        mgr.on("created", lambda e: after.append(e.session_id))

        with caplog.at_level(logging.DEBUG, logger="aiosessions"):
            sid = await mgr.allocate_session(user_id="alice")
            new = await mgr.rotate_session(sid)
            other = await mgr.allocate_session(user_id="alice")
            assert new is not None and await mgr.delete_session(new)
            assert await mgr.revoke_user_sessions("alice") == 1

        assert after == [sid, other]  # later hooks still ran
        assert not await mgr.validate_session(other)
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 2 * 5
        assert any("RuntimeError" in r.getMessage() for r in errors)
        assert any("KeyError" in r.getMessage() for r in errors)
        assert any("broken" in r.getMessage() for r in errors)
        for record in caplog.records:
            for raw in (sid, new, other):
                assert raw not in record.getMessage()
            assert record.exc_info is None

    async def test_cancellation_is_not_swallowed(self, store: Store) -> None:
        mgr = SessionManager("app", store=store)

        async def cancelled(event: SessionEvent) -> None:
            raise asyncio.CancelledError

        mgr.on("created", cancelled)
        with pytest.raises(asyncio.CancelledError):
            await mgr.allocate_session()
