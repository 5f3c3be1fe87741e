"""CSRF tokens bound to a session: signed, double-submit, and encrypted.

Every token names the session it was issued for and the time it was issued,
and is refused for any other session, after ``max_age`` seconds, or when it
claims to come from more than :data:`CLOCK_SKEW` seconds in the future.

``c1.<issued>.<nonce>.<tag>``
    :func:`generate_csrf_token`: the issue time (Unix seconds), 128 random
    bits, and HMAC-SHA256 over both and the session id. The server puts it
    in the page and checks it on the way back; nothing is stored.
``d1.<issued>.<nonce>.<tag>``
    :func:`generate_double_submit_token`: the same construction under its
    own label, for the double-submit pattern: the token goes out as a cookie
    and comes back in a header or form field as well, and both copies must
    be equal and authentic. The signature stops an attacker who can plant a
    cookie (from a sibling subdomain, say) from choosing its value.
``e1.<sealed>``
    :func:`generate_encrypted_csrf_token`: AES-256-GCM with a key derived by
    HKDF-SHA256 from the secret, a random 96-bit nonce, and the session id
    as associated data. The client learns nothing, not even the issue time.
    Needs the ``security`` extra (``cryptography``).

*secret* is one key (``str`` or ``bytes``, at least 32 bytes) or a list of
keys, newest first: the first signs, every one verifies, so keys can be
rotated without refusing the tokens already handed out. Each token kind
uses its own subkey.

Validators never raise because of the token: ``None``, ``bytes``, an int or
a megabyte of text is just invalid. They do raise for an unusable *secret*
or *max_age*, which are the server's own configuration.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import time
from typing import TYPE_CHECKING, NamedTuple

from .._log import logger
from ..enums import TokenType
from ..errors import InvalidInputError, InvalidValueTypeError, MissingDependencyError
from ..models import CSRFTokenInfo, utc_from_ms
from ..stores.base import ttl_to_ms
from .keyring import KeyRing, SecretKeys

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "CLOCK_SKEW",
    "DEFAULT_MAX_AGE",
    "MAX_TOKEN_LENGTH",
    "extract_csrf_token_info",
    "generate_csrf_token",
    "generate_double_submit_token",
    "generate_encrypted_csrf_token",
    "is_csrf_token_expired",
    "validate_csrf_token",
    "validate_double_submit_token",
    "validate_encrypted_csrf_token",
]

DEFAULT_MAX_AGE = 3600.0
"""How long a token stays valid by default, in seconds."""

CLOCK_SKEW = 30.0
"""How far in the future a token's issue time may be, in seconds, to allow
for servers whose clocks disagree."""

MAX_TOKEN_LENGTH = 128
"""Longest string that can be a token; anything longer is refused unread."""

_MAX_SESSION_ID_LENGTH = 1024
_MAX_ISSUED = 9_999_999_999  # ten digits of Unix seconds: the year 2286
_SIGNED = re.compile(
    r"(?P<kind>[cd])1\.(?P<issued>0|[1-9][0-9]{0,9})"
    r"\.(?P<nonce>[A-Za-z0-9_-]{22})\.(?P<tag>[A-Za-z0-9_-]{43})"
)
_ENCRYPTED = re.compile(r"e1\.(?P<sealed>[A-Za-z0-9_-]{48})")
_PURPOSES = {"c": "csrf/signed", "d": "csrf/double-submit"}
_KINDS = {"c": TokenType.CSRF, "d": TokenType.DOUBLE_SUBMIT}
_NONCE_BYTES = 12
_HKDF_INFO = b"aiosessions/v1/csrf/encrypted"


class _Signed(NamedTuple):
    kind: str
    issued: int
    nonce: str
    body: str
    tag: str


# -- shared checks ------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _binding(session_id: object) -> bytes | None:
    """Return the session id as MAC input, or ``None`` if it cannot be one."""
    if (
        not isinstance(session_id, str)
        or not session_id
        or len(session_id) > _MAX_SESSION_ID_LENGTH
    ):
        return None
    raw = session_id.encode("utf-8", "surrogatepass")
    return len(raw).to_bytes(4, "big") + raw


def _session_binding(session_id: object) -> bytes:
    binding = _binding(session_id)
    if binding is None:
        if not isinstance(session_id, str):
            raise InvalidValueTypeError("session_id", "<redacted>", "a str")
        raise InvalidInputError(
            "session_id",
            "<redacted>",
            f"must be 1 to {_MAX_SESSION_ID_LENGTH} characters",
        )
    return binding


def _clock(now: object) -> float:
    """Return *now*, or the current Unix time, in seconds."""
    if now is None:
        return time.time()
    if isinstance(now, bool) or not isinstance(now, (int, float)):
        raise InvalidValueTypeError("now", now, "Unix seconds (int or float)")
    if not (math.isfinite(now) and 0 <= now <= _MAX_ISSUED):
        raise InvalidInputError("now", now, "not a Unix time in seconds")
    return float(now)


def _max_age(max_age: object) -> float:
    return ttl_to_ms(max_age, "max_age") / 1000


def _fresh(issued: float, max_age: float, now: float) -> bool:
    """Return whether a token issued at *issued* may still be used at *now*."""
    age = now - issued
    return -CLOCK_SKEW <= age <= max_age


# -- signed tokens ------------------------------------------------------------


def _parse_signed(token: object) -> _Signed | None:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return None
    match = _SIGNED.fullmatch(token)
    if match is None:
        return None
    body, _, tag = token.rpartition(".")
    return _Signed(match["kind"], int(match["issued"]), match["nonce"], body, tag)


def _mac(subkey: bytes, binding: bytes, body: str) -> str:
    return _b64(hmac.new(subkey, binding + body.encode(), hashlib.sha256).digest())


def _sign(kind: str, session_id: object, secret: SecretKeys, now: object) -> str:
    subkey = KeyRing(secret, name="secret").derive(_PURPOSES[kind])[0]
    binding = _session_binding(session_id)
    issued = math.floor(_clock(now))

    body = f"{kind}1.{issued}.{_b64(secrets.token_bytes(16))}"
    return f"{body}.{_mac(subkey, binding, body)}"


def _verify(
    kind: str,
    token: object,
    session_id: object,
    secret: SecretKeys,
    max_age: object,
    now: object,
) -> bool:
    subkeys = KeyRing(secret, name="secret").derive(_PURPOSES[kind])
    limit = _max_age(max_age)
    moment = _clock(now)
    parsed = _parse_signed(token)
    binding = _binding(session_id)
    if parsed is None or parsed.kind != kind or binding is None:
        logger.debug("csrf token refused: malformed, or no usable session id")
        return False

    authentic = False
    for subkey in subkeys:
        authentic |= hmac.compare_digest(_mac(subkey, binding, parsed.body), parsed.tag)
    if not authentic:
        logger.debug("csrf token refused: bad signature or another session's")
        return False
    if not _fresh(parsed.issued, limit, moment):
        logger.debug("csrf token refused: expired or issued in the future")
        return False
    return True


def generate_csrf_token(
    session_id: str, secret: SecretKeys, *, now: float | None = None
) -> str:
    """Return a new signed CSRF token for *session_id*.

    Args:
        session_id: the session the token is for (1 to 1024 characters).
        secret: one key, or a list of keys, newest first; the first signs.
        now: the issue time in Unix seconds; default: the current time.

    Raises:
        ConfigurationError: *secret* is empty, too short or not a key.
        InvalidInputError: *session_id* is empty or too long, or *now* is
            not a Unix time.
        InvalidValueTypeError: *session_id* is not a ``str``.
    """
    return _sign("c", session_id, secret, now)


def validate_csrf_token(
    token: object,
    session_id: object,
    secret: SecretKeys,
    *,
    max_age: float = DEFAULT_MAX_AGE,
    now: float | None = None,
) -> bool:
    """Return whether *token* is a signed CSRF token for *session_id*.

    ``False`` unless it was signed by one of the keys in *secret* for this
    very session, less than *max_age* seconds before *now* (default: the
    current time) and not more than :data:`CLOCK_SKEW` seconds after it.
    Any *token* or *session_id*, of any type or size, gets an answer.

    Raises:
        ConfigurationError: *secret* is unusable.
        InvalidTTLError: *max_age* is not a positive number of seconds.
    """
    return _verify("c", token, session_id, secret, max_age, now)


def generate_double_submit_token(
    session_id: str, secret: SecretKeys, *, now: float | None = None
) -> str:
    """Return a token to send both as a cookie and in a header or form field.

    Same arguments and errors as :func:`generate_csrf_token`.
    """
    return _sign("d", session_id, secret, now)


def validate_double_submit_token(
    cookie_token: object,
    submitted_token: object,
    session_id: object,
    secret: SecretKeys,
    *,
    max_age: float = DEFAULT_MAX_AGE,
    now: float | None = None,
) -> bool:
    """Return whether the cookie and the submitted copy are one valid token.

    Both must be equal (compared in constant time) and valid for
    *session_id* as :func:`validate_csrf_token` describes. Never raises
    because of either token.

    Raises:
        ConfigurationError: *secret* is unusable.
        InvalidTTLError: *max_age* is not a positive number of seconds.
    """
    if not _verify("d", submitted_token, session_id, secret, max_age, now):
        return False
    # The submitted token parsed, so it is ASCII; a cookie that is not a
    # token is refused before compare_digest could object to its type.
    if _parse_signed(cookie_token) is None:
        return False
    return hmac.compare_digest(str(cookie_token), str(submitted_token))


# -- encrypted tokens ---------------------------------------------------------


def _aesgcm_keys(secret: SecretKeys) -> list[AESGCM]:
    """Return one AES-256-GCM cipher per key in *secret*, newest first."""
    keys = KeyRing(secret, name="secret")
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "encrypted CSRF tokens", "cryptography", "security"
        ) from exc

    return [
        AESGCM(
            HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO
            ).derive(raw)
        )
        for raw in keys.raw()
    ]


def _parse_encrypted(token: object) -> bytes | None:
    """Return the nonce and sealed bytes of *token*, or ``None``."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return None
    match = _ENCRYPTED.fullmatch(token)
    # 48 characters are 36 bytes exactly: no spare bits, one spelling each.
    return None if match is None else base64.urlsafe_b64decode(match["sealed"])


