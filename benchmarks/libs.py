"""The libraries under test, behind one small interface.

Each adapter fills in the calls a web app makes as plain callables that
return awaitables (bound methods where the library allows), so the timing
loop adds the same overhead to every library. Three adapters:

* ``aiosessions``: this package: a ``KeyValueSession`` and two
  ``SessionManager`` objects on one store.
* ``chuk-sessions``: the published peer, used as its README shows:
  ``factory()`` contexts and its ``SessionManager``.
* ``floor``: the least work that does the job. In memory, a bare coroutine
  around a dict of ``(value, deadline)`` pairs; on Redis, one bare redis-py
  command per call on one client (``GET`` to validate, ``SET EX`` to
  allocate, ``INCR`` to count, ``DEL`` to delete).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["LIBS", "Lib", "make_lib"]

LIBS = ("aiosessions", "chuk-sessions", "floor")
SANDBOX = "bench"
TTL_HOURS = 1
POOL_SIZE = 64  # connections: aiosessions' default

Call = Callable[..., Awaitable[Any]]


class Lib:
    """One library on one backend (``memory`` or ``redis``).

    :meth:`open` sets every call below; ``increment`` stays ``None`` for a
    library without an atomic counter.
    """

    name = ""
    kv_setex: Call  # (key, ttl seconds, value)
    kv_get: Call  # (key)
    kv_delete: Call  # (key)
    allocate: Call  # (user_id, metadata) -> session id
    validate: Call  # (session id), through a second manager: nothing cached
    get_info: Call  # (session id)
    update: Call  # (session id, data): a merge
    increment: Call | None = None  # (session id, field)
    delete: Call  # (session id)

    def __init__(self, backend: str, url: str | None) -> None:
        self.backend = backend
        self.url = url

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Release what :meth:`open` built."""

    def version(self) -> str:
        raise NotImplementedError

    def store_key(self, session_id: str) -> str:
        """The Redis key that holds *session_id*."""
        raise NotImplementedError


class Ours(Lib):
    name = "aiosessions"

    async def open(self) -> None:
        from aiosessions import KeyValueSession, MemoryStore, SessionManager, Store

        self.store: Store
        if self.backend == "memory":
            self.store = MemoryStore()
        else:
            from aiosessions import RedisStore

            assert self.url is not None
            self.store = RedisStore(self.url)
            await self.store.ping()
        kv = KeyValueSession(self.store)
        self.first = SessionManager(SANDBOX, TTL_HOURS, store=self.store)
        second = SessionManager(SANDBOX, TTL_HOURS, store=self.store)
        allocate = self.first.allocate_session

        self.kv_setex = kv.setex
        self.kv_get = kv.get
        self.kv_delete = kv.delete
        self.allocate = lambda u, m: allocate(user_id=u, custom_metadata=m)
        self.validate = second.validate_session
        self.get_info = second.get_session_info
        self.update = second.update_session_metadata
        self.increment = second.increment_metadata
        self.delete = second.delete_session

    async def close(self) -> None:
        await self.store.aclose()

    def version(self) -> str:
        import aiosessions

        return aiosessions.__version__

    def store_key(self, session_id: str) -> str:
        return self.first.keys.session(session_id)


class Chuk(Lib):
    name = "chuk-sessions"

    async def open(self) -> None:
        try:
            from chuk_sessions import SessionManager
            from chuk_sessions.providers import memory, redis
        except ImportError as exc:
            raise SystemExit(
                "chuk-sessions is not installed: pip install -e '.[bench]'"
            ) from exc

        # Its errors are counted by the timing loop; logged, they would
        # bury the progress bars.
        logging.getLogger("chuk_sessions").setLevel(logging.CRITICAL)
        if self.backend == "memory":
            factory = memory.factory()
        else:
            factory = redis.factory(self.url)
        # The key-value context stays open for the whole run, the fastest
        # way to use it; the managers open a context per call, by design.
        self._context = factory()
        kv = await self._context.__aenter__()
        first = SessionManager(SANDBOX, factory, default_ttl_hours=TTL_HOURS)
        second = SessionManager(SANDBOX, factory, default_ttl_hours=TTL_HOURS)

        self.kv_setex = kv.setex
        self.kv_get = kv.get
        self.kv_delete = kv.delete
        self.allocate = lambda u, m: first.allocate_session(
            user_id=u, custom_metadata=m
        )
        self.validate = second.validate_session
        self.get_info = second.get_session_info
        self.update = second.update_session_metadata
        self.delete = second.delete_session

    async def close(self) -> None:
        await self._context.__aexit__(None, None, None)

    def version(self) -> str:
        from importlib.metadata import version

        return version("chuk-sessions")

    def store_key(self, session_id: str) -> str:
        return f"session:{session_id}"


