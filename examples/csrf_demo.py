"""CSRF tokens: through the manager, and the three kinds on their own.

Needs no server (the in-process memory store)::

    python examples/csrf_demo.py

The encrypted tokens need the ``security`` extra (``cryptography``); without
it that step says so and the rest runs.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
import time

from aiosessions import MemoryStore, MissingDependencyError, SessionManager
from aiosessions.security import csrf


def short(token: str) -> str:
    return f"{token[:16]}...({len(token)} chars)"


async def with_the_manager(key: str) -> None:
    print("== through SessionManager (bound to the session and the sandbox)")
    store = MemoryStore()
    manager = SessionManager("shop", store=store, secret_key=key)
    sid = await manager.allocate_session(user_id="alice")

    token = manager.csrf_token(sid)
    print("token for the form:       ", short(token))
    print("POST with the token:      ", await manager.verify_csrf_token(sid, token))
    print(
        "POST with a changed token:",
        await manager.verify_csrf_token(sid, token[:-1] + "x"),
    )

    other = await manager.allocate_session(user_id="mallory")
    print("token on another session: ", await manager.verify_csrf_token(other, token))

    await manager.delete_session(sid)
    print("after logout:             ", await manager.verify_csrf_token(sid, token))
    await store.aclose()


def standalone(key: str) -> None:
    print("\n== signed tokens on their own, with an explicit clock")
    sid = "a-session-id"
    issued = float(int(time.time()))  # whole seconds, as tokens record them
    token = csrf.generate_csrf_token(sid, key, now=issued)
    info = csrf.extract_csrf_token_info(token, now=issued + 90)
    print("token:                ", short(token))
    print("issued at (UTC):      ", info.issued_at)
    print("age after 90 s:       ", f"{info.age_seconds:.0f} s")
    print(
        "valid now:            ", csrf.validate_csrf_token(token, sid, key, now=issued)
    )
    print(
        "valid 2 hours later:  ",
        csrf.validate_csrf_token(token, sid, key, now=issued + 7200),
    )
    print(
        "expired 2 hours later:", csrf.is_csrf_token_expired(token, now=issued + 7200)
    )
    print(
        "from 5 min ahead:     ",
        csrf.validate_csrf_token(token, sid, key, now=issued - 300),
    )

    print("\n== key rotation: the first key signs, every key verifies")
    new_key = secrets.token_urlsafe(32)
    print(
        "old token, keys [new, old]:",
        csrf.validate_csrf_token(token, sid, [new_key, key]),
    )
    print("old token, keys [new]:     ", csrf.validate_csrf_token(token, sid, new_key))

    print("\n== double submit: the cookie and the header must carry the same token")
    cookie = csrf.generate_double_submit_token(sid, key)
    print(
        "same value:     ", csrf.validate_double_submit_token(cookie, cookie, sid, key)
    )
    planted = csrf.generate_double_submit_token(sid, key)
    print(
        "different value:", csrf.validate_double_submit_token(cookie, planted, sid, key)
    )

    print("\n== encrypted tokens (AES-256-GCM): nothing readable inside")
    try:
        first = csrf.generate_encrypted_csrf_token(sid, key)
    except MissingDependencyError as missing:
        print("skipped:", missing)
    else:
        second = csrf.generate_encrypted_csrf_token(sid, key)
        print("two tokens differ:    ", first != second)
        print("readable issue time:  ", csrf.extract_csrf_token_info(first).issued_at)
        print(
            "valid for the session:",
            csrf.validate_encrypted_csrf_token(first, sid, key),
        )
        print(
            "valid for another:    ",
            csrf.validate_encrypted_csrf_token(first, "other-session", key),
        )

    print("\n== junk is just invalid, never an error")
    for junk in (None, b"bytes", 42, "", "x" * 1_000_000):
        label = repr(junk) if not isinstance(junk, str) or len(junk) < 10 else "1 MB"
        print(f"{label:>9}:", csrf.validate_csrf_token(junk, sid, key))


if __name__ == "__main__":
    # The library logs refusals; show them in line with the output.
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.INFO,
        format="    [log %(levelname)s] %(message)s",
    )
    demo_key = secrets.token_urlsafe(32)  # in production: SESSION_SECRET_KEY
    asyncio.run(with_the_manager(demo_key))
    standalone(demo_key)