def _associated_data(binding: bytes) -> bytes:
    return _HKDF_INFO + b"\x00" + binding


def generate_encrypted_csrf_token(
    session_id: str, secret: SecretKeys, *, now: float | None = None
) -> str:
    """Return a new encrypted CSRF token for *session_id*.

    Two calls never return the same token: each gets a fresh random nonce.
    Random 96-bit nonces stay safe for about 2**32 tokens per key; rotate
    the key long before that.

    Same arguments as :func:`generate_csrf_token`.

    Raises:
        MissingDependencyError: ``cryptography`` is not installed
            (``pip install 'aiosessions[security]'``).
        ConfigurationError, InvalidInputError, InvalidValueTypeError: as
            for :func:`generate_csrf_token`.
    """
    cipher = _aesgcm_keys(secret)[0]
    binding = _session_binding(session_id)
    issued_ms = math.floor(_clock(now) * 1000)

    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = cipher.encrypt(
        nonce, issued_ms.to_bytes(8, "big"), _associated_data(binding)
    )
    return f"e1.{_b64(nonce + sealed)}"


def validate_encrypted_csrf_token(
    token: object,
    session_id: object,
    secret: SecretKeys,
    *,
    max_age: float = DEFAULT_MAX_AGE,
    now: float | None = None,
) -> bool:
    """Return whether *token* is an encrypted CSRF token for *session_id*.

    The rules of :func:`validate_csrf_token` apply: right session, one of
    the keys, within *max_age* seconds, not from the future.

    Raises:
        MissingDependencyError: ``cryptography`` is not installed.
        ConfigurationError: *secret* is unusable.
        InvalidTTLError: *max_age* is not a positive number of seconds.
    """
    ciphers = _aesgcm_keys(secret)
    from cryptography.exceptions import InvalidTag

    limit = _max_age(max_age)
    moment = _clock(now)
    binding = _binding(session_id)
    raw = _parse_encrypted(token)
    if raw is None or binding is None:
        logger.debug("encrypted csrf token refused: malformed, or no session id")
        return False

    nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
    plain: bytes | None = None
    for cipher in ciphers:
        try:
            plain = cipher.decrypt(nonce, sealed, _associated_data(binding))
        except InvalidTag:
            continue
        break
    if plain is None:
        logger.debug("encrypted csrf token refused: bad key or another session's")
        return False
    if not _fresh(int.from_bytes(plain, "big") / 1000, limit, moment):
        logger.debug("encrypted csrf token refused: expired or from the future")
        return False
    return True


