"""Checking and encoding custom metadata for session records.

Each metadata key becomes its own record field holding the value as JSON,
so a merge writes only the keys it changes (two requests merging different
keys both keep their writes) and a counter is a plain integer field the
store can increment atomically.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from json.encoder import encode_basestring
from typing import Any

from .errors import InvalidMetadataError, InvalidValueTypeError
from .stores.base import META_PREFIX, UNSAFE_TEXT

__all__ = [
    "MAX_METADATA_BYTES",
    "MAX_METADATA_DEPTH",
    "MAX_METADATA_KEYS",
    "check_metadata_key",
    "decode_metadata",
    "encode_metadata",
]

MAX_METADATA_KEYS = 256
"""Most custom metadata keys written in one call."""

MAX_METADATA_BYTES = 64 * 1024
"""Largest custom metadata written in one call, as UTF-8 JSON."""

MAX_METADATA_DEPTH = 64
"""Deepest nesting of lists and dicts accepted in one metadata value."""

_MAX_KEY_LENGTH = 256
_CONSTANTS = {True: "true", False: "false", None: "null"}


def check_metadata_key(key: object) -> str:
    """Return the record field for metadata *key*.

    Raises:
        InvalidValueTypeError: *key* is not a ``str``.
        InvalidMetadataError: it is empty, too long or has control chars.
    """
    if not isinstance(key, str):
        raise InvalidValueTypeError("metadata key", key, "str")
    if not key or len(key) > _MAX_KEY_LENGTH:
        raise InvalidMetadataError(
            "metadata key", key, f"must be 1 to {_MAX_KEY_LENGTH} characters"
        )
    if not key.isprintable() and UNSAFE_TEXT.search(key):
        raise InvalidMetadataError(
            "metadata key",
            key,
            "control characters and lone surrogates are not allowed",
        )
    return META_PREFIX + key


def _refuse(value: object) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def encode_metadata(data: object) -> dict[str, str]:
    """Return the record fields for *data*, each value as compact JSON.

    Raises:
        InvalidValueTypeError: *data* is not a mapping.
        InvalidMetadataError: a key is unusable, a value is not JSON (NaN
            and infinities included), or the whole is too large.
    """
    if type(data) is not dict and not isinstance(data, Mapping):
        raise InvalidValueTypeError("metadata", data, "a dict")
    if len(data) > MAX_METADATA_KEYS:
        raise InvalidMetadataError(
            "metadata", f"<{len(data)} keys>", f"more than {MAX_METADATA_KEYS} keys"
        )
    fields: dict[str, str] = {}
    size = 0
    for key, value in data.items():
        field = check_metadata_key(key)
        text = _encode(key, value)
        size += (len(text) if text.isascii() else _utf8_size(key, value, text)) + len(
            field
        )
        if size > MAX_METADATA_BYTES:
            raise InvalidMetadataError(
                "metadata", f"<{len(data)} keys>", f"over {MAX_METADATA_BYTES} bytes"
            )
        fields[field] = text
    return fields


def _encode(key: str, value: object) -> str:
    """Return *value* as compact JSON, as ``json.dumps`` would write it."""
    # The usual values skip json.dumps's per-call setup (a few µs each).
    if type(value) is str and value.isascii():
        return encode_basestring(value)
    if type(value) is bool or value is None:
        return _CONSTANTS[value]
    _check_depth(key, value)
    try:
        if type(value) is int:
            return int.__repr__(value)
        return json.dumps(
            value,
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":"),
            default=_refuse,
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidMetadataError(
            f"metadata value for {key!r}", value, f"not JSON: {exc}"
        ) from exc


def _check_depth(key: str, value: object) -> None:
    """Refuse values nested deeper than :data:`MAX_METADATA_DEPTH`.

    Deeper values would be stored, then fail every later read (JSON parsers
    and serialisers stop at a few hundred levels): refuse them up front.
    """
    level = [value]
    for _ in range(MAX_METADATA_DEPTH):
        inner: list[object] = []
        for item in level:
            if isinstance(item, dict):
                inner.extend(item.values())
            elif isinstance(item, (list, tuple)):
                inner.extend(item)
        if not inner:
            return
        level = inner
    if any(isinstance(item, (dict, list, tuple)) for item in level):
        raise InvalidMetadataError(
            f"metadata value for {key!r}",
            value,
            f"nested deeper than {MAX_METADATA_DEPTH} levels",
        )


def _utf8_size(key: str, value: object, text: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeError as exc:  # a lone surrogate
        raise InvalidMetadataError(
            f"metadata value for {key!r}", value, f"not JSON: {exc}"
        ) from exc


def decode_metadata(fields: Mapping[str, str]) -> dict[str, Any]:
    """Return the custom metadata held in record *fields*."""
    return {
        name[len(META_PREFIX) :]: json.loads(text)
        for name, text in fields.items()
        if name.startswith(META_PREFIX)
    }
