"""How a :class:`~.redis_urls.RedisTarget` becomes redis-py clients.

One :class:`Backend` per topology (one server, Cluster, Sentinel) builds the
client of an event loop, checks on first use that the servers are of the
kind the URL says, counts keys, and reports the health of its nodes. The
store above it owns retries, limits and error mapping.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import (
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from ..errors import ConfigurationError
from .redis_urls import RedisTarget, format_address, redact_url

__all__ = ["Backend", "LuaScript", "backend_for", "describe_failure", "no_retry"]

# Connections a Cluster node may open beyond the store's limit: a topology
# refresh or a health probe can run beside a full set of commands.
_CLUSTER_SLACK = 4

# A Cluster that cannot be reached now (older redis-py lacks the second).
_CLUSTER_OUTAGE: tuple[type[BaseException], ...] = tuple(
    cls
    for cls in (
        redis_errors.SlotNotCoveredError,
        getattr(redis_errors, "RedisClusterUnreachableError", None),
    )
    if isinstance(cls, type) and issubclass(cls, BaseException)
)


def no_retry() -> Retry:
    """A redis-py retry policy that never retries."""
    # The store decides what to repeat; redis-py's own retries would repeat
    # counters and extensions whose reply was lost.
    return Retry(NoBackoff(), 0)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def describe_failure(
    exc: BaseException, secrets: Sequence[str] = (), limit: int = 200
) -> str:
    """Return ``"Type: message"`` for *exc* on one line, secrets masked.

    The message is cut to about *limit* characters.
    """
    text = str(exc)
    for secret in secrets:
        text = text.replace(secret, "***")
    text = " ".join(text.split())
    if len(text) > limit:
        text = f"{text[: limit - 12]}...<{len(text)} chars>"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class LuaScript:
    """A Lua script, run by its SHA1 digest.

    A server that has not seen it yet (a new primary after a failover, a
    restarted server, another Cluster node) answers ``NOSCRIPT``; the script
    then goes in full by ``EVAL`` to that same node, which caches it. The
    script did not run, so this is safe for any script.
    """

    def __init__(self, client: Redis | RedisCluster, text: str) -> None:
        self.client = client
        self.text = text
        # Redis names scripts by SHA1; this is no security use of it.
        self.sha = hashlib.sha1(text.encode()).hexdigest()  # noqa: S324

    async def __call__(self, keys: Sequence[str] = (), args: Sequence[Any] = ()) -> Any:
        try:
            return await self.client.evalsha(self.sha, len(keys), *keys, *args)
        except redis_errors.NoScriptError:
            return await self.client.eval(self.text, len(keys), *keys, *args)


class Backend(ABC):
    """What differs between one server, Cluster and Sentinel.

    Args:
        target: the parsed URL.
        url: the URL as given, for messages (it is shown redacted).
        max_connections: connections the store uses at once, per loop.
        pool_timeout: seconds to wait for a pooled connection.
        options: connection options shared by every topology.
    """

    topology: ClassVar[str]

    def __init__(
        self,
        target: RedisTarget,
        url: str,
        *,
        max_connections: int,
        pool_timeout: float,
        options: dict[str, Any],
    ) -> None:
        self.target = target
        self.url = url
        self.max_connections = max_connections
        self.pool_timeout = pool_timeout
        self.options = options

    def _ssl_options(self) -> dict[str, Any]:
        target = self.target
        return {
            "ssl_ca_certs": target.ssl_ca_certs,
            "ssl_certfile": target.ssl_certfile,
            "ssl_keyfile": target.ssl_keyfile,
            "ssl_cert_reqs": target.ssl_cert_reqs,
            "ssl_check_hostname": target.ssl_check_hostname
            and target.ssl_cert_reqs != "none",
        }

    def _auth(self) -> dict[str, Any]:
        return {"username": self.target.username, "password": self.target.password}

    def _wrong_kind(self, address: str, mode: str) -> ConfigurationError:
        """The error for a URL whose form does not match the server's mode."""
        forms = {
            "cluster": "a Cluster URL: redis://h1:p1,h2:p2 (every node you"
            " know) or redis+cluster://host:port",
            "sentinel": "a Sentinel URL with the primary's service name:"
            " redis+sentinel://host:26379/mymaster/0",
            "standalone": "a single-server URL: redis://host:port/db",
        }
        return ConfigurationError(
            "url",
            redact_url(self.url),
            f"{address} is a {mode} Redis, but the URL is for"
            f" {self.topology}; use {forms.get(mode, forms['standalone'])}",
        )

    async def _probe_mode(
        self, host: str, port: int, auth: dict[str, Any]
    ) -> str | None:
        """Return ``redis_mode`` of one server, or None if it cannot tell.

        Raises:
            redis.exceptions.AuthenticationError: it refused *auth*.
        """
        probe = Redis(
            host=host,
            port=port,
            socket_timeout=self.options["socket_timeout"],
            socket_connect_timeout=self.options["socket_connect_timeout"],
            decode_responses=True,
            retry=no_retry(),
            client_name=self.options.get("client_name"),
            **auth,
            **({"ssl": True, **self._ssl_options()} if self.target.tls else {}),
        )
        try:
            info = await probe.info("server")
        except redis_errors.AuthenticationError:
            raise  # the store says which credentials to check
        except (redis_errors.RedisError, OSError):
            return None
        finally:
            await probe.aclose()
        mode = info.get("redis_mode")
        return str(mode) if mode else None

    async def _first_mode(self, auth: dict[str, Any]) -> tuple[str, str] | None:
        """Return address and ``redis_mode`` of the first node that answers."""
        for host, port in self.target.nodes:
            mode = await self._probe_mode(host, port, auth)
            if mode is not None:
                return format_address(host, port), mode
        return None

    @abstractmethod
    def connect(self) -> Redis | RedisCluster:
        """Build the client of the running event loop."""

    @abstractmethod
    async def check(self, client: Any) -> None:
        """Check on first use that the servers match the URL's form.

        Raises:
            ConfigurationError: they do not; the message names the form to
                use instead.
        """

    async def count(self, client: Any, pattern: str) -> int:
        """Return how many keys match *pattern* (on every primary)."""
        total = 0
        async for _ in client.scan_iter(match=pattern, count=1000):
            total += 1
        return total

    @abstractmethod
    async def health(self, client: Any) -> dict[str, Any]:
        """Return ``ok``, ``latency_ms`` and details of the nodes."""

    @abstractmethod
    def in_use(self, client: Any) -> int:
        """Return how many pooled connections are checked out now."""

    async def close(self, client: Any) -> None:
        """Close *client* and its connections."""
        await client.aclose()


