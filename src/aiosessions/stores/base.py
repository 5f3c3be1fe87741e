"""The contract every store keeps.

A store holds string values under string keys, each with an optional expiry,
and *session records*: small string-to-string maps whose lifecycle rules run
inside the store, so that each session operation is one atomic step there.

Record fields (single letters keep records small)::

    c   created, Unix ms            a   deadline, Unix ms (movable by extend)
    l   last access, Unix ms        x   hard cap on ``a``, Unix ms (optional)
    i   idle timeout, ms (optional) u   user id (optional)
    :K  custom metadata key K, its value as JSON

Times inside records come from the store's own clock (Redis ``TIME``, or
``time.time()`` in memory), so app servers with skewed clocks agree. A
record's expiry is ``min(i, a - now)``: the idle timeout slides on every
validation, never past the deadline, and the deadline never passes the cap;
so a record expires at ``min(l + i, a)``, computable from its fields alone.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import MAX_TTL_SECONDS
from ..errors import (
    InvalidInputError,
    InvalidKeyError,
    InvalidTTLError,
    InvalidValueTypeError,
    ProviderError,
)

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_KEY_LENGTH",
    "MAX_TTL_MS",
    "SessionRecord",
    "Store",
    "check_key",
    "check_value",
    "ttl_to_ms",
]

MAX_KEY_LENGTH = 1024
"""Longest key accepted, in characters."""

MAX_TTL_MS = MAX_TTL_SECONDS * 1000
"""Longest expiry accepted (100 years, in ms); every backend can hold it."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""Control characters (C0, DEL, C1) and lone surrogates: no key may hold them."""

META_PREFIX = ":"
"""Record fields that hold custom metadata start with this."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session record as read from the store.

    ``now_ms`` is the store's clock at the read, ``ttl_ms`` the time left
    before the record expires, both in milliseconds.
    """

    fields: dict[str, str]
    ttl_ms: int
    now_ms: int


