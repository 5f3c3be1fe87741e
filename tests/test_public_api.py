"""The public API is declared on purpose; this test keeps it that way."""

from __future__ import annotations

import pytest

import aiosessions

EXPECTED = {
    "BackendUnavailableError",
    "CSRFTokenInfo",
    "CleanupReport",
    "ConfigurationError",
    "InvalidIdentifierError",
    "InvalidInputError",
    "InvalidKeyError",
    "InvalidMetadataError",
    "InvalidTTLError",
    "InvalidValueTypeError",
    "KeyValueSession",
    "LifecycleEvent",
    "MemoryStore",
    "ProtocolType",
    "ProviderError",
    "ProviderType",
    "RedisStore",
    "SessionError",
    "SessionEvent",
    "SessionManager",
    "SessionMetadata",
    "SessionStatus",
    "Settings",
    "Store",
    "TokenType",
    "__version__",
    "create_store",
    "generate_session_id",
    "get_default_store",
    "get_session",
    "session",
    "set_default_store",
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(aiosessions.__all__) == EXPECTED


def test_every_public_name_resolves() -> None:
    for name in aiosessions.__all__:
        assert getattr(aiosessions, name) is not None


def test_stores_module_resolves_redis_lazily() -> None:
    import aiosessions.stores as stores

    assert stores.RedisStore is aiosessions.RedisStore
    with pytest.raises(AttributeError, match="NoSuchThing"):
        stores.NoSuchThing  # noqa: B018
