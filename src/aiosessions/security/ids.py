"""Session ids: unguessable, meaningless, and checked for shape on the way in.

An id is 32 characters of the URL-safe base64 alphabet drawn from
:mod:`secrets`: 192 bits, no user name, no timestamp. Any string that is not
of that shape is refused before the store is asked about it, so a huge or
hostile id costs nothing.
"""

from __future__ import annotations

import re
import secrets

__all__ = ["SESSION_ID_BYTES", "generate_session_id", "looks_like_session_id"]

SESSION_ID_BYTES = 24
"""Random bytes in a session id (192 bits)."""

_ID_LENGTH = 32  # base64 of 24 bytes, no padding
_ID_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{{_ID_LENGTH}}}")


def generate_session_id() -> str:
    """Return a new session id: 192 random bits, URL-safe, 32 characters."""
    return secrets.token_urlsafe(SESSION_ID_BYTES)


def looks_like_session_id(value: object) -> bool:
    """Return whether *value* has the shape of an id this library issues.

    A ``True`` answer says nothing about whether the session exists.
    """
    return (
        isinstance(value, str)
        and len(value) == _ID_LENGTH
        and _ID_SHAPE.fullmatch(value) is not None
    )
