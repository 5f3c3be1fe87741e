"""``Session``: the lazy, dict-like view of one request's session.

Nothing is read from the store until the request asks for it with
:meth:`Session.load`, and nothing is written until the response starts;
then only the keys this request set or deleted reach the store, in one
atomic merge, so two concurrent requests that change different keys both
keep their changes.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from .._log import fingerprint, logger
from .._metadata import check_metadata_key, encode_metadata
from ..errors import SessionError

if TYPE_CHECKING:
    from ..manager import SessionManager

__all__ = ["Session", "SessionNotLoadedError"]


class SessionNotLoadedError(SessionError, RuntimeError):
    """A session was read before ``await session.load()``.

    Writes need no loading; reads do, since loading is a store round trip
    that a request which never reads its session should not pay for.
    """

    def __init__(self) -> None:
        super().__init__(
            "the session is not loaded: call `await request.session.load()`"
            " before reading it (writes need no loading)"
        )


class Session(MutableMapping[str, Any]):
    """One request's session: a dict of JSON values, loaded on demand.

    Reading (``session[k]``, ``get``, ``in``, iteration, ``len``) needs
    ``await session.load()`` first and raises :class:`SessionNotLoadedError`
    otherwise. Writing (``session[k] = v``, ``del session[k]``) needs no
    loading: the change is recorded and written when the response starts.
    A value that is not JSON raises
    :class:`~aiosessions.errors.InvalidMetadataError` at once.

    A request that writes nothing creates no session. A client's id that
    is unknown or expired is never adopted: a write gets a new session with
    a new id. :meth:`clear` ends the session (the store forgets it, the
    client is told to drop its id); :meth:`regenerate` moves the data to a
    new id, as after a login.
    """

    def __init__(self, manager: SessionManager, session_id: str | None) -> None:
        self._manager = manager
        self._incoming = session_id
        self._id = session_id
        self._verified = False  # the store said self._id is live, this request
        self._data: dict[str, Any] | None = None
        self._user_id: str | None = None
        self._changed: dict[str, Any] = {}
        self._removed: set[str] = set()
        self._ended: list[str] = []
        self._committed = False

    def __repr__(self) -> str:
        # Never the id itself: it is a bearer credential.
        state = "loaded" if self._data is not None else "not loaded"
        return (
            f"<Session {state}, id={'yes' if self._id else 'none'},"
            f" {len(self._changed)} changed, {len(self._removed)} removed>"
        )

    # -- identity ---------------------------------------------------------

    @property
    def id(self) -> str | None:
        """The session id the response will carry, or ``None``.

        Before :meth:`load` this is the client's id as sent, not yet checked.
        """
        return self._id

    @property
    def incoming_id(self) -> str | None:
        """The id the client sent (``None`` if it sent none)."""
        return self._incoming

    @property
    def user_id(self) -> str | None:
        """The user the session belongs to, once loaded (else ``None``)."""
        return self._user_id

    @property
    def is_loaded(self) -> bool:
        """Whether :meth:`load` has run (reads are allowed)."""
        return self._data is not None

    @property
    def is_new(self) -> bool:
        """Whether the response gives the client an id it did not send."""
        return self._id is not None and self._id != self._incoming

    @property
    def manager(self) -> SessionManager:
        """The manager this session lives in."""
        return self._manager

    # -- loading ----------------------------------------------------------

    async def load(self) -> Session:
        """Read the session from the store (once per request); return self.

        Loading validates the id, which records the access and slides the
        idle timeout. An unknown or expired id leaves an empty session with
        no id. Changes made before loading stay on top of what was read.

        Raises:
            ProviderError: the store failed.
        """
        if self._data is not None:
            return self
        stored: dict[str, Any] = {}
        if self._id is not None and await self._verify():
            metadata = await self._manager.get_session_metadata(self._id)
            if metadata is None:
                self._forget("gone while loading")
            else:
                stored = dict(metadata.custom_metadata)
                self._user_id = metadata.user_id
        for key in self._removed:
            stored.pop(key, None)
        stored.update(self._changed)
        self._data = stored
        return self

    async def _verify(self) -> bool:
        """Make sure ``self._id`` is live, once; forget it if it is not."""
        if self._id is None:
            return False
        if not self._verified:
            if not await self._manager.validate_session(self._id):
                self._forget("unknown or expired")
                return False
            self._verified = True
        return True

    def _forget(self, why: str) -> None:
        if self._id is not None:
            logger.info(
                "session id %s not used: %s; a write gets a new session",
                fingerprint(self._id),
                why,
            )
        self._id = None
        self._verified = False
        self._user_id = None

    def _loaded(self) -> dict[str, Any]:
        if self._data is None:
            raise SessionNotLoadedError()
        return self._data

    # -- the mapping ------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._loaded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def __contains__(self, key: object) -> bool:
        return key in self._loaded()

    def __setitem__(self, key: str, value: Any) -> None:
        self._check_open()
        encode_metadata({key: value})  # refuse a bad key or value here, not later
        self._changed[key] = value
        self._removed.discard(key)
        if self._data is not None:
            self._data[key] = value

    def __delitem__(self, key: str) -> None:
        """Delete *key*; before loading, whether it existed is not checked."""
        self._check_open()
        check_metadata_key(key)
        if self._data is not None:
            del self._data[key]  # KeyError, as a dict would
        self._changed.pop(key, None)
        self._removed.add(key)

    def clear(self) -> None:
        """End the session: the store forgets it when the response starts.

        The client is told to drop its id. Writes made afterwards in the
        same request start a new session with a new id.
        """
        self._check_open()
        if self._id is not None:
            self._ended.append(self._id)
        self._id = None
        self._verified = False
        self._user_id = None
        self._data = {}
        self._changed.clear()
        self._removed.clear()

    # -- rotation ---------------------------------------------------------

    async def regenerate(self, *, user_id: str | None = None) -> str | None:
        """Move the session to a new id at once; the old id stops working.

        Call it when privileges change (log in, sudo) so that an id planted
        by an attacker before the change is worthless after it.

        Without *user_id* the session keeps its owner and data, rotated in
        one atomic step. With *user_id* (a login) the new session belongs to
        that user: it carries the data of an anonymous session over (a
        shopping cart survives the login), but not that of another user's
        session, which is ended.

        Returns the new id, or ``None`` if there was no live session and no
        *user_id* (a later write creates one with a new id anyway).

        Raises:
            InvalidIdentifierError: *user_id* is not usable.
            ProviderError: the store failed.
        """
        self._check_open()
        if user_id is None:
            return await self._rotate()

        await self.load()
        old, owner = self._id, self._user_id
        if old is not None and owner == user_id:
            return await self._rotate()
        data = self._loaded() if owner is None else {}
        new = await self._manager.allocate_session(
            user_id=user_id, custom_metadata=data
        )
        if old is not None:
            await self._manager.delete_session(old)

        self._id, self._verified, self._user_id = new, True, user_id
        self._data = dict(data)
        self._changed.clear()
        self._removed.clear()
        logger.info(
            "session %s -> %s for a signed-in user",
            fingerprint(old) if old else "none",
            fingerprint(new),
        )
        return new

    async def _rotate(self) -> str | None:
        if not await self._verify():
            return None
        assert self._id is not None
        old = self._id
        new = await self._manager.rotate_session(old)
        if new is None:
            self._forget("gone before rotation")
            return None
        self._id = new
        logger.info("session rotated %s -> %s", fingerprint(old), fingerprint(new))
        return new

    # -- CSRF -------------------------------------------------------------

    async def csrf_token(self) -> str:
        """Return a CSRF token bound to this session, for a form or header.

        A token needs a session: if there is none yet, one is created now
        (empty, anonymous). Tokens stop working when the session ends or
        is regenerated, so render them after any :meth:`regenerate`.

        Raises:
            ConfigurationError: the manager has no secret key.
            ProviderError: the store failed.
        """
        self._check_open()
        if await self._verify():
            assert self._id is not None
            session_id = self._id
        else:
            session_id = self._id = await self._manager.allocate_session()
            self._verified = True
        return self._manager.csrf_token(session_id)

    # -- writing ----------------------------------------------------------

    def _check_open(self) -> None:
        if self._committed:
            raise RuntimeError(
                "the session was changed after the response started; the"
                " change would be lost: change it before returning the response"
            )

    async def commit(self) -> None:
        """Write this request's changes; the middleware calls it once.

        Ended sessions are deleted; changed keys are merged into the live
        session (removed keys deleted in the same step), or, when there is
        none, a new session is created holding them.

        Raises:
            ProviderError: the store failed; the response should fail too.
        """
        self._committed = True
        for ended in self._ended:
            await self._manager.delete_session(ended)
            logger.info("session ended %s", fingerprint(ended))
        if not self._changed and not self._removed:
            return
        if await self._verify():
            assert self._id is not None
            if await self._manager.update_session_metadata(
                self._id, self._changed, remove=self._removed
            ):
                return
            self._forget("gone before the write")
        if self._changed:
            self._id = await self._manager.allocate_session(
                custom_metadata=self._changed
            )
            self._verified = True
