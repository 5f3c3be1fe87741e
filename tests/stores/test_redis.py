"""What only the Redis store has to prove: pools, scripts, outages, URLs."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
import redis.asyncio as aioredis

from aiosessions import (
    BackendUnavailableError,
    ConfigurationError,
    ProviderError,
    SessionError,
    SessionManager,
    get_session,
)
from aiosessions.stores.redis import RedisStore, redact_url

pytestmark = pytest.mark.redis


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def library_connections(url: str) -> int:
    client = aioredis.Redis.from_url(url)
    try:
        clients = await client.client_list()
    finally:
        await client.aclose()
    return sum(1 for entry in clients if entry["name"] == "aiosessions")


async def command_calls(url: str, command: str) -> int:
    client = aioredis.Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


class TestConnections:
    async def test_contexts_share_one_pool(self, redis_url: str) -> None:
        store = RedisStore(redis_url, max_connections=4)
        for i in range(20):
            async with get_session(store) as s:
                await s.setex(f"k{i}", 10, "v")
        assert await library_connections(redis_url) == 1
        await store.aclose()

    async def test_a_burst_larger_than_the_pool_waits(self, redis_url: str) -> None:
        store = RedisStore(redis_url, max_connections=2)
        mgr = SessionManager("burst", store=store)
        ids = await asyncio.gather(*(mgr.allocate_session() for _ in range(300)))
        assert len(set(ids)) == 300
        assert await library_connections(redis_url) == 2
        await store.aclose()

    def test_one_store_serves_several_event_loops(self, redis_url: str) -> None:
        store = RedisStore(redis_url)
        mgr = SessionManager("loops", store=store)
        sid = asyncio.run(mgr.allocate_session())
        assert asyncio.run(mgr.validate_session(sid))
        results: list[bool] = []

        def in_thread() -> None:
            results.append(asyncio.run(mgr.validate_session(sid)))

        threads = [threading.Thread(target=in_thread) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [True, True, True]

    async def test_scripts_are_loaded_once(self, redis_url: str) -> None:
        store = RedisStore(redis_url)
        mgr = SessionManager("scripts", store=store)
        sid = await mgr.allocate_session()
        loads_before = await command_calls(redis_url, "script|load") + (
            await command_calls(redis_url, "eval")
        )
        for _ in range(10):
            await mgr.validate_session(sid)
        loads_after = await command_calls(redis_url, "script|load") + (
            await command_calls(redis_url, "eval")
        )
        assert loads_after == loads_before
        await store.aclose()

    async def test_validate_is_one_round_trip(self, redis_url: str) -> None:
        store = RedisStore(redis_url)
        mgr = SessionManager("trips", store=store, idle_timeout=60)
        sid = await mgr.allocate_session()
        await mgr.validate_session(sid)
        before = await command_calls(redis_url, "evalsha")
        for _ in range(10):
            await mgr.validate_session(sid)
        assert await command_calls(redis_url, "evalsha") == before + 10
        await store.aclose()

    async def test_aclose_then_reuse(self, redis_url: str) -> None:
        store = RedisStore(redis_url)
        await store.set("k", "v")
        await store.aclose()
        assert await store.get("k") == "v"
        await store.aclose()


class TestOutage:
    async def test_unreachable_store_raises_the_library_error(self) -> None:
        url = f"redis://127.0.0.1:{closed_port()}/0"
        store = RedisStore(url, retries=2, retry_backoff=0.001, socket_timeout=1)
        mgr = SessionManager("down", store=store)

        with pytest.raises(BackendUnavailableError) as caught:
            await mgr.validate_session("A" * 32)
        assert isinstance(caught.value, SessionError)
        assert caught.value.attempts == 3
        assert "127.0.0.1" in str(caught.value)

        with pytest.raises(BackendUnavailableError) as caught:
            await mgr.allocate_session()
        assert caught.value.attempts == 1  # creating is not repeated

    async def test_password_never_appears_in_errors(self) -> None:
        url = f"redis://user:s3cr3t-pw@127.0.0.1:{closed_port()}/0"
        store = RedisStore(url, retries=0, socket_timeout=1)
        with pytest.raises(BackendUnavailableError) as caught:
            await store.get("k")
        assert "s3cr3t-pw" not in str(caught.value)
        assert "s3cr3t-pw" not in repr(store)
        assert "s3cr3t-pw" not in str(store.describe())

    async def test_refused_command_is_a_provider_error(self, redis_url: str) -> None:
        store = RedisStore(redis_url)
        client = aioredis.Redis.from_url(redis_url)
        await client.lpush("aiosessions:kv:list", "x")
        await client.aclose()
        with pytest.raises(ProviderError, match="WRONGTYPE"):
            async with get_session(store) as s:
                await s.get("list")
        await store.aclose()


class TestUrls:
    @pytest.mark.parametrize(
        "url", ["http://localhost", "localhost:6379", "", "memcached://x"]
    )
    def test_unsupported_urls_are_refused(self, url: str) -> None:
        with pytest.raises(ConfigurationError, match="redis://"):
            RedisStore(url)

    def test_bad_pool_settings_are_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="max_connections"):
            RedisStore("redis://localhost", max_connections=0)
        with pytest.raises(ConfigurationError, match="retries"):
            RedisStore("redis://localhost", retries=-1)

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
            ("rediss://u:pw@h/0", "rediss://u:***@h/0"),
            ("redis://h:1/0", "redis://h:1/0"),
            ("redis://u:pw@[::1]:1", "redis://u:***@[::1]:1"),
        ],
    )
    def test_redact_url_hides_passwords(self, url: str, shown: str) -> None:
        assert redact_url(url) == shown

    def test_redact_url_survives_garbage(self) -> None:
        assert redact_url("redis://[::1") == "<unparsable url>"

    def test_tls_options_reach_the_pool(self) -> None:
        store = RedisStore(
            "rediss://localhost", tls_insecure=True, tls_ca_file="/tmp/ca.pem"
        )
        assert store._options["ssl_cert_reqs"] == "none"
        assert store._options["ssl_ca_certs"] == "/tmp/ca.pem"


class TestUserIndexes:
    def test_index_and_marks_share_a_slot_apart_from_records(self) -> None:
        from redis.crc import key_slot

        keys = SessionManager("app").keys
        for user in ("alice", "a{b}c", "*", "é" * 50):
            index, marks = keys.user_index(user), keys.user_marks(user)
            assert key_slot(index.encode()) == key_slot(marks.encode())
        sid = "A" * 32
        assert key_slot(keys.session(sid).encode()) == key_slot(sid.encode())

    async def test_cleanup_walks_indexes_with_scan_never_keys(
        self, redis_url: str
    ) -> None:
        store = RedisStore(redis_url)
        mgr = SessionManager("app", store=store)
        for i in range(30):
            await mgr.allocate_session(user_id=f"user{i}", ttl_hours=0.05 / 3600)
        await asyncio.sleep(0.15)
        scans = await command_calls(redis_url, "scan")

        report = await mgr.cleanup_report(batch_size=7)
        assert report.indexes_scanned == 30 and report.members_pruned == 30
        assert await command_calls(redis_url, "keys") == 0
        assert await command_calls(redis_url, "scan") > scans
        await store.aclose()

    async def test_bulk_reads_are_pipelined(self, redis_url: str) -> None:
        store = RedisStore(redis_url)
        mgr = SessionManager("app", store=store)
        for _ in range(40):
            await mgr.allocate_session(user_id="alice")
        client = aioredis.Redis.from_url(redis_url)
        before = (await client.info("stats"))["total_net_input_bytes"]
        conns_before = (await client.info("stats"))["total_connections_received"]
        assert len(await mgr.list_user_sessions("alice")) == 40
        conns_after = (await client.info("stats"))["total_connections_received"]
        after = (await client.info("stats"))["total_net_input_bytes"]
        await client.aclose()
        assert after > before
        assert conns_after - conns_before <= 1  # no connection per record
        await store.aclose()

    async def test_bulk_calls_survive_a_script_flush(self, redis_url: str) -> None:
        store = RedisStore(redis_url)
        mgr = SessionManager("app", store=store)
        ids = [await mgr.allocate_session(user_id="alice") for _ in range(3)]
        client = aioredis.Redis.from_url(redis_url)
        await client.script_flush()
        await client.aclose()
        listed = await mgr.list_user_sessions("alice")
        assert sorted(s.session_id for s in listed) == sorted(ids)
        await store.aclose()
