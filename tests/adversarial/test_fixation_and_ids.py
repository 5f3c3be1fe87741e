"""Session fixation and signed ids: no client-chosen id is ever adopted.

Invariant 4 of DESIGN.md; README "Session ids", "Signed ids", and the
allocate_session contract.
"""

from __future__ import annotations

import asyncio
import secrets
import string

from aiosessions import SessionManager, Store
from aiosessions.security.ids import generate_session_id

KEY = secrets.token_urlsafe(32)
NEW_KEY = secrets.token_urlsafe(32)

ATTACKER_IDS = [
    None,
    "",
    "attacker-chosen",
    "A" * 32,  # the right shape, never issued
    "A" * 31,
    "A" * 33,
    "A" * 31 + "=",
    "A" * 31 + "\n",
    "A" * 31 + "{",
    "A" * 31 + "*",
    "A" * 31 + "é",
    "\uff21" * 32,  # fullwidth letters
    "٣" * 32,  # Arabic-Indic digits
    " " + "A" * 31,
    "A" * 10_000,
    b"A" * 32,
    123,
    ["A" * 32],
]


async def test_no_client_id_is_adopted(any_store: Store) -> None:
    mgr = SessionManager("t", store=any_store)
    for chosen in ATTACKER_IDS:
        for user in (None, "alice"):
            sid = await mgr.allocate_session(session_id=chosen, user_id=user)  # type: ignore[arg-type]
            assert sid != chosen
            assert len(sid) == 32
            assert set(sid) <= set(string.ascii_letters + string.digits + "-_")
            assert await mgr.validate_session(chosen) is False  # type: ignore[arg-type]


async def test_live_ids_are_kept_only_for_their_owner(any_store: Store) -> None:
    mgr = SessionManager("t", store=any_store)
    other_sandbox = SessionManager("u", store=any_store)
    alice = await mgr.allocate_session(user_id="alice")
    anon = await mgr.allocate_session()
    foreign = await other_sandbox.allocate_session(user_id="alice")
    # Mallory, or anonymous, cannot claim alice's id; alice cannot claim an
    # anonymous id (the classic fixation: log in on a planted id).
    assert await mgr.allocate_session(session_id=alice, user_id="mallory") != alice
    assert await mgr.allocate_session(session_id=alice) != alice
    assert await mgr.allocate_session(session_id=anon, user_id="alice") != anon
    assert await mgr.allocate_session(session_id=foreign, user_id="alice") != foreign
    assert await mgr.allocate_session(session_id=alice, user_id="alice") == alice
    assert await mgr.allocate_session(session_id=anon) == anon
    # A deleted id is not revived by allocate.
    await mgr.delete_session(alice)
    assert await mgr.allocate_session(session_id=alice, user_id="alice") != alice


async def test_an_expired_id_is_not_revived(any_store: Store) -> None:
    mgr = SessionManager("t", store=any_store, default_ttl_hours=0.2 / 3600)
    sid = await mgr.allocate_session(user_id="alice")
    await asyncio.sleep(0.35)
    assert await mgr.allocate_session(session_id=sid, user_id="alice") != sid
    assert await mgr.validate_session(sid) is False


async def test_signed_ids_refuse_forgery_truncation_and_swaps(
    any_store: Store,
) -> None:
    shop = SessionManager("shop", store=any_store, secret_key=KEY)
    blog = SessionManager("blog", store=any_store, secret_key=KEY)
    sid = await shop.allocate_session(user_id="alice")
    random_part, _, tag = sid.partition(".")
    assert len(random_part) == 32
    assert len(tag) == 22
    blog_sid = await blog.allocate_session(user_id="alice")

    forged: list[object] = [
        random_part,  # the unsigned form
        random_part + ".",
        sid[:-1],
        sid + "A",
        sid.upper(),
        generate_session_id() + "." + tag,  # tag moved to another random part
        random_part + "." + blog_sid.partition(".")[2],  # another sandbox's tag
        blog_sid,  # another sandbox's id, same key
        sid.replace(".", "_"),
        " " + sid,
        sid + "\n",
    ]
    # Every single-character change, including the tag's spare low bits.
    for i in range(len(sid)):
        for ch in "AQgw_-":
            changed = sid[:i] + ch + sid[i + 1 :]
            if changed != sid:
                forged.append(changed)
    for bad in forged:
        assert await shop.validate_session(bad) is False, bad  # type: ignore[arg-type]
        assert await shop.allocate_session(session_id=bad, user_id="alice") != bad  # type: ignore[arg-type]
    assert await shop.validate_session(sid)


async def test_key_rotation(any_store: Store) -> None:
    old = SessionManager("shop", store=any_store, secret_key=KEY)
    sid = await old.allocate_session()
    both = SessionManager("shop", store=any_store, secret_key=[NEW_KEY, KEY])
    assert await both.validate_session(sid)
    new_sid = await both.allocate_session()
    assert await SessionManager(
        "shop", store=any_store, secret_key=NEW_KEY
    ).validate_session(new_sid)
    # The old key alone does not accept ids signed by the new one.
    assert not await old.validate_session(new_sid)
    # Retired key: its ids are refused, without a store call.
    only_new = SessionManager("shop", store=any_store, secret_key=NEW_KEY)
    assert not await only_new.validate_session(sid)
    # An unsigned manager refuses signed ids and vice versa.
    unsigned = SessionManager("shop", store=any_store)
    assert not await unsigned.validate_session(sid)
    plain = await unsigned.allocate_session()
    assert not await both.validate_session(plain)


def test_ids_have_192_random_bits_and_no_repeats() -> None:
    ids = {generate_session_id() for _ in range(20_000)}
    assert len(ids) == 20_000
    # Every position uses the whole alphabet (no fixed or time-based part).
    for pos in range(31):  # the last char holds the final 6 bits too
        assert len({i[pos] for i in ids}) == 64