class StandaloneBackend(Backend):
    """One server, over TCP (``redis://``, ``rediss://``) or a Unix socket."""

    topology = "standalone"

    def connect(self) -> Redis:
        target = self.target
        kwargs: dict[str, Any] = {**self.options, **self._auth(), "db": target.db}
        if target.path is not None:
            kwargs.update(connection_class=UnixDomainSocketConnection, path=target.path)
        else:
            host, port = target.nodes[0]
            kwargs.update(host=host, port=port, connection_class=Connection)
            if target.tls:
                kwargs.update(connection_class=SSLConnection, **self._ssl_options())
        pool = BlockingConnectionPool(
            max_connections=self.max_connections, timeout=self.pool_timeout, **kwargs
        )
        return Redis.from_pool(pool)

    async def check(self, client: Redis) -> None:
        try:
            info = await client.info("server")
        except redis_errors.ResponseError:
            return  # INFO is disabled on some managed services: nothing to tell
        mode = str(info.get("redis_mode", "standalone"))
        if mode != "standalone":
            raise self._wrong_kind(self.target.addresses[0], mode)

    async def health(self, client: Redis) -> dict[str, Any]:
        start = time.perf_counter()
        await client.ping()
        latency = time.perf_counter() - start
        info = await client.info("replication")
        role = "primary" if info.get("role") == "master" else "replica"
        report: dict[str, Any] = {
            "ok": role == "primary",
            "latency_ms": _ms(latency),
            "nodes": [
                {
                    "address": self.target.addresses[0],
                    "role": role,
                    "latency_ms": _ms(latency),
                }
            ],
        }
        if role != "primary":
            report["error"] = "the server is a read-only replica"
        return report

    def in_use(self, client: Redis) -> int:
        return len(client.connection_pool._in_use_connections)


