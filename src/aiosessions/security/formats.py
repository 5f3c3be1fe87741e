"""Id formats: an alphabet, a prefix, and characters drawn uniformly.

:class:`IdFormat` describes a format made of random characters; the ``uuid``
format, made of version 4 UUIDs, has helpers of its own. Every format holds
between :data:`MIN_ENTROPY_BITS` and :data:`MAX_ENTROPY_BITS` random bits,
all from :mod:`secrets`.
"""

from __future__ import annotations

import math
import re
import secrets
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from ..enums import ProtocolType
from ..errors import InvalidInputError, InvalidValueTypeError

__all__ = [
    "BASE62",
    "BASE64URL",
    "CROCKFORD32",
    "FORMATS",
    "MAX_ENTROPY_BITS",
    "MIN_ENTROPY_BITS",
    "UUID_BITS",
    "VISIBLE_ASCII",
    "IdFormat",
    "uuid_count",
    "uuid_id",
]

MIN_ENTROPY_BITS = 128
"""Fewest random bits in any id."""

MAX_ENTROPY_BITS = 1024
"""Most random bits an id may be asked for."""

BASE64URL = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
CROCKFORD32 = "0123456789abcdefghjkmnpqrstvwxyz"
VISIBLE_ASCII = "".join(chr(code) for code in range(0x21, 0x7F))

UUID_BITS = 122
"""Random bits in a version 4 UUID (6 of its 128 bits are fixed)."""

_MAX_PREFIX = 32
_UUID_SEPARATOR = "_"
_UUID_STEP = 37  # 36 characters of a UUID, then the separator
_UUID4 = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
)


# -- drawing characters -------------------------------------------------------


def _chars_for(bits: int, size: int) -> int:
    """Return the fewest characters of a *size*-letter alphabet holding *bits*."""
    # Integers, not logarithms: floating point could be one character off.
    count, reach, goal = 1, size, 2**bits
    while reach < goal:
        count += 1
        reach *= size
    return count


@lru_cache(maxsize=32)
def _tables(alphabet: str) -> tuple[bytes, bytes]:
    size = len(alphabet)
    usable = 256 - 256 % size
    table = bytes(ord(alphabet[byte % size]) for byte in range(256))
    return table, bytes(range(usable, 256))


def _draw(alphabet: str, count: int) -> str:
    """Return *count* characters of *alphabet*, each uniform and independent.

    Random bytes at or above the largest multiple of the alphabet's size are
    dropped rather than folded in, which would favour the first characters.
    """
    table, dropped = _tables(alphabet)
    drawn = b""
    while len(drawn) < count:
        drawn += secrets.token_bytes(2 * (count - len(drawn))).translate(table, dropped)
    return drawn[:count].decode("ascii")


# -- formats ------------------------------------------------------------------


