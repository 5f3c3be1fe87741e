"""Session ids: unguessable, meaningless, and checked for shape on the way in.

The manager's own ids (:func:`generate_session_id`) are 32 characters of the
URL-safe base64 alphabet drawn from :mod:`secrets`: 192 bits, no user name,
no timestamp. Any string that is not of that shape is refused before the
store is asked about it, so a huge or hostile id costs nothing.

:func:`generate_secure_session_id` draws ids for other transports. Every
format holds at least :data:`MIN_ENTROPY_BITS` (128) bits from
:mod:`secrets`; the lengths below are for that default.

==============  ===============================================  ====  =====
format          shape                                            len   bits
==============  ===============================================  ====  =====
``generic``     base64url (``A-Z a-z 0-9 - _``)                   22   132
``http``        base64url: a cookie-octet and a token68            22   132
``websocket``   base64url: safe in a query string and a            22   132
                ``Sec-WebSocket-Protocol`` token
``mcp``         base64url: visible ASCII only, as the              22   132
                ``Mcp-Session-Id`` header requires
``jwt``         base64url, for a ``jti`` claim                     22   132
``uuid``        two RFC 4122 version 4 UUIDs joined by ``_``       73   244
``api_key``     ``ak_`` then base62: no ``-`` or ``_``, so a       25   130
                double click selects the whole key, and the
                prefix lets secret scanners spot a leaked key
``temp_token``  ``tt_`` then Crockford base32 (lowercase): no      29   130
                look-alike characters, read back from any case
==============  ===============================================  ====  =====

A version 4 UUID holds only 122 random bits, so the ``uuid`` format joins
two of them (more when more bits are asked for): each part still parses as
a UUID, and together they clear 128 bits.

Ids never carry their creation time: it tells an attacker when the session
began and adds nothing an attacker has to guess. The session's metadata
holds the creation time instead.
"""

from __future__ import annotations

import math
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from ..enums import ProtocolType
from ..errors import InvalidInputError, InvalidValueTypeError
from .formats import (
    BASE62,
    BASE64URL,
    CROCKFORD32,
    FORMATS,
    MAX_ENTROPY_BITS,
    MIN_ENTROPY_BITS,
    UUID_BITS,
    VISIBLE_ASCII,
    IdFormat,
    uuid_count,
    uuid_id,
)

__all__ = [
    "BASE62",
    "BASE64URL",
    "CROCKFORD32",
    "MAX_ENTROPY_BITS",
    "MIN_ENTROPY_BITS",
    "MIN_REQUEST_BITS",
    "SESSION_ID_BYTES",
    "IdFormat",
    "IdStrength",
    "analyze_session_id_strength",
    "estimate_entropy",
    "generate_secure_session_id",
    "generate_session_id",
    "looks_like_session_id",
    "validate_session_id_format",
]

SESSION_ID_BYTES = 24
"""Random bytes in a session id (192 bits)."""

MIN_REQUEST_BITS = 64
"""Asking for fewer bits than this is an error, not a request to round up."""

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


def _protocol(protocol: object) -> ProtocolType:
    if isinstance(protocol, ProtocolType):
        return protocol
    try:
        return ProtocolType(protocol)
    except ValueError:
        choices = ", ".join(member.value for member in ProtocolType)
        raise InvalidInputError(
            "protocol", protocol, f"unknown format; choose one of: {choices}"
        ) from None


def _format_for(protocol: object, custom_format: object) -> IdFormat | None:
    """Return the format to use; ``None`` stands for the ``uuid`` format."""
    if custom_format is not None:
        if not isinstance(custom_format, IdFormat):
            raise InvalidValueTypeError("custom_format", custom_format, "an IdFormat")
        return custom_format
    kind = _protocol(protocol)
    return None if kind is ProtocolType.UUID else FORMATS[kind]


def _requested_bits(entropy_bits: object) -> int:
    if entropy_bits is None:
        return MIN_ENTROPY_BITS
    if isinstance(entropy_bits, bool) or not isinstance(entropy_bits, int):
        raise InvalidValueTypeError("entropy_bits", entropy_bits, "an int or None")
    if entropy_bits < MIN_REQUEST_BITS:
        raise InvalidInputError(
            "entropy_bits",
            entropy_bits,
            f"fewer than {MIN_REQUEST_BITS} bits can be guessed;"
            f" ids carry at least {MIN_ENTROPY_BITS}",
        )
    if entropy_bits > MAX_ENTROPY_BITS:
        raise InvalidInputError(
            "entropy_bits", entropy_bits, f"more than {MAX_ENTROPY_BITS} bits"
        )
    return max(entropy_bits, MIN_ENTROPY_BITS)