class ClusterBackend(Backend):
    """Redis Cluster: every command goes to the primary of its key's slot."""

    topology = "cluster"

    def connect(self) -> RedisCluster:
        options = dict(self.options)
        # The cluster client makes connections without a retry of their own.
        options.pop("retry", None)
        if self.target.tls:
            options.update(ssl=True, **self._ssl_options())
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in self.target.nodes],
            max_connections=self.max_connections + _CLUSTER_SLACK,
            retry=no_retry(),
            **self._auth(),
            **options,
        )

    async def check(self, client: RedisCluster) -> None:
        try:
            await client.initialize()
        except _CLUSTER_OUTAGE:
            raise
        except (redis_errors.RedisClusterException, redis_errors.ResponseError):
            answer = await self._first_mode(self._auth())
            if answer is not None and answer[1] != "cluster":
                raise self._wrong_kind(*answer) from None
            raise

    async def health(self, client: RedisCluster) -> dict[str, Any]:
        # Every node redis-py routes to is pinged; the node table and the
        # cluster state come from the first of them that answers.
        known = {node.name: node for node in client.get_nodes()}
        results = await asyncio.gather(
            *(_timed(node.execute_command("PING")) for node in known.values()),
            return_exceptions=True,
        )
        pings = dict(zip(known, results, strict=True))
        table: list[dict[str, Any]] = []
        state = "unknown"
        for name, node in known.items():
            if isinstance(pings[name], BaseException):
                continue
            try:
                nodes = await node.execute_command("CLUSTER", "NODES")
                info = await node.execute_command("CLUSTER", "INFO")
            except redis_errors.RedisError:
                continue
            table, state = _cluster_nodes(_text(nodes)), _cluster_state(_text(info))
            break
        for entry in table:
            result = pings.get(entry["address"])
            entry["latency_ms"] = result if isinstance(result, float) else None
            if isinstance(result, BaseException):
                entry["error"] = describe_failure(result, self.target.secrets)
        primaries = [pings[node.name] for node in client.get_primaries()]
        answered = [p for p in primaries if isinstance(p, float)]
        report: dict[str, Any] = {
            "ok": state == "ok" and bool(primaries) and answered == primaries,
            "latency_ms": max(answered) if answered else None,
            "cluster_state": state,
            "nodes": table,
        }
        if state != "ok":
            report["error"] = f"cluster_state is {state}"
        elif not report["ok"]:
            report["error"] = "a primary does not answer"
        return report

    def in_use(self, client: RedisCluster) -> int:
        return sum(
            len(node._connections) - len(node._free) for node in client.get_nodes()
        )


