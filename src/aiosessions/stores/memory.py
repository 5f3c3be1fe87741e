"""An in-process store for development, tests and single-process services.

Each method runs to completion without awaiting, so it is atomic with
respect to other tasks; a :class:`threading.Lock` (never held across an
await) makes it atomic with respect to other threads too.

Expiry uses :func:`time.monotonic`. Expired entries are reclaimed when read
and, without any read, by a bounded sweep on every write: entries sit in
one-second buckets ordered by a heap, so the sweep touches only what has
expired, never the whole store.
"""

from __future__ import annotations

import heapq
import re
import threading
import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, InvalidMetadataError, ProviderError
from .base import (
    INT64_MAX,
    INT64_MIN,
    MAX_TTL_MS,
    META_PREFIX,
    SessionRecord,
    Store,
)

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["MemoryStore"]

_SWEEP_BUDGET = 64  # expired entries reclaimed per write, at most
_INTEGER = re.compile(r"0|-?[1-9][0-9]*")  # what Redis HINCRBY parses

Record = dict[str, str]


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class MemoryStore(Store):
    """Values and session records in a dict of this process.

    Args:
        max_entries: when set, a write that would exceed it first reclaims
            expired entries, then evicts the entries closest to expiry
            (never those without an expiry); ``None`` means no cap.
    """

    provider = "memory"

    def __init__(self, *, max_entries: int | None = None) -> None:
        if max_entries is not None and (
            isinstance(max_entries, bool)
            or not isinstance(max_entries, int)
            or max_entries < 1
        ):
            raise ConfigurationError(
                "max_entries", max_entries, "must be a positive int or None"
            )
        self.max_entries = max_entries
        self._data: dict[str, str | Record] = {}
        self._expires: dict[str, float] = {}  # monotonic seconds
        self._buckets: dict[int, set[str]] = {}
        self._heap: list[int] = []
        self._lock = threading.Lock()
        self.evictions = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> MemoryStore:
        """Build the store that *settings* describe."""
        return cls(max_entries=settings.memory_max_entries)

    def __repr__(self) -> str:
        return f"MemoryStore(entries={len(self._data)}, max_entries={self.max_entries})"

    def __len__(self) -> int:
        """Entries held, expired ones not yet reclaimed included."""
        return len(self._data)

    # -- expiry bookkeeping (call with the lock held) ----------------------

    def _set_expiry(self, key: str, deadline: float | None) -> None:
        old = self._expires.pop(key, None)
        if old is not None:
            bucket = self._buckets.get(int(old))
            if bucket is not None:
                bucket.discard(key)
        if deadline is None:
            return
        self._expires[key] = deadline
        second = int(deadline)
        bucket = self._buckets.get(second)
        if bucket is None:
            bucket = self._buckets[second] = set()
            heapq.heappush(self._heap, second)
        bucket.add(key)

    def _drop(self, key: str) -> bool:
        if self._data.pop(key, None) is None:
            return False
        self._set_expiry(key, None)
        return True

    def _live(self, key: str, now: float) -> str | Record | None:
        value = self._data.get(key)
        if value is None:
            return None
        deadline = self._expires.get(key)
        if deadline is not None and deadline <= now:
            self._drop(key)
            return None
        return value

    def _sweep(self, now: float, budget: int | None) -> int:
        """Reclaim up to *budget* expired entries (all if ``None``)."""
        reclaimed = 0
        heap, buckets = self._heap, self._buckets
        while heap and heap[0] + 1 <= now:
            second = heap[0]
            bucket = buckets.get(second)
            while bucket and (budget is None or reclaimed < budget):
                key = bucket.pop()
                del self._expires[key]
                del self._data[key]
                reclaimed += 1
            if bucket:
                break  # budget spent; the rest waits for the next write
            heapq.heappop(heap)
            buckets.pop(second, None)
        return reclaimed

    def _make_room(self, key: str, now: float) -> None:
        cap = self.max_entries
        if cap is None or key in self._data or len(self._data) < cap:
            return
        self._sweep(now, None)
        heap, buckets = self._heap, self._buckets
        while len(self._data) >= cap and heap:
            bucket = buckets.get(heap[0])
            if not bucket:
                buckets.pop(heapq.heappop(heap), None)
                continue
            self._drop(next(iter(bucket)))
            self.evictions += 1
        if len(self._data) >= cap:
            raise ProviderError(
                f"memory store is full ({cap} entries without expiry);"
                " raise max_entries or give entries a TTL",
                store="memory",
                operation="write",
            )

    def _write(self, key: str, value: str | Record, ttl_ms: int | None) -> None:
        now = time.monotonic()
        self._sweep(now, _SWEEP_BUDGET)
        self._make_room(key, now)
        self._data[key] = value
        self._set_expiry(key, None if ttl_ms is None else now + ttl_ms / 1000)

    def _record(self, key: str, now: float) -> Record | None:
        value = self._live(key, now)
        if value is None:
            return None
        if isinstance(value, str):
            raise ProviderError(
                "key holds a plain value, not a session record",
                store="memory",
                operation="session",
            )
        return value

    def _apply_expiry(self, key: str, record: Record, now: float, wall: int) -> int:
        """Set the expiry the record's rules give; return it in ms."""
        remaining = int(record["a"]) - wall
        idle = record.get("i")
        expiry = remaining if idle is None else min(int(idle), remaining)
        self._set_expiry(key, now + expiry / 1000)
        return expiry

    # -- key-value --------------------------------------------------------

    async def get(self, key: str) -> str | None:
        with self._lock:
            value = self._live(key, time.monotonic())
        if isinstance(value, dict):
            raise ProviderError(
                "key holds a session record, not a plain value",
                store="memory",
                operation="get",
            )
        return value

    async def set(self, key: str, value: str, ttl_ms: int | None = None) -> None:
        with self._lock:
            self._write(key, value, ttl_ms)

    async def delete(self, key: str) -> bool:
        with self._lock:
            return self._live(key, time.monotonic()) is not None and self._drop(key)

    async def exists(self, key: str) -> bool:
        with self._lock:
            return self._live(key, time.monotonic()) is not None

    async def pttl(self, key: str) -> int | None:
        with self._lock:
            now = time.monotonic()
            if self._live(key, now) is None:
                return None
            deadline = self._expires.get(key)
        if deadline is None:
            return -1
        return max(0, round((deadline - now) * 1000))

    async def pexpire(self, key: str, ttl_ms: int) -> bool:
        with self._lock:
            now = time.monotonic()
            if self._live(key, now) is None:
                return False
            self._set_expiry(key, now + ttl_ms / 1000)
            return True

    # -- session records --------------------------------------------------

    async def session_create(
        self,
        key: str,
        fields: Mapping[str, str],
        lifetime_ms: int,
        idle_ms: int | None,
        cap_ms: int | None,
    ) -> bool:
        with self._lock:
            now = time.monotonic()
            if self._live(key, now) is not None:
                return False
            wall = _wall_ms()
            record: Record = {"c": str(wall), "l": str(wall)}
            deadline = wall + lifetime_ms
            if cap_ms is not None:
                record["x"] = str(wall + cap_ms)
                deadline = min(deadline, wall + cap_ms)
            record["a"] = str(deadline)
            if idle_ms is not None:
                record["i"] = str(idle_ms)
            record.update(fields)
            self._sweep(now, _SWEEP_BUDGET)
            self._make_room(key, now)
            self._data[key] = record
            self._apply_expiry(key, record, now, wall)
            return True

    async def session_touch(
        self,
        key: str,
        refresh_ms: int | None = None,
        user_id: str | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> bool:
        with self._lock:
            now = time.monotonic()
            record = self._record(key, now)
            if record is None:
                return False
            wall = _wall_ms()
            if refresh_ms is not None:
                if record.get("u") != user_id:
                    return False
                deadline = wall + refresh_ms
                cap = record.get("x")
                if cap is not None:
                    deadline = min(deadline, int(cap))
                record["a"] = str(deadline)
            if int(record["a"]) <= wall:
                self._drop(key)
                return False
            record["l"] = str(wall)
            if refresh_ms is not None and fields:
                record.update(fields)
            if refresh_ms is not None or "i" in record:
                self._apply_expiry(key, record, now, wall)
            return True

    async def session_read(self, key: str) -> SessionRecord | None:
        with self._lock:
            now = time.monotonic()
            record = self._record(key, now)
            if record is None:
                return None
            deadline = self._expires[key]
            return SessionRecord(
                fields=dict(record),
                ttl_ms=max(0, round((deadline - now) * 1000)),
                now_ms=_wall_ms(),
            )

    async def session_update(
        self,
        key: str,
        fields: Mapping[str, str],
        replace: bool,
        remove: Collection[str] = (),
    ) -> bool:
        with self._lock:
            record = self._record(key, time.monotonic())
            if record is None:
                return False
            if replace:
                remove = [n for n in record if n.startswith(META_PREFIX)]
            for name in remove:
                if name.startswith(META_PREFIX):
                    record.pop(name, None)
            record.update(fields)
            return True

    async def session_incr(self, key: str, field: str, amount: int) -> int | None:
        with self._lock:
            record = self._record(key, time.monotonic())
            if record is None:
                return None
            current = record.get(field)
            if current is not None and _INTEGER.fullmatch(current) is None:
                raise InvalidMetadataError(
                    "metadata key",
                    field[len(META_PREFIX) :],
                    "does not hold an integer",
                )
            total = (0 if current is None else int(current)) + amount
            if not INT64_MIN <= total <= INT64_MAX:
                raise InvalidMetadataError(
                    "metadata key",
                    field[len(META_PREFIX) :],
                    "increment would leave the signed 64-bit range",
                )
            record[field] = str(total)
            return total

    async def session_extend(self, key: str, add_ms: int) -> int | None:
        with self._lock:
            now = time.monotonic()
            record = self._record(key, now)
            if record is None:
                return None
            wall = _wall_ms()
            deadline = min(int(record["a"]) + add_ms, wall + MAX_TTL_MS)
            cap = record.get("x")
            if cap is not None:
                deadline = min(deadline, int(cap))
            if deadline <= wall:
                self._drop(key)
                return None
            record["a"] = str(deadline)
            record["l"] = str(wall)
            return self._apply_expiry(key, record, now, wall)

    # -- housekeeping -----------------------------------------------------

    async def count(self, prefix: str) -> int:
        with self._lock:
            now = time.monotonic()
            expires = self._expires
            return sum(
                1
                for key in self._data
                if key.startswith(prefix) and (key not in expires or expires[key] > now)
            )

    async def cleanup(self) -> int:
        with self._lock:
            return self._sweep(time.monotonic(), None)

    async def ping(self) -> float:
        return 0.0

    async def aclose(self) -> None:
        """Nothing to release: the data stays for the next user."""

    def describe(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "entries": len(self._data),
            "max_entries": self.max_entries,
            "evictions": self.evictions,
        }

    def clear(self) -> None:
        """Drop every entry (for tests and resets)."""
        with self._lock:
            self._data.clear()
            self._expires.clear()
            self._buckets.clear()
            self._heap.clear()
