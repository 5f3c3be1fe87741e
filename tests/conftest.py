"""Shared pytest fixtures.

Each block below is self-contained; add new fixtures in a block of their own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.servers import (
    RedisCluster,
    RedisSentinel,
    RedisServer,
    TLSRedis,
    redis_cli_binary,
    redis_server_binary,
)

# ======================================================================================
# Real Redis servers (helpers in tests/servers.py)
#
# Every fixture starts its own redis-server processes on free 127.0.0.1 ports; none
# of them ever touches another Redis (e.g. one on 127.0.0.1:6379). Session fixtures
# start lazily, on the first test that asks for them, and stop at the end of the
# session (an atexit hook in tests/servers.py is the safety net).
#
# Without a redis-server binary the fixtures skip the test with a loud reason,
# except under CI=true, where they fail it: CI must never silently skip Redis tests.
# ======================================================================================

REDIS_SERVER_MISSING = (
    "redis-server not found: Redis tests skipped; install redis-server"
)
REDIS_CLI_MISSING = (
    "redis-cli not found: Redis Cluster tests skipped; install redis-tools"
)


def in_ci() -> bool:
    """True when the environment says this is a CI run (``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_redis(*, cli: bool = False) -> None:
    """Skip (or under CI fail) the current test if the Redis binaries are missing."""
    if redis_server_binary() is None:
        reason = REDIS_SERVER_MISSING
    elif cli and redis_cli_binary() is None:
        reason = REDIS_CLI_MISSING
    else:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI=true: Redis tests must not be skipped in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A standalone redis-server shared by the whole session.

    Use :func:`redis_url` to get it flushed; a test that stops or kills it should
    call ``redis_server.start()`` again (``redis_url`` does so too).
    """
    require_redis()
    server = RedisServer(name="session")
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:PORT/0`` of :func:`redis_server`, flushed (FLUSHALL)."""
    redis_server.ensure_running()
    redis_server.flushall()
    return redis_server.url


@pytest.fixture
def redis_server_factory() -> Iterator[Callable[..., RedisServer]]:
    """Start throwaway servers of a test's own (to kill, restart, password...).

    ``redis_server_factory(password="pw", extra_args=["--maxmemory", "1mb"])``
    returns a started :class:`RedisServer`; all are closed after the test.
    """
    require_redis()
    servers: list[RedisServer] = []

    def make(**kwargs: Any) -> RedisServer:
        server = RedisServer(**kwargs)
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in servers:
            server.close()


@pytest.fixture(scope="session")
def redis_tls() -> Iterator[TLSRedis]:
    """A TLS-only server: ``url`` (rediss://), ``ca_file``, ``client_cert``,
    ``client_key`` and ``wrong_ca_file`` (an unrelated CA). Not flushed per test."""
    require_redis()
    server = TLSRedis(name="session-tls")
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """3 primaries + 3 replicas. Not flushed per test (``redis_cluster.flushall()``).

    A test that kills nodes must call ``redis_cluster.restore()`` before it ends.
    """
    require_redis(cli=True)
    cluster = RedisCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[RedisSentinel]:
    """Primary, replica and 3 sentinels for ``mymaster`` (quorum 2).

    A test that kills servers must call ``redis_sentinel.restore()`` before it ends.
    """
    require_redis()
    setup = RedisSentinel()
    try:
        setup.start()
        yield setup
    finally:
        setup.stop()


# ======================================================================================
# End of the real Redis servers block.
# ======================================================================================


# ======================================================================================
# Stores: every conformance and manager test runs on memory and on real Redis.
# ======================================================================================

STORE_KINDS = ["memory", "redis", "redis-tls", "redis-cluster", "redis-sentinel"]


@dataclass
class RedisSetup:
    """A flushed Redis set-up: how a store reaches it, and its data servers."""

    kind: str
    url: str
    options: dict[str, Any]
    servers: list[RedisServer]


def fresh_redis(request: pytest.FixtureRequest, kind: str) -> RedisSetup:
    """The Redis set-up of *kind* (``redis``, ``redis-tls``, ...), flushed."""
    if kind == "redis":
        url = request.getfixturevalue("redis_url")
        return RedisSetup(kind, url, {}, [request.getfixturevalue("redis_server")])
    if kind == "redis-tls":
        tls: TLSRedis = request.getfixturevalue("redis_tls")
        tls.ensure_running()
        tls.flushall()
        # Verification on: the store trusts only the fixture's throwaway CA.
        return RedisSetup(kind, tls.url, {"tls_ca_file": str(tls.ca_file)}, [tls])
    if kind == "redis-cluster":
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        cluster.flushall()
        return RedisSetup(kind, cluster.url, {}, list(cluster.nodes))
    sentinel: RedisSentinel = request.getfixturevalue("redis_sentinel")
    primary = sentinel.current_primary()
    primary.flushall()
    return RedisSetup(kind, sentinel.url, {}, [primary])


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest) -> Any:
    """A fresh, empty store of each kind (Redis: our own servers, flushed)."""
    from aiosessions.stores import MemoryStore, RedisStore

    if request.param == "memory":
        yield MemoryStore()
        return
    setup = fresh_redis(request, request.param)
    redis_store = RedisStore(setup.url, **setup.options)
    try:
        yield redis_store
    finally:
        await redis_store.aclose()


REDIS_KINDS = ["redis", "redis-tls", "redis-cluster", "redis-sentinel"]


@pytest.fixture(params=REDIS_KINDS)
def redis_setup(request: pytest.FixtureRequest) -> RedisSetup:
    """Each Redis set-up in turn (standalone, TLS, Cluster, Sentinel), flushed."""
    return fresh_redis(request, request.param)


# ======================================================================================
# End of the stores block.
# ======================================================================================


# ======================================================================================
# A clean environment: settings a developer has in their shell never leak in.
# ======================================================================================

LIBRARY_VARIABLES = (
    "SESSION_PROVIDER",
    "SESSION_DEFAULT_TTL",
    "SESSION_REDIS_URL",
    "REDIS_URL",
    "REDIS_TLS_INSECURE",
    "SESSION_MEMORY_MAX",
    "SESSION_SECRET_KEY",
)


@pytest.fixture(autouse=True)
def _clean_library_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LIBRARY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
