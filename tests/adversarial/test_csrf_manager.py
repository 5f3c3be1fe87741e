"""CSRF tokens through SessionManager: bound to session, sandbox and liveness.

README "CSRF tokens".
"""

from __future__ import annotations

import asyncio
import secrets

import pytest

from aiosessions import (
    ConfigurationError,
    InvalidInputError,
    InvalidTTLError,
    InvalidValueTypeError,
    SessionManager,
    Store,
)
from aiosessions.security import csrf

KEY = secrets.token_urlsafe(32)
OTHER_KEY = secrets.token_urlsafe(32)


async def test_tokens_do_not_cross_sessions_sandboxes_or_keys(
    any_store: Store,
) -> None:
    shop = SessionManager("shop", store=any_store, secret_key=KEY)
    blog = SessionManager("blog", store=any_store, secret_key=KEY)
    rekeyed = SessionManager("shop", store=any_store, secret_key=OTHER_KEY)
    a = await shop.allocate_session(user_id="alice")
    b = await shop.allocate_session(user_id="bob")
    token = shop.csrf_token(a)
    assert await shop.verify_csrf_token(a, token)
    assert await shop.verify_csrf_token(a, token)  # stateless: reusable
    assert not await shop.verify_csrf_token(b, token)  # replay on bob
    blog_id = await blog.allocate_session(user_id="alice")
    assert not await blog.verify_csrf_token(blog_id, token)
    assert not await blog.verify_csrf_token(a, token)
    assert not await rekeyed.verify_csrf_token(a, token)
    # The raw building block with the manager's key does not accept it either:
    # the manager derives a per-sandbox subkey.
    assert not csrf.validate_csrf_token(token, a, KEY)
    # Deleted session: the token dies at once.
    await shop.delete_session(a)
    assert not await shop.verify_csrf_token(a, token)


async def test_verify_does_not_slide_idle_timeout(any_store: Store) -> None:
    shop = SessionManager("shop", store=any_store, secret_key=KEY, idle_timeout=0.3)
    sid = await shop.allocate_session()
    token = shop.csrf_token(sid)
    for _ in range(4):
        await asyncio.sleep(0.1)
        assert await shop.verify_csrf_token(sid, token) in (True, False)
    assert not await shop.verify_csrf_token(sid, token)
    assert not await shop.validate_session(sid)


HOSTILE_TOKENS = [
    None,
    0,
    -1,
    1.5,
    True,
    b"c1.1.x",
    bytearray(b"x"),
    [],
    {},
    "",
    " ",
    "x" * 1_000_000,
    "c1." + "9" * 100_000,
    "\ud800",
    "c1.0." + "A" * 22 + "." + "A" * 43,
    "c1.99999999999." + "A" * 22 + "." + "A" * 43,
    "e1." + "A" * 48,
    "d1.0." + "A" * 22 + "." + "A" * 43,
    object(),
]


async def test_hostile_tokens_are_false_never_errors(any_store: Store) -> None:
    shop = SessionManager("shop", store=any_store, secret_key=KEY)
    sid = await shop.allocate_session()
    good = shop.csrf_token(sid)
    for token in [*HOSTILE_TOKENS, good + "\n", " " + good, good.upper()]:
        assert await shop.verify_csrf_token(sid, token) is False, repr(token)[:40]
    for session_id in (None, 5, "", "x" * 10_000, sid[:-1], "\ud800"):
        assert await shop.verify_csrf_token(session_id, good) is False  # type: ignore[arg-type]


async def test_server_mistakes_raise(any_store: Store) -> None:
    shop = SessionManager("shop", store=any_store, secret_key=KEY)
    sid = await shop.allocate_session()
    token = shop.csrf_token(sid)
    for max_age in (0, -1, float("nan"), float("inf")):
        with pytest.raises(InvalidTTLError):
            await shop.verify_csrf_token(sid, token, max_age=max_age)
    for max_age in (True, "60", None):
        with pytest.raises(InvalidValueTypeError):
            await shop.verify_csrf_token(sid, token, max_age=max_age)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        shop.csrf_token("not-an-id")
    keyless = SessionManager("shop", store=any_store)
    with pytest.raises(ConfigurationError, match="SESSION_SECRET_KEY"):
        keyless.csrf_token(await keyless.allocate_session())


def test_expired_and_future_dated_tokens() -> None:
    sid, now = "s" * 32, 1_700_000_000
    for make, check in [
        (csrf.generate_csrf_token, csrf.validate_csrf_token),
        (csrf.generate_encrypted_csrf_token, csrf.validate_encrypted_csrf_token),
    ]:
        token = make(sid, KEY, now=now)
        assert check(token, sid, KEY, now=now + 3600)
        assert not check(token, sid, KEY, now=now + 3601)
        assert not check(token, sid, KEY, now=now + 61, max_age=60)
        assert check(make(sid, KEY, now=now + 29), sid, KEY, now=now)
        assert not check(make(sid, KEY, now=now + 31), sid, KEY, now=now)
        assert check(token, sid, [OTHER_KEY, KEY], now=now)
        assert not check(token, sid, [OTHER_KEY], now=now)
    cookie = csrf.generate_double_submit_token(sid, KEY, now=now)
    other = csrf.generate_double_submit_token(sid, KEY, now=now)
    assert csrf.validate_double_submit_token(cookie, cookie, sid, KEY, now=now)
    assert not csrf.validate_double_submit_token(cookie, other, sid, KEY, now=now)
    assert not csrf.validate_double_submit_token(None, cookie, sid, KEY, now=now)


def test_no_single_character_change_passes() -> None:
    sid = "s" * 32
    for make, check in [
        (csrf.generate_csrf_token, csrf.validate_csrf_token),
        (csrf.generate_encrypted_csrf_token, csrf.validate_encrypted_csrf_token),
    ]:
        token = make(sid, KEY)
        for i in range(len(token)):
            for ch in "AQgw_-0.":
                changed = token[:i] + ch + token[i + 1 :]
                if changed != token:
                    assert not check(changed, sid, KEY), (i, ch)
