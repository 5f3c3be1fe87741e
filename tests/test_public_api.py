"""The public API is declared on purpose; this test keeps it that way."""

from __future__ import annotations

import subprocess
import sys

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
    "MissingDependencyError",
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


def test_memory_store_works_without_the_redis_extra() -> None:
    script = (
        "import sys; sys.modules['redis'] = None\n"
        "import asyncio, aiosessions\n"
        "m = aiosessions.SessionManager('x', store=aiosessions.MemoryStore())\n"
        "sid = asyncio.run(m.allocate_session())\n"
        "assert asyncio.run(m.validate_session(sid))\n"
        "try:\n"
        "    aiosessions.RedisStore\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert "pip install 'aiosessions[redis]'" in done.stdout


def test_top_level_unknown_attribute_raises() -> None:
    with pytest.raises(AttributeError, match="nothing_here"):
        aiosessions.nothing_here  # noqa: B018


SECURITY = {
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
}


def test_security_package_lists_exactly_its_public_names() -> None:
    import aiosessions.security as security

    assert set(security.__all__) == SECURITY
    for name in security.__all__:
        assert getattr(security, name) is not None
