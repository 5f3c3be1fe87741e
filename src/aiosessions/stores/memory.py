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

import bisect
import heapq
import re
import threading
import time
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, InvalidMetadataError, ProviderError
from .base import (
    INT64_MAX,
    INT64_MIN,
    MAX_TTL_MS,
    META_PREFIX,
    IndexState,
    SessionRecord,
    Store,
)

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["MemoryStore"]

_SWEEP_BUDGET = 64  # expired entries reclaimed per write, at most
_INTEGER = re.compile(r"0|-?[1-9][0-9]*")  # what Redis HINCRBY parses

Record = dict[str, str]


def _as_int64(text: str) -> int | None:
    """Return *text* as Redis's HINCRBY reads it: a canonical signed int64."""
    if _INTEGER.fullmatch(text) is None or len(text) > 20:
        return None
    number = int(text)
    return number if INT64_MIN <= number <= INT64_MAX else None


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _score_of(entry: tuple[int, str]) -> int:
    return entry[0]


class _Ranked:
    """Members with scores in ms, kept sorted: a user index or its marks.

    A sorted list beside the dict makes "members due by now" a bisect and a
    slice, so a user with many sessions costs O(log n) per query, like a
    Redis sorted set.
    """

    __slots__ = ("order", "scores")

    def __init__(self) -> None:
        self.scores: dict[str, int] = {}
        self.order: list[tuple[int, str]] = []

    def __len__(self) -> int:
        return len(self.scores)

    def set(self, member: str, score: int) -> None:
        self.remove(member)
        self.scores[member] = score
        bisect.insort(self.order, (score, member))

    def remove(self, member: str) -> bool:
        score = self.scores.pop(member, None)
        if score is None:
            return False
        del self.order[bisect.bisect_left(self.order, (score, member))]
        return True

    def upto(self, score: int, limit: int = 0) -> list[tuple[str, int]]:
        """Members scored at or before *score*, lowest first."""
        end = bisect.bisect_right(self.order, score, key=_score_of)
        if limit:
            end = min(end, limit)
        return [(member, value) for value, member in self.order[:end]]

    def all(self, limit: int = 0) -> list[tuple[str, int]]:
        order = self.order[:limit] if limit else self.order
        return [(member, value) for value, member in order]


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
        self._data: dict[str, str | Record | _Ranked] = {}
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

    def _live(self, key: str, now: float) -> str | Record | _Ranked | None:
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

    def _write(
        self, key: str, value: str | Record | _Ranked, ttl_ms: int | None
    ) -> None:
        now = time.monotonic()
        self._sweep(now, _SWEEP_BUDGET)
        self._make_room(key, now)
        self._data[key] = value
        self._set_expiry(key, None if ttl_ms is None else now + ttl_ms / 1000)

    def _record(self, key: str, now: float) -> Record | None:
        value = self._live(key, now)
        if value is None or isinstance(value, dict):
            return value
        raise ProviderError(
            f"key holds {_kind(value)}, not a session record",
            store="memory",
            operation="session",
        )

    def _ranked(self, key: str, now: float) -> _Ranked | None:
        value = self._live(key, now)
        if value is None or isinstance(value, _Ranked):
            return value
        raise ProviderError(
            f"key holds {_kind(value)}, not a user index",
            store="memory",
            operation="index",
        )

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
        if value is not None and not isinstance(value, str):
            raise ProviderError(
                f"key holds {_kind(value)}, not a plain value",
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
                if record.get("u") != user_id or "r" in record:
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
            return self._snapshot(key, record, now)

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
            start = 0 if current is None else _as_int64(current)
            if start is None:
                raise InvalidMetadataError(
                    "metadata key",
                    field[len(META_PREFIX) :],
                    "does not hold an integer",
                )
            total = start + amount
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

    # -- record lifecycle: validation, rotation, bulk work -----------------

    def _snapshot(self, key: str, record: Record, now: float) -> SessionRecord:
        return SessionRecord(
            fields=dict(record),
            ttl_ms=max(0, round((self._expires[key] - now) * 1000)),
            now_ms=_wall_ms(),
        )

    async def session_validate(self, key: str) -> SessionRecord | None:
        with self._lock:
            now = time.monotonic()
            record = self._record(key, now)
            if record is None:
                return None
            wall = _wall_ms()
            if int(record["a"]) <= wall:
                self._drop(key)
                return None
            record["l"] = str(wall)
            if "i" in record:
                self._apply_expiry(key, record, now, wall)
            return self._snapshot(key, record, now)

    async def session_retire(self, key: str, grace_ms: int) -> SessionRecord | None:
        with self._lock:
            now = time.monotonic()
            record = self._record(key, now)
            if record is None or "r" in record:
                return None
            wall = _wall_ms()
            if int(record["a"]) <= wall:
                self._drop(key)
                return None
            before = self._snapshot(key, record, now)
            if grace_ms == 0:
                self._drop(key)
                return before
            until = wall + grace_ms
            record["r"] = str(wall)
            record["a"] = str(min(int(record["a"]), until))
            record["x"] = str(min(int(record.get("x", until)), until))
            if before.ttl_ms > grace_ms:
                self._set_expiry(key, now + grace_ms / 1000)
            return before

    async def session_clone(self, key: str, fields: Mapping[str, str]) -> bool:
        with self._lock:
            now = time.monotonic()
            if self._live(key, now) is not None:
                return False
            wall = _wall_ms()
            if int(fields["a"]) <= wall:
                return False
            record: Record = dict(fields)
            record["l"] = record["t"] = str(wall)
            self._sweep(now, _SWEEP_BUDGET)
            self._make_room(key, now)
            self._data[key] = record
            self._apply_expiry(key, record, now, wall)
            return True

    async def session_pop(self, key: str) -> SessionRecord | None:
        with self._lock:
            now = time.monotonic()
            record = self._record(key, now)
            if record is None:
                return None
            before = self._snapshot(key, record, now)
            self._drop(key)
            return before

    async def session_read_many(
        self, keys: Sequence[str]
    ) -> list[SessionRecord | None]:
        return [await self.session_read(key) for key in keys]

    async def session_delete_owned(
        self, keys: Sequence[str], user_id: str
    ) -> list[bool | None]:
        results: list[bool | None] = []
        with self._lock:
            now = time.monotonic()
            for key in keys:
                record = self._record(key, now)
                if record is None:
                    results.append(None)
                elif record.get("u") == user_id:
                    results.append(self._drop(key))
                else:
                    results.append(False)
        return results

    # -- user indexes -----------------------------------------------------

    async def index_read(
        self, key: str, *, due_only: bool = False, limit: int = 0
    ) -> IndexState:
        with self._lock:
            index = self._ranked(key, time.monotonic())
            wall = _wall_ms()
            if index is None:
                return IndexState(now_ms=wall, size=0)
            members = index.upto(wall, limit) if due_only else index.all(limit)
            return IndexState(now_ms=wall, size=len(index), members=members)

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
        with self._lock:
            now = time.monotonic()
            wall = _wall_ms()
            index = self._ranked(key, now)
            marks = None if marks_key is None else self._ranked(marks_key, now)
            absent = [m for m in check if index is None or m not in index.scores]
            marked = [m for m in check if marks is not None and m in marks.scores]
            listed: list[tuple[str, int]] = []
            if index is not None and list_limit:
                limit = max(list_limit, 0)
                listed = index.upto(wall, limit) if due_only else index.all(limit)
            if index is None and add:
                self._sweep(now, _SWEEP_BUDGET)
                self._make_room(key, now)
                index = _Ranked()
                self._data[key] = index
            if index is None:
                return IndexState(now_ms=wall, size=0, absent=absent, marked=marked)

            for member, ms in (add or {}).items():
                index.set(member, wall + ms)
            for member, ms in (recheck or {}).items():
                if member in index.scores:
                    index.set(member, wall + ms)
            for member, ms in (recheck_due or {}).items():
                score = index.scores.get(member)
                if score is not None and score <= wall:
                    index.set(member, wall + ms)
            removed = [m for m in discard if index.remove(m)]

            if not index:
                self._drop(key)
                return IndexState(
                    now_ms=wall,
                    size=0,
                    members=listed,
                    removed=removed,
                    absent=absent,
                    marked=marked,
                )
            deadline = self._expires.get(key)
            if deadline is None:
                if keep_ms:
                    self._set_expiry(key, now + keep_ms / 1000)
            else:
                wanted = max(deadline + grow_ms / 1000, now + keep_ms / 1000)
                if wanted > deadline:
                    self._set_expiry(key, wanted)
            return IndexState(
                now_ms=wall,
                size=len(index),
                members=listed,
                removed=removed,
                absent=absent,
                marked=marked,
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
        with self._lock:
            now = time.monotonic()
            wall = _wall_ms()
            index = self._ranked(key, now)
            marks = self._ranked(marks_key, now)
            scores = {} if index is None else index.scores
            if members is None:
                targets = [m for m in scores if m != keep]
            else:
                targets = list(members)
            if targets and marks is None:
                self._sweep(now, _SWEEP_BUDGET)
                self._make_room(marks_key, now)
                marks = _Ranked()
                self._data[marks_key] = marks
            if marks is not None:
                for member in targets:
                    marks.set(member, wall)
                for member, _ in marks.upto(wall - hold_ms):
                    marks.remove(member)
                if marks:
                    self._set_expiry(marks_key, now + hold_ms / 1000)
                else:
                    self._drop(marks_key)
            listed = sorted(
                ((m, scores[m]) for m in targets if m in scores),
                key=lambda pair: (pair[1], pair[0]),
            )
            return IndexState(now_ms=wall, size=len(scores), members=listed)

    async def iter_keys(
        self, prefix: str, batch_size: int = 500
    ) -> AsyncIterator[list[str]]:
        with self._lock:
            now = time.monotonic()
            expires = self._expires
            found = [
                key
                for key in self._data
                if key.startswith(prefix) and (key not in expires or expires[key] > now)
            ]
        for start in range(0, len(found), batch_size):
            yield found[start : start + batch_size]

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


def _kind(value: object) -> str:
    """Name what a key holds, for type-mismatch errors."""
    if isinstance(value, str):
        return "a plain value"
    if isinstance(value, _Ranked):
        return "a user index"
    return "a session record"
