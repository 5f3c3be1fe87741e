"""``SessionManager``: the lifecycle of sessions of one tenant.

Each public call is one atomic step in the store (one round trip on Redis).
There is no process-local cache: a session deleted by one worker is gone
for every worker at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._log import fingerprint, logger
from ._metadata import check_metadata_key, decode_metadata, encode_metadata
from .enums import SessionStatus
from .errors import ConfigurationError, InvalidInputError, InvalidValueTypeError
from .keys import DEFAULT_PREFIX, KeySpace, check_identifier
from .models import SessionMetadata, utc_from_ms
from .security.csrf import DEFAULT_MAX_AGE, generate_csrf_token, validate_csrf_token
from .security.keyring import ENV_VAR, KeyRing
from .security.policy import SessionIdPolicy
from .stores.base import INT64_MAX, INT64_MIN, SessionRecord, Store, ttl_to_ms
from .stores.factory import get_default_store

__all__ = ["SessionManager"]

_HOUR_MS = 3_600_000
_SECOND_MS = 1000


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

    Raises:
        InvalidIdentifierError: *sandbox_id* is empty, too long or holds
            control characters.
        InvalidTTLError: a duration is not positive and finite.
        ConfigurationError: *secret_key* holds no usable key.
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
    ) -> str:
        """Return the id of a live session, creating one when needed.

        If *session_id* names a live session of this sandbox that belongs
        to *user_id* (or to nobody, when *user_id* is ``None``), its
        lifetime restarts at *ttl_hours* and, when given, *custom_metadata*
        is merged in; the same id is returned. Anything else (an unknown,
        expired or foreign id, or a different user) gets a new session with
        a new id: an id chosen by a client is never adopted.

        Args:
            ttl_hours: lifetime in hours; default: ``default_ttl_hours``.

        Raises:
            InvalidInputError: a bad *user_id*, *ttl_hours* or metadata;
                nothing is written.
            ProviderError: the store failed.
        """
        lifetime_ms = (
            self._lifetime_ms
            if ttl_hours is None
            else ttl_to_ms(ttl_hours, "ttl_hours", _HOUR_MS)
        )
        if user_id is not None:
            check_identifier("user_id", user_id)
        fields = encode_metadata(custom_metadata or {})

        key = self._key(session_id)
        if key is not None and await self.store.session_touch(
            key, lifetime_ms, user_id, fields
        ):
            logger.debug("session refreshed %s", fingerprint(str(session_id)))
            return str(session_id)

        if user_id is not None:
            fields["u"] = user_id
        for _ in range(3):
            new_id = self.id_policy.issue()
            if await self.store.session_create(
                self.keys.session(new_id),
                fields,
                lifetime_ms,
                self._idle_ms,
                self._cap_ms,
            ):
                logger.info(
                    "session created %s sandbox=%r",
                    fingerprint(new_id),
                    self.sandbox_id,
                )
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
        """
        add_ms = ttl_to_ms(additional_hours, "additional_hours", _HOUR_MS)
        key = self._key(session_id)
        if key is None:
            return False
        left = await self.store.session_extend(key, add_ms)
        if left is None:
            return False
        logger.info("session extended %s", fingerprint(str(session_id)))
        return True

    async def delete_session(self, session_id: str) -> bool:
        """End the session at once; return whether it was live."""
        key = self._key(session_id)
        if key is None:
            return False
        deleted = await self.store.delete(key)
        if deleted:
            logger.info("session deleted %s", fingerprint(str(session_id)))
        return deleted

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

    async def cleanup_expired_sessions(self) -> int:
        """Reclaim expired entries now; return how many were reclaimed.

        Expiry needs no help (Redis expires keys itself, and the memory
        store reclaims as it goes); this is for operators and tests.
        """
        return await self.store.cleanup()

    async def get_cache_stats(self) -> dict[str, Any]:
        """Return counts for this sandbox, JSON-safe.

        ``cache_size`` is always 0: there is no local cache to go stale.
        Counting scans this sandbox's keys, so it costs O(keys).
        """
        return {
            "sandbox_id": self.sandbox_id,
            "store": self.store.describe(),
            "active_sessions": await self.store.count(self.keys.session_prefix),
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
        )


def _describe(value: object) -> str:
    """Say what a refused id looked like without logging it."""
    if isinstance(value, str):
        return f"str of length {len(value)}"
    return type(value).__name__
