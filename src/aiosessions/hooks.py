"""Lifecycle hooks: callbacks told when sessions begin, change and end.

::

    async def audit(event: SessionEvent) -> None:
        await log_to_siem(event.event, event.user_id)

    manager = SessionManager("app", hooks={"revoked": audit})
    manager.on("created", audit)

A hook runs after the store has done its work, awaited in the calling task,
in the order hooks were registered. A hook that raises is logged (its
exception type and where it was raised, never the message, which could hold
an id) and the operation still succeeds: hooks observe, they cannot veto.
Keep hooks quick, or hand slow work to a queue of your own.
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from ._log import fingerprint, logger
from .errors import ConfigurationError

__all__ = ["LIFECYCLE_EVENTS", "Hook", "Hooks", "LifecycleEvent", "SessionEvent"]

LifecycleEvent = Literal[
    "created", "rotated", "extended", "deleted", "revoked", "evicted", "expired"
]
"""What happened to a session.

``created`` (allocated), ``rotated`` (given a new id; ``new_session_id``
holds it), ``extended`` (:meth:`extend_session_ttl`), ``deleted`` (ended by
id), ``revoked`` (ended by :meth:`revoke_user_sessions`), ``evicted``
(ended by ``max_sessions_per_user``), ``expired`` (found gone when its
user's index was pruned; anonymous sessions expire unreported).
"""

LIFECYCLE_EVENTS: frozenset[str] = frozenset(get_args(LifecycleEvent))


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """One lifecycle event, as passed to a hook.

    ``session_id`` and ``new_session_id`` are bearer credentials: the
    ``repr`` shows only their fingerprints, so logging an event is safe.
    """

    event: LifecycleEvent
    sandbox_id: str
    session_id: str
    user_id: str | None = None
    new_session_id: str | None = None

    def __repr__(self) -> str:
        new = (
            ""
            if self.new_session_id is None
            else f", new_session={fingerprint(self.new_session_id)}"
        )
        return (
            f"SessionEvent({self.event!r}, sandbox_id={self.sandbox_id!r},"
            f" session={fingerprint(self.session_id)}, user_id={self.user_id!r}{new})"
        )


Hook = Callable[[SessionEvent], Awaitable[None] | None]
"""A callback: a coroutine function, or a plain function returning None."""


def _check_event(event: object) -> LifecycleEvent:
    if event not in LIFECYCLE_EVENTS:
        raise ConfigurationError(
            "event", event, f"choose one of: {', '.join(sorted(LIFECYCLE_EVENTS))}"
        )
    return event  # type: ignore[return-value]


def _name(hook: Hook) -> str:
    return getattr(hook, "__qualname__", None) or type(hook).__name__


class Hooks:
    """The hooks of one manager, by event.

    Args:
        hooks: event -> a hook or an iterable of hooks.

    Raises:
        ConfigurationError: an unknown event, or a hook that is not callable.
    """

    def __init__(
        self, hooks: Mapping[LifecycleEvent, Hook | Iterable[Hook]] | None = None
    ) -> None:
        self._hooks: dict[str, list[Hook]] = {}
        for event, given in (hooks or {}).items():
            for hook in [given] if callable(given) else list(given):
                self.add(event, hook)

    def add(self, event: LifecycleEvent, hook: Hook) -> Hook:
        """Call *hook* on every *event*; return *hook* (for decorators)."""
        name = _check_event(event)
        if not callable(hook):
            raise ConfigurationError(f"hook for {name!r}", hook, "is not callable")
        self._hooks.setdefault(name, []).append(hook)
        return hook

    def wants(self, event: LifecycleEvent) -> bool:
        """Return whether any hook listens to *event*."""
        return event in self._hooks

    async def emit(self, event: SessionEvent) -> None:
        """Call the hooks of *event*; log, and swallow, what they raise."""
        for hook in list(self._hooks.get(event.event, ())):
            try:
                result = hook(event)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                frames = traceback.extract_tb(exc.__traceback__)
                where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
                logger.error(
                    "%s hook %s raised %s at %s (session %s); the operation went on",
                    event.event,
                    _name(hook),
                    type(exc).__name__,
                    where,
                    fingerprint(event.session_id),
                )
