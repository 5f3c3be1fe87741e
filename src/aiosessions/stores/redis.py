"""A store on Redis, through ``redis.asyncio``: one server, Cluster or Sentinel.

The URL picks the topology (see :mod:`.redis_urls`). One client per event
loop: objects built at import time work under several ``asyncio.run`` calls
and in threads that run loops of their own. At most ``max_connections``
operations of a loop run at once; a burst beyond that waits its turn (up to
``pool_timeout`` seconds) instead of failing, on every topology (redis-py's
Cluster client would raise instead of waiting).

Operations safe to repeat are retried on connection errors, with exponential
backoff and full jitter. Counters, extensions and creations are retried only
on errors that prove the command did not run (``CLUSTERDOWN``, ``TRYAGAIN``,
``LOADING``, ``READONLY``, no primary known to Sentinel...): a lost reply
must not count twice. When the budget is spent the caller gets
:class:`~aiosessions.errors.BackendUnavailableError`; the next call tries
again, so the store recovers by itself when Redis comes back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import ssl
import sys
import threading
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

try:
    from redis import exceptions as redis_errors
    from redis.asyncio.sentinel import MasterNotFoundError
except ImportError as exc:
    from ..errors import MissingDependencyError

    raise MissingDependencyError("RedisStore", "redis-py", "redis") from exc

from .._log import logger
from ..errors import (
    BackendUnavailableError,
    ConfigurationError,
    InvalidMetadataError,
    ProviderError,
)
from ..keys import glob_escape
from . import redis_scripts
from .base import MAX_TTL_MS, META_PREFIX, IndexState, SessionRecord, Store
from .redis_clients import (
    Backend,
    LuaScript,
    backend_for,
    describe_failure,
    no_retry,
)
from .redis_urls import parse_redis_url, redact_url

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["RedisStore", "redact_url"]

T = TypeVar("T")
_PIPELINE_CHUNK = 500  # commands sent per pipelined round trip
_CLUSTER_FANOUT = 32  # single-key calls in flight at once, per bulk call, on Cluster


def _error_classes(*names: str) -> tuple[type[BaseException], ...]:
    """The redis-py exceptions of these names that this redis-py version has."""
    found = (getattr(redis_errors, name, None) for name in names)
    return tuple(
        cls for cls in found if isinstance(cls, type) and issubclass(cls, BaseException)
    )


# Errors that prove the command never ran: safe to retry for any operation.
_NOT_RUN: tuple[type[BaseException], ...] = (
    MasterNotFoundError,  # Sentinel names no primary, yet
    # Raised by the Cluster client before sending: no node serves the slot,
    # none can be reached, no topology yet...
    redis_errors.RedisClusterException,
    *_error_classes(
        "BusyLoadingError",  # LOADING: the server is reading its data
        "ClusterError",  # CLUSTERDOWN, MASTERDOWN, redirects exhausted
        "TryAgainError",  # TRYAGAIN: a slot is being moved
        "AskError",  # MOVED/ASK that escaped redis-py's redirects
        "ReadOnlyError",  # a write reached a replica after a failover
        "MaxConnectionsError",  # no connection was taken (newer redis-py)
        "MaxClientsReachedError",  # refused at connect (newer redis-py)
    ),
)
# Errors after which the command may or may not have run.
_MAYBE_RUN = (redis_errors.ConnectionError, redis_errors.TimeoutError)

Failure = Literal["retry", "retry-if-idempotent", "credentials", "tls", "refused"]


def _classify(exc: BaseException) -> Failure:
    if isinstance(
        exc,
        (
            redis_errors.AuthenticationError,
            redis_errors.AuthenticationWrongNumberOfArgsError,
        ),
    ):
        return "credentials"
    if _tls_verification_failed(exc):
        return "tls"
    if isinstance(exc, _NOT_RUN):
        return "retry"
    if isinstance(exc, _MAYBE_RUN):
        return "retry-if-idempotent"
    return "refused"


def _tls_verification_failed(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):  # a bounded walk down the cause chain
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass
class _Bound:
    """The client of one event loop, its scripts and its concurrency limit."""

    client: Any  # redis.asyncio.Redis or redis.asyncio.cluster.RedisCluster
    scripts: dict[str, LuaScript]
    limiter: asyncio.Semaphore
    checked: bool = False
    check_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RedisStore(Store):
    """Sessions and values in Redis: one server, Cluster or Sentinel.

    Args:
        url: where Redis is; the form picks the topology::

                redis://[[user]:password@]host[:port][/db]
                rediss://...                          (TLS)
                unix://[[user]:password@]/path/to/redis.sock[?db=N]
                redis://h1:p1,h2:p2,h3:p3             (Cluster)
                redis+cluster://host:port             (Cluster, one seed)
                redis+sentinel://[[user]:password@]s1:p1,s2:p2/service[/db]

            See :mod:`aiosessions.stores.redis_urls` for TLS and Sentinel
            options in the query.
        max_connections: operations run at once, per event loop; more wait.
        pool_timeout: seconds an operation waits for its turn before
            :class:`BackendUnavailableError`.
        socket_timeout: seconds a command (or a connect) may take.
        retries: extra attempts for an operation, when it may be repeated.
        retry_backoff: base of the exponential backoff, in seconds.
        tls_insecure: skip certificate checks (development only; logged).
        tls_ca_file: CA bundle that signs the servers' certificates.
        tls_cert_file: client certificate, for servers that ask for one.
        tls_key_file: the client certificate's private key.
        client_name: shown by ``CLIENT LIST`` on every connection, so
            operators can tell the library's connections apart.
        **connection_options: passed to redis-py's connections.

    Raises:
        ConfigurationError: the URL or a setting is unusable. A URL whose
            form does not match the servers (a single-server URL naming a
            Cluster node, say) is refused on first use, with the form to use.
    """

    provider = "redis"

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 64,
        pool_timeout: float = 30.0,
        socket_timeout: float = 5.0,
        retries: int = 3,
        retry_backoff: float = 0.05,
        tls_insecure: bool = False,
        tls_ca_file: str | None = None,
        tls_cert_file: str | None = None,
        tls_key_file: str | None = None,
        client_name: str | None = "aiosessions",
        **connection_options: Any,
    ) -> None:
        target = parse_redis_url(url)
        if max_connections < 1:
            raise ConfigurationError("max_connections", max_connections, "must be >= 1")
        if retries < 0:
            raise ConfigurationError("retries", retries, "must be >= 0")
        if pool_timeout <= 0:
            raise ConfigurationError("pool_timeout", pool_timeout, "must be > 0")
        files = (tls_ca_file, tls_cert_file, tls_key_file)
        if any(files) and not target.tls:
            raise ConfigurationError(
                "url", redact_url(url), "TLS files were given: use a rediss:// URL"
            )
        if target.tls:
            # Arguments win over the URL's query options.
            target = dataclasses.replace(
                target,
                ssl_ca_certs=tls_ca_file or target.ssl_ca_certs,
                ssl_certfile=tls_cert_file or target.ssl_certfile,
                ssl_keyfile=tls_key_file or target.ssl_keyfile,
            )
            if tls_insecure:
                logger.warning(
                    "TLS certificate checks are OFF for %s (development only)",
                    redact_url(url),
                )
                target = dataclasses.replace(
                    target, ssl_cert_reqs="none", ssl_check_hostname=False
                )
        self.url = url
        self.target = target
        self.max_connections = max_connections
        self.retries = retries
        self.retry_backoff = retry_backoff
        self._pool_timeout = pool_timeout
        options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_timeout,
            "decode_responses": True,
            # Retrying is ours to decide (see the module docstring).
            "retry": no_retry(),
            "client_name": client_name,
        }
        options.update(connection_options)
        self._backend: Backend = backend_for(
            target,
            url,
            max_connections=max_connections,
            pool_timeout=pool_timeout,
            options=options,
        )
        # Keyed by the loop itself, not weakly: a client holds its loop through
        # its sockets, so a weak key would never die. Entries of closed loops
        # are dropped whenever another loop binds, which lets their sockets go.
        self._bound: dict[asyncio.AbstractEventLoop, _Bound] = {}
        self._lock = threading.Lock()
        self._down_since: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisStore:
        """Build the store that *settings* describe."""
        return cls(settings.redis_url, tls_insecure=settings.redis_tls_insecure)

    @property
    def topology(self) -> str:
        """``standalone``, ``cluster`` or ``sentinel``."""
        return self.target.topology

    def __repr__(self) -> str:
        return f"RedisStore({redact_url(self.url)!r})"

    def describe(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "topology": self.topology,
            "url": redact_url(self.url),
            "max_connections": self.max_connections,
        }

    # -- connections ------------------------------------------------------

    def _bind(self) -> _Bound:
        loop = asyncio.get_running_loop()
        bound = self._bound.get(loop)
        if bound is None:
            with self._lock:
                bound = self._bound.get(loop)
                if bound is None:
                    self._forget_closed_loops()
                    bound = self._bound[loop] = self._connect()
        return bound

    def _forget_closed_loops(self) -> None:
        """Drop the clients of loops that have closed (call with the lock)."""
        for stale in [loop for loop in self._bound if loop.is_closed()]:
            del self._bound[stale]

    def _connect(self) -> _Bound:
        client = self._backend.connect()
        scripts = {
            name: LuaScript(client, getattr(redis_scripts, name))
            for name in redis_scripts.__all__
        }
        logger.debug(
            "redis %s client opened for %s", self.topology, redact_url(self.url)
        )
        return _Bound(client, scripts, asyncio.Semaphore(self.max_connections))

    async def _acquire(self, bound: _Bound, operation: str) -> None:
        """Wait for a turn among ``max_connections``, up to ``pool_timeout``."""
        limiter = bound.limiter
        if not limiter.locked():
            await limiter.acquire()
            return
        try:
            if sys.version_info >= (3, 11):
                async with asyncio.timeout(self._pool_timeout):
                    await limiter.acquire()
            else:  # pragma: no cover - exercised on Python 3.10 only
                await asyncio.wait_for(limiter.acquire(), self._pool_timeout)
        except asyncio.TimeoutError:  # TimeoutError itself from 3.11 on
            raise BackendUnavailableError(
                f"no free Redis connection within {self._pool_timeout} s"
                f" (max_connections={self.max_connections}); raise"
                " max_connections or pool_timeout, or shed load",
                store=redact_url(self.url),
                operation=operation,
            ) from None

    async def _check(self, bound: _Bound) -> None:
        async with bound.check_lock:
            if not bound.checked:
                await self._backend.check(bound.client)
                bound.checked = True

    def _failed(self, operation: str, exc: BaseException, attempt: int) -> Exception:
        """Return the library error that ends an operation failing with *exc*."""
        store = redact_url(self.url)
        detail = describe_failure(exc, self.target.secrets)
        kind = _classify(exc)
        if kind == "credentials":
            where = "user and password in the URL"
            if self.topology == "sentinel":
                where += " (data servers) and ?sentinel_password= (sentinels)"
            return ProviderError(
                f"Redis refused the credentials; check the {where}",
                store=store,
                operation=operation,
            )
        if kind == "tls":
            return ProviderError(
                f"TLS certificate verification failed ({detail}); give the CA"
                " that signed the server's certificate (tls_ca_file or"
                " ?ssl_ca_certs=), or set REDIS_TLS_INSECURE=1 in development",
                store=store,
                operation=operation,
            )
        if kind == "refused":
            return ProviderError(
                f"Redis refused the command: {detail}",
                store=store,
                operation=operation,
            )
        # One warning per outage; the failures after it would flood the log.
        log = logger.debug
        if self._down_since is None:
            self._down_since = time.monotonic()
            log = logger.warning
        log(
            "redis %s failed after %d attempt(s) on %s: %s",
            operation,
            attempt,
            store,
            detail,
        )
        return BackendUnavailableError(
            f"Redis unreachable ({detail})",
            store=store,
            operation=operation,
            attempts=attempt,
        )

    async def _run(
        self,
        operation: str,
        call: Callable[[_Bound], Awaitable[T]],
        *,
        idempotent: bool = True,
        retries: int | None = None,
    ) -> T:
        budget = self.retries if retries is None else retries
        bound = self._bind()
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._acquire(bound, operation)
                try:
                    if not bound.checked:
                        await self._check(bound)
                    result = await call(bound)
                finally:
                    bound.limiter.release()
            except (redis_errors.RedisError, redis_errors.RedisClusterException) as exc:
                kind = _classify(exc)
                repeat = kind == "retry" or (
                    kind == "retry-if-idempotent" and idempotent
                )
                if not repeat or attempt > budget:
                    raise self._failed(operation, exc, attempt) from exc
                delay = self.retry_backoff * 2 ** (attempt - 1)
                logger.debug(
                    "redis %s attempt %d failed (%s); retrying",
                    operation,
                    attempt,
                    type(exc).__name__,
                )
                await asyncio.sleep(random.uniform(0, delay))  # noqa: S311
            else:
                if self._down_since is not None:
                    down, self._down_since = self._down_since, None
                    logger.info(
                        "redis reachable again on %s after %.1f s",
                        redact_url(self.url),
                        time.monotonic() - down,
                    )
                return result

    # -- key-value --------------------------------------------------------

    async def get(self, key: str) -> str | None:
        result = await self._run("get", lambda b: b.client.get(key))
        return None if result is None else str(result)

    async def set(self, key: str, value: str, ttl_ms: int | None = None) -> None:
        await self._run("set", lambda b: b.client.set(key, value, px=ttl_ms))

    async def delete(self, key: str) -> bool:
        # Retried like the reads: a delete must happen even through a blip.
        # If a reply was lost, the retry finds the key gone and says False.
        removed: int = await self._run("delete", lambda b: b.client.delete(key))
        return removed == 1

    async def exists(self, key: str) -> bool:
        found: int = await self._run("exists", lambda b: b.client.exists(key))
        return found == 1

    async def pttl(self, key: str) -> int | None:
        ttl: int = await self._run("pttl", lambda b: b.client.pttl(key))
        return None if ttl == -2 else ttl

    async def pexpire(self, key: str, ttl_ms: int) -> bool:
        done = await self._run("pexpire", lambda b: b.client.pexpire(key, ttl_ms))
        return bool(done)

    # -- session records --------------------------------------------------

    async def _script(
        self, name: str, key: str, args: list[Any], *, idempotent: bool = True
    ) -> Any:
        return await self._run(
            name.lower(),
            lambda b: b.scripts[name](keys=[key], args=args),
            idempotent=idempotent,
        )

    async def session_create(
        self,
        key: str,
        fields: Mapping[str, str],
        lifetime_ms: int,
        idle_ms: int | None,
        cap_ms: int | None,
    ) -> bool:
        args: list[Any] = [lifetime_ms, idle_ms or "", cap_ms or ""]
        for name, value in fields.items():
            args += (name, value)
        created = await self._script("CREATE", key, args, idempotent=False)
        return bool(created)

    async def session_touch(
        self,
        key: str,
        refresh_ms: int | None = None,
        user_id: str | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> bool:
        args: list[Any] = [refresh_ms or "", "" if user_id is None else "=" + user_id]
        for name, value in (fields or {}).items():
            args += (name, value)
        live = await self._script("TOUCH", key, args)
        return bool(live)

    async def session_read(self, key: str) -> SessionRecord | None:
        reply = await self._script("READ", key, [])
        if not reply:
            return None
        now_ms, ttl_ms, flat = reply
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        return SessionRecord(fields=fields, ttl_ms=max(0, ttl_ms), now_ms=now_ms)

    async def session_update(
        self,
        key: str,
        fields: Mapping[str, str],
        replace: bool,
        remove: Collection[str] = (),
    ) -> bool:
        args: list[Any] = ["1" if replace else "0", len(remove), *remove]
        for name, value in fields.items():
            args += (name, value)
        done = await self._script("UPDATE", key, args)
        return bool(done)

    async def session_incr(self, key: str, field: str, amount: int) -> int | None:
        reply = await self._script("INCR", key, [field, amount], idempotent=False)
        if reply[0] == 0:
            return None
        if reply[0] == 2:
            reason = (
                "increment would leave the signed 64-bit range"
                if "overflow" in str(reply[1])
                else "does not hold an integer"
            )
            raise InvalidMetadataError(
                "metadata key", field[len(META_PREFIX) :], reason
            )
        return int(reply[1])

    async def session_extend(self, key: str, add_ms: int) -> int | None:
        left: int = await self._script(
            "EXTEND", key, [add_ms, MAX_TTL_MS], idempotent=False
        )
        return None if left == -2 else left

    # -- record lifecycle: validation, rotation, bulk work -----------------

    async def _script_many(
        self, name: str, keys: Sequence[str], args: list[Any]
    ) -> list[Any]:
        """Run script *name* once per key, in bounded chunks.

        One server or Sentinel: one pipeline per chunk. Cluster: one call
        per key, a chunk at a time, each taking its turn among
        ``max_connections`` (redis-py before 8.2 refuses EVALSHA in Cluster
        pipelines, and the Cluster client fails rather than waits when its
        pools run dry).
        """
        results: list[Any] = []
        if self.topology == "cluster":
            for start in range(0, len(keys), _CLUSTER_FANOUT):
                chunk = keys[start : start + _CLUSTER_FANOUT]
                results += await asyncio.gather(
                    *(self._script(name, key, args) for key in chunk)
                )
            return results
        for start in range(0, len(keys), _PIPELINE_CHUNK):
            chunk = keys[start : start + _PIPELINE_CHUNK]

            async def run(bound: _Bound, chunk: Sequence[str] = chunk) -> list[Any]:
                return await _pipelined(bound, name, chunk, args)

            results += await self._run(name.lower(), run)
        return results

    async def session_validate(self, key: str) -> SessionRecord | None:
        return _record(await self._script("VALIDATE", key, []))

    async def session_retire(self, key: str, grace_ms: int) -> SessionRecord | None:
        reply = await self._script("RETIRE", key, [grace_ms], idempotent=False)
        return _record(reply)

    async def session_clone(self, key: str, fields: Mapping[str, str]) -> bool:
        args: list[Any] = []
        for name, value in fields.items():
            args += (name, value)
        created = await self._script("CLONE", key, args, idempotent=False)
        return bool(created)

    async def session_pop(self, key: str) -> SessionRecord | None:
        return _record(await self._script("POP", key, [], idempotent=False))

    async def session_read_many(
        self, keys: Sequence[str]
    ) -> list[SessionRecord | None]:
        return [_record(reply) for reply in await self._script_many("READ", keys, [])]

    async def session_delete_owned(
        self, keys: Sequence[str], user_id: str
    ) -> list[bool | None]:
        replies = await self._script_many("DELETE_OWNED", keys, [user_id])
        return [None if reply == -1 else reply == 1 for reply in replies]

    # -- user indexes -----------------------------------------------------

    async def _index_script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self._run(
            name.lower(), lambda b: b.scripts[name](keys=keys, args=args)
        )

    async def index_read(
        self, key: str, *, due_only: bool = False, limit: int = 0
    ) -> IndexState:
        now_ms, size, flat = await self._index_script(
            "INDEX_READ", [key], ["1" if due_only else "0", limit]
        )
        return IndexState(now_ms=now_ms, size=size, members=_pairs(flat))

    async def index_update(
        self,
        key: str,
        *,
        add: Mapping[str, int] | None = None,
        recheck: Mapping[str, int] | None = None,
        recheck_due: Mapping[str, int] | None = None,
        discard: Collection[str] = (),
        keep_ms: int = 0,
        grow_ms: int = 0,
        list_limit: int = 0,
        due_only: bool = True,
        marks_key: str | None = None,
        check: Collection[str] = (),
    ) -> IndexState:
        maps = [add or {}, recheck or {}, recheck_due or {}]
        args: list[Any] = [keep_ms, grow_ms, list_limit, "1" if due_only else "0"]
        args += [len(m) for m in maps] + [len(discard), len(check)]
        for mapping in maps:
            for member, ms in mapping.items():
                args += (member, ms)
        args += [*discard, *check]
        keys = [key] if marks_key is None else [key, marks_key]
        now_ms, size, listed, removed, absent, marked = await self._index_script(
            "INDEX_UPDATE", keys, args
        )
        return IndexState(
            now_ms=now_ms,
            size=size,
            members=_pairs(listed),
            removed=list(removed),
            absent=list(absent),
            marked=list(marked),
        )

    async def index_mark(
        self,
        key: str,
        marks_key: str,
        hold_ms: int,
        *,
        members: Collection[str] | None = None,
        keep: str | None = None,
    ) -> IndexState:
        args: list[Any] = [hold_ms, "1" if members is None else "0", keep or ""]
        args += members or ()
        now_ms, size, flat = await self._index_script(
            "INDEX_MARK", [key, marks_key], args
        )
        listed = sorted(_pairs(flat), key=lambda pair: (pair[1], pair[0]))
        return IndexState(now_ms=now_ms, size=size, members=listed)

    async def iter_keys(
        self, prefix: str, batch_size: int = 500
    ) -> AsyncIterator[list[str]]:
        """Walk the keys with SCAN, one page per step (on Cluster, per primary)."""
        pattern = f"{glob_escape(prefix)}*"

        async def targets(bound: _Bound) -> list[str | None]:
            if self.topology != "cluster":
                return [None]
            return [node.name for node in bound.client.get_primaries()]

        for node in await self._run("scan", targets):
            cursor = 0
            while True:

                async def page(
                    bound: _Bound, cursor: int = cursor, node: str | None = node
                ) -> tuple[int, list[str]]:
                    return await _scan_page(
                        bound.client, node, cursor, pattern, batch_size
                    )

                cursor, found = await self._run("scan", page)
                for start in range(0, len(found), batch_size):
                    yield list(found[start : start + batch_size])
                if cursor == 0:
                    break

    # -- housekeeping -----------------------------------------------------

    async def count(self, prefix: str) -> int:
        """Return how many live keys start with *prefix*, on every primary."""
        pattern = f"{glob_escape(prefix)}*"
        return await self._run(
            "count", lambda b: self._backend.count(b.client, pattern)
        )

    async def cleanup(self) -> int:
        """Redis expires keys itself; there is nothing to reclaim here."""
        return 0

    async def ping(self) -> float:
        async def timed(bound: _Bound) -> float:
            start = time.perf_counter()
            await bound.client.ping()
            return time.perf_counter() - start

        return await self._run("ping", timed)

    async def health(self) -> dict[str, Any]:
        """Report on Redis, without raising when it is down.

        One attempt, no retries. Returns :meth:`describe` plus ``ok``,
        ``latency_ms`` (the slowest primary's PING, in ms, or ``None``),
        ``error`` (``None`` or what failed, without secrets), ``pool``
        (``max_connections`` and ``in_use``, for this event loop) and
        ``nodes``: each with ``address``, ``role`` and ``latency_ms``; on
        Cluster also ``state``, ``link`` and ``slots``, plus
        ``cluster_state``; on Sentinel the primary it names now and every
        sentinel. Everything is JSON-safe.
        """
        report = self.describe()
        try:
            details = await self._run(
                "health", lambda b: self._backend.health(b.client), retries=0
            )
        except (ProviderError, ConfigurationError) as exc:
            details = {"ok": False, "latency_ms": None, "error": str(exc)}
        report.update(details)
        report.setdefault("error", None)
        bound = self._bind()
        report["pool"] = {
            "max_connections": self.max_connections,
            "in_use": self._backend.in_use(bound.client),
        }
        return report

    async def aclose(self) -> None:
        """Close this loop's client and forget those of closed loops.

        Clients of loops still running in other threads stay: only their
        own loop can close them.
        """
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            bound = self._bound.pop(loop, None) if loop is not None else None
            self._forget_closed_loops()
        if bound is not None:
            await self._backend.close(bound.client)


async def _pipelined(
    bound: _Bound, name: str, keys: Sequence[str], args: list[Any]
) -> list[Any]:
    """Run script *name* once per key in one pipeline; return the replies.

    Each key's call goes by EVALSHA; a server that lacks the script answers
    NOSCRIPT for those calls only (they did not run), and they go again in
    full by EVAL, which caches the script there.
    """
    script = bound.scripts[name]
    pipe = bound.client.pipeline(transaction=False)
    for key in keys:
        pipe.evalsha(script.sha, 1, key, *args)
    replies: list[Any] = await pipe.execute(raise_on_error=False)
    missing = [
        i
        for i, reply in enumerate(replies)
        if isinstance(reply, redis_errors.NoScriptError)
    ]
    if missing:
        pipe = bound.client.pipeline(transaction=False)
        for i in missing:
            pipe.eval(script.text, 1, keys[i], *args)
        again = await pipe.execute(raise_on_error=False)
        for i, reply in zip(missing, again, strict=True):
            replies[i] = reply
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


async def _scan_page(
    client: Any, node: str | None, cursor: int, pattern: str, count: int
) -> tuple[int, list[str]]:
    """One SCAN page: of the server, or of Cluster primary *node*."""
    if node is None:
        next_cursor, found = await client.scan(cursor, match=pattern, count=count)
        return int(next_cursor), list(found)
    target = client.get_node(node_name=node)
    if target is None:  # the node left the cluster during the walk
        logger.debug("scan: cluster node %s is gone; its keys moved", node)
        return 0, []
    cursors, found = await client.scan(
        cursor=cursor, match=pattern, count=count, target_nodes=target
    )
    return int(cursors[node]), list(found)


def _record(reply: Any) -> SessionRecord | None:
    """Turn a ``{now, ttl, flat fields}`` script reply into a record."""
    if not reply:
        return None
    now_ms, ttl_ms, flat = reply
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    return SessionRecord(fields=fields, ttl_ms=max(0, ttl_ms), now_ms=now_ms)


def _pairs(flat: list[Any]) -> list[tuple[str, int]]:
    """Turn ``member, score, ...`` (scores as Redis prints them) into pairs."""
    return [
        (str(member), int(float(score)))
        for member, score in zip(flat[::2], flat[1::2], strict=True)
    ]
