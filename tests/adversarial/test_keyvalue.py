"""The key-value facade: str values only, checked keys, its own namespace.

README "Key-value facade"; invariants 7 and 8 of DESIGN.md.
"""

from __future__ import annotations

import asyncio

import pytest

from aiosessions import (
    InvalidInputError,
    InvalidKeyError,
    InvalidValueTypeError,
    KeyValueSession,
    Store,
)


@pytest.mark.parametrize(
    "value", [b"v", 1, 1.5, None, True, ["v"], {"v": 1}, bytearray(b"v")], ids=repr
)
async def test_non_str_values_are_refused(any_store: Store, value: object) -> None:
    kv = KeyValueSession(any_store)
    with pytest.raises(InvalidValueTypeError):
        await kv.set("k", value, 5)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueTypeError):
        await kv.setex("k", 5, value)  # type: ignore[arg-type]
    assert await kv.exists("k") is False


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ("", InvalidKeyError),
        ("k" * 1025, InvalidKeyError),
        ("a\x00", InvalidKeyError),
        ("a\r\nSET x y", InvalidKeyError),
        ("\x7f", InvalidKeyError),
        (None, InvalidValueTypeError),
        (b"k", InvalidValueTypeError),
        (1, InvalidValueTypeError),
    ],
    ids=repr,
)
async def test_bad_keys_are_refused_everywhere(
    any_store: Store, key: object, error: type[Exception]
) -> None:
    kv = KeyValueSession(any_store)
    for call in (
        lambda: kv.set(key, "v", 5),  # type: ignore[arg-type]
        lambda: kv.setex(key, 5, "v"),  # type: ignore[arg-type]
        lambda: kv.get(key),  # type: ignore[arg-type]
        lambda: kv.delete(key),  # type: ignore[arg-type]
        lambda: kv.exists(key),  # type: ignore[arg-type]
        lambda: kv.ttl(key),  # type: ignore[arg-type]
        lambda: kv.expire(key, 5),  # type: ignore[arg-type]
    ):
        with pytest.raises(error):
            await call()


async def test_glob_and_odd_keys_are_literal(any_store: Store) -> None:
    kv = KeyValueSession(any_store)
    keys = ["*", "?", "[a]", "a*", "{x}", "%", "k" * 1024, "é", "\U0001f600", " "]
    for key in keys:
        await kv.set(key, key, 60)
    for key in keys:
        assert await kv.get(key) == key
    assert await kv.get("a") is None
    assert await kv.delete("*") is True
    assert await kv.get("a*") == "a*"


async def test_values_round_trip_exactly(any_store: Store) -> None:
    kv = KeyValueSession(any_store)
    for value in ["", " ", "\x00", "é\u2028\U0001f600", "x" * 1_000_000, "null"]:
        await kv.set("k", value, 60)
        assert await kv.get("k") == value


async def test_ttl_and_expire_conventions(any_store: Store) -> None:
    kv = KeyValueSession(any_store)
    assert await kv.ttl("nope") == -2
    assert await kv.expire("nope", 5) is False
    await kv.set("k", "v", 0.3)
    assert await kv.expire("k", 10) is True
    assert await kv.ttl("k") == 10
    await kv.expire("k", 0.05)
    await asyncio.sleep(0.1)
    assert await kv.get("k") is None
    assert await kv.ttl("k") == -2


# -- findings ---------------------------------------------------------------


async def test_lone_surrogates_get_a_typed_error_on_every_store(
    both_stores: tuple[Store, Store],
) -> None:
    for store in both_stores:
        kv = KeyValueSession(store)
        with pytest.raises((InvalidKeyError, InvalidValueTypeError)):
            await kv.set("a\ud800", "v", 5)
        with pytest.raises(InvalidInputError, match="surrogate"):
            await kv.set("k", "\udcff", 5)


async def test_kv_keys_refuse_every_control_character(any_store: Store) -> None:
    kv = KeyValueSession(any_store)
    for key in ["a\x85b", "a\x9b31m"]:
        with pytest.raises(InvalidKeyError):
            await kv.set(key, "v", 5)
