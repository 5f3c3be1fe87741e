"""A store on Redis, through ``redis.asyncio``.

One client, with one bounded connection pool, per event loop: objects built
at import time work under several ``asyncio.run`` calls and in threads that
run loops of their own. A burst of calls larger than the pool waits for a
free connection (up to ``pool_timeout`` seconds) instead of failing.

Reads and writes that are safe to repeat are retried on connection errors,
with exponential backoff and full jitter; when the budget is spent the
caller gets :class:`~aiosessions.errors.BackendUnavailableError`. Counters
and extensions are not retried: a lost reply must not count twice.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import weakref
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

try:
    from redis import exceptions as redis_errors
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.commands.core import AsyncScript
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "RedisStore needs redis-py: pip install 'aiosessions[redis]'"
    ) from exc

from .._log import logger
from ..errors import (
    BackendUnavailableError,
    ConfigurationError,
    InvalidMetadataError,
    ProviderError,
)
from ..keys import glob_escape
from . import redis_scripts
from .base import META_PREFIX, IndexState, SessionRecord, Store

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["RedisStore", "redact_url"]

T = TypeVar("T")
_SCHEMES = ("redis", "rediss")
_PIPELINE_CHUNK = 500  # commands sent per pipelined round trip


def redact_url(url: str) -> str:
    """Return *url* with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass
class _Bound:
    """The client and scripts of one event loop."""

    client: Redis
    scripts: dict[str, AsyncScript]


