"""The few ASGI types and header helpers the middleware needs.

Declared here so that the middleware imports no web framework: it runs under
Starlette, FastAPI or any other ASGI server or framework.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

__all__ = [
    "ASGIApp",
    "Headers",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "header_values",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


def header_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    """Return the values of header *name* (lower case), decoded as Latin-1."""
    return [value.decode("latin-1") for key, value in headers if key.lower() == name]
