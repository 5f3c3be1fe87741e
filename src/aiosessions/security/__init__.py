"""Security helpers: session id generation and checks."""

from .ids import generate_session_id, looks_like_session_id

__all__ = ["generate_session_id", "looks_like_session_id"]
