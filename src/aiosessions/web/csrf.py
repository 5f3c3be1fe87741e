"""``CSRFMiddleware``: unsafe requests must prove they come from the site.

A browser attaches the session cookie to a form that another site submits;
it cannot attach a token that only the site's own pages know. So every
request with an unsafe method (POST, PUT, PATCH, DELETE...) must carry a
CSRF token bound to its session, in the ``X-CSRF-Token`` header or in a
``csrf_token`` form field; requests with a safe method (GET, HEAD, OPTIONS,
TRACE) never need one. A rejection is a ``403`` with a short reason.

Install it inside :class:`~aiosessions.web.starlette.SessionMiddleware`
(add it to the app first with Starlette's ``add_middleware``, which wraps
in reverse order), and put the token in pages with
``await request.session.csrf_token()``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import parse_qsl

from .._log import fingerprint, logger
from ..errors import ConfigurationError, MissingDependencyError
from ._asgi import ASGIApp, Message, Receive, Scope, Send, header_values
from .starlette import _TOKEN, session_from

__all__ = ["SAFE_METHODS", "CSRFMiddleware"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
"""Methods that must not change state, and so never need a token."""

_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"


class CSRFMiddleware:
    """Refuse unsafe requests without a valid CSRF token for their session.

    Args:
        app: the ASGI application to wrap.
        field_name: form field that may hold the token.
        header_name: request header that may hold the token (checked
            first; JavaScript clients should use it).
        max_body_size: largest form body, in bytes, read to find the
            token; a larger form must send the token in the header.
        max_age: seconds a token stays valid; ``None`` for the manager's
            default.
        exempt_paths: exact paths that need no token (webhooks signed by
            other means, for example).

    Raises:
        ConfigurationError: a name or size is malformed.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        field_name: str = "csrf_token",
        header_name: str = "X-CSRF-Token",
        max_body_size: int = 1024 * 1024,
        max_age: float | None = None,
        exempt_paths: Collection[str] = (),
    ) -> None:
        if not field_name:
            raise ConfigurationError("field_name", field_name, "must not be empty")
        if not _TOKEN.fullmatch(header_name):
            raise ConfigurationError("header_name", header_name, "not a header name")
        if isinstance(max_body_size, bool) or not isinstance(max_body_size, int):
            raise ConfigurationError("max_body_size", max_body_size, "bytes, an int")
        if max_body_size < 0:
            raise ConfigurationError("max_body_size", max_body_size, "must be >= 0")
        self.app = app
        self.field_name = field_name
        self.header_name = header_name
        self._header_key = header_name.lower().encode("latin-1")
        self.max_body_size = max_body_size
        self.max_age = max_age
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in SAFE_METHODS
            or scope["path"] in self.exempt_paths
        ):
            await self.app(scope, receive, send)
            return

        session = session_from(scope)
        if session.id is None:
            await self._reject(scope, send, "no session")
            return
        tokens = header_values(scope.get("headers", ()), self._header_key)
        token: str | None = tokens[0] if tokens else None
        if token is None:
            body, complete = await _read_body(receive, self.max_body_size)
            if not complete:
                await self._reject(
                    scope, send, "form too large to check; send the token header"
                )
                return
            token = await self._form_token(scope, body)
            receive = _replay(body, receive)

        if not token:
            await self._reject(scope, send, "CSRF token missing")
            return
        kwargs: dict[str, Any] = {}
        if self.max_age is not None:
            kwargs["max_age"] = self.max_age
        if not await session.manager.verify_csrf_token(session.id, token, **kwargs):
            await self._reject(scope, send, "CSRF token invalid or expired")
            return
        await self.app(scope, receive, send)

    async def _form_token(self, scope: Scope, body: bytes) -> str | None:
        content_types = header_values(scope.get("headers", ()), b"content-type")
        kind = content_types[0].split(";")[0].strip().lower() if content_types else ""
        if kind == _FORM:
            fields = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
            return next((v for k, v in fields if k == self.field_name), None)
        if kind == _MULTIPART:
            return await _multipart_field(scope, body, self.field_name)
        return None

    async def _reject(self, scope: Scope, send: Send, reason: str) -> None:
        session = scope.get("session")
        sid = getattr(session, "id", None)
        logger.warning(
            "CSRF check refused %s %s (%s); session %s",
            scope["method"],
            scope["path"],
            reason,
            fingerprint(sid) if sid else "none",
        )
        body = f"Forbidden: {reason}\n".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode("latin-1")),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """Read the request body; ``complete`` is false past *limit* bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True  # the client left; nothing to check
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, receive: Receive) -> Receive:
    """Return a ``receive`` that hands the app the body already read."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _multipart_field(scope: Scope, body: bytes, name: str) -> str | None:
    try:
        from starlette.requests import Request
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "reading a CSRF token from a multipart form", "starlette", "web"
        ) from exc

    request = Request(scope, _replay(body, _no_more))
    try:
        async with request.form() as form:
            value = form.get(name)
    except Exception:  # a malformed form carries no token: the caller says 403
        return None
    return value if isinstance(value, str) else None


async def _no_more() -> Message:
    return {"type": "http.disconnect"}