class RedisStore(Store):
    """Sessions and values in Redis.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]`` or ``rediss://``
            for TLS (certificates verified unless *tls_insecure*).
        max_connections: pool size, per event loop.
        pool_timeout: seconds a call waits for a free connection.
        socket_timeout: seconds a command may take before it fails.
        retries: extra attempts for operations safe to repeat.
        retry_backoff: base of the exponential backoff, in seconds.
        tls_insecure: skip certificate checks (development only).
        tls_ca_file: CA bundle that signs the server's certificate.
        client_name: shown by ``CLIENT LIST``, so operators can tell the
            library's connections apart.
        **connection_options: passed to redis-py's connection pool.
    """

    provider = "redis"

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 64,
        pool_timeout: float = 10.0,
        socket_timeout: float = 5.0,
        retries: int = 3,
        retry_backoff: float = 0.05,
        tls_insecure: bool = False,
        tls_ca_file: str | None = None,
        client_name: str | None = "aiosessions",
        **connection_options: Any,
    ) -> None:
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in _SCHEMES:
            raise ConfigurationError(
                "url",
                redact_url(url),
                "expected redis://host:port/db or rediss://host:port/db",
            )
        if max_connections < 1:
            raise ConfigurationError("max_connections", max_connections, "must be >= 1")
        if retries < 0:
            raise ConfigurationError("retries", retries, "must be >= 0")
        self.url = url
        self.max_connections = max_connections
        self.retries = retries
        self.retry_backoff = retry_backoff
        options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_timeout,
            "decode_responses": True,
            # Retrying is ours to decide: redis-py's own retry would repeat
            # counters and extensions whose reply was lost.
            "retry": Retry(NoBackoff(), 0),
            "client_name": client_name,
        }
        if scheme == "rediss":
            if tls_insecure:
                options["ssl_cert_reqs"] = "none"
                options["ssl_check_hostname"] = False
            if tls_ca_file is not None:
                options["ssl_ca_certs"] = tls_ca_file
        options.update(connection_options)
        self._options = options
        self._pool_timeout = pool_timeout
        self._bound: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Bound]
        self._bound = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisStore:
        """Build the store that *settings* describe."""
        return cls(settings.redis_url, tls_insecure=settings.redis_tls_insecure)

    def __repr__(self) -> str:
        return f"RedisStore({redact_url(self.url)!r})"

    def describe(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
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
                    bound = self._bound[loop] = self._connect()
        return bound

    def _connect(self) -> _Bound:
        pool = BlockingConnectionPool.from_url(
            self.url,
            max_connections=self.max_connections,
            timeout=self._pool_timeout,
            **self._options,
        )
        client = Redis(connection_pool=pool)
        scripts = {
            name: client.register_script(getattr(redis_scripts, name))
            for name in redis_scripts.__all__
        }
        logger.debug("redis pool opened for %s", redact_url(self.url))
        return _Bound(client, scripts)

    async def _run(
        self,
        operation: str,
        call: Callable[[_Bound], Awaitable[T]],
        *,
        idempotent: bool = True,
    ) -> T:
        attempts = 1 + (self.retries if idempotent else 0)
        bound = self._bind()
        for attempt in range(1, attempts + 1):
            try:
                return await call(bound)
            except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
                if attempt == attempts:
                    logger.warning(
                        "redis %s failed after %d attempts: %s",
                        operation,
                        attempt,
                        type(exc).__name__,
                    )
                    raise BackendUnavailableError(
                        f"Redis unreachable: {type(exc).__name__}",
                        store=redact_url(self.url),
                        operation=operation,
                        attempts=attempt,
                    ) from exc
                delay = self.retry_backoff * 2 ** (attempt - 1)
                await asyncio.sleep(random.uniform(0, delay))  # noqa: S311
            except redis_errors.RedisError as exc:
                raise ProviderError(
                    f"Redis refused the command: {exc}",
                    store=redact_url(self.url),
                    operation=operation,
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- key-value --------------------------------------------------------

    async def get(self, key: str) -> str | None:
        result = await self._run("get", lambda b: b.client.get(key))
        return None if result is None else str(result)

    async def set(self, key: str, value: str, ttl_ms: int | None = None) -> None:
        await self._run("set", lambda b: b.client.set(key, value, px=ttl_ms))

    async def delete(self, key: str) -> bool:
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
        self, key: str, refresh_ms: int | None = None, user_id: str | None = None
    ) -> bool:
        args = [refresh_ms or "", "" if user_id is None else "=" + user_id]
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
        self, key: str, fields: Mapping[str, str], replace: bool
    ) -> bool:
        args: list[Any] = ["1" if replace else "0"]
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
        left: int = await self._script("EXTEND", key, [add_ms], idempotent=False)
        return None if left == -2 else left

    # -- record lifecycle: validation, rotation, bulk work -----------------

    async def _script_many(
        self, name: str, keys: Sequence[str], args: list[Any]
    ) -> list[Any]:
        """Run script *name* once per key, pipelined, in bounded chunks."""
        results: list[Any] = []
        for start in range(0, len(keys), _PIPELINE_CHUNK):
            chunk = keys[start : start + _PIPELINE_CHUNK]

            async def run(bound: _Bound, chunk: Sequence[str] = chunk) -> list[Any]:
                # EVALSHA queued directly: a pipeline given Script objects
                # would ask SCRIPT EXISTS first, one more round trip per batch.
                script = bound.scripts[name]
                for attempt in (1, 2):
                    pipe = bound.client.pipeline(transaction=False)
                    for key in chunk:
                        pipe.evalsha(script.sha, 1, key, *args)
                    try:
                        replies: list[Any] = await pipe.execute()
                        return replies
                    except redis_errors.NoScriptError:
                        if attempt == 2:
                            raise
                        script.sha = await bound.client.script_load(script.script)
                raise AssertionError("unreachable")  # pragma: no cover

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
        pattern = f"{glob_escape(prefix)}*"
        cursor = 0
        while True:

            async def page(bound: _Bound, cursor: int = cursor) -> Any:
                return await bound.client.scan(cursor, match=pattern, count=batch_size)

            cursor, found = await self._run("scan", page)
            for start in range(0, len(found), batch_size):
                yield list(found[start : start + batch_size])
            if cursor == 0:
                return

    # -- housekeeping -----------------------------------------------------

    async def count(self, prefix: str) -> int:
        pattern = f"{glob_escape(prefix)}*"

        async def scan(bound: _Bound) -> int:
            total = 0
            async for _ in bound.client.scan_iter(match=pattern, count=1000):
                total += 1
            return total

        return await self._run("count", scan)

    async def cleanup(self) -> int:
        """Redis expires keys itself; there is nothing to reclaim here."""
        return 0

    async def ping(self) -> float:
        async def timed(bound: _Bound) -> float:
            start = time.perf_counter()
            await bound.client.ping()
            return time.perf_counter() - start

        return await self._run("ping", timed)

    async def aclose(self) -> None:
        """Close this loop's pool; clients of other loops are dropped."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            bound = self._bound.pop(loop, None) if loop is not None else None
            self._bound.clear()
        if bound is not None:
            await bound.client.aclose()
            await bound.client.connection_pool.disconnect()


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