def check_key(key: object) -> str:
    """Return *key* if a store can take it.

    Raises:
        InvalidValueTypeError: *key* is not a ``str``.
        InvalidKeyError: it is empty, longer than :data:`MAX_KEY_LENGTH`
            characters, or holds control characters or lone surrogates.
    """
    if not isinstance(key, str):
        raise InvalidValueTypeError("key", key, "str")
    if not key:
        raise InvalidKeyError("key", key, "must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError("key", key, f"longer than {MAX_KEY_LENGTH} characters")
    # isprintable() is one C loop and False for every control character;
    # the regex only runs for the rare key with other unprintable ones.
    if not key.isprintable() and UNSAFE_TEXT.search(key):
        raise InvalidKeyError(
            "key", key, "control characters and lone surrogates are not allowed"
        )
    return key


def check_value(value: object) -> str:
    """Return *value* if it is text every store can hold.

    Raises:
        InvalidValueTypeError: *value* is not a ``str``.
        InvalidInputError: it holds a lone surrogate (not UTF-8 encodable).
    """
    if not isinstance(value, str):
        raise InvalidValueTypeError("value", value, "str")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError(
                "value", value, "holds a lone surrogate; values must be valid text"
            ) from None
    return value


def ttl_to_ms(ttl: object, field: str = "ttl", unit_ms: int = 1000) -> int:
    """Convert a duration of *ttl* units (``unit_ms`` ms each) to whole ms.

    Fractions round up, so a tiny positive duration never becomes zero.

    Raises:
        InvalidValueTypeError: *ttl* is not an ``int`` or ``float`` (a
            ``bool`` is refused).
        InvalidTTLError: it is zero, negative, NaN, infinite, or longer
            than :data:`MAX_TTL_MS`.
    """
    if type(ttl) is int and 0 < ttl * unit_ms <= MAX_TTL_MS:
        return ttl * unit_ms  # the common case, without the float checks
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise InvalidValueTypeError(field, ttl, "an int or float duration")
    if isinstance(ttl, float) and not math.isfinite(ttl):
        raise InvalidTTLError(field, ttl, "must be a finite number")
    if ttl <= 0:
        raise InvalidTTLError(field, ttl, "must be greater than zero")
    if ttl * unit_ms > MAX_TTL_MS:
        raise InvalidTTLError(
            field, ttl, f"longer than the {MAX_TTL_MS // 1000} s the stores can hold"
        )
    return max(1, math.ceil(ttl * unit_ms))


class Store(ABC):
    """Where sessions and key-value data live.

    Implementations must make each method one atomic step in the store and
    raise :class:`~aiosessions.errors.ProviderError` (or its subclass
    :class:`~aiosessions.errors.BackendUnavailableError`) when the store
    fails; a failure is never reported as a missing key. Arguments arrive
    already checked by :func:`check_key`, :func:`check_value` and
    :func:`ttl_to_ms`.
    """

    #: The provider name, as ``SESSION_PROVIDER`` spells it.
    provider: str = ""

    #: Seconds a key-value ``set()`` without a TTL keeps its value; ``None``:
    #: ``SESSION_DEFAULT_TTL``. :func:`create_store` sets it from the settings.
    default_ttl: int | None = None

    # -- key-value --------------------------------------------------------

    @abstractmethod
    async def get(self, key: str) -> str | None:
        """Return the value under *key*, or ``None`` if absent or expired."""

    @abstractmethod
    async def set(self, key: str, value: str, ttl_ms: int | None = None) -> None:
        """Store *value* under *key*, expiring after *ttl_ms* (never if None)."""

    @abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove *key*; return whether it existed."""

    @abstractmethod
    async def exists(self, key: str) -> bool:
        """Return whether *key* holds a live value or record."""

    @abstractmethod
    async def pttl(self, key: str) -> int | None:
        """Return the ms left before *key* expires.

        ``None`` if the key is absent, ``-1`` if it never expires.
        """

    @abstractmethod
    async def pexpire(self, key: str, ttl_ms: int) -> bool:
        """Make *key* expire after *ttl_ms*; return whether it existed."""

    # -- session records --------------------------------------------------

    @abstractmethod
    async def session_create(
        self,
        key: str,
        fields: Mapping[str, str],
        lifetime_ms: int,
        idle_ms: int | None,
        cap_ms: int | None,
    ) -> bool:
        """Create a record unless *key* exists; return whether it was created.

        The store sets ``c``, ``l``, ``a`` (now + *lifetime_ms*, at most the
        cap), ``x`` (now + *cap_ms*) and ``i`` from its own clock; *fields*
        holds ``u`` and custom metadata.
        """

    @abstractmethod
    async def session_touch(
        self,
        key: str,
        refresh_ms: int | None = None,
        user_id: str | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> bool:
        """Validate a record: record the access and slide its idle expiry.

        With *refresh_ms*, the record must belong to *user_id* (``None``: to
        no user); its deadline then moves to now + *refresh_ms*, never past
        the cap, and custom metadata *fields* are merged in. Returns whether
        the record is live (and, when refreshing, owned by *user_id*); a
        ``False`` answer changed nothing.
        """

    @abstractmethod
    async def session_read(self, key: str) -> SessionRecord | None:
        """Return the record under *key* without touching it."""

    @abstractmethod
    async def session_update(
        self,
        key: str,
        fields: Mapping[str, str],
        replace: bool,
        remove: Collection[str] = (),
    ) -> bool:
        """Write custom metadata *fields* into a live record.

        With *replace*, custom fields not in *fields* are removed first.
        The custom fields named in *remove* are removed in the same step,
        before *fields* are written, so a name in both keeps its new value.
        The expiry is left as it is. Returns ``False``, writing nothing,
        when the record does not exist: an update never brings a session
        back.
        """

    @abstractmethod
    async def session_incr(self, key: str, field: str, amount: int) -> int | None:
        """Add *amount* to the integer metadata *field*; return the new value.

        A missing field counts from 0. Returns ``None`` when the record does
        not exist.

        Raises:
            InvalidMetadataError: the field does not hold an integer, or
                the result leaves the signed 64-bit range.
        """

    @abstractmethod
    async def session_extend(self, key: str, add_ms: int) -> int | None:
        """Move a record's deadline *add_ms* later, never past its cap.

        The deadline never goes past :data:`MAX_TTL_MS` from now, so
        repeated extensions keep every timestamp representable.
        Extending counts as an access: ``l`` is set and the idle expiry
        restarts, so a record's expiry is always ``min(l + i, a)``.

        Returns the ms left before expiry, or ``None`` if the record does
        not exist.
        """

    # -- housekeeping -----------------------------------------------------

    @abstractmethod
    async def count(self, prefix: str) -> int:
        """Return how many live keys start with *prefix*."""

    @abstractmethod
    async def cleanup(self) -> int:
        """Reclaim expired entries now; return how many were reclaimed."""

    @abstractmethod
    async def ping(self) -> float:
        """Round-trip to the store; return the latency in seconds."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release connections; the store may be used again afterwards."""

    def describe(self) -> dict[str, Any]:
        """Return a JSON-safe description, free of secrets."""
        return {"provider": self.provider}

    async def health(self) -> dict[str, Any]:
        """Report whether the store answers, without raising when it does not.

        Returns :meth:`describe` plus ``ok`` (bool), ``latency_ms`` (a
        round trip in ms, or ``None``) and ``error`` (``None``, or what
        failed, free of secrets); stores may add details. JSON-safe.
        """
        report = self.describe()
        try:
            latency = await self.ping()
        except ProviderError as exc:
            report.update(ok=False, latency_ms=None, error=str(exc))
        else:
            report.update(ok=True, latency_ms=round(latency * 1000, 3), error=None)
        return report

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
