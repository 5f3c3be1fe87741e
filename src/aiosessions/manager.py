"""``SessionManager``: the lifecycle of sessions of one tenant.

Each public call is one atomic step in the store (one round trip on Redis).
There is no process-local cache: a session deleted by one worker is gone
for every worker at once.

Calls that involve a user's index of sessions (creating a user's session,
rotating, ending it, listing or revoking a user's sessions) are a few
single-slot steps in a safe order instead, because the index and the
records live in different Redis Cluster slots; see :mod:`._userindex`.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, overload

from . import _userindex
from ._log import fingerprint, logger
from ._metadata import check_metadata_key, decode_metadata, encode_metadata
from ._userindex import (
    BATCH,
    MARK_HOLD_MS,
    PENDING_MS,
    PRUNE_ON_TOUCH,
    SLACK_MS,
    Verdict,
)
from .enums import SessionStatus
from .errors import (
    ConfigurationError,
    InvalidInputError,
    InvalidTTLError,
    InvalidValueTypeError,
)
from .hooks import Hook, Hooks, LifecycleEvent, SessionEvent
from .keys import DEFAULT_PREFIX, KeySpace, check_identifier
from .models import CleanupReport, SessionMetadata, utc_from_ms
from .security.csrf import DEFAULT_MAX_AGE, generate_csrf_token, validate_csrf_token
from .security.keyring import ENV_VAR, KeyRing
from .security.policy import SessionIdPolicy
from .stores.base import (
    INT64_MAX,
    INT64_MIN,
    MAX_TTL_MS,
    SessionRecord,
    Store,
    ttl_to_ms,
)
from .stores.factory import get_default_store

__all__ = ["SessionManager"]

_HOUR_MS = 3_600_000
_SECOND_MS = 1000

H = TypeVar("H", bound=Hook)
ProgressCallback = Callable[[CleanupReport], Awaitable[None] | None]


def _store_from(store: Store | str | None) -> Store | None:
    if not isinstance(store, str):
        return store
    from .stores.redis import RedisStore

    return RedisStore(store)


class SessionManager:
    """Allocate, validate, update, extend and delete sessions of a sandbox.

    Args:
        sandbox_id: the tenant; its sessions are invisible to every other
            sandbox, whatever id another sandbox is given.
        default_ttl_hours: lifetime of a new session, in hours.
        store: a :class:`~aiosessions.stores.Store`, a ``redis://`` URL, or
            ``None`` for the shared store configured by the environment.
        idle_timeout: seconds without a validation after which a session
            expires; each validation slides it. ``None``: no idle timeout.
        max_lifetime: seconds after creation past which nothing (not
            validation, not :meth:`extend_session_ttl`) keeps a session
            alive. ``None``: no cap beyond the session's own lifetime.
        key_prefix: first part of every store key.
        secret_key: a key (at least 32 bytes), or a list of keys newest
            first, to sign session ids and CSRF tokens; the first signs,
            all verify. ``None``: ``SESSION_SECRET_KEY`` if set (read on
            first use), else ids are unsigned and CSRF tokens unavailable.
        renew_after: seconds after which an id is due for a new one:
            :meth:`validate_and_renew` then rotates it. ``None``: never.
        renew_grace: seconds the old id keeps working after such a
            renewal, for requests already in flight (0: none).
        max_sessions_per_user: when a user's new session would exceed
            it, the user's oldest sessions are evicted. ``None``: no limit.
        hooks: event -> hook or hooks, called after lifecycle events; see
            :mod:`aiosessions.hooks` and :meth:`on`.

    Raises:
        InvalidIdentifierError: *sandbox_id* is empty, too long or holds
            control characters.
        InvalidTTLError: a duration is not positive and finite.
        ConfigurationError: *secret_key* holds no usable key, or a bad
            *max_sessions_per_user* or hook.
    """

    def __init__(
        self,
        sandbox_id: str,
        default_ttl_hours: float = 24,
        store: Store | str | None = None,
        idle_timeout: float | None = None,
        max_lifetime: float | None = None,
        *,
        key_prefix: str = DEFAULT_PREFIX,
        secret_key: str | Sequence[str] | None = None,
        renew_after: float | None = None,
        renew_grace: float = 30,
        max_sessions_per_user: int | None = None,
        hooks: Mapping[LifecycleEvent, Hook | Iterable[Hook]] | None = None,
    ) -> None:
        self.keys = KeySpace(check_identifier("sandbox_id", sandbox_id), key_prefix)
        self.sandbox_id = sandbox_id
        self._lifetime_ms = ttl_to_ms(default_ttl_hours, "default_ttl_hours", _HOUR_MS)
        self.default_ttl_hours = default_ttl_hours
        self._idle_ms = (
            None
            if idle_timeout is None
            else ttl_to_ms(idle_timeout, "idle_timeout", _SECOND_MS)
        )
        self._cap_ms = (
            None
            if max_lifetime is None
            else ttl_to_ms(max_lifetime, "max_lifetime", _SECOND_MS)
        )
        self.idle_timeout = idle_timeout
        self.max_lifetime = max_lifetime
        self._store = _store_from(store)
        self._secret_key = (
            None if secret_key is None else KeyRing(secret_key, name="secret_key")
        )
        self._id_policy: SessionIdPolicy | None = None
        self._init_lifecycle(renew_after, renew_grace, max_sessions_per_user, hooks)

    def __repr__(self) -> str:
        return f"SessionManager(sandbox_id={self.sandbox_id!r}, store={self._store!r})"

    @property
    def store(self) -> Store:
        """The store in use (the shared one unless one was given)."""
        if self._store is None:
            self._store = get_default_store()
        return self._store

    @property
    def id_policy(self) -> SessionIdPolicy:
        """How ids are issued and checked: signed when there is a secret key.

        Raises:
            ConfigurationError: ``SESSION_SECRET_KEY``, read here on first
                use when no *secret_key* was given, holds an unusable key.
        """
        if self._id_policy is None:
            keys = self._secret_key
            if keys is None:
                keys = KeyRing.from_env()
            self._id_policy = SessionIdPolicy(self.sandbox_id, keys)
        return self._id_policy

    def _key(self, session_id: object) -> str | None:
        """Return the key of *session_id*, or ``None`` if it is not an id."""
        if self.id_policy.check(session_id):
            return self.keys.session(session_id)  # type: ignore[arg-type]
        return None

    # -- lifecycle --------------------------------------------------------

    async def allocate_session(
        self,
        session_id: str | None = None,
        user_id: str | None = None,
        ttl_hours: float | None = None,
        custom_metadata: Mapping[str, Any] | None = None,
        idle_timeout: float | None = None,
        max_lifetime: float | None = None,
    ) -> str:
        """Return the id of a live session, creating one when needed.

        If *session_id* names a live session of this sandbox that belongs
        to *user_id* (or to nobody, when *user_id* is ``None``) and that no
        rotation replaced, its lifetime restarts at *ttl_hours* and, when
        given, *custom_metadata* is merged in; the same id is returned.
        Anything else (an unknown, expired or foreign id, or a different
        user) gets a new session with a new id: an id chosen by a client
        is never adopted.

        A new session of a user joins the user's index; with
        ``max_sessions_per_user``, the user's oldest sessions are evicted
        when it would exceed the limit (sessions created before it only:
        a session never evicts a newer one).

        Args:
            ttl_hours: lifetime in hours; default: ``default_ttl_hours``.
            idle_timeout: seconds; for a new session, overrides the
                manager's ``idle_timeout``. ``None``: the manager's.
            max_lifetime: seconds; for a new session, overrides the
                manager's ``max_lifetime``. ``None``: the manager's.
                A refreshed session keeps its own timeouts.

        Raises:
            InvalidInputError: a bad *user_id*, *ttl_hours*, timeout or
                metadata; nothing is written.
            ProviderError: the store failed. If it failed after the
                session was written, the session exists but its id was
                not handed out; it is in the user's index, so listing
                and revocation still find it.
        """
        lifetime_ms = (
            self._lifetime_ms
            if ttl_hours is None
            else ttl_to_ms(ttl_hours, "ttl_hours", _HOUR_MS)
        )
        if user_id is not None:
            check_identifier("user_id", user_id)
        idle_ms = (
            self._idle_ms
            if idle_timeout is None
            else ttl_to_ms(idle_timeout, "idle_timeout", _SECOND_MS)
        )
        cap_ms = (
            self._cap_ms
            if max_lifetime is None
            else ttl_to_ms(max_lifetime, "max_lifetime", _SECOND_MS)
        )
        fields = encode_metadata(custom_metadata or {})

        key = self._key(session_id)
        if key is not None and user_id is not None:
            await self._before_refresh(str(session_id), user_id, lifetime_ms)
        if key is not None and await self.store.session_touch(
            key, lifetime_ms, user_id, fields
        ):
            logger.debug("session refreshed %s", fingerprint(str(session_id)))
            return str(session_id)

        if user_id is not None:
            fields["u"] = user_id
            return await self._create_for_user(
                user_id, fields, lifetime_ms, idle_ms, cap_ms
            )
        for _ in range(3):
            new_id = self.id_policy.issue()
            if await self.store.session_create(
                self.keys.session(new_id),
                fields,
                lifetime_ms,
                idle_ms,
                cap_ms,
            ):
                logger.info(
                    "session created %s sandbox=%r",
                    fingerprint(new_id),
                    self.sandbox_id,
                )
                await self._emit("created", new_id)
                return new_id
        raise RuntimeError("three random session ids collided; the RNG is broken")

    async def validate_session(self, session_id: str) -> bool:
        """Return whether *session_id* is a live session of this sandbox.

        A live session's last access is recorded and its idle timeout slides
        (never past its deadline), in one atomic step. An id not of the
        issued shape is ``False`` without asking the store.

        Raises:
            ProviderError: the store failed; a session is never reported
                invalid because the store is down.
        """
        key = self._key(session_id)
        if key is None:
            logger.debug("malformed session id refused (%s)", _describe(session_id))
            return False
        live = await self.store.session_touch(key)
        if not live:
            logger.debug("session not valid %s", fingerprint(str(session_id)))
        return live

    async def get_session_metadata(self, session_id: str) -> SessionMetadata | None:
        """Return the session as a model, or ``None`` if it is not live.

        Reading does not count as an access: the idle timeout does not
        slide.
        """
        key = self._key(session_id)
        if key is None:
            return None
        record = await self.store.session_read(key)
        if record is None:
            return None
        return self._model(str(session_id), record)

    async def get_session_info(self, session_id: str) -> dict[str, Any] | None:
        """Return the session as a JSON-safe dict, or ``None`` if not live.

        Timestamps are ISO 8601 strings in UTC; ``SessionMetadata(**info)``
        rebuilds the model.
        """
        metadata = await self.get_session_metadata(session_id)
        return None if metadata is None else metadata.model_dump(mode="json")

    async def update_session_metadata(
        self,
        session_id: str,
        data: Mapping[str, Any],
        merge: bool = True,
        *,
        remove: Iterable[str] = (),
    ) -> bool:
        """Write custom metadata; return ``False`` if the session is not live.

        With *merge* only the keys in *data* change, and the keys named in
        *remove* are deleted in the same atomic step, so concurrent merges
        of different keys all survive; otherwise *data* replaces every
        custom key. The session's expiry is left as it is, and a session
        deleted meanwhile is never brought back.

        Raises:
            InvalidMetadataError: *data* is not JSON or too large, or a key
                in *remove* is unusable; nothing is written.
        """
        fields = encode_metadata(data)
        dropped = [check_metadata_key(name) for name in remove]
        key = self._key(session_id)
        if key is None:
            return False
        if dropped:
            return await self.store.session_update(
                key, fields, replace=not merge, remove=dropped
            )
        # Without removals the call stays in the original contract's shape,
        # which stores written before ``remove`` existed still accept.
        return await self.store.session_update(key, fields, replace=not merge)

    async def increment_metadata(
        self, session_id: str, key: str, amount: int = 1
    ) -> int | None:
        """Atomically add *amount* to the integer metadata *key*.

        A missing key counts from 0. Returns the new value, or ``None`` if
        the session is not live. Suits per-session rate limits.

        Raises:
            InvalidMetadataError: the key holds something other than an
                integer, or the result leaves the signed 64-bit range.
        """
        field = check_metadata_key(key)
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise InvalidValueTypeError("amount", amount, "int")
        if not INT64_MIN <= amount <= INT64_MAX:
            raise InvalidValueTypeError("amount", amount, "a signed 64-bit int")
        store_key = self._key(session_id)
        if store_key is None:
            return None
        return await self.store.session_incr(store_key, field, amount)

    async def extend_session_ttl(
        self, session_id: str, additional_hours: float = 1
    ) -> bool:
        """Move the session's deadline *additional_hours* later.

        Never past ``max_lifetime`` from creation. Returns ``False`` if the
        session is not live.

        A user's session first lengthens the life of the user's index by
        as much, then its own deadline (two or three store steps).
        """
        add_ms = ttl_to_ms(additional_hours, "additional_hours", _HOUR_MS)
        key = self._key(session_id)
        if key is None:
            return False
        record = await self.store.session_read(key)
        if record is None:
            return False
        user_id = record.fields.get("u")
        if user_id is not None:
            await self.store.index_update(self.keys.user_index(user_id), grow_ms=add_ms)
        left = await self.store.session_extend(key, add_ms)
        if left is None:
            return False
        logger.info("session extended %s", fingerprint(str(session_id)))
        await self._emit("extended", str(session_id), user_id)
        return True

    async def delete_session(self, session_id: str) -> bool:
        """End the session at once; return whether it was live.

        The record goes first, then its entry in its user's index. If the
        second step fails the caller gets the error, but the session is
        already ended (the entry left behind is pruned later).
        """
        key = self._key(session_id)
        if key is None:
            return False
        record = await self.store.session_pop(key)
        if record is None:
            return False
        user_id = record.fields.get("u")
        if user_id is not None:
            await self.store.index_update(
                self.keys.user_index(user_id), discard=[str(session_id)]
            )
        logger.info("session deleted %s", fingerprint(str(session_id)))
        await self._emit("deleted", str(session_id), user_id)
        return True

    # -- CSRF -------------------------------------------------------------

    def _csrf_secret(self) -> tuple[bytes, ...]:
        keys = self.id_policy.keys
        if keys is None:
            raise ConfigurationError(
                ENV_VAR,
                None,
                "CSRF tokens need a secret key: set SESSION_SECRET_KEY or pass"
                " secret_key= to SessionManager",
            )
        return keys.derive(f"csrf/{self.sandbox_id}")

    def csrf_token(self, session_id: str) -> str:
        """Return a CSRF token bound to *session_id* and this sandbox.

        It passes :meth:`verify_csrf_token` until it is older than the
        *max_age* given there or the session ends (deleted, rotated or
        expired). No store call.

        Raises:
            ConfigurationError: there is no secret key.
            InvalidInputError: *session_id* is not an id of this manager.
        """
        secret = self._csrf_secret()
        if self._key(session_id) is None:
            raise InvalidInputError(
                "session_id", "<redacted>", "not a session id of this manager"
            )
        return generate_csrf_token(session_id, secret)

    async def verify_csrf_token(
        self, session_id: str, token: object, max_age: float = DEFAULT_MAX_AGE
    ) -> bool:
        """Return whether *token* came from :meth:`csrf_token` for a live session.

        The token must be for *session_id*, at most *max_age* seconds old,
        and the session live: one store round trip, made only once the
        token checks out, that does not slide the idle timeout.

        Raises:
            ConfigurationError: there is no secret key.
            InvalidTTLError: *max_age* is not a positive number of seconds.
            ProviderError: the store failed.
        """
        secret = self._csrf_secret()
        key = self._key(session_id)
        if key is None:
            logger.info(
                "csrf check failed: not a session id (%s)", _describe(session_id)
            )
            return False
        if not validate_csrf_token(token, session_id, secret, max_age=max_age):
            logger.info("csrf token refused for session %s", fingerprint(session_id))
            return False
        if not await self.store.exists(key):
            logger.info("csrf token for a session not live %s", fingerprint(session_id))
            return False
        return True

    # -- housekeeping -----------------------------------------------------

    async def cleanup_expired_sessions(
        self, on_progress: ProgressCallback | None = None
    ) -> int:
        """Reclaim expired entries and prune user indexes now.

        Returns how many entries and index members were reclaimed. See
        :meth:`cleanup_report` for the details and *on_progress*.
        """
        report = await self.cleanup_report(on_progress=on_progress)
        return report.total

    async def get_cache_stats(self) -> dict[str, Any]:
        """Return counts for this sandbox, JSON-safe.

        ``cache_size`` is always 0: there is no local cache to go stale.
        Counting scans this sandbox's keys, so it costs O(keys).
        """
        return {
            "sandbox_id": self.sandbox_id,
            "store": self.store.describe(),
            "active_sessions": await self.store.count(self.keys.session_prefix),
            "indexed_users": await self.store.count(self.keys.user_index_prefix),
            "cache_size": 0,
            "default_ttl_hours": self.default_ttl_hours,
            "idle_timeout": self.idle_timeout,
            "max_lifetime": self.max_lifetime,
        }

    async def health(self) -> dict[str, Any]:
        """Report on the store, for a readiness probe; never raises for it.

        Returns ``{"ok": bool, "sandbox_id": ..., "store": {...}}`` where
        ``store`` is :meth:`Store.health() <aiosessions.stores.Store.health>`:
        provider, latency in ms and, on Redis, topology and node states.
        JSON-safe and free of secrets.
        """
        report = await self.store.health()
        return {
            "ok": bool(report.get("ok")),
            "sandbox_id": self.sandbox_id,
            "store": report,
        }

    # -- lifecycle: options and hooks ---------------------------------------

    def _init_lifecycle(
        self,
        renew_after: float | None,
        renew_grace: float,
        max_sessions_per_user: int | None,
        hooks: Mapping[LifecycleEvent, Hook | Iterable[Hook]] | None,
    ) -> None:
        self._renew_ms = (
            None
            if renew_after is None
            else ttl_to_ms(renew_after, "renew_after", _SECOND_MS)
        )
        self._renew_grace_ms = _grace_ms(renew_grace, "renew_grace")
        limit = max_sessions_per_user
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ConfigurationError(
                "max_sessions_per_user", limit, "must be a positive int or None"
            )
        self.renew_after = renew_after
        self.renew_grace = renew_grace
        self.max_sessions_per_user = limit
        self.hooks = Hooks(hooks)

    @overload
    def on(self, event: LifecycleEvent) -> Callable[[H], H]: ...

    @overload
    def on(self, event: LifecycleEvent, hook: H) -> H: ...

    def on(self, event: LifecycleEvent, hook: H | None = None) -> H | Callable[[H], H]:
        """Call *hook* after every *event*; returns *hook*.

        Without *hook*, returns a decorator: ``@manager.on("revoked")``.

        Raises:
            ConfigurationError: *event* is not a :data:`LifecycleEvent`.
        """
        if hook is None:

            def register(fn: H) -> H:
                self.hooks.add(event, fn)
                return fn

            return register
        self.hooks.add(event, hook)
        return hook

    async def _emit(
        self,
        event: LifecycleEvent,
        session_id: str,
        user_id: str | None = None,
        new_session_id: str | None = None,
    ) -> None:
        if self.hooks.wants(event):
            await self.hooks.emit(
                SessionEvent(
                    event, self.sandbox_id, session_id, user_id, new_session_id
                )
            )

    # -- lifecycle: creation, refresh and the user limit --------------------

    async def _create_for_user(
        self,
        user_id: str,
        fields: dict[str, str],
        lifetime_ms: int,
        idle_ms: int | None,
        cap_ms: int | None,
    ) -> str:
        """Index, write, then settle a new session of *user_id*.

        The index step lists the members it found, atomically with adding
        the new one: the due ones, to prune them, or with a session limit
        all of them, which are exactly the sessions created before this one.
        The settle step checks that no eviction or revocation marked the
        new session meanwhile; if one did, the session is ended at once and
        its id, returned all the same, does not validate.
        """
        index = self.keys.user_index(user_id)
        limit = self.max_sessions_per_user
        bound_ms = lifetime_ms if cap_ms is None else min(lifetime_ms, cap_ms)
        expiry_ms = bound_ms if idle_ms is None else min(bound_ms, idle_ms)
        for _ in range(3):
            new_id = self.id_policy.issue()
            opened = await self.store.index_update(
                index,
                add={new_id: PENDING_MS},
                keep_ms=bound_ms + SLACK_MS,
                list_limit=PRUNE_ON_TOUCH if limit is None else -1,
                due_only=limit is None,
            )
            if await self.store.session_create(
                self.keys.session(new_id), fields, lifetime_ms, idle_ms, cap_ms
            ):
                break
            await self.store.index_update(index, discard=[new_id])
        else:
            raise RuntimeError("three random session ids collided; the RNG is broken")

        verdict = await self._judge(user_id, opened.members, opened.now_ms)
        victims = [] if limit is None else _oldest_beyond(verdict, limit - 1)
        evicted = await self._evict(user_id, victims) if victims else []
        settled = await self.store.index_update(
            index,
            recheck={new_id: expiry_ms},
            recheck_due=verdict.recheck,
            discard=[*verdict.discard, *victims],
            marks_key=self.keys.user_marks(user_id),
            check=[new_id],
        )
        if settled.marked or settled.absent:
            await self.store.delete(self.keys.session(new_id))
            await self.store.index_update(index, discard=[new_id])
            logger.info(
                "session %s of user %s ended as it was created: a newer login"
                " or a revocation came first",
                fingerprint(new_id),
                fingerprint(user_id),
            )
            return new_id
        logger.info(
            "session created %s sandbox=%r user=%s",
            fingerprint(new_id),
            self.sandbox_id,
            fingerprint(user_id),
        )
        await self._emit("created", new_id, user_id)
        for member in evicted:
            await self._emit("evicted", member, user_id)
        await self._report_expired(user_id, verdict, settled.removed)
        return new_id

    async def _before_refresh(self, session_id: str, user_id: str, ms: int) -> None:
        """Make *user_id*'s index outlive a refresh by *ms*, before it happens.

        The member (if it is one) is also made due, so the next prune
        re-scores it from the refreshed record.
        """
        await self.store.index_update(
            self.keys.user_index(user_id),
            recheck={session_id: 0},
            keep_ms=ms + SLACK_MS,
        )

    async def _evict(self, user_id: str, victims: list[str]) -> list[str]:
        """Mark, then delete, *victims*; return those this call ended.

        Marking first makes a rotation of a victim, under way meanwhile,
        end its successor too (see :meth:`_rotate_indexed`).
        """
        await self.store.index_mark(
            self.keys.user_index(user_id),
            self.keys.user_marks(user_id),
            MARK_HOLD_MS,
            members=victims,
        )
        results = await self.store.session_delete_owned(
            [self.keys.session(v) for v in victims], user_id
        )
        evicted = [v for v, done in zip(victims, results, strict=True) if done]
        logger.info(
            "evicted %d sessions of user %s over the limit of %s",
            len(evicted),
            fingerprint(user_id),
            self.max_sessions_per_user,
        )
        return evicted

    # -- lifecycle: rotation ------------------------------------------------

    async def rotate_session(
        self, session_id: str, grace_seconds: float = 0
    ) -> str | None:
        """Give a live session a new id; return it, or ``None`` if not live.

        The new id carries the same user, custom metadata, creation time,
        deadline, hard cap and idle timeout; its idle timeout starts anew.
        The old id stops working at once, or after *grace_seconds* (its
        expiry shortened to that, never lengthened; nothing can lengthen it
        again). Writes made through the old id during its grace period are
        not carried over. Rotate after every privilege change (login, role
        change, password change), so that an id learnt before is useless.

        Each id is rotated once: rotating an id that was already rotated
        returns ``None`` (during its grace period, the old id still
        validates, but only its successor can be rotated again).

        The old id is ended first, then the new one is written: if a step
        fails, the caller gets the error and the user is logged out (fail
        closed), never left with two ids. A rotation that overlaps a
        :meth:`revoke_user_sessions` or an eviction covering the old id
        ends the new id too and returns ``None``.

        Args:
            grace_seconds: seconds the old id keeps working (0: none).

        Raises:
            InvalidTTLError: *grace_seconds* is negative, NaN or infinite.
            InvalidValueTypeError: *grace_seconds* is not a number.
            ProviderError: the store failed.
        """
        grace_ms = _grace_ms(grace_seconds, "grace_seconds")
        key = self._key(session_id)
        if key is None:
            return None
        return await self._rotate(str(session_id), key, grace_ms)

    async def _rotate(self, old_id: str, old_key: str, grace_ms: int) -> str | None:
        before = await self.store.session_retire(old_key, grace_ms)
        if before is None:
            return None
        fields = {n: v for n, v in before.fields.items() if n not in ("l", "t", "r")}
        user_id = fields.get("u")
        new_id = self.id_policy.issue()
        new_key = self.keys.session(new_id)

        if user_id is None:
            if not await self.store.session_clone(new_key, fields):
                return None
        elif not await self._rotate_indexed(
            user_id, old_id, new_id, fields, before, grace_ms
        ):
            return None

        logger.info(
            "session rotated %s -> %s (grace %d ms)",
            fingerprint(old_id),
            fingerprint(new_id),
            grace_ms,
        )
        await self._emit("rotated", old_id, user_id, new_id)
        return new_id

    async def _rotate_indexed(
        self,
        user_id: str,
        old_id: str,
        new_id: str,
        fields: dict[str, str],
        before: SessionRecord,
        grace_ms: int,
    ) -> bool:
        """Index, write and settle the successor of a user's retired session.

        The last step checks, in the index's slot, that the old id was
        still indexed and that neither id was marked revoked meanwhile;
        otherwise the new session is ended too.
        """
        index = self.keys.user_index(user_id)
        new_key = self.keys.session(new_id)
        await self.store.index_update(index, add={new_id: PENDING_MS})
        if not await self.store.session_clone(new_key, fields):
            await self.store.index_update(index, discard=[new_id])
            return False

        left_ms = max(0, int(fields["a"]) - before.now_ms)
        idle = fields.get("i")
        recheck = {new_id: left_ms if idle is None else min(left_ms, int(idle))}
        if grace_ms:
            recheck[old_id] = min(grace_ms, before.ttl_ms)
        settled = await self.store.index_update(
            index,
            recheck=recheck,
            discard=() if grace_ms else [old_id],
            keep_ms=left_ms + SLACK_MS,
            marks_key=self.keys.user_marks(user_id),
            check=[old_id, new_id],
        )
        if not (settled.marked or settled.absent):
            return True
        await self.store.delete(new_key)
        await self.store.index_update(index, discard=[new_id])
        logger.warning(
            "rotation of %s overlapped a revocation; the new id was ended too",
            fingerprint(old_id),
        )
        return False

    async def validate_and_renew(self, session_id: str) -> str | None:
        """Validate *session_id*; return the id to use from now on.

        ``None`` if the session is not live. Otherwise, like
        :meth:`validate_session` (one store step), plus: when the manager
        has ``renew_after`` and the id is at least that old, the session is
        rotated (old id kept for ``renew_grace`` seconds) and the new id is
        returned; send it to the client (e.g. a new cookie). An id already
        replaced by a rotation, still in its grace period, is returned as
        it is. :meth:`validate_session` keeps answering ``bool`` and never
        rotates.

        Raises:
            ProviderError: the store failed.
        """
        key = self._key(session_id)
        if key is None:
            logger.debug("malformed session id refused (%s)", _describe(session_id))
            return None
        record = await self.store.session_validate(key)
        if record is None:
            logger.debug("session not valid %s", fingerprint(str(session_id)))
            return None
        fields = record.fields
        if self._renew_ms is None or "r" in fields:
            return str(session_id)
        issued = int(fields.get("t", fields["c"]))
        if record.now_ms - issued < self._renew_ms:
            return str(session_id)
        new_id = await self._rotate(str(session_id), key, self._renew_grace_ms)
        if new_id is not None:
            return new_id
        # Another request rotated it first: the old id works until its grace ends.
        return str(session_id) if await self.store.session_touch(key) else None

    # -- lifecycle: the sessions of a user ----------------------------------

    async def list_user_sessions(self, user_id: str) -> list[SessionMetadata]:
        """Return the live sessions of *user_id* in this sandbox, newest first.

        Ids replaced by a rotation and still in their grace period are left
        out (their successors are listed). Costs O(the user's sessions):
        it reads the user's index and their records, and prunes the dead
        members it finds; reading does not count as an access.

        Raises:
            InvalidIdentifierError: a bad *user_id*.
            ProviderError: the store failed.
        """
        check_identifier("user_id", user_id)
        index = self.keys.user_index(user_id)
        state = await self.store.index_read(index)
        if not state.members:
            return []
        verdict = await self._judge(user_id, state.members, state.now_ms)
        if verdict.discard or verdict.recheck:
            settled = await self.store.index_update(
                index, discard=verdict.discard, recheck_due=verdict.recheck
            )
            await self._report_expired(user_id, verdict, settled.removed)
        sessions = [
            self._model(member, record)
            for member, record in verdict.live.items()
            if "r" not in record.fields
        ]
        sessions.sort(key=lambda s: (s.created_at, s.session_id), reverse=True)
        return sessions

    async def revoke_user_sessions(
        self, user_id: str, except_session_id: str | None = None
    ) -> int:
        """End every session of *user_id* in this sandbox; return how many.

        *except_session_id* (e.g. the current device's) is spared. Every
        session live when the call starts is ended, including ids in a
        rotation grace period, any successor a concurrent rotation creates
        from them, and any session whose creation had begun (its allocate
        returns an id that does not validate); a session whose creation
        begins after the first step survives. Every worker sees the result
        at once (no local cache).

        Three store steps: mark the user's sessions revoked (in the index's
        slot), delete their records, prune the index. If a step fails the
        caller gets the error; calling again finishes the job.

        Raises:
            InvalidIdentifierError: a bad *user_id*.
            InvalidValueTypeError: *except_session_id* is not a ``str``.
            ProviderError: the store failed.
        """
        check_identifier("user_id", user_id)
        if except_session_id is not None and not isinstance(except_session_id, str):
            raise InvalidValueTypeError("except_session_id", except_session_id, "str")
        index = self.keys.user_index(user_id)
        marked = await self.store.index_mark(
            index,
            self.keys.user_marks(user_id),
            MARK_HOLD_MS,
            keep=except_session_id,
        )
        if not marked.members:
            return 0
        targets = [member for member, _ in marked.members]
        results = await self.store.session_delete_owned(
            [self.keys.session(m) for m in targets], user_id
        )
        verdict = Verdict()
        revoked: list[str] = []
        for (member, score), result in zip(marked.members, results, strict=True):
            if result:
                revoked.append(member)
            if result is None and score <= marked.now_ms:
                verdict.expired.add(member)
            if result is not None or score <= marked.now_ms:
                verdict.discard.append(member)
        settled = await self.store.index_update(index, discard=verdict.discard)
        logger.info(
            "revoked %d sessions of user %s sandbox=%r",
            len(revoked),
            fingerprint(user_id),
            self.sandbox_id,
        )
        for member in revoked:
            await self._emit("revoked", member, user_id)
        await self._report_expired(user_id, verdict, settled.removed)
        return len(revoked)

    async def _judge(
        self, user_id: str, members: Sequence[tuple[str, int]], now_ms: int
    ) -> Verdict:
        """Read the records of index *members* and sort them out."""
        if not members:
            return Verdict()
        records = await self.store.session_read_many(
            [self.keys.session(m) for m, _ in members]
        )
        return _userindex.judge(members, records, user_id, now_ms)

    async def _report_expired(
        self, user_id: str, verdict: Verdict, removed: Sequence[str]
    ) -> None:
        """Tell hooks about the expired members this process took out."""
        gone = [m for m in removed if m in verdict.expired]
        if gone:
            logger.debug(
                "pruned %d expired sessions of user %s", len(gone), fingerprint(user_id)
            )
        for member in gone:
            await self._emit("expired", member, user_id)

    # -- lifecycle: operator cleanup ----------------------------------------

    async def cleanup_report(
        self,
        *,
        batch_size: int = BATCH,
        on_progress: ProgressCallback | None = None,
    ) -> CleanupReport:
        """Reclaim expired entries and prune this sandbox's user indexes.

        Walks the index keys in batches of *batch_size* (SCAN on Redis,
        never KEYS) and prunes each index of dead members, *batch_size*
        members per step, so no step blocks the store for long. After each
        batch of indexes, *on_progress* (a function or coroutine function)
        gets the counts so far. Safe to run from several processes at once.

        Indexes expire by themselves when their sessions have, so this is
        housekeeping: it keeps indexes of users who come back rarely small.

        Raises:
            ConfigurationError: *batch_size* is not a positive int.
            ProviderError: the store failed; what was pruned stays pruned.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise ConfigurationError("batch_size", batch_size, "must be an int")
        if batch_size < 1:
            raise ConfigurationError("batch_size", batch_size, "must be >= 1")
        started = time.perf_counter()
        reclaimed = await self.store.cleanup()
        scanned = pruned = rechecked = 0

        def so_far() -> CleanupReport:
            return CleanupReport(
                reclaimed=reclaimed,
                indexes_scanned=scanned,
                members_pruned=pruned,
                members_rechecked=rechecked,
                seconds=time.perf_counter() - started,
            )

        async for batch in self.store.iter_keys(
            self.keys.user_index_prefix, batch_size
        ):
            for key in batch:
                user_id = self.keys.user_of_index(key)
                if user_id is None:
                    continue
                scanned += 1
                removed, renewed = await self._prune_index(user_id, key, batch_size)
                pruned += removed
                rechecked += renewed
            if on_progress is not None:
                result = on_progress(so_far())
                if inspect.isawaitable(result):
                    await result
        report = so_far()
        logger.info(
            "cleanup sandbox=%r: %d reclaimed, %d index members pruned in %.3f s",
            self.sandbox_id,
            report.reclaimed,
            report.members_pruned,
            report.seconds,
        )
        return report

    async def _prune_index(self, user_id: str, key: str, batch: int) -> tuple[int, int]:
        """Prune the due members of one index; return (pruned, rechecked)."""
        pruned = rechecked = 0
        rounds = None
        while True:
            state = await self.store.index_read(key, due_only=True, limit=batch)
            if rounds is None:
                rounds = math.ceil(state.size / batch) + 1
            if not state.members:
                break
            verdict = await self._judge(user_id, state.members, state.now_ms)
            settled = await self.store.index_update(
                key, discard=verdict.discard, recheck_due=verdict.recheck
            )
            await self._report_expired(user_id, verdict, settled.removed)
            pruned += len(settled.removed)
            rechecked += len(verdict.recheck)
            rounds -= 1
            if len(state.members) < batch or rounds <= 0:
                break
        return pruned, rechecked

    def _model(self, session_id: str, record: SessionRecord) -> SessionMetadata:
        fields = record.fields
        idle = fields.get("i")
        deadline = int(fields["a"])
        expires = (
            deadline if idle is None else min(int(fields["l"]) + int(idle), deadline)
        )
        return SessionMetadata(
            session_id=session_id,
            sandbox_id=self.sandbox_id,
            user_id=fields.get("u"),
            created_at=utc_from_ms(int(fields["c"])),
            last_accessed=utc_from_ms(int(fields["l"])),
            expires_at=utc_from_ms(expires),
            absolute_expires_at=utc_from_ms(deadline),
            idle_timeout=None if idle is None else int(idle) / 1000,
            status=SessionStatus.ACTIVE,
            custom_metadata=decode_metadata(fields),
            max_expires_at=_utc_field(fields, "x"),
            rotated_at=_utc_field(fields, "r"),
        )


def _describe(value: object) -> str:
    """Say what a refused id looked like without logging it."""
    if isinstance(value, str):
        return f"str of length {len(value)}"
    return type(value).__name__


def _oldest_beyond(verdict: Verdict, keep: int) -> list[str]:
    """Return the sessions in *verdict* but the *keep* newest.

    Sessions still being written count as the newest (they were indexed
    last); live ones rank by creation time. Ids a rotation replaced are
    neither counted nor returned: they end within their grace period.
    """
    live = sorted(
        (
            (int(record.fields["c"]), member)
            for member, record in verdict.live.items()
            if "r" not in record.fields
        ),
        reverse=True,
    )
    ranked = [*verdict.pending, *(member for _, member in live)]
    return ranked[keep:]


def _utc_field(fields: Mapping[str, str], name: str) -> datetime | None:
    """Return the record time *name* as aware UTC, or ``None`` if absent."""
    value = fields.get(name)
    return None if value is None else utc_from_ms(int(value))


def _grace_ms(value: object, field: str) -> int:
    """Convert a grace period in seconds (0 allowed) to whole ms.

    Raises:
        InvalidValueTypeError: *value* is not an ``int`` or ``float``.
        InvalidTTLError: it is negative, NaN, infinite or too long.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValueTypeError(field, value, "a number of seconds")
    if value == 0:
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidTTLError(field, value, "must be a finite number")
    if value < 0 or value * _SECOND_MS > MAX_TTL_MS:
        raise InvalidTTLError(field, value, "must be 0 or a positive duration")
    return ttl_to_ms(value, field, _SECOND_MS)
