"""Redis Cluster: single-slot session operations, every primary visited."""

from __future__ import annotations

import json
import re

import pytest
from redis.crc import key_slot

from aiosessions import RedisStore, SessionManager
from aiosessions.stores import redis_scripts
from aiosessions.stores.redis_clients import LuaScript
from tests.servers import RedisCluster

pytestmark = pytest.mark.redis


@pytest.fixture
def cluster(redis_cluster: RedisCluster) -> RedisCluster:
    redis_cluster.flushall()
    return redis_cluster


# A user's index and its revocation marks share a hash tag: one slot.
TWO_KEY_SCRIPTS = {"INDEX_UPDATE", "INDEX_MARK"}


def test_every_script_touches_only_keys_of_one_slot() -> None:
    for name in redis_scripts.__all__:
        text = getattr(redis_scripts, name)
        keys = {"1", "2"} if name in TWO_KEY_SCRIPTS else {"1"}
        assert set(re.findall(r"KEYS\[(\w+)\]", text)) == keys, name
        # No key names built inside a script: Cluster could not route them.
        assert ".. KEYS" not in text and "KEYS[1] .." not in text, name
    spaces = SessionManager("ten:ant{x}*").keys
    for user in ("alice", "a}b{c", "*"):
        index, marks = spaces.user_index(user), spaces.user_marks(user)
        assert key_slot(index.encode()) == key_slot(marks.encode()), user


def test_a_session_key_lives_in_the_slot_of_its_id() -> None:
    mgr = SessionManager("ten:ant{x}*", store="redis://h1:1,h2:2")
    sid = "A" * 32
    assert key_slot(mgr.keys.session(sid).encode()) == key_slot(sid.encode())


async def test_sessions_spread_and_counting_visits_every_primary(
    cluster: RedisCluster,
) -> None:
    store = RedisStore(cluster.url)
    mgr = SessionManager("spread", store=store)
    ids = [await mgr.allocate_session() for _ in range(60)]
    owners = {cluster.primary_for_key(mgr.keys.session(sid)).port for sid in ids}

    stats = await mgr.get_cache_stats()

    assert len(owners) == 3
    assert stats["active_sessions"] == 60
    assert stats["store"]["topology"] == "cluster"
    await store.aclose()


async def test_scripts_are_loaded_on_each_node_that_needs_them(
    cluster: RedisCluster,
) -> None:
    store = RedisStore(cluster.url)
    mgr = SessionManager("scripts", store=store)
    ids = [await mgr.allocate_session() for _ in range(30)]
    for node in cluster.nodes:
        with node.connect() as client:
            client.script_flush()

    assert all([await mgr.validate_session(sid) for sid in ids])

    touch = LuaScript(store._bind().client, redis_scripts.TOUCH)
    for node in cluster.primaries():
        with node.connect() as client:
            assert client.script_exists(touch.sha) == [True], node
    await store.aclose()


async def test_health_reports_every_node(cluster: RedisCluster) -> None:
    store = RedisStore(cluster.url)
    report = await store.health()

    json.dumps(report)
    assert report["ok"] is True, report
    assert report["cluster_state"] == "ok"
    nodes = report["nodes"]
    assert {n["address"] for n in nodes} == {
        f"{n.host}:{n.port}" for n in cluster.nodes
    }
    primaries = [n for n in nodes if n["role"] == "primary"]
    assert len(primaries) == 3
    assert sum(n["slots"] for n in primaries) == 16384
    assert all(n["state"] == "ok" and n["link"] == "connected" for n in nodes)
    assert all(isinstance(n["latency_ms"], float) for n in primaries)
    await store.aclose()


async def test_keys_with_braces_in_the_facade(cluster: RedisCluster) -> None:
    store = RedisStore(cluster.url)
    from aiosessions import get_session

    async with get_session(store) as kv:
        for i in range(20):
            await kv.setex(f"user:{{{i}}}:otp", 30, str(i))
        assert [await kv.get(f"user:{{{i}}}:otp") for i in range(20)] == [
            str(i) for i in range(20)
        ]
    await store.aclose()
