"""A key-value facade over the shared store: ``get_session()``.

::

    async with get_session() as s:
        await s.setex("otp:alice", 300, "493021")
        code = await s.get("otp:alice")

Values are ``str`` on every store. Entering the context opens nothing: every
facade shares the process-wide store and its connection pools. Keys live in
their own namespace (``aiosessions:kv:``), apart from the session records
that :class:`~aiosessions.manager.SessionManager` keeps, so no key chosen
here can read or forge a session.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from .config import Settings
from .errors import InvalidIdentifierError
from .keys import DEFAULT_PREFIX, check_key_prefix
from .stores.base import Store, check_key, check_value, ttl_to_ms
from .stores.factory import get_default_store

__all__ = ["KeyValueSession", "get_session", "session"]


class KeyValueSession:
    """String values with expiry, on a :class:`~aiosessions.stores.Store`.

    Args:
        store: the store to use; default: the shared one, built from the
            environment on first use.
        default_ttl: expiry of :meth:`set` without a TTL, in seconds;
            default: ``SESSION_DEFAULT_TTL``.
        namespace: the facade's part of the key space (``A-Z a-z 0-9 _ . -``,
            two characters or more); keys are ``<key_prefix>:<namespace>:<key>``.
        key_prefix: first part of every key, as for the session manager.
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        default_ttl: float | None = None,
        namespace: str = "kv",
        key_prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self._store = store
        self._default_ttl_ms = (
            None if default_ttl is None else ttl_to_ms(default_ttl, "default_ttl")
        )
        check_key_prefix(key_prefix)
        check_key_prefix(namespace, "namespace")
        if len(namespace) < 2:
            # One-letter namespaces are the session manager's (s, u, ...).
            raise InvalidIdentifierError(
                "namespace", namespace, "one-letter namespaces are reserved"
            )
        self._namespace = f"{key_prefix}:{namespace}:"

    @property
    def store(self) -> Store:
        """The store in use (the shared one unless one was given)."""
        if self._store is None:
            self._store = get_default_store()
        return self._store

    def _key(self, key: object) -> str:
        return self._namespace + check_key(key)

    # The calls below hand back the store's coroutine instead of awaiting it
    # in one of their own: a frame less on the hottest path (a tenth of a
    # memory-store get). Bad arguments therefore raise at the call, before
    # any await.

    def set(
        self, key: str, value: str, ttl: float | None = None
    ) -> Coroutine[Any, Any, None]:
        """Store *value* under *key* for *ttl* seconds.

        Without *ttl*, the default TTL applies (``SESSION_DEFAULT_TTL``).

        Raises:
            InvalidValueTypeError: *key* or *value* is not a ``str``.
            InvalidKeyError: *key* is empty, too long or has control chars.
            InvalidTTLError: *ttl* is not a positive finite duration.
        """
        if ttl is None:
            if self._default_ttl_ms is None:
                seconds = self.store.default_ttl or Settings.from_env().default_ttl
                self._default_ttl_ms = seconds * 1000
            ttl_ms = self._default_ttl_ms
        else:
            ttl_ms = ttl_to_ms(ttl)
        return self.store.set(self._key(key), check_value(value), ttl_ms)

    def setex(self, key: str, ttl: float, value: str) -> Coroutine[Any, Any, None]:
        """Store *value* under *key* for *ttl* seconds (Redis argument order)."""
        key = self._key(key)
        return self.store.set(key, check_value(value), ttl_to_ms(ttl))

    def get(self, key: str) -> Coroutine[Any, Any, str | None]:
        """Return the value under *key*, or ``None`` if absent or expired."""
        return self.store.get(self._key(key))

    def delete(self, key: str) -> Coroutine[Any, Any, bool]:
        """Remove *key*; return whether it existed."""
        return self.store.delete(self._key(key))

    def exists(self, key: str) -> Coroutine[Any, Any, bool]:
        """Return whether *key* holds a live value."""
        return self.store.exists(self._key(key))

    async def ttl(self, key: str) -> int:
        """Return the seconds left before *key* expires, rounded to nearest.

        ``-2`` if the key does not exist, ``-1`` if it never expires (the
        Redis ``TTL`` convention).
        """
        left = await self.store.pttl(self._key(key))
        if left is None:
            return -2
        if left < 0:
            return -1
        return (left + 500) // 1000

    async def expire(self, key: str, ttl: float) -> bool:
        """Make *key* expire *ttl* seconds from now; return whether it exists."""
        ttl_ms = ttl_to_ms(ttl)
        return await self.store.pexpire(self._key(key), ttl_ms)

    async def __aenter__(self) -> KeyValueSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Nothing to close: the store and its pools are shared."""


def get_session(
    store: Store | None = None, *, default_ttl: float | None = None
) -> KeyValueSession:
    """Return a key-value facade on *store* (default: the shared store).

    Use it as ``async with get_session() as s:``; it opens no connection.
    """
    return KeyValueSession(store, default_ttl=default_ttl)


session = get_session
"""Alias of :func:`get_session`."""