class Floor(Lib):
    """The least work that does the job: no checks, ids from a counter."""

    name = "floor"

    async def open(self) -> None:
        self._ids = (f"s{n}" for n in itertools.count())
        if self.backend == "memory":
            self._open_memory()
        else:
            await self._open_redis()

    def _open_memory(self) -> None:
        data: dict[str, tuple[Any, float]] = {}
        monotonic = time.monotonic
        ids = self._ids
        lifetime = TTL_HOURS * 3600

        async def get(key: str) -> Any:
            entry = data.get(key)
            if entry is None or entry[1] <= monotonic():
                return None
            return entry[0]

        async def setex(key: str, ttl: float, value: Any) -> None:
            data[key] = (value, monotonic() + ttl)

        async def delete(key: str) -> bool:
            return data.pop(key, None) is not None

        async def allocate(user_id: str, metadata: dict[str, Any]) -> str:
            session_id = next(ids)
            data[session_id] = ({"u": user_id, **metadata}, monotonic() + lifetime)
            return session_id

        async def update(session_id: str, fields: dict[str, Any]) -> bool:
            entry = data.get(session_id)
            if entry is None:
                return False
            entry[0].update(fields)
            return True

        async def increment(session_id: str, field: str) -> int:
            record = data[session_id][0]
            count: int = record.get(field, 0) + 1
            record[field] = count
            return count

        self.data = data
        self.kv_get = self.validate = self.get_info = get
        self.kv_setex = setex
        self.kv_delete = self.delete = delete
        self.allocate = allocate
        self.update = update
        self.increment = increment

    async def _open_redis(self) -> None:
        import redis.asyncio

        assert self.url is not None
        # redis-py's default pool (100 connections) raises "Too many
        # connections" under 1000 tasks; a blocking pool of the size
        # aiosessions uses (64) makes them wait instead, and was the faster.
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            self.url, max_connections=POOL_SIZE, decode_responses=True
        )
        client = self.client = redis.asyncio.Redis(connection_pool=pool)
        await client.ping()
        ids = self._ids
        lifetime = TTL_HOURS * 3600

        async def allocate(user_id: str, metadata: dict[str, Any]) -> str:
            session_id = next(ids)
            value = json.dumps({"u": user_id, **metadata}, separators=(",", ":"))
            await client.set(session_id, value, ex=lifetime)
            return session_id

        def update(session_id: str, fields: dict[str, Any]) -> Awaitable[Any]:
            value = json.dumps(fields, separators=(",", ":"))
            return client.set(session_id, value, xx=True, keepttl=True)

        self.kv_get = self.validate = self.get_info = client.get
        self.kv_setex = client.setex
        self.kv_delete = self.delete = client.delete
        self.allocate = allocate
        self.update = update
        self.increment = lambda session_id, field: client.incr(f"{session_id}:{field}")

    async def close(self) -> None:
        if self.backend == "redis":
            await self.client.aclose()

    def version(self) -> str:
        if self.backend == "memory":
            return "dict"
        from importlib.metadata import version

        return f"redis-py {version('redis')}"

    def store_key(self, session_id: str) -> str:
        return session_id


def make_lib(name: str, backend: str, url: str | None) -> Lib:
    """Return the adapter called *name* (one of :data:`LIBS`)."""
    classes: dict[str, type[Lib]] = {cls.name: cls for cls in (Ours, Chuk, Floor)}
    return classes[name](backend, url)