def generate_secure_session_id(
    protocol: ProtocolType | str = ProtocolType.GENERIC,
    custom_format: IdFormat | None = None,
    include_timestamp: bool = False,
    entropy_bits: int | None = None,
) -> str:
    """Return a new id for *protocol*, drawn from :mod:`secrets`.

    Args:
        protocol: the format (see the module's table); a
            :class:`~aiosessions.ProtocolType` or its value.
        custom_format: draw from this format instead of *protocol*'s.
        include_timestamp: must stay ``False``. Ids never carry their
            creation time; it is in the session's metadata.
        entropy_bits: random bits wanted, 64 to 1024. ``None`` or anything
            below 128 gives 128: an id never holds fewer.

    Raises:
        InvalidInputError: an unknown *protocol*, *include_timestamp* set,
            *entropy_bits* out of range, or a *custom_format* whose fixed
            length holds fewer bits than asked for.
        InvalidValueTypeError: *entropy_bits* is not an ``int``, or
            *custom_format* not an :class:`IdFormat`.
    """
    if include_timestamp:
        raise InvalidInputError(
            "include_timestamp",
            include_timestamp,
            "ids never carry a timestamp: it reveals when the session began and"
            " adds nothing to guess. Keep the creation time in the session's"
            " metadata (SessionMetadata.created_at, or custom_metadata)",
        )
    bits = _requested_bits(entropy_bits)
    fmt = _format_for(protocol, custom_format)

    return uuid_id(bits) if fmt is None else fmt.generate(bits)


def validate_session_id_format(
    session_id: object,
    protocol: ProtocolType | str = ProtocolType.GENERIC,
    custom_format: IdFormat | None = None,
) -> bool:
    """Return whether *session_id* has the shape of *protocol*'s ids.

    Only the shape is checked: the prefix, the alphabet, and a length that
    holds 128 to 1024 random bits. Any value, of any type or size, gets an
    answer; nothing but a bad *protocol* or *custom_format* raises.

    Raises:
        InvalidInputError: an unknown *protocol*.
        InvalidValueTypeError: *custom_format* is not an :class:`IdFormat`.
    """
    fmt = _format_for(protocol, custom_format)
    if fmt is None:
        return isinstance(session_id, str) and uuid_count(session_id) > 0
    return fmt.matches(session_id)


# -- estimating strength ------------------------------------------------------

_ALPHABETS: tuple[tuple[str, frozenset[str]], ...] = tuple(
    (name, frozenset(chars))
    for name, chars in (
        ("decimal", string.digits),
        ("hex", string.digits + "abcdef"),
        ("HEX", string.digits + "ABCDEF"),
        ("base32", CROCKFORD32),
        ("BASE32", CROCKFORD32.upper()),
        ("lowercase alphanumeric", string.digits + string.ascii_lowercase),
        ("uppercase alphanumeric", string.digits + string.ascii_uppercase),
        ("base62", BASE62),
        ("base64url", BASE64URL),
        ("visible ASCII", VISIBLE_ASCII),
    )
)


def _alphabet_of(value: str) -> tuple[str, int] | None:
    """Return the name and size of the smallest alphabet holding *value*."""
    chars = set(value)
    for name, alphabet in _ALPHABETS:
        if chars <= alphabet:
            return name, len(alphabet)
    return None


def estimate_entropy(
    session_id: object,
    protocol: ProtocolType | str | None = None,
    custom_format: IdFormat | None = None,
) -> float:
    """Return an estimate of the random bits in *session_id*.

    With a *protocol* (or *custom_format*), only the random part of an id of
    that format counts: no prefix, no separator, no UUID version bits; an id
    not of that format scores 0. Without one, each character counts as
    uniform over the smallest common alphabet holding them all, which is an
    upper bound: it cannot see how the characters were chosen (see
    :func:`analyze_session_id_strength` for the patterns it looks for).

    Returns 0.0 for anything but a non-empty string of visible ASCII; never
    raises on *session_id*.

    Raises:
        InvalidInputError: an unknown *protocol*.
    """
    structured = protocol is not None or custom_format is not None
    fmt = _format_for(protocol, custom_format) if structured else None
    if not isinstance(session_id, str) or not session_id:
        return 0.0

    if structured and fmt is None:
        return float(uuid_count(session_id) * UUID_BITS)
    if fmt is not None:
        return fmt.entropy(session_id) if fmt.matches(session_id) else 0.0
    found = _alphabet_of(session_id)
    if found is None:
        return 0.0
    return len(session_id) * math.log2(found[1])


Strength = Literal["strong", "moderate", "weak"]

