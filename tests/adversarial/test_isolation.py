"""Tenant isolation: sandbox strings can never share or widen a key.

Invariant 1 of DESIGN.md; README "Key layout and tenant isolation".
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiosessions import (
    InvalidIdentifierError,
    InvalidValueTypeError,
    KeyValueSession,
    SessionManager,
    Store,
)
from aiosessions.keys import KeySpace

# Sandboxes chosen to break a naive key layout: the ':' that ends the
# sandbox, glob characters that widen a SCAN, braces that move a Cluster hash
# slot, percent signs that mimic the encoding, look-alike unicode.
HOSTILE_SANDBOXES = [
    "a",
    "a:b",
    "a:s:b",
    "a:{x}",
    "*",
    "a*",
    "?",
    "[a]",
    "[^a]",
    "a\\",
    "\\*",
    "^",
    "-",
    "{a}",
    "a{b}c",
    "}",
    "%",
    "%25",
    "a%3Ab",
    "a b",
    "a+b",
    "a/b",
    "..",
    unicodedata.normalize("NFC", "café"),
    unicodedata.normalize("NFD", "café"),
    "\ufb01",  # the "fi" ligature, NFKC-equal to "fi"
    "fi",
    "\uff41",  # fullwidth "a"
    "\u0430",  # Cyrillic "a"
    "x" * 256,
    "\U0001f600" * 256,
]


async def test_hostile_sandboxes_stay_apart(any_store: Store) -> None:
    managers = [SessionManager(s, store=any_store) for s in HOSTILE_SANDBOXES]
    ids = [await m.allocate_session(user_id="u") for m in managers]
    for i, mgr in enumerate(managers):
        stats = await mgr.get_cache_stats()
        assert stats["active_sessions"] == 1, HOSTILE_SANDBOXES[i]
        for j, sid in enumerate(ids):
            mine = i == j
            assert await mgr.validate_session(sid) is mine
            assert (await mgr.get_session_info(sid) is not None) is mine
    # Another tenant holding the id can touch nothing.
    victim, victim_id = managers[0], ids[0]
    for mgr in managers[1:]:
        assert await mgr.update_session_metadata(victim_id, {"pwn": 1}) is False
        assert await mgr.increment_metadata(victim_id, "n") is None
        assert await mgr.extend_session_ttl(victim_id, 1000) is False
        assert await mgr.delete_session(victim_id) is False
        assert await mgr.allocate_session(session_id=victim_id, user_id="u") != (
            victim_id
        )
    info = await victim.get_session_info(victim_id)
    assert info is not None
    assert info["custom_metadata"] == {}


def test_encoded_sandbox_has_no_separator_glob_or_brace() -> None:
    for sandbox in HOSTILE_SANDBOXES:
        prefix = KeySpace(sandbox).session_prefix
        encoded = prefix[len("aiosessions:s:") : -1]
        assert not set(encoded) & set(":*?[]\\^{}"), sandbox


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn")),
        min_size=1,
        max_size=40,
    ),
    st.text(
        st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn")),
        min_size=1,
        max_size=40,
    ),
)
def test_no_two_sandboxes_share_or_nest_a_prefix(a: str, b: str) -> None:
    if a == b:
        return
    pa, pb = KeySpace(a).session_prefix, KeySpace(b).session_prefix
    # Neither sandbox's keys can start with the other's prefix, so no count
    # or scan of one tenant can reach the other's keys.
    assert not pa.startswith(pb)
    assert not pb.startswith(pa)


@pytest.mark.parametrize(
    "bad",
    ["", "x" * 257, "a\x00b", "a\nb", "a\u200bb", "a\ud800", "a\u202eb", "\x85"],
)
def test_unusable_sandbox_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidIdentifierError):
        SessionManager(bad)


@pytest.mark.parametrize("bad", [None, 1, b"acme", ["acme"]])
def test_non_str_sandbox_ids_are_refused(bad: object) -> None:
    with pytest.raises(InvalidValueTypeError):
        SessionManager(bad)  # type: ignore[arg-type]


async def test_user_ids_cannot_forge_fields(any_store: Store) -> None:
    mgr = SessionManager("t", store=any_store)
    for user in ["=alice", "alice\\", "a:u", "{x}", "*", "%"]:
        sid = await mgr.allocate_session(user_id=user)
        info = await mgr.get_session_info(sid)
        assert info is not None
        assert info["user_id"] == user
        # The owner check compares the whole string: no prefix tricks.
        assert await mgr.allocate_session(session_id=sid, user_id=user + "x") != sid
        assert await mgr.allocate_session(session_id=sid, user_id="=" + user) != sid
        assert await mgr.allocate_session(session_id=sid, user_id=user) == sid


async def test_kv_facade_cannot_reach_session_records(any_store: Store) -> None:
    mgr = SessionManager("acme", store=any_store)
    sid = await mgr.allocate_session()
    kv = KeyValueSession(any_store)
    for key in [
        f"aiosessions:s:acme:{{{sid}}}",
        f"../s:acme:{{{sid}}}",
        f"s:acme:{{{sid}}}",
        "*",
        "aiosessions:s:*",
    ]:
        assert await kv.exists(key) is False
        await kv.set(key, "overwrite", 60)
        assert await kv.delete(key) is True
    assert await mgr.validate_session(sid)
    assert (await mgr.get_cache_stats())["active_sessions"] == 1


# -- findings ---------------------------------------------------------------


async def test_key_prefix_with_colon_cannot_widen_another_sandbox(
    any_store: Store,
) -> None:
    acme = SessionManager("acme", store=any_store)
    for prefix in ["aiosessions:s:acme", "aiosessions:kv", "a*", "{x}", ""]:
        with pytest.raises(InvalidIdentifierError, match="key_prefix"):
            SessionManager("evil", store=any_store, key_prefix=prefix)
    assert (await acme.get_cache_stats())["active_sessions"] == 0


async def test_kv_facade_cannot_delete_sessions_of_any_prefix(
    any_store: Store,
) -> None:
    mgr = SessionManager("x", store=any_store, key_prefix="other")
    sid = await mgr.allocate_session()
    kv = KeyValueSession(any_store, key_prefix="other")
    assert not await kv.delete(f"s:x:{{{sid}}}")
    assert await mgr.validate_session(sid)
    for namespace in ["s", "u", "a:b", "../s"]:
        with pytest.raises(InvalidIdentifierError, match="namespace"):
            KeyValueSession(any_store, namespace=namespace)
