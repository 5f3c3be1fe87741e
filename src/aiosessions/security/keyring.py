"""Secret keys, with rotation: the first key signs, every key verifies.

A :class:`KeyRing` never shows its keys: not in ``repr``, not in errors, not
in logs. Each use of a key (session ids, CSRF tokens...) gets its own subkey,
``HMAC-SHA256(key, purpose)``, so a tag made for one purpose is never valid
for another.

``SESSION_SECRET_KEY`` holds one key, or several separated by commas, newest
first (so a key cannot contain a comma). It is read when a key is first
needed, never at import.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from typing import TypeAlias

from ..errors import ConfigurationError

__all__ = ["ENV_VAR", "MIN_SECRET_BYTES", "KeyRing", "Secret", "SecretKeys"]

ENV_VAR = "SESSION_SECRET_KEY"

MIN_SECRET_BYTES = 32
"""Shortest key accepted, in bytes (UTF-8 for a ``str``)."""

_MAX_KEYS = 16
_HINT = (
    f"use at least {MIN_SECRET_BYTES} random bytes, e.g. the output of"
    ' python -c "import secrets; print(secrets.token_urlsafe(32))"'
)

Secret: TypeAlias = str | bytes
SecretKeys: TypeAlias = str | bytes | Sequence[str | bytes]
"""One key, or several newest first."""


def _redacted(count: int) -> str:
    return f"<{count} secret key{'s' if count != 1 else ''}, redacted>"


def _as_bytes(key: object, name: str, count: int) -> bytes:
    if isinstance(key, str):
        raw = key.encode("utf-8", "surrogatepass")
    elif isinstance(key, (bytes, bytearray, memoryview)):
        raw = bytes(key)
    else:
        raise ConfigurationError(
            name,
            _redacted(count),
            f"a key must be str or bytes, not {type(key).__name__}",
        )
    if not raw:
        raise ConfigurationError(name, _redacted(count), f"a key is empty; {_HINT}")
    if len(raw) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            name,
            _redacted(count),
            f"a key is shorter than {MIN_SECRET_BYTES} bytes; {_HINT}",
        )
    return raw


class KeyRing:
    """Secret keys, newest first: the first signs, all of them verify.

    Args:
        keys: one key (``str`` or ``bytes``) or a sequence of them.
        name: what to call the keys in error messages (an argument or
            environment variable name).

    Raises:
        ConfigurationError: no key, more than 16, a key that is not ``str``
            or ``bytes``, or one shorter than :data:`MIN_SECRET_BYTES`. The
            message never shows a key.
    """

    __slots__ = ("_derived", "_keys")

    def __init__(self, keys: object, *, name: str = "secret_key") -> None:
        if isinstance(keys, (str, bytes, bytearray, memoryview)):
            items: list[object] = [keys]
        elif isinstance(keys, Sequence):
            items = list(keys)
        else:
            raise ConfigurationError(
                name,
                _redacted(1),
                f"expected str, bytes or a list, not {type(keys).__name__}",
            )
        if not items:
            raise ConfigurationError(name, _redacted(0), f"no key given; {_HINT}")
        if len(items) > _MAX_KEYS:
            raise ConfigurationError(
                name, _redacted(len(items)), f"more than {_MAX_KEYS} keys"
            )

        self._keys = tuple(_as_bytes(key, name, len(items)) for key in items)
        self._derived: dict[str, tuple[bytes, ...]] = {}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KeyRing | None:
        """Return the keys in ``SESSION_SECRET_KEY``, or ``None`` if unset.

        Several keys are separated by commas, newest first; blanks around
        them are ignored.

        Raises:
            ConfigurationError: the variable is set but a key is unusable.
        """
        env = os.environ if environ is None else environ
        raw = env.get(ENV_VAR, "")
        keys = [part.strip() for part in raw.split(",") if part.strip()]
        if not keys:
            return None
        return cls(keys, name=ENV_VAR)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing({_redacted(len(self._keys))})"

    def derive(self, purpose: str) -> tuple[bytes, ...]:
        """Return one 32-byte subkey per key for *purpose*, newest first."""
        subkeys = self._derived.get(purpose)
        if subkeys is None:
            label = f"aiosessions/v1/{purpose}".encode()
            subkeys = tuple(
                hmac.new(key, label, hashlib.sha256).digest() for key in self._keys
            )
            self._derived[purpose] = subkeys
        return subkeys

    def raw(self) -> tuple[bytes, ...]:
        """Return the keys themselves, newest first (for key derivation)."""
        return self._keys
