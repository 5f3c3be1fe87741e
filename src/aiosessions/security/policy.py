"""How a manager issues session ids and checks the ones that come back.

Without a secret key an id is 192 random bits (:func:`generate_session_id`)
and the check is on its shape. With one, the id also carries a tag::

    <32 random base64url characters>.<22-character tag>

where the tag is HMAC-SHA256 over the sandbox and the random part, cut to
128 bits. A forged or guessed id, or one issued for another sandbox, fails
the check in the process, before any store call: each guess costs one HMAC,
never a round trip to the store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from .._log import logger
from .ids import generate_session_id, looks_like_session_id
from .keyring import KeyRing

__all__ = ["SessionIdPolicy"]

_RANDOM_LENGTH = 32  # what generate_session_id returns
_TAG_BYTES = 16
_TAG_LENGTH = 22  # base64 of 16 bytes, padding dropped
_SIGNED_SHAPE = re.compile(r"[A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{22}")
_SIGNED_LENGTH = _RANDOM_LENGTH + 1 + _TAG_LENGTH


class SessionIdPolicy:
    """Issue session ids for one sandbox, and recognise them on the way back.

    Args:
        sandbox_id: the tenant the ids are bound to.
        keys: with a :class:`KeyRing`, ids are signed with its first key and
            checked against all of them; ``None`` gives unsigned ids.
    """

    __slots__ = ("_binding", "_subkeys", "keys", "sandbox_id")

    def __init__(self, sandbox_id: str, keys: KeyRing | None = None) -> None:
        self.sandbox_id = sandbox_id
        self.keys = keys
        self._subkeys = () if keys is None else keys.derive("session-id")
        sandbox = sandbox_id.encode("utf-8", "surrogatepass")
        # The length comes first so that no sandbox name can end where
        # another one's id begins.
        self._binding = len(sandbox).to_bytes(4, "big") + sandbox

    def __repr__(self) -> str:
        return f"SessionIdPolicy(sandbox_id={self.sandbox_id!r}, signed={self.signed})"

    @property
    def signed(self) -> bool:
        """Whether ids carry a keyed tag."""
        return self.keys is not None

    def _tag(self, subkey: bytes, random_part: str) -> str:
        mac = hmac.new(subkey, self._binding + random_part.encode(), hashlib.sha256)
        tag = base64.urlsafe_b64encode(mac.digest()[:_TAG_BYTES])
        return tag.decode("ascii")[:_TAG_LENGTH]

    def issue(self) -> str:
        """Return a new id for this sandbox (signed with the newest key)."""
        random_part = generate_session_id()
        if not self._subkeys:
            return random_part
        return f"{random_part}.{self._tag(self._subkeys[0], random_part)}"

    def check(self, value: object) -> bool:
        """Return whether *value* is an id this policy could have issued.

        Never raises, whatever *value* is, and never asks the store: a
        ``True`` answer says nothing about whether the session is live.
        """
        if not self._subkeys:
            return looks_like_session_id(value)
        if (
            not isinstance(value, str)
            or len(value) != _SIGNED_LENGTH
            or _SIGNED_SHAPE.fullmatch(value) is None
        ):
            return False

        random_part, tag = value[:_RANDOM_LENGTH], value[_RANDOM_LENGTH + 1 :]
        # Every key is tried, so the time taken does not say which one matched.
        matched = False
        for subkey in self._subkeys:
            matched |= hmac.compare_digest(self._tag(subkey, random_part), tag)
        if not matched:
            logger.warning(
                "session id with a bad signature refused (sandbox=%r): forged,"
                " issued for another sandbox, or signed by a retired key",
                self.sandbox_id,
            )
        return matched