_MAX_ANALYZED = 4096
_DIGIT_RUN = re.compile(r"(?<![0-9])([0-9]{10}|[0-9]{13})(?![0-9])")
_ANY_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-([0-9a-fA-F])[0-9a-fA-F]{3}-"
    r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_TIME_UUID_VERSIONS = frozenset("1267")
_REPEAT_RUN = 6
_RUNS = re.compile(r"(.)\1*", re.DOTALL)
# Unix times that could plausibly be a creation time: 2001 to 2100.
_EPOCH_LOW, _EPOCH_HIGH = 978_307_200, 4_102_444_800


@dataclass(frozen=True)
class IdStrength:
    """What :func:`analyze_session_id_strength` found.

    ``entropy_bits`` is the estimate of :func:`estimate_entropy`;
    ``strength`` is ``strong`` (128 bits or more, no issue), ``weak``
    (under 64 bits, or a run or repeated pattern that makes the length
    meaningless) or ``moderate`` (anything between); ``matches`` lists the
    built-in formats the id fits; ``issues`` says, in words, what weakens it.
    """

    length: int
    alphabet: str | None
    entropy_bits: float
    strength: Strength
    matches: tuple[ProtocolType, ...]
    issues: tuple[str, ...]

    @property
    def is_strong(self) -> bool:
        """Whether the id is fit to be a session id."""
        return self.strength == "strong"


def _timestamp_issue(value: str) -> str | None:
    for match in _DIGIT_RUN.finditer(value):
        number = int(match.group())
        seconds = number / 1000 if len(match.group()) == 13 else number
        if _EPOCH_LOW <= seconds < _EPOCH_HIGH:
            moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
            return f"holds what reads as a Unix time ({moment:%Y-%m-%d})"
    return None


def _meaning_issues(value: str) -> list[str]:
    """Say what in *value* carries meaning (a creation time)."""
    issues: list[str] = []
    found = _timestamp_issue(value)
    if found:
        issues.append(found)
    for match in _ANY_UUID.finditer(value):
        if match.group(1) in _TIME_UUID_VERSIONS:
            issues.append(
                f"holds a version {match.group(1)} UUID, which carries its"
                " creation time"
            )
            break
    return issues


def _repetition_issues(value: str) -> list[str]:
    """Say what in *value* makes it easy to guess whatever its length."""
    run = max(len(match.group()) for match in _RUNS.finditer(value))
    if run >= _REPEAT_RUN:
        return [f"repeats one character {run} times in a row"]
    period = (value + value).find(value, 1)
    if period < len(value):
        return [f"repeats a pattern of {period} characters"]
    return []


def analyze_session_id_strength(
    session_id: object, protocol: ProtocolType | str | None = None
) -> IdStrength:
    """Return how strong *session_id* is as a session id, and why.

    Looks at the entropy estimate, at whether the id fits *protocol*'s
    format (when given), and at patterns that make an id guessable or
    meaningful: a Unix time, a time-based UUID, a long run of one character,
    a repeated pattern. Never raises on *session_id*, whatever it is.

    Raises:
        InvalidInputError: an unknown *protocol*.
    """
    kind = None if protocol is None else _protocol(protocol)
    if not isinstance(session_id, str):
        return IdStrength(0, None, 0.0, "weak", (), ("not a string",))
    if not session_id:
        return IdStrength(0, None, 0.0, "weak", (), ("empty",))

    issues: list[str] = []
    repeats: list[str] = []
    found = _alphabet_of(session_id)
    if found is None:
        issues.append("holds characters other than visible ASCII (0x21-0x7E)")
    if len(session_id) > _MAX_ANALYZED:
        issues.append(f"longer than {_MAX_ANALYZED} characters")
    elif found is not None:
        issues.extend(_meaning_issues(session_id))
        repeats = _repetition_issues(session_id)
    matches = tuple(
        member
        for member in ProtocolType
        if validate_session_id_format(session_id, member)
    )
    if kind is not None and kind not in matches:
        issues.append(f"does not have the shape of a {kind.value} id")
    bits = estimate_entropy(session_id, kind)
    if bits < MIN_ENTROPY_BITS:
        issues.append(f"about {bits:.0f} bits, fewer than {MIN_ENTROPY_BITS}")

    strength: Strength = "moderate"
    if repeats or bits < MIN_REQUEST_BITS:
        strength = "weak"
    elif bits >= MIN_ENTROPY_BITS and not issues:
        strength = "strong"
    return IdStrength(
        length=len(session_id),
        alphabet=None if found is None else found[0],
        entropy_bits=bits,
        strength=strength,
        matches=matches,
        issues=tuple(repeats + issues),
    )
