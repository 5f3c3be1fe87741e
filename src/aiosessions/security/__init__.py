"""Security helpers: session ids, signed ids, CSRF tokens, secret keys.

``aiosessions.security.csrf``'s encrypted tokens need the ``security``
extra (``cryptography``); everything else uses only the standard library.
"""

from .csrf import (
    extract_csrf_token_info,
    generate_csrf_token,
    generate_double_submit_token,
    generate_encrypted_csrf_token,
    is_csrf_token_expired,
    validate_csrf_token,
    validate_double_submit_token,
    validate_encrypted_csrf_token,
)
from .ids import (
    IdFormat,
    IdStrength,
    analyze_session_id_strength,
    estimate_entropy,
    generate_secure_session_id,
    generate_session_id,
    looks_like_session_id,
    validate_session_id_format,
)
from .keyring import KeyRing
from .policy import SessionIdPolicy

__all__ = [
    "IdFormat",
    "IdStrength",
    "KeyRing",
    "SessionIdPolicy",
    "analyze_session_id_strength",
    "estimate_entropy",
    "extract_csrf_token_info",
    "generate_csrf_token",
    "generate_double_submit_token",
    "generate_encrypted_csrf_token",
    "generate_secure_session_id",
    "generate_session_id",
    "is_csrf_token_expired",
    "looks_like_session_id",
    "validate_csrf_token",
    "validate_double_submit_token",
    "validate_encrypted_csrf_token",
    "validate_session_id_format",
]
