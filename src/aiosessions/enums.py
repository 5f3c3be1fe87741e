"""Closed sets of names used across the API."""

from __future__ import annotations

from enum import Enum

__all__ = ["ProtocolType", "ProviderType", "SessionStatus", "TokenType"]


class SessionStatus(str, Enum):
    """Where a session stands in its lifecycle."""

    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    INVALID = "invalid"


class ProviderType(str, Enum):
    """The built-in stores, as named by ``SESSION_PROVIDER``."""

    MEMORY = "memory"
    REDIS = "redis"


class TokenType(str, Enum):
    """Kinds of token the security helpers issue."""

    SESSION = "session"
    CSRF = "csrf"
    DOUBLE_SUBMIT = "double_submit"
    ENCRYPTED_CSRF = "encrypted_csrf"
    API_KEY = "api_key"
    TEMPORARY = "temp_token"


class ProtocolType(str, Enum):
    """Transports a session id travels over; each has its own id format."""

    GENERIC = "generic"
    HTTP = "http"
    WEBSOCKET = "websocket"
    MCP = "mcp"
    UUID = "uuid"
    JWT = "jwt"
    API_KEY = "api_key"
    TEMP_TOKEN = "temp_token"  # noqa: S105 - a format name, not a secret
