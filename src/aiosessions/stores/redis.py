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
from collections.abc import Awaitable, Callable, Collection, Mapping
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
from .base import META_PREFIX, SessionRecord, Store

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["RedisStore", "redact_url"]

T = TypeVar("T")
_SCHEMES = ("redis", "rediss")


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
            except (
                redis_errors.AuthenticationError,
                redis_errors.AuthenticationWrongNumberOfArgsError,
            ) as exc:
                # A ConnectionError to redis-py, but retrying cannot help.
                raise ProviderError(
                    "Redis refused the credentials; check the user and password"
                    " in the URL",
                    store=redact_url(self.url),
                    operation=operation,
                ) from exc
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
        left: int = await self._script("EXTEND", key, [add_ms], idempotent=False)
        return None if left == -2 else left

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
