"""No log line, error or repr ever shows a session id, token, key or password.

A full lifecycle runs on a password-protected Redis with signed ids and CSRF
tokens while every logger of the process is captured at DEBUG; then every
captured record (message, arguments, exception text) is searched for each
secret the run handled.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from urllib.parse import quote

import pytest

from aiosessions import (
    BackendUnavailableError,
    ProviderError,
    RedisStore,
    SessionManager,
)
from aiosessions.security import csrf
from aiosessions.security.keyring import ENV_VAR

from .servers import RedisServer, free_port

KEY = secrets.token_urlsafe(32)
OLD_KEY = secrets.token_urlsafe(32)


def pieces(value: str) -> set[str]:
    """Return *value* and its parts long enough to identify it."""
    found = {value}
    for separator in "._":
        found.update(part for part in value.split(separator) if len(part) >= 12)
    return found


def render(record: logging.LogRecord) -> str:
    text = logging.Formatter("%(name)s %(levelname)s %(message)s").format(record)
    return "\n".join([text, repr(record.args), str(record.msg), record.exc_text or ""])


async def test_a_full_lifecycle_logs_no_secret(
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    password = secrets.token_urlsafe(18)
    server = redis_server_factory(password=password)
    secrets_seen: set[str] = {KEY, OLD_KEY, password, quote(password, safe="")}
    shown: list[str] = []  # reprs and error messages, searched too

    caplog.set_level(logging.DEBUG)
    store = RedisStore(server.url)
    old = SessionManager("tenant", store=store, secret_key=OLD_KEY)
    mgr = SessionManager(
        "tenant", store=store, secret_key=[KEY, OLD_KEY], idle_timeout=600
    )
    other = SessionManager("other-tenant", store=store, secret_key=KEY)

    sid = await mgr.allocate_session(user_id="alice", custom_metadata={"r": 1})
    old_sid = await old.allocate_session()
    foreign = await other.allocate_session()
    secrets_seen |= pieces(sid) | pieces(old_sid) | pieces(foreign)

    assert await mgr.validate_session(sid)
    assert await mgr.validate_session(old_sid)
    assert await mgr.allocate_session(session_id=sid, user_id="alice") == sid
    assert await mgr.get_session_info(sid) is not None
    assert await mgr.update_session_metadata(sid, {"cart": [1, 2]})
    assert await mgr.increment_metadata(sid, "hits") == 1
    assert await mgr.extend_session_ttl(sid, 1)

    token = mgr.csrf_token(sid)
    secrets_seen |= pieces(token)
    assert await mgr.verify_csrf_token(sid, token)
    assert not await mgr.verify_csrf_token(sid, token[:-2] + "AA")
    assert not await mgr.verify_csrf_token(foreign, token)

    tampered = sid[:-1] + ("A" if sid[-1] != "A" else "B")
    unsigned = sid[:32]
    secrets_seen |= pieces(tampered)
    assert not await mgr.validate_session(tampered)
    assert not await mgr.validate_session(foreign)
    assert not await mgr.validate_session(unsigned)
    assert not await mgr.validate_session("x" * 5000)

    double = csrf.generate_double_submit_token(sid, KEY)
    sealed = csrf.generate_encrypted_csrf_token(sid, KEY)
    secrets_seen |= pieces(double) | pieces(sealed)
    assert csrf.validate_double_submit_token(double, double, sid, KEY)
    assert not csrf.validate_double_submit_token(double, token, sid, KEY)
    assert csrf.validate_encrypted_csrf_token(sealed, sid, [KEY])
    assert not csrf.validate_encrypted_csrf_token(sealed, foreign, KEY)
    assert not csrf.validate_csrf_token(token, sid, OLD_KEY)

    assert await mgr.delete_session(sid)
    assert not await mgr.validate_session(sid)
    assert not await mgr.verify_csrf_token(sid, token)
    shown += [
        repr(mgr),
        repr(vars(mgr)),
        repr(store),
        repr(mgr.id_policy),
        repr(mgr.id_policy.keys),
        str(await mgr.get_cache_stats()),
    ]

    wrong_password = server.url.replace(quote(password, safe=""), "not-the-password")
    with pytest.raises(ProviderError) as refused:
        await SessionManager(
            "tenant", store=RedisStore(wrong_password)
        ).validate_session(unsigned)
    down = RedisStore(
        f"redis://:{quote(password, safe='')}@127.0.0.1:{free_port()}/0",
        retries=1,
        retry_backoff=0.001,
        socket_timeout=1,
    )
    with pytest.raises(BackendUnavailableError) as unreachable:
        await SessionManager("tenant", store=down, secret_key=KEY).validate_session(sid)
    logging.getLogger("aiosessions.test").exception(
        "outage", exc_info=unreachable.value
    )
    shown += [str(refused.value), str(unreachable.value), repr(down)]
    await store.aclose()
    await down.aclose()

    logged = [render(record) for record in caplog.records]
    messages = " ".join(record.getMessage() for record in caplog.records)
    for expected in ["session created", "session extended", "session deleted"]:
        assert expected in messages
    assert "bad signature" in messages
    assert "csrf token refused" in messages
    for secret in secrets_seen:
        assert len(secret) >= 12
        for text in logged + shown:
            assert secret not in text, f"a secret leaked into: {text[:200]!r}"