class SentinelBackend(Backend):
    """A primary found through Sentinel, followed across failovers."""

    topology = "sentinel"

    def _sentinel(self, client: Redis) -> Sentinel:
        manager: Sentinel = client.connection_pool.sentinel_manager  # type: ignore[attr-defined]
        return manager

    def _sentinel_auth(self) -> dict[str, Any]:
        return {
            "username": self.target.sentinel_username,
            "password": self.target.sentinel_password,
        }

    def connect(self) -> Redis:
        target = self.target
        tls: dict[str, Any] = {"ssl": True, **self._ssl_options()} if target.tls else {}
        sentinel = Sentinel(
            list(target.nodes),
            sentinel_kwargs={
                "socket_timeout": self.options["socket_timeout"],
                "socket_connect_timeout": self.options["socket_connect_timeout"],
                "decode_responses": True,
                "retry": no_retry(),
                **self._sentinel_auth(),
                **tls,
            },
            **self.options,
            **tls,
        )
        assert target.service_name is not None
        client: Redis = sentinel.master_for(
            target.service_name,
            db=target.db,
            max_connections=self.max_connections,
            **self._auth(),
        )
        return client

    async def check(self, client: Redis) -> None:
        sentinel = self._sentinel(client)
        name = self.target.service_name
        try:
            await sentinel.discover_master(str(name))
        except (redis_errors.ConnectionError, redis_errors.ResponseError):
            # (Older redis-py lets a plain server's "unknown command" out.)
            answer = await self._first_mode(self._sentinel_auth())
            if answer is None:
                raise
            if answer[1] != "sentinel":
                raise self._wrong_kind(*answer) from None
            if not await self._monitored(sentinel):
                raise ConfigurationError(
                    "url",
                    redact_url(self.url),
                    f"no sentinel monitors a primary named {name!r}; check the"
                    " service name (redis+sentinel://host:26379/<name>/db)",
                ) from None
            raise

    async def _monitored(self, sentinel: Sentinel) -> bool:
        """Whether any reachable sentinel knows the service name."""
        for node in sentinel.sentinels:
            try:
                masters = await node.sentinel_masters()
            except redis_errors.RedisError:
                continue
            if self.target.service_name in masters:
                return True
        return False

    async def health(self, client: Redis) -> dict[str, Any]:
        sentinel = self._sentinel(client)
        pings = await asyncio.gather(
            *(_timed(node.ping()) for node in sentinel.sentinels),
            return_exceptions=True,
        )
        sentinels = []
        for node, result in zip(sentinel.sentinels, pings, strict=True):
            kwargs = node.connection_pool.connection_kwargs
            entry: dict[str, Any] = {
                "address": format_address(kwargs["host"], kwargs["port"]),
                "role": "sentinel",
                "latency_ms": None if isinstance(result, BaseException) else result,
            }
            if isinstance(result, BaseException):
                entry["error"] = describe_failure(result, self.target.secrets)
            sentinels.append(entry)
        host, port = await sentinel.discover_master(str(self.target.service_name))
        latency = await _timed(client.ping())
        primary = {
            "address": format_address(str(host), int(port)),
            "role": "primary",
            "latency_ms": latency,
        }
        return {
            "ok": True,
            "latency_ms": latency,
            "service_name": self.target.service_name,
            "nodes": [primary, *sentinels],
        }

    def in_use(self, client: Redis) -> int:
        return len(client.connection_pool._in_use_connections)

    async def close(self, client: Redis) -> None:
        sentinel = self._sentinel(client)
        await client.aclose()
        await sentinel.aclose()


_BACKENDS: dict[str, type[Backend]] = {
    "standalone": StandaloneBackend,
    "cluster": ClusterBackend,
    "sentinel": SentinelBackend,
}


def backend_for(
    target: RedisTarget,
    url: str,
    *,
    max_connections: int,
    pool_timeout: float,
    options: dict[str, Any],
) -> Backend:
    """Return the backend of *target*'s topology."""
    return _BACKENDS[target.topology](
        target,
        url,
        max_connections=max_connections,
        pool_timeout=pool_timeout,
        options=options,
    )


async def _timed(call: Any) -> float:
    """Await *call*; return how long it took, in ms."""
    start = time.perf_counter()
    await call
    return _ms(time.perf_counter() - start)


def _text(reply: Any) -> str:
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def _cluster_state(info: str) -> str:
    for line in info.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "cluster_state":
            return value
    return "unknown"


def _cluster_nodes(text: str) -> list[dict[str, Any]]:
    """Parse ``CLUSTER NODES`` into JSON-safe entries, primaries first."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1].split("@", 1)[0]
        flags = set(fields[2].split(","))
        if "fail" in flags:
            state = "fail"
        elif "fail?" in flags:
            state = "pfail"
        elif "handshake" in flags or "noaddr" in flags:
            state = "joining"
        else:
            state = "ok"
        slots = 0
        for spec in fields[8:]:
            if spec.startswith("["):
                continue  # a slot being migrated
            low, _, high = spec.partition("-")
            slots += int(high or low) - int(low) + 1
        entry: dict[str, Any] = {
            "address": address,
            "role": "primary" if "master" in flags else "replica",
            "state": state,
            "link": fields[7],
        }
        if entry["role"] == "primary":
            entry["slots"] = slots
        entries.append(entry)
    entries.sort(key=lambda e: (e["role"] != "primary", e["address"]))
    return entries
