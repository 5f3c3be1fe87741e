"""The Session view on its own: loading, change tracking, committing."""

from __future__ import annotations

from typing import Any

import pytest

from aiosessions import InvalidMetadataError, SessionManager, SessionMetadata
from aiosessions.stores import MemoryStore, Store
from aiosessions.web import Session, SessionNotLoadedError


@pytest.fixture
def manager(store: Store) -> SessionManager:
    return SessionManager("web", store=store)


class TestReading:
    @pytest.mark.parametrize(
        "read",
        [
            lambda s: s["a"],
            lambda s: s.get("a"),
            lambda s: "a" in s,
            lambda s: list(s),
            lambda s: len(s),
            lambda s: s.setdefault("a", 1),
        ],
    )
    def test_reads_before_load_raise_and_name_the_fix(self, read: Any) -> None:
        session = Session(SessionManager("web", store=MemoryStore()), None)
        with pytest.raises(SessionNotLoadedError, match=r"await request\.session"):
            read(session)

    async def test_load_once_then_reads_are_free(self, manager: SessionManager) -> None:
        sid = await manager.allocate_session(user_id="u", custom_metadata={"a": 1})
        session = Session(manager, sid)

        assert not session.is_loaded
        assert await session.load() is session
        assert await session.load() is session
        assert session.is_loaded and session.user_id == "u"
        assert dict(session) == {"a": 1} and len(session) == 1

    async def test_changes_made_before_loading_stay_on_top(
        self, manager: SessionManager
    ) -> None:
        sid = await manager.allocate_session(custom_metadata={"a": 1, "b": 2})
        session = Session(manager, sid)
        session["a"] = "new"
        del session["b"]
        del session["never-there"]  # unknown before loading: no KeyError

        await session.load()
        assert dict(session) == {"a": "new"}

    async def test_delete_of_a_missing_key_after_loading_is_a_key_error(
        self, manager: SessionManager
    ) -> None:
        session = await Session(manager, None).load()
        with pytest.raises(KeyError):
            del session["missing"]

    async def test_a_session_gone_while_loading_is_empty(self) -> None:
        class Vanishing(SessionManager):
            async def get_session_metadata(
                self, session_id: str
            ) -> SessionMetadata | None:
                await self.delete_session(session_id)
                return None

        manager = Vanishing("web", store=MemoryStore())
        sid = await manager.allocate_session(custom_metadata={"a": 1})
        session = await Session(manager, sid).load()

        assert dict(session) == {} and session.id is None

    def test_repr_never_shows_the_id(self) -> None:
        sid = "A" * 32
        session = Session(SessionManager("web", store=MemoryStore()), sid)
        session["k"] = 1
        assert sid not in repr(session)
        assert "1 changed" in repr(session)


class TestWriting:
    def test_a_value_that_is_not_json_is_refused_at_once(self) -> None:
        session = Session(SessionManager("web", store=MemoryStore()), None)
        with pytest.raises(InvalidMetadataError):
            session["bad"] = {1, 2}
        with pytest.raises(InvalidMetadataError):
            del session[""]
        assert repr(session).endswith("0 changed, 0 removed>")

    async def test_changes_after_commit_are_refused(
        self, manager: SessionManager
    ) -> None:
        session = Session(manager, None)
        await session.commit()
        with pytest.raises(RuntimeError, match="after the response started"):
            session["late"] = 1
        with pytest.raises(RuntimeError, match="after the response started"):
            session.clear()

    async def test_a_write_to_a_session_deleted_meanwhile_starts_a_new_one(
        self, manager: SessionManager
    ) -> None:
        sid = await manager.allocate_session(custom_metadata={"old": 1})
        session = await Session(manager, sid).load()
        await manager.delete_session(sid)  # another worker logs out

        session["a"] = 1
        await session.commit()

        assert session.id is not None and session.id != sid and session.is_new
        info = await manager.get_session_info(session.id)
        assert info is not None and info["custom_metadata"] == {"a": 1}
        assert await manager.get_session_info(sid) is None

    async def test_only_removals_on_a_dead_id_create_nothing(
        self, manager: SessionManager
    ) -> None:
        session = Session(manager, "B" * 32)
        del session["a"]
        await session.commit()
        assert session.id is None
        assert (await manager.get_cache_stats())["active_sessions"] == 0

    async def test_clear_deletes_at_commit_not_before(
        self, manager: SessionManager
    ) -> None:
        sid = await manager.allocate_session()
        session = Session(manager, sid)
        session.clear()

        assert session.id is None and dict(session) == {}
        assert await manager.validate_session(sid)
        await session.commit()
        assert not await manager.validate_session(sid)

    async def test_regenerate_without_a_session_is_none(
        self, manager: SessionManager
    ) -> None:
        session = Session(manager, "C" * 32)
        assert await session.regenerate() is None
        assert session.id is None