# -- reading tokens without trusting them -------------------------------------


def extract_csrf_token_info(
    token: object, *, now: float | None = None
) -> CSRFTokenInfo:
    """Return what *token* says about itself, without checking it.

    For a signed or double-submit token: its kind, issue time, age at *now*
    (seconds, negative if issued in the future) and nonce. An encrypted
    token shows only its kind. Anything else, of any type or size, gives
    ``valid_format=False``. Never raises because of *token*.

    Raises:
        InvalidInputError: *now* is not a Unix time.
    """
    moment = _clock(now)
    parsed = _parse_signed(token)
    if parsed is not None:
        return CSRFTokenInfo(
            token_type=_KINDS[parsed.kind],
            issued_at=utc_from_ms(parsed.issued * 1000),
            age_seconds=moment - parsed.issued,
            nonce=parsed.nonce,
            valid_format=True,
        )
    if _parse_encrypted(token) is not None:
        return CSRFTokenInfo(token_type=TokenType.ENCRYPTED_CSRF, valid_format=True)
    return CSRFTokenInfo(valid_format=False)


def is_csrf_token_expired(
    token: object, max_age: float = DEFAULT_MAX_AGE, *, now: float | None = None
) -> bool:
    """Return whether *token* is too old (or too new) to be accepted at *now*.

    Only the issue time written in a signed or double-submit token is read,
    not its signature. ``True`` too for anything whose issue time cannot be
    read: a malformed token, or an encrypted one (its time is sealed).

    Raises:
        InvalidTTLError: *max_age* is not a positive number of seconds.
    """
    limit = _max_age(max_age)
    moment = _clock(now)
    parsed = _parse_signed(token)
    return parsed is None or not _fresh(parsed.issued, limit, moment)
