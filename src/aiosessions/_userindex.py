"""How per-user indexes stay right without spanning hash slots.

A user's index (a sorted set) and a session record live in different Redis
Cluster slots, so no single step can change both. The manager orders its
single-slot steps so that one rule holds whatever happens between them:

    **every live session of a user is a member of that user's index.**

A member therefore enters the index *before* its record is written and
leaves only *after* its record is gone (deleted by the same call, or found
missing by a check). A crash between steps can leave a *ghost* (a member
whose record is gone), never a live session nobody can find; ghosts are
pruned like any dead member.

A member's score is its *recheck time*: a lower bound of when its session
can expire, in Unix ms of the store's clock. Idle sliding only moves the
real expiry later, so validation (one step on the record) need not touch
the index; a member whose score has passed is *due*, and is checked against
its record: gone, it is pruned; alive, it is re-scored to its real expiry.
A member is written with a provisional score (:data:`PENDING_MS`) while its
record is being written, so a concurrent prune never mistakes a session
about to exist for a dead one.

The index key expires :data:`SLACK_MS` after the latest deadline of its
members (creation, refresh and extension raise it first, then move the
deadline), so the index of a user who never returns vanishes by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .stores.base import SessionRecord

__all__ = [
    "BATCH",
    "MARK_HOLD_MS",
    "PENDING_MS",
    "PRUNE_ON_TOUCH",
    "SLACK_MS",
    "Verdict",
    "judge",
]

PENDING_MS = 10 * 60_000
"""Score, in ms from now, of a member whose record is still being written."""

SLACK_MS = 5 * 60_000
"""How long an index outlives its members' deadlines, in ms; it absorbs
clock skew between the cluster nodes that hold the index and the records."""

MARK_HOLD_MS = 10 * 60_000
"""How long a revocation mark is kept, in ms: longer than any rotation that
was under way when the revocation began can take to finish."""

BATCH = 500
"""Members checked per step when pruning an index."""

PRUNE_ON_TOUCH = 32
"""Due members a new session checks in passing: enough to keep up with a
user's churn, few enough that a login stays cheap; listing and cleanup
prune the rest."""


@dataclass
class Verdict:
    """What reading the records of some index members showed.

    ``live``: member -> record, for live records of the index's user.
    ``pending``: members not yet due whose records are missing: most
    likely being written right now (newest first).
    ``discard``: members to take out: records gone (when due) or foreign.
    ``expired``: the members of ``discard`` whose records were gone.
    ``recheck``: due live members -> ms left before they can expire.
    """

    live: dict[str, SessionRecord] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    discard: list[str] = field(default_factory=list)
    expired: set[str] = field(default_factory=set)
    recheck: dict[str, int] = field(default_factory=dict)


def judge(
    members: Sequence[tuple[str, int]],
    records: Sequence[SessionRecord | None],
    user_id: str,
    now_ms: int,
) -> Verdict:
    """Sort *members* (with scores) by what their *records* show.

    A missing record whose member is not yet due may still be being
    written (see :data:`PENDING_MS`): it is left alone.
    """
    verdict = Verdict()
    pending: list[tuple[int, str]] = []
    for (member, score), record in zip(members, records, strict=True):
        due = score <= now_ms
        if record is None:
            if due:
                verdict.discard.append(member)
                verdict.expired.add(member)
            else:
                pending.append((score, member))
        elif record.fields.get("u") != user_id:
            verdict.discard.append(member)
        else:
            verdict.live[member] = record
            if due:
                verdict.recheck[member] = record.ttl_ms
    verdict.pending = [member for _, member in sorted(pending, reverse=True)]
    return verdict
