"""The package logger and the fingerprint used in place of raw ids.

Session ids are bearer credentials: a log line holding one hands the session
to whoever reads the logs. Log :func:`fingerprint` of an id instead; it is a
keyed hash, stable within one process so that lines about one session can be
matched up, and useless for guessing the id.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

logger = logging.getLogger("aiosessions")

# Per-process key: fingerprints from two processes cannot be joined, which is
# the price of never shipping a key that could be used to test guesses.
_FINGERPRINT_KEY = secrets.token_bytes(32)


def fingerprint(value: str) -> str:
    """Return a 12-character keyed hash of *value*, safe to log."""
    digest = hashlib.blake2b(
        value.encode("utf-8", "surrogatepass"), key=_FINGERPRINT_KEY, digest_size=6
    )
    return digest.hexdigest()
