"""The contract every store keeps.

A store holds string values under string keys, each with an optional expiry,
and *session records*: small string-to-string maps whose lifecycle rules run
inside the store, so that each session operation is one atomic step there.

Record fields (single letters keep records small)::

    c   created, Unix ms            a   deadline, Unix ms (movable by extend)
    l   last access, Unix ms        x   hard cap on ``a``, Unix ms (optional)
    i   idle timeout, ms (optional) u   user id (optional)
    t   id issued, Unix ms          r   retired by a rotation, Unix ms
        (optional; else ``c``)          (optional; the id works until then
                                        plus its grace period)
    :K  custom metadata key K, its value as JSON

Times inside records come from the store's own clock (Redis ``TIME``, or
``time.time()`` in memory), so app servers with skewed clocks agree. A
record's expiry is ``min(i, a - now)``: the idle timeout slides on every
validation, never past the deadline, and the deadline never passes the cap;
so a record expires at ``min(l + i, a)``, computable from its fields alone.

A *user index* is a set of session ids, each with a score in Unix ms of the
store's clock: the time by which the member must be checked against its
record again. Its *marks* are a companion set of ids revoked recently. The
two keys of one user share a Redis Cluster hash slot; records do not, so
the manager keeps indexes correct by ordered single-key steps, never by one
call that spans slots.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
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
    "IndexState",
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


@dataclass(frozen=True, slots=True)
class IndexState:
    """What one call on a user index saw and did.

    Attributes:
        now_ms: the store's clock during the call, Unix ms.
        size: members in the index after the call.
        members: ``(member, score)`` pairs, scores in Unix ms, lowest
            first: what the call was asked to list (see each method).
        removed: members this call took out of the index.
        absent: checked members that were not in the index.
        marked: checked members found among the revocation marks.
    """

    now_ms: int
    size: int
    members: list[tuple[str, int]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    marked: list[str] = field(default_factory=list)


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
        no user) and not be retired by a rotation; its deadline then moves
        to now + *refresh_ms*, never past the cap, and custom metadata
        *fields* are merged in. Returns whether the record is live (and,
        when refreshing, owned by *user_id* and not retired); a ``False``
        answer changed nothing.
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

    # -- record lifecycle: validation, rotation, bulk work -----------------

    @abstractmethod
    async def session_validate(self, key: str) -> SessionRecord | None:
        """Touch a record like :meth:`session_touch` and return it.

        One atomic step: the access is recorded, the idle expiry slides,
        and the record is returned as it is after the touch, or ``None``
        if it is not live.
        """

    @abstractmethod
    async def session_retire(self, key: str, grace_ms: int) -> SessionRecord | None:
        """End a record for a rotation; return it as it was before.

        With *grace_ms* 0 the record is deleted. Otherwise it is marked
        retired (``r`` = now) and kept for at most *grace_ms* more: its
        deadline and cap move to now + *grace_ms* unless already sooner,
        so nothing lengthens it again; its expiry is never lengthened.
        Returns ``None``, changing nothing, if the record is not live or
        was already retired (one rotation per id).
        """

    @abstractmethod
    async def session_clone(self, key: str, fields: Mapping[str, str]) -> bool:
        """Create a record from the fields of another, unless *key* exists.

        *fields* holds ``c``, ``a`` and any of ``x``, ``i``, ``u`` and
        custom metadata; the store sets ``l`` and ``t`` to now. The expiry
        follows the record's rules. Returns ``False``, writing nothing, if
        *key* exists or the deadline ``a`` has passed.
        """

    @abstractmethod
    async def session_pop(self, key: str) -> SessionRecord | None:
        """Delete a record; return it as it was, or ``None`` if not live."""

    @abstractmethod
    async def session_read_many(
        self, keys: Sequence[str]
    ) -> list[SessionRecord | None]:
        """Read many records, as :meth:`session_read` would, in key order.

        Each read is atomic on its own; the batch is not one snapshot.
        """

    @abstractmethod
    async def session_delete_owned(
        self, keys: Sequence[str], user_id: str
    ) -> list[bool | None]:
        """Delete each record that belongs to *user_id*, in key order.

        Per key: ``True`` deleted, ``False`` left alone because it belongs
        to someone else (or nobody), ``None`` not live. Each check-and-
        delete is atomic; the batch is not. A call that failed part-way
        may be repeated: it deletes what is left.
        """

    # -- user indexes -----------------------------------------------------

    @abstractmethod
    async def index_read(
        self, key: str, *, due_only: bool = False, limit: int = 0
    ) -> IndexState:
        """List an index's members, lowest score first.

        With *due_only*, only members whose score is at or before now. At
        most *limit* members (0: all). ``size`` counts every member.
        """

    @abstractmethod
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
        """Change an index in one atomic step, in the order of the arguments.

        What the call reports (``members``, ``absent``, ``marked``) is the
        index as the call found it, before any change.

        Args:
            add: member -> ms from now; added, or re-scored if present.
            recheck: member -> ms from now; re-scored only if present.
            recheck_due: as *recheck*, but only if the member's score is
                still at or before now (nobody re-scored it meanwhile).
            discard: members removed (``removed`` lists those present).
            keep_ms: the index lives at least this many ms from now.
            grow_ms: an index that expires lives this many ms longer.
                Expiry is never shortened; an empty index is deleted.
            list_limit: list up to this many members in ``members``
                (0: none, -1: all), lowest score first.
            due_only: list only members whose score is at or before now.
            marks_key: the revocation marks that *check* consults.
            check: members reported in ``absent`` when not in the index
                and in ``marked`` when marked.
        """

    @abstractmethod
    async def index_mark(
        self,
        key: str,
        marks_key: str,
        hold_ms: int,
        *,
        members: Collection[str] | None = None,
        keep: str | None = None,
    ) -> IndexState:
        """Mark members as revoked, in one atomic step with reading them.

        *members* (``None``: every member of the index but *keep*) are
        recorded in *marks_key* for *hold_ms*; older marks are dropped.
        The index itself is not changed. ``members`` lists the marked
        members that are in the index, with their scores.
        """

    @abstractmethod
    def iter_keys(self, prefix: str, batch_size: int = 500) -> AsyncIterator[list[str]]:
        """Yield the keys that start with *prefix*, in batches.

        Never blocks the store for long (SCAN on Redis). A key may come
        twice, and a key written during the walk may be missed.
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
