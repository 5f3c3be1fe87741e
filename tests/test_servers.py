"""Smoke tests: every Redis fixture really serves plain ``redis.asyncio`` clients."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
import redis.exceptions
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from tests import conftest, servers
from tests.servers import (
    HOST,
    PortInUseError,
    RedisCluster,
    RedisSentinel,
    RedisServer,
    RedisStartError,
    TLSRedis,
)

pytestmark = pytest.mark.redis

ServerFactory = Callable[..., RedisServer]


# -- standalone ----------------------------------------------------------------------


async def test_standalone_set_get(redis_url: str) -> None:
    assert redis_url.startswith(f"redis://{HOST}:")
    assert redis_url.endswith("/0")
    client = Redis.from_url(redis_url)
    try:
        await client.set("greeting", "hello")
        assert await client.get("greeting") == b"hello"
    finally:
        await client.aclose()


async def test_redis_url_is_flushed_before_each_test(
    redis_server: RedisServer, redis_url: str
) -> None:
    assert redis_url == redis_server.url
    assert redis_server.port != 6379
    client = Redis.from_url(redis_url)
    try:
        assert await client.dbsize() == 0
        await client.set("left-behind", "1")  # the next test must not see it
    finally:
        await client.aclose()


async def test_redis_url_is_flushed_again(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        assert await client.exists("left-behind") == 0
    finally:
        await client.aclose()


async def test_restart_keeps_the_same_url(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory()
    url, pid = server.url, server.pid
    client = Redis.from_url(url)
    try:
        await client.set("k", "v")
        server.restart()
        assert server.url == url
        assert server.pid is not None
        assert server.pid != pid
        fresh = Redis.from_url(url)
        try:
            assert await fresh.ping()
            assert await fresh.get("k") is None  # no persistence
        finally:
            await fresh.aclose()
    finally:
        await client.aclose()


async def test_kill_and_start_again(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory()
    server.kill()
    assert not server.running
    assert server.pid is None
    client = Redis.from_url(server.url, socket_connect_timeout=1)
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.ping()
        server.start()
        assert await client.ping()
    finally:
        await client.aclose()


async def test_password(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory(password="s3cr#t")
    assert server.url.startswith(f"redis://:s3cr%23t@{HOST}:")
    client = Redis.from_url(server.url)
    # AuthenticationError is a ConnectionError: without this, redis-py retries it.
    anonymous = Redis(host=server.host, port=server.port, retry=Retry(NoBackoff(), 0))
    try:
        assert await client.ping()
        with pytest.raises(redis.exceptions.AuthenticationError):
            await anonymous.get("k")
    finally:
        await client.aclose()
        await anonymous.aclose()


def test_free_ports_are_distinct_and_free() -> None:
    ports = {servers.free_port() for _ in range(20)}
    assert len(ports) == 20
    for port in ports:
        assert port != 6379
        with socket.socket() as sock:
            # As redis binds: a port in TIME_WAIT (from an earlier run) is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, port))
            sock.listen()


def test_start_retries_on_a_port_taken_by_someone_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as squatter:
        squatter.bind((HOST, 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        real_free_port = servers.free_port
        offered = iter([taken])
        monkeypatch.setattr(
            servers, "free_port", lambda: next(offered, None) or real_free_port()
        )
        with RedisServer() as server:
            assert server.port != taken
            assert server.running
        with (
            pytest.raises(PortInUseError, match="Address already in use"),
            RedisServer(port=taken),
        ):
            pass


def test_start_failure_shows_the_log() -> None:
    server = RedisServer(extra_args=["--no-such-directive", "1"])
    try:
        with pytest.raises(RedisStartError, match="no-such-directive"):
            server.start()
        assert not server.running
    finally:
        server.close()


def test_missing_binary_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_SERVER", "/nonexistent/redis-server")
    assert servers.redis_server_binary() is None
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="redis-server not found"):
        conftest.require_redis()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="redis-server not found"):
        conftest.require_redis()


# -- TLS -----------------------------------------------------------------------------


async def test_tls_with_verification(redis_tls: TLSRedis) -> None:
    assert redis_tls.url.startswith(f"rediss://{HOST}:")
    client = Redis.from_url(
        redis_tls.url, ssl_ca_certs=str(redis_tls.ca_file), ssl_cert_reqs="required"
    )
    try:
        await client.set("tls", "yes")
        assert await client.get("tls") == b"yes"
    finally:
        await client.aclose()


async def test_tls_with_client_certificate(redis_tls: TLSRedis) -> None:
    client = Redis.from_url(
        redis_tls.url,
        ssl_ca_certs=str(redis_tls.ca_file),
        ssl_certfile=str(redis_tls.client_cert),
        ssl_keyfile=str(redis_tls.client_key),
    )
    try:
        assert await client.ping()
    finally:
        await client.aclose()


async def test_tls_with_the_wrong_ca_fails(redis_tls: TLSRedis) -> None:
    client = Redis.from_url(
        redis_tls.url,
        ssl_ca_certs=str(redis_tls.wrong_ca_file),
        ssl_cert_reqs="required",
        socket_connect_timeout=2,
    )
    try:
        with pytest.raises(
            redis.exceptions.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"
        ):
            await client.ping()
    finally:
        await client.aclose()


async def test_tls_port_refuses_plaintext(redis_tls: TLSRedis) -> None:
    client = Redis(
        host=redis_tls.host,
        port=redis_tls.port,
        socket_timeout=2,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.ping()
    finally:
        await client.aclose()


# -- cluster -------------------------------------------------------------------------


def _cluster_client(cluster: RedisCluster) -> AsyncRedisCluster:
    nodes = [ClusterNode(host, port) for host, port in cluster.startup_nodes]
    return AsyncRedisCluster(startup_nodes=nodes)


@pytest.mark.slow
async def test_cluster_set_get_across_slots(redis_cluster: RedisCluster) -> None:
    assert len(redis_cluster.nodes) == 6
    assert len(redis_cluster.primaries()) == 3
    assert len(redis_cluster.replicas()) == 3
    assert redis_cluster.url.startswith(f"redis://{HOST}:")
    assert redis_cluster.url.count(",") == 2
    client = _cluster_client(redis_cluster)
    try:
        owners: dict[int, str] = {}
        for i in range(100):
            key = f"key-{i}"
            owners.setdefault(redis_cluster.primary_for_key(key).port, key)
            if len(owners) == 3:
                break
        assert len(owners) == 3, "keys should land on all three primaries"
        slots = {client.keyslot(key) for key in owners.values()}
        assert len(slots) == 3
        for key in owners.values():
            await client.set(key, key.upper())
        for key in owners.values():
            assert await client.get(key) == key.upper().encode()
    finally:
        await client.aclose()


@pytest.mark.slow
async def test_cluster_from_one_node_url(redis_cluster: RedisCluster) -> None:
    client = AsyncRedisCluster.from_url(redis_cluster.urls[-1])
    try:
        await client.set("{tag}a", "1")
        await client.set("{tag}b", "2")
        assert await client.mget("{tag}a", "{tag}b") == [b"1", b"2"]
    finally:
        await client.aclose()


@pytest.mark.slow
async def test_cluster_failover_of_a_killed_primary(
    redis_cluster: RedisCluster,
) -> None:
    key = "failover-key"
    client = _cluster_client(redis_cluster)
    try:
        await client.set(key, "kept")
        replicated = await client.execute_command(
            "WAIT", 1, 2000, target_nodes=client.get_node_from_key(key)
        )
        assert replicated == 1
    finally:
        await client.aclose()

    victim = redis_cluster.kill_primary(key)
    try:
        redis_cluster.wait_ok(timeout=30)
        assert redis_cluster.primary_for_key(key) is not victim
        client = _cluster_client(redis_cluster)
        try:
            assert await client.get(key) == b"kept"
        finally:
            await client.aclose()
    finally:
        redis_cluster.restore()
    assert victim in redis_cluster.replicas(), redis_cluster.describe()


# -- sentinel ------------------------------------------------------------------------


@pytest.mark.slow
async def test_sentinel_master_for(redis_sentinel: RedisSentinel) -> None:
    ports = ",".join(f"{HOST}:{port}" for _, port in redis_sentinel.sentinels)
    assert redis_sentinel.url == f"redis+sentinel://{ports}/mymaster/0"
    assert len(redis_sentinel.sentinels) == 3
    sentinel = Sentinel(redis_sentinel.sentinels, socket_timeout=2)
    primary = sentinel.master_for(redis_sentinel.service_name)
    replica = sentinel.slave_for(redis_sentinel.service_name)
    try:
        await primary.set("via-sentinel", "ok")
        assert await primary.get("via-sentinel") == b"ok"
        assert await primary.execute_command("WAIT", 1, 2000) == 1
        assert await replica.get("via-sentinel") == b"ok"
        address = await sentinel.discover_master(redis_sentinel.service_name)
        assert address == redis_sentinel.current_primary().address
    finally:
        await primary.aclose()
        await replica.aclose()
        for client in sentinel.sentinels:
            await client.aclose()


@pytest.mark.slow
async def test_sentinel_failover_of_a_killed_primary(
    redis_sentinel: RedisSentinel,
) -> None:
    sentinel = Sentinel(redis_sentinel.sentinels, socket_timeout=2)
    name = redis_sentinel.service_name
    try:
        primary = sentinel.master_for(name)
        try:
            await primary.set("survives", "yes")
            assert await primary.execute_command("WAIT", 1, 2000) == 1
        finally:
            await primary.aclose()

        victim = redis_sentinel.kill_primary()
        try:
            promoted = redis_sentinel.wait_for_new_primary(victim, timeout=30)
            assert promoted is not victim
            assert await sentinel.discover_master(name) == promoted.address
            primary = sentinel.master_for(name)
            try:
                assert await primary.get("survives") == b"yes"
            finally:
                await primary.aclose()
        finally:
            redis_sentinel.restore()
        assert redis_sentinel.current_replica() is victim, redis_sentinel.describe()
    finally:
        for client in sentinel.sentinels:
            await client.aclose()
