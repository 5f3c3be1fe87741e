"""What only the Redis store has to prove: pools, scripts, outages, URLs."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.connection import SSLConnection

from aiosessions import (
    BackendUnavailableError,
    ConfigurationError,
    ProviderError,
    SessionError,
    SessionManager,
    create_store,
    get_session,
)
from aiosessions.stores.redis import RedisStore, redact_url
from tests.servers import RedisCluster, RedisSentinel, RedisServer, TLSRedis

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

    async def test_wrong_password_is_not_an_outage(
        self, redis_server_factory: Callable[..., RedisServer]
    ) -> None:
        server = redis_server_factory(password="right-pw")
        wrong = f"redis://:wrong-pw@127.0.0.1:{server.port}/0"
        store = RedisStore(wrong, retries=3)

        with pytest.raises(ProviderError, match="credentials") as caught:
            await store.get("k")
        assert not isinstance(caught.value, BackendUnavailableError)
        assert "wrong-pw" not in str(caught.value)

        right = RedisStore(server.url)
        await right.set("k", "v")
        assert await right.get("k") == "v"
        await right.aclose()

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

    def test_tls_arguments_win_over_the_query(self) -> None:
        store = RedisStore(
            "rediss://localhost?ssl_ca_certs=/query/ca.pem",
            tls_ca_file="/arg/ca.pem",
            tls_cert_file="/arg/c.pem",
            tls_key_file="/arg/k.pem",
        )
        assert store.target.ssl_ca_certs == "/arg/ca.pem"
        assert store.target.ssl_certfile == "/arg/c.pem"
        assert store.target.ssl_keyfile == "/arg/k.pem"
        assert store.target.ssl_cert_reqs == "required"

    def test_insecure_tls_is_logged(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING, logger="aiosessions"):
            store = RedisStore("rediss://:pw@localhost", tls_insecure=True)
        assert store.target.ssl_cert_reqs == "none"
        assert not store.target.ssl_check_hostname
        assert "development only" in caplog.text
        assert "pw@" not in caplog.text

    def test_tls_files_need_a_tls_url(self) -> None:
        with pytest.raises(ConfigurationError, match="rediss://"):
            RedisStore("redis://localhost", tls_ca_file="/ca.pem")

    def test_insecure_flag_is_ignored_without_tls(self) -> None:
        assert RedisStore("redis://localhost", tls_insecure=True).target.tls is False

    @pytest.mark.parametrize(
        ("url", "topology"),
        [
            ("redis://h:1/0", "standalone"),
            ("unix:///tmp/r.sock", "standalone"),
            ("redis://h:1,h:2", "cluster"),
            ("redis+cluster://h:1", "cluster"),
            ("redis+sentinel://h:1/mymaster", "sentinel"),
        ],
    )
    def test_the_url_picks_the_topology(self, url: str, topology: str) -> None:
        store = RedisStore(url)
        assert store.topology == topology
        assert store.describe()["topology"] == topology

    def test_cluster_credentials_reach_every_node(self) -> None:
        async def options() -> dict[str, object]:
            store = RedisStore("redis://app:pw@127.0.0.1:1,127.0.0.1:2")
            kwargs = store._bind().client.nodes_manager.connection_kwargs
            await store.aclose()
            return dict(kwargs)

        kwargs = asyncio.run(options())
        assert kwargs["username"] == "app"
        assert kwargs["password"] == "pw"
        assert kwargs["client_name"] == "aiosessions"

    def test_tls_reaches_every_cluster_node_and_sentinel(self) -> None:
        async def clients() -> tuple[Any, Any]:
            cluster = RedisStore("rediss://h1:1,h2:2", tls_ca_file="/ca.pem")
            sentinel = RedisStore("rediss+sentinel://s1/m", tls_ca_file="/ca.pem")
            pair = (cluster._bind().client, sentinel._bind().client)
            await cluster.aclose()
            await sentinel.aclose()
            return pair

        cluster, sentinel = asyncio.run(clients())
        node_kwargs = cluster.nodes_manager.connection_kwargs
        assert issubclass(node_kwargs["connection_class"], SSLConnection)
        assert node_kwargs["ssl_ca_certs"] == "/ca.pem"
        assert node_kwargs["ssl_cert_reqs"] == "required"
        pool = sentinel.connection_pool
        assert issubclass(pool.connection_class, SSLConnection)
        assert pool.connection_kwargs["ssl_ca_certs"] == "/ca.pem"
        for watcher in pool.sentinel_manager.sentinels:
            assert issubclass(watcher.connection_pool.connection_class, SSLConnection)

    def test_bad_pool_timeout_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="pool_timeout"):
            RedisStore("redis://localhost", pool_timeout=0)


class TestTLS:
    async def test_the_wrong_ca_fails_clearly_and_at_once(
        self, redis_tls: TLSRedis
    ) -> None:
        store = RedisStore(redis_tls.url, tls_ca_file=str(redis_tls.wrong_ca_file))
        with pytest.raises(ProviderError, match="certificate verification") as caught:
            await store.get("k")
        assert not isinstance(caught.value, BackendUnavailableError)
        assert "tls_ca_file" in str(caught.value)
        report = await store.health()
        assert report["ok"] is False
        assert "certificate verification" in report["error"]
        await store.aclose()

    async def test_system_cas_do_not_trust_a_private_ca(
        self, redis_tls: TLSRedis
    ) -> None:
        store = RedisStore(redis_tls.url, retries=0)
        with pytest.raises(ProviderError, match="certificate verification"):
            await store.ping()
        await store.aclose()

    async def test_ca_in_the_query(self, redis_tls: TLSRedis) -> None:
        store = RedisStore(f"{redis_tls.url}?ssl_ca_certs={redis_tls.ca_file}")
        await store.set("k", "v")
        assert await store.get("k") == "v"
        await store.aclose()

    async def test_insecure_setting_skips_verification(
        self, redis_tls: TLSRedis, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SESSION_REDIS_URL", redis_tls.url)
        monkeypatch.setenv("REDIS_TLS_INSECURE", "1")
        store = create_store()
        assert isinstance(store, RedisStore)
        assert await store.ping() >= 0
        await store.aclose()

    async def test_client_certificate_from_the_query_or_arguments(self) -> None:
        with TLSRedis(extra_args=["--tls-auth-clients", "yes"]) as server:
            base = f"{server.url}?ssl_ca_certs={server.ca_file}"
            without = RedisStore(base, retries=0, socket_timeout=2)
            with pytest.raises(ProviderError):
                await without.ping()
            await without.aclose()

            query = RedisStore(
                f"{base}&ssl_certfile={server.client_cert}"
                f"&ssl_keyfile={server.client_key}"
            )
            arguments = RedisStore(
                server.url,
                tls_ca_file=str(server.ca_file),
                tls_cert_file=str(server.client_cert),
                tls_key_file=str(server.client_key),
            )
            for store in (query, arguments):
                await store.set("k", "v")
                assert await store.get("k") == "v"
                await store.aclose()


class TestUnixSocket:
    async def test_sessions_over_a_unix_socket(
        self, redis_server_factory: Callable[..., RedisServer]
    ) -> None:
        directory = tempfile.mkdtemp(prefix="aios-")
        path = os.path.join(directory, "r.sock")
        try:
            redis_server_factory(password="sock pw", extra_args=["--unixsocket", path])
            store = RedisStore(f"unix://:sock%20pw@{path}?db=3")
            mgr = SessionManager("unix", store=store)
            sid = await mgr.allocate_session()
            assert await mgr.validate_session(sid)
            report = await store.health()
            assert report["ok"] and report["nodes"][0]["address"] == path
            await store.aclose()
        finally:
            shutil.rmtree(directory, ignore_errors=True)


class TestCredentials:
    async def test_acl_user_in_the_url_and_no_secret_anywhere(
        self,
        redis_server_factory: Callable[..., RedisServer],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        server = redis_server_factory(password="admin-pw")
        with server.connect() as admin:
            admin.acl_setuser(
                "app",
                enabled=True,
                passwords=["+app-s3cret"],
                keys=["aiosessions:*"],
                commands=["+@all"],
            )
        url = f"redis://app:app-s3cret@127.0.0.1:{server.port}/0"
        store = RedisStore(url)
        mgr = SessionManager("acl", store=store)

        with caplog.at_level(logging.DEBUG, logger="aiosessions"):
            sid = await mgr.allocate_session()
            assert await mgr.validate_session(sid)
            report = await mgr.health()
            stats = await mgr.get_cache_stats()
        with server.connect() as admin:
            users = {c["user"] for c in admin.client_list() if c["name"]}

        assert users == {"app"}
        shown = [caplog.text, repr(store), repr(mgr), json.dumps(report)]
        shown.append(json.dumps(stats))
        assert all("app-s3cret" not in text for text in shown)
        await store.aclose()

        wrong = RedisStore(url.replace("app-s3cret", "guess"), retries=3)
        with pytest.raises(ProviderError, match="credentials") as caught:
            await wrong.get("k")
        assert "guess" not in str(caught.value)
        await wrong.aclose()


class TestWrongForm:
    async def test_single_server_url_naming_a_cluster_node(
        self, redis_cluster: RedisCluster
    ) -> None:
        node = redis_cluster.primaries()[0]
        store = RedisStore(node.url)
        # Any key fails, even one this node serves: no partial success.
        for key in ("a", "b", "c", "d"):
            with pytest.raises(ConfigurationError, match="Cluster URL") as caught:
                await store.get(key)
        assert "redis+cluster://" in str(caught.value)
        await store.aclose()

    async def test_cluster_url_naming_a_single_server(
        self, redis_server_factory: Callable[..., RedisServer]
    ) -> None:
        one, two = redis_server_factory(), redis_server_factory()
        for url in (
            f"redis+cluster://127.0.0.1:{one.port}",
            f"redis://127.0.0.1:{one.port},127.0.0.1:{two.port}",
        ):
            store = RedisStore(url)
            with pytest.raises(ConfigurationError, match="single-server URL"):
                await store.set("k", "v")
            report = await store.health()
            assert report["ok"] is False and "single-server" in report["error"]
            await store.aclose()

    async def test_single_server_url_naming_a_sentinel(
        self, redis_sentinel: RedisSentinel
    ) -> None:
        host, port = redis_sentinel.sentinels[0]
        store = RedisStore(f"redis://{host}:{port}/0")
        with pytest.raises(ConfigurationError, match="redis\\+sentinel://"):
            await store.get("k")
        await store.aclose()

    async def test_sentinel_url_naming_plain_servers(
        self, redis_server_factory: Callable[..., RedisServer]
    ) -> None:
        server = redis_server_factory()
        store = RedisStore(f"redis+sentinel://127.0.0.1:{server.port}/mymaster/0")
        with pytest.raises(ConfigurationError, match="standalone"):
            await store.get("k")
        await store.aclose()

    async def test_sentinel_url_with_an_unknown_service_name(
        self, redis_sentinel: RedisSentinel
    ) -> None:
        url = redis_sentinel.url.replace("/mymaster/", "/nosuchmaster/")
        store = RedisStore(url)
        with pytest.raises(ConfigurationError, match="'nosuchmaster'"):
            await store.get("k")
        await store.aclose()


class TestRetries:
    async def test_errors_that_prove_nothing_ran_are_retried_even_for_counters(
        self, redis_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = RedisStore(redis_url, retry_backoff=0.001)
        mgr = SessionManager("retry", store=store)
        sid = await mgr.allocate_session()
        real = store._bind().scripts["INCR"]
        failures = [
            redis_errors.ClusterDownError("CLUSTERDOWN The cluster is down"),
            redis_errors.TryAgainError("TRYAGAIN"),
            redis_errors.ReadOnlyError("READONLY replica"),
        ]

        async def flaky(*args: Any, **kwargs: Any) -> Any:
            if failures:
                raise failures.pop(0)
            return await real(*args, **kwargs)

        monkeypatch.setitem(store._bind().scripts, "INCR", flaky)
        assert await mgr.increment_metadata(sid, "n") == 1
        assert failures == []
        await store.aclose()

    async def test_a_lost_reply_is_not_repeated_for_counters(
        self, redis_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = RedisStore(redis_url, retry_backoff=0.001)
        mgr = SessionManager("retry", store=store)
        sid = await mgr.allocate_session()
        real = store._bind().scripts["INCR"]

        async def lost_reply(*args: Any, **kwargs: Any) -> Any:
            await real(*args, **kwargs)
            raise redis_errors.ConnectionError("Connection closed by server.")

        monkeypatch.setitem(store._bind().scripts, "INCR", lost_reply)
        with pytest.raises(BackendUnavailableError) as caught:
            await mgr.increment_metadata(sid, "n")
        assert caught.value.attempts == 1
        monkeypatch.undo()
        info = await mgr.get_session_info(sid)
        assert info is not None and info["custom_metadata"]["n"] == 1
        await store.aclose()

    async def test_an_unreachable_cluster_is_a_typed_outage(self) -> None:
        url = f"redis://127.0.0.1:{closed_port()},127.0.0.1:{closed_port()}"
        store = RedisStore(url, retries=2, retry_backoff=0.001, socket_timeout=1)
        with pytest.raises(BackendUnavailableError) as caught:
            await store.get("k")
        assert caught.value.attempts == 3
        report = await store.health()
        assert report["ok"] is False and report["error"]
        await store.aclose()

    async def test_an_unreachable_sentinel_set_is_a_typed_outage(self) -> None:
        url = f"redis+sentinel://127.0.0.1:{closed_port()}/mymaster"
        store = RedisStore(url, retries=1, retry_backoff=0.001, socket_timeout=1)
        with pytest.raises(BackendUnavailableError, match="MasterNotFound"):
            await store.get("k")
        await store.aclose()


class TestLimits:
    async def test_a_turn_not_given_in_time_is_a_typed_error(
        self, redis_server_factory: Callable[..., RedisServer]
    ) -> None:
        server = redis_server_factory()
        store = RedisStore(server.url, max_connections=1, pool_timeout=0.2)
        await store.ping()

        async def slow(bound: Any) -> Any:
            return await bound.client.execute_command("DEBUG", "SLEEP", "0.6")

        blocker = asyncio.create_task(store._run("sleep", slow))
        await asyncio.sleep(0.05)
        with pytest.raises(BackendUnavailableError, match="max_connections=1"):
            await store.get("k")
        await blocker
        assert await store.get("k") is None
        await store.aclose()


class TestRecovery:
    async def test_the_store_recovers_when_the_server_comes_back(
        self,
        redis_server_factory: Callable[..., RedisServer],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        server = redis_server_factory()
        store = RedisStore(server.url, retries=1, retry_backoff=0.001)
        mgr = SessionManager("recover", store=store)
        await mgr.allocate_session()

        server.kill()
        with caplog.at_level(logging.WARNING, logger="aiosessions"):
            for _ in range(5):
                with pytest.raises(BackendUnavailableError):
                    await mgr.allocate_session()
        assert len(caplog.records) == 1  # one warning per outage, not per call
        assert (await store.health())["ok"] is False
        caplog.clear()
        server.start()
        with caplog.at_level(logging.INFO, logger="aiosessions"):
            sid = await mgr.allocate_session()
        assert await mgr.validate_session(sid)
        assert "reachable again" in caplog.text
        await store.aclose()


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
