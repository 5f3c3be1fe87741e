"""The guided tour of aiosessions, run by ``aiosessions demo``.

Ten steps, about two seconds, on the shared store (the environment's, or
whatever :func:`~aiosessions.set_default_store` installed). Every step
checks what it shows: :func:`tour` raises :class:`TourFailed` when the
library did not behave as described, and lets store errors through.
``examples/quickstart.py`` runs the same tour.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import ProviderError, SessionError
from .keyvalue import get_session
from .manager import SessionManager
from .stores.factory import get_default_store

__all__ = ["TourFailed", "main", "tour"]

SHOP = "quickstart-shop"
BLOG = "quickstart-blog"


def step(number: int, title: str) -> None:
    heading = f"{number}. {title}"
    print(f"\n{heading}\n{'-' * len(heading)}")


def show(label: str, value: object) -> None:
    print(f"   {label:<36} {value}")


class TourFailed(AssertionError):
    """The library did not do what the tour says it does."""


def check(condition: bool, claim: str) -> None:
    """Raise :class:`TourFailed` saying *claim* unless *condition* holds."""
    if not condition:
        raise TourFailed(claim)


async def key_value() -> None:
    step(1, "Key-value facade: strings with a TTL")
    async with get_session() as kv:
        await kv.setex("otp:alice", 60, "493021")
        show("setex otp:alice, 60 s", "ok")
        show("get otp:alice", await kv.get("otp:alice"))
        show("ttl otp:alice (seconds)", await kv.ttl("otp:alice"))
        show("exists otp:alice", await kv.exists("otp:alice"))
        show("delete otp:alice", await kv.delete("otp:alice"))
        show("exists after delete", await kv.exists("otp:alice"))
        show("ttl of a missing key", await kv.ttl("otp:alice"))

        await kv.setex("flash", 0.3, "saved!")
        show("setex flash, 0.3 s", await kv.get("flash"))
        await asyncio.sleep(0.4)
        gone = await kv.get("flash")
        show("get flash after 0.4 s", gone)
        check(gone is None, "a key outlived its TTL")


async def lifecycle(shop: SessionManager) -> str:
    step(2, "SessionManager: allocate, validate, inspect")
    session_id = await shop.allocate_session(
        user_id="alice", custom_metadata={"role": "admin", "cart": []}
    )
    show("allocate_session(user_id='alice')", session_id)
    show("validate_session", await shop.validate_session(session_id))
    info = await shop.get_session_info(session_id)
    assert info is not None
    for field in ("user_id", "created_at", "expires_at", "custom_metadata"):
        show(f"info[{field!r}]", info[field])

    step(3, "Metadata: merge updates and atomic counters")
    await shop.update_session_metadata(session_id, {"theme": "dark"})
    await shop.update_session_metadata(session_id, {"cart": ["book"]})
    counts = [await shop.increment_metadata(session_id, "page_views") for _ in "abc"]
    show("increment_metadata x3", counts)
    info = await shop.get_session_info(session_id)
    assert info is not None
    show("custom_metadata after merges", info["custom_metadata"])
    check(info["custom_metadata"]["role"] == "admin", "a merge lost a key")

    step(4, "Extend the session's lifetime")
    before = info["expires_at"]
    await shop.extend_session_ttl(session_id, additional_hours=2)
    info = await shop.get_session_info(session_id)
    assert info is not None
    show("expires_at before", before)
    show("expires_at after +2 h", info["expires_at"])
    return session_id


async def idle_timeout() -> None:
    step(5, "Idle timeout slides on every validation")
    manager = SessionManager(SHOP, idle_timeout=0.3)
    session_id = await manager.allocate_session(user_id="bob")
    start = time.monotonic()
    for _ in range(3):
        await asyncio.sleep(0.2)
        alive = await manager.validate_session(session_id)
        show(f"validate at {time.monotonic() - start:.1f} s (idle 0.3 s)", alive)
        check(alive, "validation did not slide the idle timeout")

    await asyncio.sleep(0.45)
    alive = await manager.validate_session(session_id)
    show("validate after 0.45 s of silence", alive)
    check(not alive, "an idle session stayed alive")


async def max_lifetime() -> None:
    step(6, "max_lifetime: nothing keeps a session past its cap")
    manager = SessionManager(SHOP, idle_timeout=10, max_lifetime=0.5)
    session_id = await manager.allocate_session(user_id="carol")
    await manager.extend_session_ttl(session_id, additional_hours=24)
    info = await manager.get_session_info(session_id)
    assert info is not None
    show("created_at", info["created_at"])
    show("expires_at after extending 24 h", info["expires_at"])

    start = time.monotonic()
    for _ in range(40):  # 2 s at most
        if not await manager.validate_session(session_id):
            break
        await asyncio.sleep(0.05)
    lived = time.monotonic() - start
    show("validated until it expired after", f"{lived:.2f} s")
    check(lived < 1.0, "a session outlived max_lifetime")


async def isolation(shop: SessionManager, session_id: str) -> None:
    step(7, "Sandbox isolation: another tenant cannot touch the session")
    blog = SessionManager(BLOG)
    show("blog.validate_session(shop id)", await blog.validate_session(session_id))
    show("blog.get_session_info(shop id)", await blog.get_session_info(session_id))
    show("blog.delete_session(shop id)", await blog.delete_session(session_id))
    still = await shop.validate_session(session_id)
    show("shop.validate_session(shop id)", still)
    check(still, "one sandbox deleted another sandbox's session")


async def no_fixation(shop: SessionManager, session_id: str) -> None:
    step(8, "No session fixation: client-chosen ids are never adopted")
    issued = await shop.allocate_session(session_id="attacker-chosen")
    show("allocate_session('attacker-chosen')", issued)
    check(issued != "attacker-chosen", "a client-chosen id was adopted")

    stolen = await shop.allocate_session(session_id=session_id, user_id="mallory")
    show("alice's id, claimed by mallory", "new id" if stolen != session_id else "!")
    check(stolen != session_id, "another user took over a session")

    same = await shop.allocate_session(session_id=session_id, user_id="alice")
    show("alice's id, refreshed by alice", "same id" if same == session_id else "!")
    for extra in (issued, stolen):
        await shop.delete_session(extra)


async def bad_input(shop: SessionManager, session_id: str) -> None:
    step(9, "Bad input raises a clear, typed error (nothing is written)")
    async with get_session() as kv:
        attempts: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("setex('k', 0, 'v')", lambda: kv.setex("k", 0, "v")),
            ("setex('k', nan, 'v')", lambda: kv.setex("k", math.nan, "v")),
            ("setex('', 5, 'v')", lambda: kv.setex("", 5, "v")),
            ("setex('k', 5, 42)", lambda: kv.setex("k", 5, 42)),  # type: ignore[arg-type]
            (
                "update metadata {'tags': {1, 2}}",
                lambda: shop.update_session_metadata(session_id, {"tags": {1, 2}}),
            ),
            (
                "increment_metadata('theme')",
                lambda: shop.increment_metadata(session_id, "theme"),
            ),
            ("allocate_session(user_id='')", lambda: shop.allocate_session(user_id="")),
        ]
        for label, attempt in attempts:
            try:
                await attempt()
            except SessionError as exc:
                print(f"   {label}\n      -> {type(exc).__name__}: {exc}")
            else:
                check(False, f"{label} was accepted")

    try:
        SessionManager("")
    except SessionError as exc:
        print(f"   SessionManager('')\n      -> {type(exc).__name__}: {exc}")


async def stats_and_delete(shop: SessionManager, session_id: str) -> None:
    step(10, "Stats, then delete")
    stats = await shop.get_cache_stats()
    show("active_sessions in sandbox", stats["active_sessions"])
    show("cache_size (no local cache)", stats["cache_size"])
    show("delete_session", await shop.delete_session(session_id))
    show("delete_session again", await shop.delete_session(session_id))
    gone = await shop.validate_session(session_id)
    show("validate_session after delete", gone)
    check(not gone, "a deleted session still validates")


async def tour() -> None:
    """Run every step on the shared store, then close it.

    Raises:
        TourFailed: a step did not behave as described.
        ProviderError: the store failed.
    """
    store = get_default_store()
    print("aiosessions quickstart")
    print("store:", store.describe())
    shop = SessionManager(sandbox_id=SHOP, default_ttl_hours=1)

    try:
        await key_value()
        session_id = await lifecycle(shop)
        await idle_timeout()
        await max_lifetime()
        await isolation(shop, session_id)
        await no_fixation(shop, session_id)
        await bad_input(shop, session_id)
        await stats_and_delete(shop, session_id)
    finally:
        await store.aclose()

    print("\nDone: every step behaved as described.")


def main() -> None:
    """Run the tour; exit 1 if a step misbehaved, 3 if the store failed."""
    try:
        asyncio.run(tour())
    except TourFailed as exc:
        print(f"\nUNEXPECTED: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    except ProviderError as exc:
        print(f"\nThe store failed: {exc}", file=sys.stderr)
        raise SystemExit(3) from exc
