"""Logs and error messages: no raw id, token, key or password; values cut.

README "Logging" and "Errors"; invariant 4 of DESIGN.md ("raw ids are never
logged").
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from urllib.parse import quote

import pytest

from aiosessions import (
    ConfigurationError,
    InvalidInputError,
    KeyValueSession,
    ProviderError,
    RedisStore,
    SessionManager,
)
from aiosessions.security import csrf
from tests.servers import RedisServer


def rendered(caplog: pytest.LogCaptureFixture) -> str:
    fmt = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(
        "\n".join([fmt.format(r), repr(r.args), str(r.msg), r.exc_text or ""])
        for r in caplog.records
    )


async def test_everything_at_debug_leaks_nothing(
    caplog: pytest.LogCaptureFixture,
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    password = "p@ss:w/rd#" + secrets.token_hex(8)
    server = redis_server_factory(password=password, name="review-logs")
    key, old_key = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    caplog.set_level(logging.DEBUG)
    shown: list[str] = []
    handled: set[str] = {password, quote(password, safe=""), key, old_key}

    store = RedisStore(server.url, retries=1, retry_backoff=0.01)
    mgr = SessionManager("shop", store=store, secret_key=[key, old_key])
    sid = await mgr.allocate_session(user_id="alice", custom_metadata={"r": 1})
    handled |= {sid, sid.split(".")[0], sid.split(".")[1]}
    token = mgr.csrf_token(sid)
    handled.add(token)
    assert await mgr.verify_csrf_token(sid, token)
    assert not await mgr.verify_csrf_token(sid, token[:-2] + "AA")
    forged = sid[:-3] + "AAA"
    handled.add(forged)
    assert not await mgr.validate_session(forged)
    unsigned = SessionManager("shop", store=store)
    raw = await unsigned.allocate_session()
    handled.add(raw)
    assert not await mgr.validate_session(raw)
    await mgr.validate_session(sid)
    await mgr.update_session_metadata(sid, {"t": "dark"})
    await mgr.increment_metadata(sid, "n")
    await mgr.extend_session_ttl(sid, 1)
    kept = await mgr.allocate_session(session_id=sid, user_id="alice")
    other = await mgr.allocate_session(session_id=sid, user_id="mallory")
    handled.add(other)
    kv = KeyValueSession(store)
    otp = secrets.token_hex(8)
    handled.add(otp)
    await kv.setex("otp:alice", 60, otp)
    assert await kv.get("otp:alice") == otp
    ds = csrf.generate_double_submit_token(sid, key)
    enc = csrf.generate_encrypted_csrf_token(sid, key)
    handled |= {ds, enc}
    assert csrf.validate_double_submit_token(ds, ds, sid, key)
    assert csrf.validate_encrypted_csrf_token(enc, sid, key)
    assert not csrf.validate_csrf_token(ds, sid, key)
    for bad in (sid, key):
        try:
            csrf.generate_csrf_token(sid, bad[:10])
        except ConfigurationError as exc:
            shown.append(str(exc))
    try:
        mgr.csrf_token(raw)
    except InvalidInputError as exc:
        shown.append(str(exc))
    await mgr.delete_session(kept)
    await mgr.delete_session(other)
    shown += [repr(store), repr(mgr), str(store.describe()), str(await mgr.health())]

    wrong = RedisStore(server.url.replace(quote(password, safe=""), "nope"))
    with pytest.raises(ProviderError) as caught:
        await wrong.get("k")
    shown.append(str(caught.value))
    await wrong.aclose()
    server.stop()
    with pytest.raises(ProviderError) as caught:
        await mgr.validate_session(kept)
    shown.append(str(caught.value))
    shown.append(str(await mgr.health()))
    await store.aclose()

    text = rendered(caplog) + "\n".join(shown)
    assert caplog.records, "nothing was logged at all"
    for secret in handled:
        assert secret not in text


def test_error_messages_quote_values_cut_short() -> None:
    from aiosessions.stores.base import check_key

    huge = "k" * 100_000
    with pytest.raises(InvalidInputError) as caught:
        check_key(huge)
    assert len(str(caught.value)) < 200
    assert "100002 chars" in str(caught.value)


# -- findings ---------------------------------------------------------------


def test_a_percent_encoded_option_name_does_not_unmask_the_password() -> None:
    store = RedisStore(
        "redis+sentinel://127.0.0.1:1/mymaster/0?sentinel_pass%77ord=TOPSECRET"
    )
    assert store.target.sentinel_password == "TOPSECRET"
    assert "TOPSECRET" not in repr(store)
    assert "TOPSECRET" not in str(store.describe())


def test_settings_repr_hides_the_redis_password() -> None:
    from aiosessions import Settings

    settings = Settings.from_env({"SESSION_REDIS_URL": "redis://:TOPSECRET@h/0"})
    assert "TOPSECRET" not in repr(settings)
