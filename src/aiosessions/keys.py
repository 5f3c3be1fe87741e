"""How sandboxes, users and session ids become store keys.

Tenant isolation lives here. Every manager key has the form::

    <prefix>:s:<sandbox>:{<session id>}

The sandbox is percent-encoded, so no sandbox string can contain the ``:``
that ends it, a glob character that widens a SCAN, or a brace that changes
a Redis Cluster hash slot; two different sandboxes never share a key. The
session id sits in the hash tag, so a tenant's sessions spread over the
cluster while each session's keys stay in one slot.

A user's index of sessions and its revocation marks are::

    <prefix>:u:<sandbox>:{<user>}       <prefix>:r:<sandbox>:{<user>}

with the user percent-encoded too, so both share one hash slot (scripts
may touch them together) and no user string can reach another user's keys.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import quote, unquote

from .errors import InvalidIdentifierError, InvalidValueTypeError

__all__ = [
    "DEFAULT_PREFIX",
    "MAX_IDENTIFIER_LENGTH",
    "KeySpace",
    "check_identifier",
    "check_key_prefix",
]

DEFAULT_PREFIX = "aiosessions"
MAX_IDENTIFIER_LENGTH = 256
"""Longest sandbox or user id accepted, in characters."""


def check_identifier(field: str, value: object) -> str:
    """Return *value* if it is a usable sandbox or user id.

    Raises:
        InvalidValueTypeError: *value* is not a ``str``.
        InvalidIdentifierError: it is empty, longer than
            :data:`MAX_IDENTIFIER_LENGTH`, or holds control characters.
    """
    if not isinstance(value, str):
        raise InvalidValueTypeError(field, value, "str")
    if not value:
        raise InvalidIdentifierError(field, value, "must not be empty")
    if len(value) > MAX_IDENTIFIER_LENGTH:
        raise InvalidIdentifierError(
            field, value, f"longer than {MAX_IDENTIFIER_LENGTH} characters"
        )
    if value.isprintable():
        return value  # no character of category C (nor any separator)
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        raise InvalidIdentifierError(
            field, value, "control, format or unassigned characters are not allowed"
        )
    return value


_PREFIX_SHAPE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def check_key_prefix(prefix: object, field: str = "key_prefix") -> str:
    """Return *prefix* if it can start store keys.

    A prefix is 1 to 64 characters of ``A-Z a-z 0-9 _ . -``: with no ``:``
    it cannot reach into the key range of another prefix or sandbox, and
    with no glob or brace it cannot widen a scan or move a hash slot.

    Raises:
        InvalidValueTypeError: *prefix* is not a ``str``.
        InvalidIdentifierError: it has another shape.
    """
    if not isinstance(prefix, str):
        raise InvalidValueTypeError(field, prefix, "str")
    if _PREFIX_SHAPE.fullmatch(prefix) is None:
        raise InvalidIdentifierError(
            field, prefix, "use 1 to 64 characters of A-Z a-z 0-9 _ . -"
        )
    return prefix


def encode(value: str) -> str:
    """Percent-encode everything but ``A-Z a-z 0-9 _ . - ~`` (injective)."""
    return quote(value, safe="", errors="strict")


@dataclass(frozen=True)
class KeySpace:
    """The keys of one sandbox."""

    sandbox_id: str
    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        check_identifier("sandbox_id", self.sandbox_id)
        check_key_prefix(self.prefix)

    @cached_property
    def session_prefix(self) -> str:
        """Common start of every session key of this sandbox."""
        return f"{self.prefix}:s:{encode(self.sandbox_id)}:"

    def session(self, session_id: str) -> str:
        """Return the key of a session id that already passed the shape check."""
        return f"{self.session_prefix}{{{session_id}}}"

    def session_pattern(self) -> str:
        """Return a SCAN pattern matching every session key of this sandbox."""
        return f"{glob_escape(self.session_prefix)}*"

    @cached_property
    def user_index_prefix(self) -> str:
        """Common start of every user index key of this sandbox."""
        return f"{self.prefix}:u:{encode(self.sandbox_id)}:"

    def user_index(self, user_id: str) -> str:
        """Return the key of the index of *user_id*'s sessions."""
        return f"{self.user_index_prefix}{{{encode(user_id)}}}"

    @cached_property
    def user_marks_prefix(self) -> str:
        """Common start of every revocation marks key of this sandbox."""
        return f"{self.prefix}:r:{encode(self.sandbox_id)}:"

    def user_marks(self, user_id: str) -> str:
        """Return the key of *user_id*'s revocation marks (same hash slot)."""
        return f"{self.user_marks_prefix}{{{encode(user_id)}}}"

    def user_of_index(self, key: str) -> str | None:
        """Return the user whose index *key* is, or ``None`` if it is not one."""
        prefix = self.user_index_prefix
        if not (key.startswith(prefix + "{") and key.endswith("}")):
            return None
        encoded = key[len(prefix) + 1 : -1]
        user_id = unquote(encoded, errors="strict")
        return user_id if encode(user_id) == encoded else None


def glob_escape(value: str) -> str:
    """Escape the characters that Redis's glob patterns give meaning to."""
    return "".join(f"\\{ch}" if ch in "*?[]\\^-" else ch for ch in value)
