"""Pydantic models of what the library hands back to callers."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .enums import SessionStatus, TokenType

__all__ = ["CSRFTokenInfo", "CleanupReport", "SessionMetadata"]


def utc(value: datetime) -> datetime:
    """Return *value* as an aware UTC datetime; naive values are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def utc_from_ms(epoch_ms: int) -> datetime:
    """Return the aware UTC datetime of a Unix time in milliseconds."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)


class SessionMetadata(BaseModel):
    """A session as stored, with every timestamp in timezone-aware UTC.

    ``SessionMetadata(**info)`` accepts the dict returned by
    ``SessionManager.get_session_info``, so the two can be used in turn.
    Durations (``idle_timeout``) are in seconds.

    ``expires_at`` is when the session ends if nobody uses it (the idle
    timeout, never past the deadline); ``absolute_expires_at`` is the
    deadline (movable by an extension); ``max_expires_at`` is the hard cap
    no extension passes (``None`` without ``max_lifetime``). ``rotated_at``
    is set on an id a rotation replaced, usable until ``expires_at``.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    session_id: str
    sandbox_id: str
    user_id: str | None = None
    created_at: datetime
    last_accessed: datetime
    expires_at: datetime
    absolute_expires_at: datetime
    idle_timeout: float | None = Field(default=None, gt=0)
    status: SessionStatus = SessionStatus.ACTIVE
    custom_metadata: dict[str, Any] = Field(default_factory=dict)
    max_expires_at: datetime | None = None
    rotated_at: datetime | None = None

    @field_validator("created_at", "last_accessed", "expires_at", "absolute_expires_at")
    @classmethod
    def _as_utc(cls, value: datetime) -> datetime:
        return utc(value)

    @field_validator("max_expires_at", "rotated_at")
    @classmethod
    def _as_utc_or_none(cls, value: datetime | None) -> datetime | None:
        return None if value is None else utc(value)

    def is_expired(self, now: datetime | None = None) -> bool:
        """Return whether the session had expired at *now* (default: now)."""
        moment = utc(now) if now is not None else datetime.now(timezone.utc)
        return moment >= self.expires_at

    def ttl_seconds(self, now: datetime | None = None) -> float:
        """Return the seconds left before expiry at *now*, never negative."""
        moment = utc(now) if now is not None else datetime.now(timezone.utc)
        return max(0.0, (self.expires_at - moment).total_seconds())


class CSRFTokenInfo(BaseModel):
    """What can be read from a CSRF token without trusting it.

    ``valid_format`` says only that the token parsed; whether it is authentic
    is for the validator to decide.
    """

    model_config = ConfigDict(frozen=True)

    token_type: TokenType = TokenType.CSRF
    issued_at: datetime | None = None
    age_seconds: float | None = None
    nonce: str | None = None
    valid_format: bool = False

    @field_validator("issued_at")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else utc(value)


class CleanupReport(BaseModel):
    """What a cleanup pass did; counts so far when given to ``on_progress``.

    ``reclaimed``: expired entries the store freed; ``indexes_scanned``: user
    indexes looked at; ``members_pruned``: dead sessions taken out of them;
    ``members_rechecked``: live sessions whose index score was renewed;
    ``seconds``: time spent.
    """

    model_config = ConfigDict(frozen=True)

    reclaimed: int = 0
    indexes_scanned: int = 0
    members_pruned: int = 0
    members_rechecked: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """Entries reclaimed plus index members pruned."""
        return self.reclaimed + self.members_pruned
