"""Custom metadata: JSON only, bounded, atomic merges, exact counters.

Invariants 3, 7 and 8 of DESIGN.md; README "update_session_metadata",
"increment_metadata" and "Errors".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math

import pytest

from aiosessions import (
    InvalidMetadataError,
    InvalidValueTypeError,
    SessionManager,
    SessionMetadata,
    Store,
)


def nested(depth: int) -> object:
    return functools.reduce(lambda inner, _: [inner], range(depth), 0)


@pytest.fixture
async def mgr_sid(any_store: Store) -> tuple[SessionManager, str]:
    mgr = SessionManager("meta", store=any_store)
    return mgr, await mgr.allocate_session(user_id="alice")


@pytest.mark.parametrize(
    "data",
    [
        {"x": math.nan},
        {"x": math.inf},
        {"x": [1, -math.inf]},
        {"x": {1, 2}},
        {"x": b"bytes"},
        {"x": object()},
        {"x": "a" * (64 * 1024 + 1)},
        {f"k{i}": i for i in range(257)},
        {"": 1},
        {"k" * 257: 1},
        {"a\x00b": 1},
        {"a\nb": 1},
    ],
    ids=lambda d: "-".join(sorted(d))[:20] or "empty-key",
)
async def test_bad_metadata_raises_and_writes_nothing(
    mgr_sid: tuple[SessionManager, str], data: dict[str, object]
) -> None:
    mgr, sid = mgr_sid
    await mgr.update_session_metadata(sid, {"keep": 1})
    with pytest.raises(InvalidMetadataError):
        await mgr.update_session_metadata(sid, data, merge=False)
    with pytest.raises(InvalidMetadataError):
        await mgr.allocate_session(custom_metadata=data)
    info = await mgr.get_session_info(sid)
    assert info is not None
    assert info["custom_metadata"] == {"keep": 1}


@pytest.mark.parametrize("data", [None, [("a", 1)], "a=1", 5])
async def test_non_mapping_metadata_is_a_type_error(
    mgr_sid: tuple[SessionManager, str], data: object
) -> None:
    mgr, sid = mgr_sid
    with pytest.raises(InvalidValueTypeError):
        await mgr.update_session_metadata(sid, data)  # type: ignore[arg-type]


async def test_keys_that_look_like_record_fields_stay_custom(
    mgr_sid: tuple[SessionManager, str],
) -> None:
    mgr, sid = mgr_sid
    evil = {"u": "mallory", "a": 0, "x": 1, "i": 1, ":u": "m", "::": 1, "c": 0}
    await mgr.update_session_metadata(sid, evil)
    info = await mgr.get_session_info(sid)
    assert info is not None
    assert info["user_id"] == "alice"
    assert info["custom_metadata"] == evil
    assert await mgr.validate_session(sid)
    # The session still belongs to alice and its deadline did not move.
    assert await mgr.allocate_session(session_id=sid, user_id="mallory") != sid


async def test_replace_and_merge(mgr_sid: tuple[SessionManager, str]) -> None:
    mgr, sid = mgr_sid
    await mgr.update_session_metadata(sid, {"a": 1, "b": 2})
    await mgr.update_session_metadata(sid, {"b": 3, "c": 4})
    info = await mgr.get_session_info(sid)
    assert info is not None
    assert info["custom_metadata"] == {"a": 1, "b": 3, "c": 4}
    await mgr.update_session_metadata(sid, {"z": None}, merge=False)
    info = await mgr.get_session_info(sid)
    assert info is not None
    assert info["custom_metadata"] == {"z": None}
    assert info["user_id"] == "alice"
    await mgr.update_session_metadata(sid, {}, merge=False)
    info = await mgr.get_session_info(sid)
    assert info is not None
    assert info["custom_metadata"] == {}


async def test_concurrent_merges_and_counters(
    mgr_sid: tuple[SessionManager, str],
) -> None:
    mgr, sid = mgr_sid
    await asyncio.gather(
        *(mgr.update_session_metadata(sid, {f"k{i}": i}) for i in range(200)),
        *(mgr.increment_metadata(sid, "hits") for _ in range(300)),
        *(mgr.increment_metadata(sid, "down", -2) for _ in range(50)),
    )
    info = await mgr.get_session_info(sid)
    assert info is not None
    meta = info["custom_metadata"]
    assert meta["hits"] == 300
    assert meta["down"] == -100
    assert all(meta[f"k{i}"] == i for i in range(200))


async def test_updates_racing_deletes_never_revive(any_store: Store) -> None:
    mgr = SessionManager("race", store=any_store, idle_timeout=60)
    for _ in range(100):
        sid = await mgr.allocate_session(user_id="alice")
        await asyncio.gather(
            mgr.delete_session(sid),
            mgr.update_session_metadata(sid, {"x": 1}),
            mgr.update_session_metadata(sid, {"y": 1}, merge=False),
            mgr.increment_metadata(sid, "n"),
            mgr.extend_session_ttl(sid, 1),
            mgr.validate_session(sid),
            mgr.allocate_session(session_id=sid, user_id="alice"),
        )
        # allocate may have kept sid (if it ran before the delete); then a
        # later delete must still end it for good.
        await mgr.delete_session(sid)
        assert await mgr.get_session_info(sid) is None
        assert await mgr.update_session_metadata(sid, {"x": 2}) is False
        assert await mgr.increment_metadata(sid, "n") is None
        assert await mgr.get_session_info(sid) is None
    assert (await mgr.get_cache_stats())["active_sessions"] <= 100


async def test_increment_bounds(mgr_sid: tuple[SessionManager, str]) -> None:
    mgr, sid = mgr_sid
    await mgr.update_session_metadata(sid, {"n": 2**63 - 1, "m": -(2**63)})
    with pytest.raises(InvalidMetadataError):
        await mgr.increment_metadata(sid, "n")
    with pytest.raises(InvalidMetadataError):
        await mgr.increment_metadata(sid, "m", -1)
    assert await mgr.increment_metadata(sid, "n", -(2**63)) == -1
    for amount in (True, 1.0, "1", None, 2**63, -(2**63) - 1):
        with pytest.raises(InvalidValueTypeError):
            await mgr.increment_metadata(sid, "k", amount)  # type: ignore[arg-type]
    for value in (1.0, "1", True, None, [1], {"a": 1}, -0.0):
        await mgr.update_session_metadata(sid, {"v": value})
        with pytest.raises(InvalidMetadataError):
            await mgr.increment_metadata(sid, "v")
    info = await mgr.get_session_info(sid)
    assert info is not None
    assert info["custom_metadata"]["n"] == -1


async def test_info_round_trips_through_the_model(
    mgr_sid: tuple[SessionManager, str],
) -> None:
    mgr, sid = mgr_sid
    await mgr.update_session_metadata(
        sid, {"big": 2**62, "uni": "é\u2028\U0001f600", "n": None, "d": nested(50)}
    )
    info = await mgr.get_session_info(sid)
    assert info is not None
    assert SessionMetadata(**info).custom_metadata == info["custom_metadata"]


# -- findings ---------------------------------------------------------------


async def test_accepted_metadata_can_always_be_read(
    mgr_sid: tuple[SessionManager, str],
) -> None:
    mgr, sid = mgr_sid
    try:
        await mgr.update_session_metadata(sid, {"d": nested(300)})
    except InvalidMetadataError:
        return  # refusing it up front would be fine too
    info = await mgr.get_session_info(sid)
    assert info is not None


async def test_depth_bomb_is_an_invalid_metadata_error(
    mgr_sid: tuple[SessionManager, str],
) -> None:
    mgr, sid = mgr_sid
    with pytest.raises(InvalidMetadataError):
        await mgr.update_session_metadata(sid, {"d": nested(5000)})


async def test_unrepresentable_value_still_gets_a_typed_error(
    mgr_sid: tuple[SessionManager, str],
) -> None:
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("boom")

    mgr, sid = mgr_sid
    with pytest.raises(InvalidMetadataError):
        await mgr.update_session_metadata(sid, {"x": Hostile()})


async def test_huge_int_metadata_is_an_invalid_metadata_error(
    mgr_sid: tuple[SessionManager, str],
) -> None:
    mgr, sid = mgr_sid
    with contextlib.suppress(InvalidMetadataError):
        await mgr.update_session_metadata(sid, {"x": 10**5000})


async def test_lone_surrogate_metadata_key_is_refused_alike(
    both_stores: tuple[Store, Store],
) -> None:
    outcomes = []
    for store in both_stores:
        mgr = SessionManager("meta", store=store)
        sid = await mgr.allocate_session()
        try:
            await mgr.update_session_metadata(sid, {"a\ud800": 1})
            outcomes.append("accepted")
        except Exception as exc:
            outcomes.append(type(exc).__name__)
    assert outcomes == ["InvalidMetadataError", "InvalidMetadataError"]


async def test_increment_of_a_huge_int_fails_alike(
    both_stores: tuple[Store, Store],
) -> None:
    messages = []
    for store in both_stores:
        mgr = SessionManager("meta", store=store)
        sid = await mgr.allocate_session()
        await mgr.update_session_metadata(sid, {"big": 2**70})
        with pytest.raises(InvalidMetadataError) as caught:
            await mgr.increment_metadata(sid, "big")
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
