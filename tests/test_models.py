"""Models, enums and errors: the shapes callers rely on."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from aiosessions import (
    BackendUnavailableError,
    ConfigurationError,
    CSRFTokenInfo,
    InvalidInputError,
    InvalidMetadataError,
    InvalidTTLError,
    InvalidValueTypeError,
    ProtocolType,
    ProviderError,
    ProviderType,
    SessionError,
    SessionMetadata,
    SessionStatus,
    TokenType,
)

NOW = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)


def metadata(**changes: object) -> SessionMetadata:
    fields: dict[str, object] = {
        "session_id": "s",
        "sandbox_id": "app",
        "created_at": NOW,
        "last_accessed": NOW,
        "expires_at": NOW + timedelta(hours=1),
        "absolute_expires_at": NOW + timedelta(hours=2),
    }
    fields.update(changes)
    return SessionMetadata(**fields)  # type: ignore[arg-type]


class TestSessionMetadata:
    def test_naive_times_are_taken_as_utc(self) -> None:
        meta = metadata(created_at=datetime(2026, 1, 1, 12))
        assert meta.created_at == NOW
        assert meta.created_at.tzinfo == timezone.utc

    def test_other_zones_are_converted_to_utc(self) -> None:
        paris = timezone(timedelta(hours=1))
        meta = metadata(created_at=datetime(2026, 1, 1, 13, tzinfo=paris))
        assert meta.created_at == NOW
        assert meta.created_at.utcoffset() == timedelta(0)

    def test_expiry_helpers(self) -> None:
        meta = metadata()
        assert not meta.is_expired(NOW)
        assert meta.is_expired(NOW + timedelta(hours=1))
        assert meta.ttl_seconds(NOW) == 3600
        assert meta.ttl_seconds(NOW + timedelta(days=1)) == 0
        assert meta.is_expired()

    def test_round_trip_through_json(self) -> None:
        meta = metadata(custom_metadata={"a": [1, {"b": None}]}, idle_timeout=30)
        assert SessionMetadata(**meta.model_dump(mode="json")) == meta

    def test_models_are_frozen_and_checked(self) -> None:
        with pytest.raises(ValidationError):
            metadata(idle_timeout=-1)
        with pytest.raises(ValidationError):
            metadata().session_id = "other"  # type: ignore[misc]


class TestCSRFTokenInfo:
    def test_defaults_say_nothing_is_known(self) -> None:
        info = CSRFTokenInfo()
        assert info.valid_format is False
        assert info.issued_at is None
        assert info.token_type is TokenType.CSRF

    def test_issued_at_is_utc(self) -> None:
        info = CSRFTokenInfo(issued_at=datetime(2026, 1, 1, 12), valid_format=True)
        assert info.issued_at == NOW


class TestEnums:
    def test_values_are_strings(self) -> None:
        assert SessionStatus.ACTIVE == "active"
        assert ProviderType("redis") is ProviderType.REDIS
        assert ProtocolType.MCP.value == "mcp"
        assert TokenType.CSRF.value == "csrf"


class TestErrors:
    def test_one_base_for_everything(self) -> None:
        for error in [
            ConfigurationError,
            InvalidInputError,
            InvalidTTLError,
            InvalidMetadataError,
            InvalidValueTypeError,
            ProviderError,
            BackendUnavailableError,
        ]:
            assert issubclass(error, SessionError)
        assert issubclass(InvalidTTLError, ValueError)
        assert issubclass(InvalidValueTypeError, TypeError)
        assert issubclass(BackendUnavailableError, ProviderError)

    def test_errors_carry_their_context(self) -> None:
        error = InvalidTTLError("ttl", -1, "must be greater than zero")
        assert error.field == "ttl" and error.value == -1
        assert str(error) == "invalid ttl -1: must be greater than zero"
        down = BackendUnavailableError(
            "gone", store="redis://h", operation="get", attempts=2
        )
        assert down.attempts == 2 and down.operation == "get"
        assert "after 2 attempts" in str(down)
        assert str(BackendUnavailableError("x", store="s")) == (
            "x (after 1 attempt) [on s]"
        )
        assert str(ProviderError("refused")) == "refused"

    def test_huge_values_are_cut_in_messages(self) -> None:
        error = InvalidInputError("key", "x" * 100_000, "too long")
        assert len(str(error)) < 200
        assert "100002 chars" in str(error)