@dataclass(frozen=True)
class IdFormat:
    """The shape of an id: an optional prefix, then random characters.

    Args:
        alphabet: the characters to draw from: at least 2, all different,
            all visible ASCII (0x21-0x7E).
        prefix: fixed text before the random part (visible ASCII, at most
            32 characters); it adds no entropy.
        length: the number of random characters, fixed; it must hold at
            least 128 bits. ``None``: as many as the entropy asked for
            needs.

    Raises:
        InvalidInputError: one of the above does not hold.
        InvalidValueTypeError: an argument has the wrong type.
    """

    alphabet: str
    prefix: str = ""
    length: int | None = None
    _chars: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.alphabet, str):
            raise InvalidValueTypeError("alphabet", self.alphabet, "str")
        if not isinstance(self.prefix, str):
            raise InvalidValueTypeError("prefix", self.prefix, "str")
        if len(set(self.alphabet)) != len(self.alphabet):
            raise InvalidInputError(
                "alphabet", self.alphabet, "characters must all be different"
            )
        if len(self.alphabet) < 2 or not set(self.alphabet) <= set(VISIBLE_ASCII):
            raise InvalidInputError(
                "alphabet",
                self.alphabet,
                "needs at least 2 characters, all visible ASCII (0x21-0x7E)",
            )
        if len(self.prefix) > _MAX_PREFIX or not set(self.prefix) <= set(VISIBLE_ASCII):
            raise InvalidInputError(
                "prefix",
                self.prefix,
                f"at most {_MAX_PREFIX} characters, all visible ASCII (0x21-0x7E)",
            )
        if self.length is not None:
            self._check_length(self.length)
        object.__setattr__(self, "_chars", frozenset(self.alphabet))

    def _check_length(self, length: object) -> None:
        if isinstance(length, bool) or not isinstance(length, int):
            raise InvalidValueTypeError("length", length, "an int or None")
        if not self.min_length <= length <= self.max_length:
            raise InvalidInputError(
                "length",
                length,
                f"{length} characters of a {len(self.alphabet)}-letter alphabet"
                f" must hold {MIN_ENTROPY_BITS} to {MAX_ENTROPY_BITS} bits:"
                f" use {self.min_length} to {self.max_length}",
            )

    @cached_property
    def min_length(self) -> int:
        """Fewest random characters accepted (they hold 128 bits)."""
        return _chars_for(MIN_ENTROPY_BITS, len(self.alphabet))

    @cached_property
    def max_length(self) -> int:
        """Most random characters accepted (they hold 1024 bits)."""
        return _chars_for(MAX_ENTROPY_BITS, len(self.alphabet))

    @property
    def bits_per_char(self) -> float:
        """Entropy of one random character, in bits."""
        return math.log2(len(self.alphabet))

    def generate(self, bits: int = MIN_ENTROPY_BITS) -> str:
        """Return a new id holding at least *bits* random bits.

        Raises:
            InvalidInputError: the fixed ``length`` holds fewer than *bits*.
        """
        needed = _chars_for(bits, len(self.alphabet))
        if self.length is not None and self.length < needed:
            raise InvalidInputError(
                "entropy_bits",
                bits,
                f"the format's {self.length} characters hold only"
                f" {self.length * self.bits_per_char:.0f} bits",
            )
        return self.prefix + _draw(self.alphabet, self.length or needed)

    def matches(self, value: object) -> bool:
        """Return whether *value* is an id of this format (never raises)."""
        if not isinstance(value, str) or not value.startswith(self.prefix):
            return False
        size = len(value) - len(self.prefix)
        if self.length is None:
            if not self.min_length <= size <= self.max_length:
                return False
        elif size != self.length:
            return False
        return self._chars.issuperset(value[len(self.prefix) :])

    def entropy(self, value: str) -> float:
        """Return the random bits in *value*, an id that :meth:`matches`."""
        return (len(value) - len(self.prefix)) * self.bits_per_char


FORMATS: Mapping[ProtocolType, IdFormat] = {
    ProtocolType.GENERIC: IdFormat(BASE64URL),
    ProtocolType.HTTP: IdFormat(BASE64URL),
    ProtocolType.WEBSOCKET: IdFormat(BASE64URL),
    ProtocolType.MCP: IdFormat(BASE64URL),
    ProtocolType.JWT: IdFormat(BASE64URL),
    ProtocolType.API_KEY: IdFormat(BASE62, prefix="ak_"),
    ProtocolType.TEMP_TOKEN: IdFormat(CROCKFORD32, prefix="tt_"),
}
"""The built-in formats made of random characters: all but ``uuid``."""


def uuid_id(bits: int) -> str:
    """Return a ``uuid``-format id: enough version 4 UUIDs for *bits*, two at least."""
    count = max(2, math.ceil(bits / UUID_BITS))
    parts = (uuid.UUID(bytes=secrets.token_bytes(16), version=4) for _ in range(count))
    return _UUID_SEPARATOR.join(str(part) for part in parts)


_MAX_UUIDS = math.ceil(MAX_ENTROPY_BITS / UUID_BITS)


def uuid_count(value: str) -> int:
    """Return how many UUIDs a ``uuid``-format id holds, 0 if it is not one."""
    size = len(value) + 1
    if not 2 <= size // _UUID_STEP <= _MAX_UUIDS or size % _UUID_STEP:
        return 0
    parts = value.split(_UUID_SEPARATOR)
    if len(parts) != size // _UUID_STEP:
        return 0
    if all(_UUID4.fullmatch(part) for part in parts):
        return len(parts)
    return 0
