"""SessionManager with a secret key: signed ids and CSRF tokens, on every store."""

from __future__ import annotations

import asyncio

import pytest

from aiosessions import ConfigurationError, InvalidInputError, SessionManager
from aiosessions.security.ids import looks_like_session_id
from aiosessions.security.keyring import ENV_VAR
from aiosessions.stores import Store

from .spy import CountingStore

KEY = "K" * 16 + "k" * 16
OLD = "o" * 32


@pytest.fixture(autouse=True)
def no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test says itself whether SESSION_SECRET_KEY is set."""
    monkeypatch.delenv(ENV_VAR, raising=False)


def manager(
    store: Store, sandbox: str = "app", secret_key: object = KEY, **options: object
) -> SessionManager:
    return SessionManager(
        sandbox,
        store=store,
        secret_key=secret_key,  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )


async def every_call(mgr: SessionManager, sid: object) -> list[object]:
    """Run every call that takes a session id; return their answers."""
    return [
        await mgr.validate_session(sid),  # type: ignore[arg-type]
        await mgr.get_session_info(sid),  # type: ignore[arg-type]
        await mgr.get_session_metadata(sid),  # type: ignore[arg-type]
        await mgr.update_session_metadata(sid, {"x": 1}),  # type: ignore[arg-type]
        await mgr.increment_metadata(sid, "n"),  # type: ignore[arg-type]
        await mgr.extend_session_ttl(sid, 1),  # type: ignore[arg-type]
        await mgr.delete_session(sid),  # type: ignore[arg-type]
        await mgr.verify_csrf_token(sid, "c1.1.x.y"),  # type: ignore[arg-type]
    ]


class TestSignedIds:
    async def test_ids_are_signed_and_work(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session(user_id="alice")
        assert mgr.id_policy.signed
        assert len(sid) == 55 and sid[32] == "."
        assert await mgr.validate_session(sid)
        info = await mgr.get_session_info(sid)
        assert info is not None and info["session_id"] == sid
        assert await mgr.delete_session(sid)

    async def test_refused_ids_never_reach_the_store(self, store: Store) -> None:
        real = await manager(store, "app").allocate_session()
        other_sandbox = await manager(store, "other").allocate_session()
        other_key = await manager(store, "app", "x" * 32).allocate_session()
        unsigned = await manager(store, "app", None).allocate_session()
        spy = CountingStore(store)
        mgr = manager(spy, "app")

        tampered = real[:-1] + ("A" if real[-1] != "A" else "B")
        guessed = "A" * 32 + "." + "A" * 22
        for sid in [tampered, guessed, other_sandbox, other_key, unsigned, real[:32]]:
            answers = await every_call(mgr, sid)
            assert not any(answers), sid
        assert spy.calls == []

    async def test_a_refused_id_is_replaced_never_adopted(self, store: Store) -> None:
        foreign = await manager(store, "other").allocate_session()
        spy = CountingStore(store)
        sid = await manager(spy).allocate_session(session_id=foreign)
        assert sid != foreign
        assert spy.calls == ["session_create"]

    async def test_old_keys_keep_sessions_alive_during_rotation(
        self, store: Store
    ) -> None:
        before = await manager(store, secret_key=OLD).allocate_session()
        rotated = manager(store, secret_key=[KEY, OLD])
        after = await rotated.allocate_session()
        assert await rotated.validate_session(before)
        assert await manager(store, secret_key=KEY).validate_session(after)
        assert not await manager(store, secret_key=KEY).validate_session(before)

    async def test_key_from_the_environment_is_read_on_first_use(
        self, store: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        mgr = SessionManager("app", store=store)
        monkeypatch.setenv(ENV_VAR, f"{KEY},{OLD}")
        sid = await mgr.allocate_session()
        assert mgr.id_policy.signed
        assert not looks_like_session_id(sid)
        assert await manager(store, secret_key=KEY).validate_session(sid)

    async def test_without_a_key_ids_are_unsigned(self, store: Store) -> None:
        mgr = manager(store, secret_key=None)
        sid = await mgr.allocate_session()
        assert not mgr.id_policy.signed
        assert looks_like_session_id(sid)

    async def test_an_unusable_env_key_fails_loudly_on_first_use(
        self, store: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(ENV_VAR, "hunter2")
        mgr = SessionManager("app", store=store)
        with pytest.raises(ConfigurationError, match=ENV_VAR) as caught:
            await mgr.allocate_session()
        assert "hunter2" not in str(caught.value)

    @pytest.mark.parametrize("key", ["hunter2", "", [], ["x" * 32, 7]])
    def test_an_unusable_key_argument_is_refused(
        self, store: Store, key: object
    ) -> None:
        with pytest.raises(ConfigurationError, match="secret_key") as caught:
            manager(store, secret_key=key)
        assert "hunter2" not in str(caught.value)

    def test_the_key_is_never_in_repr(self, store: Store) -> None:
        mgr = manager(store)
        assert KEY not in repr(mgr)
        assert KEY not in repr(mgr.id_policy)
        assert KEY not in repr(vars(mgr))


class TestCsrf:
    async def test_token_round_trip(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session()
        token = mgr.csrf_token(sid)
        assert await mgr.verify_csrf_token(sid, token)

    async def test_verify_is_one_call_and_does_not_slide(self, store: Store) -> None:
        spy = CountingStore(store)
        mgr = manager(spy, idle_timeout=60)
        sid = await mgr.allocate_session()
        token = mgr.csrf_token(sid)
        before = await mgr.get_session_metadata(sid)
        await asyncio.sleep(0.02)
        spy.calls.clear()

        assert await mgr.verify_csrf_token(sid, token)
        assert spy.calls == ["exists"]
        after = await mgr.get_session_metadata(sid)
        assert before is not None and after is not None
        assert after.last_accessed == before.last_accessed

    async def test_a_bad_token_costs_no_store_call(self, store: Store) -> None:
        spy = CountingStore(store)
        mgr = manager(spy)
        sid = await mgr.allocate_session()
        other = await mgr.allocate_session()
        spy.calls.clear()
        for token in [
            None,
            "",
            b"x",
            "c1.1.x.y",
            "x" * 1_000_000,
            mgr.csrf_token(other),
        ]:
            assert not await mgr.verify_csrf_token(sid, token)
        assert spy.calls == []

    async def test_deleted_session_tokens_stop_working(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session()
        token = mgr.csrf_token(sid)
        await mgr.delete_session(sid)
        assert not await mgr.verify_csrf_token(sid, token)

    async def test_another_sandbox_refuses_the_token(self, store: Store) -> None:
        one, two = manager(store, "one"), manager(store, "two")
        sid = await one.allocate_session()
        token = one.csrf_token(sid)
        assert not await two.verify_csrf_token(sid, token)
        assert await one.verify_csrf_token(sid, token)

    async def test_tokens_expire(self, store: Store) -> None:
        mgr = manager(store)
        sid = await mgr.allocate_session()
        token = mgr.csrf_token(sid)
        await asyncio.sleep(1.1)
        assert not await mgr.verify_csrf_token(sid, token, max_age=1)
        assert await mgr.verify_csrf_token(sid, token)

    async def test_without_a_key_csrf_is_a_configuration_error(
        self, store: Store
    ) -> None:
        mgr = manager(store, secret_key=None)
        sid = await mgr.allocate_session()
        with pytest.raises(ConfigurationError, match=ENV_VAR):
            mgr.csrf_token(sid)
        with pytest.raises(ConfigurationError, match=ENV_VAR):
            await mgr.verify_csrf_token(sid, "token")

    async def test_a_token_for_a_non_id_is_refused_without_echoing_it(
        self, store: Store
    ) -> None:
        mgr = manager(store)
        with pytest.raises(InvalidInputError, match="not a session id") as caught:
            mgr.csrf_token("attacker-chosen-value")
        assert "attacker-chosen-value" not in str(caught.value)
