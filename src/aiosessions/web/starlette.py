"""``SessionMiddleware``: server-side sessions for Starlette, FastAPI, any ASGI app.

The session id travels in a cookie (browsers) or in a request header (APIs,
MCP servers); the data stays in the store. Each HTTP request gets a lazy
:class:`~aiosessions.web.session.Session` as ``scope["session"]``, which
Starlette and FastAPI expose as ``request.session``::

    app.add_middleware(SessionMiddleware, manager=SessionManager("shop"))

    async def profile(request):
        session = await request.session.load()
        session["visits"] = session.get("visits", 0) + 1

The middleware imports no web framework.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigurationError
from ._asgi import ASGIApp, Headers, Message, Receive, Scope, Send, header_values
from .session import Session

if TYPE_CHECKING:
    from ..manager import SessionManager

__all__ = ["SessionMiddleware", "session_from"]

SameSite = Literal["lax", "strict", "none"]
Transport = Literal["cookie", "header"]

# RFC 6265 cookie-name (an RFC 7230 token); header names are tokens too.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Path and Domain end at ';' and must not smuggle control characters.
_ATTRIBUTE = re.compile(r"[\x21-\x3a\x3c-\x7e]+")
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"


def session_from(source: Any) -> Session:
    """Return the session of a request (or of an ASGI scope).

    Typed code can use this where ``request.session`` is typed as a dict.

    Raises:
        RuntimeError: no :class:`SessionMiddleware` runs for this request.
    """
    scope = getattr(source, "scope", source)
    session = scope.get("session") if hasattr(scope, "get") else None
    if not isinstance(session, Session):
        raise RuntimeError(
            "no aiosessions session on this request: add"
            " aiosessions.web.starlette.SessionMiddleware to the app"
        )
    return session


def parse_cookie(header: str, name: str) -> str | None:
    """Return the first value of cookie *name* in a ``Cookie`` header."""
    for pair in header.split(";"):
        key, sep, value = pair.partition("=")
        if sep and key.strip() == name:
            return value.strip().strip('"')
    return None


class SessionMiddleware:
    """Give each HTTP request ``scope["session"]``, stored by *manager*.

    Args:
        app: the ASGI application to wrap.
        manager: the :class:`~aiosessions.SessionManager` holding the
            sessions (its sandbox is the site's tenant).
        transport: ``"cookie"`` for browsers; ``"header"`` for API clients,
            which send the id in *header_name* and get a new one back in
            the same response header.
        cookie_name: name of the cookie. A ``__Host-`` name is recommended
            in production: browsers then refuse the cookie unless it is
            Secure, for Path=/ and without Domain, so a sibling subdomain
            cannot plant one.
        header_name: request and response header of the ``"header"``
            transport.
        max_age: cookie lifetime in seconds; ``None`` (default) makes a
            browser-session cookie. The session's own lifetime is the
            manager's either way.
        path: cookie Path.
        domain: cookie Domain; ``None`` (default, safest) limits the cookie
            to the host that set it.
        secure: send the cookie over HTTPS only. Turn it off only for plain
            HTTP on localhost during development.
        http_only: hide the cookie from JavaScript.
        same_site: ``"lax"`` (default), ``"strict"`` or ``"none"``;
            ``"none"`` needs *secure*.

    Raises:
        ConfigurationError: an option is malformed or unsafe together with
            another (SameSite=None without Secure, a ``__Host-`` cookie with
            a Domain...).
    """

    def __init__(
        self,
        app: ASGIApp,
        manager: SessionManager,
        *,
        transport: Transport = "cookie",
        cookie_name: str = "session",
        header_name: str = "Mcp-Session-Id",
        max_age: int | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool = True,
        http_only: bool = True,
        same_site: SameSite = "lax",
    ) -> None:
        if transport not in ("cookie", "header"):
            raise ConfigurationError("transport", transport, "use 'cookie' or 'header'")
        if not _TOKEN.fullmatch(cookie_name):
            raise ConfigurationError("cookie_name", cookie_name, "not a cookie name")
        if not _TOKEN.fullmatch(header_name):
            raise ConfigurationError("header_name", header_name, "not a header name")
        if max_age is not None and (
            isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 1
        ):
            raise ConfigurationError("max_age", max_age, "seconds, an int >= 1")
        if not path.startswith("/") or not _ATTRIBUTE.fullmatch(path):
            raise ConfigurationError("path", path, "must start with '/', no ';'")
        if domain is not None and not _ATTRIBUTE.fullmatch(domain):
            raise ConfigurationError("domain", domain, "not a cookie domain")
        if same_site not in ("lax", "strict", "none"):
            raise ConfigurationError(
                "same_site", same_site, "use 'lax', 'strict' or 'none'"
            )
        if same_site == "none" and not secure:
            raise ConfigurationError(
                "secure", secure, "SameSite=None cookies must be Secure"
            )
        if cookie_name.startswith(("__Secure-", "__Host-")) and not secure:
            raise ConfigurationError(
                "cookie_name", cookie_name, "this prefix needs secure=True"
            )
        if cookie_name.startswith("__Host-") and (path != "/" or domain is not None):
            raise ConfigurationError(
                "cookie_name", cookie_name, "a __Host- cookie needs path='/', no domain"
            )

        self.app = app
        self.manager = manager
        self.transport = transport
        self.cookie_name = cookie_name
        self.header_name = header_name
        self._header_key = header_name.lower().encode("latin-1")
        attributes = [f"Path={path}"]
        if domain is not None:
            attributes.append(f"Domain={domain}")
        tail = []
        if secure:
            tail.append("Secure")
        if http_only:
            tail.append("HttpOnly")
        tail.append(f"SameSite={same_site.capitalize()}")
        self._attributes = attributes
        self._tail = tail
        self.max_age = max_age

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        session = Session(self.manager, self._incoming_id(scope))
        scope["session"] = session

        async def send_with_session(message: Message) -> None:
            if message["type"] == "http.response.start":
                await session.commit()
                self._add_headers(session, message)
            await send(message)

        await self.app(scope, receive, send_with_session)

    def _incoming_id(self, scope: Scope) -> str | None:
        headers = scope.get("headers", ())
        if self.transport == "header":
            values = header_values(headers, self._header_key)
            return (values[0].strip() or None) if values else None
        for header in header_values(headers, b"cookie"):
            value = parse_cookie(header, self.cookie_name)
            if value is not None:
                return value or None
        return None

    def set_cookie_header(self, session_id: str | None) -> str:
        """Return the ``Set-Cookie`` value carrying *session_id*.

        ``None`` gives the deletion cookie: empty, ``Max-Age=0``, with the
        same Path, Domain, Secure and SameSite, so that browsers match it to
        the cookie they hold.
        """
        parts = [f"{self.cookie_name}={session_id or ''}", *self._attributes]
        if session_id is None:
            parts += ["Max-Age=0", f"Expires={_EPOCH}"]
        elif self.max_age is not None:
            parts.append(f"Max-Age={self.max_age}")
        return "; ".join(parts + self._tail)

    def _add_headers(self, session: Session, message: Message) -> None:
        if session.id == session.incoming_id:
            return
        if self.transport == "header" and session.id is None:
            return  # nothing to tell a client that keeps its own headers
        headers: Headers = [
            (key, value)
            for key, value in message.get("headers", ())
            if key.lower() != b"cache-control"
        ]
        # A response that hands out a session id must never be cached, or a
        # shared cache would hand it to the next visitor.
        headers.append((b"cache-control", b"no-store"))
        if self.transport == "header":
            assert session.id is not None
            headers.append((self._header_key, session.id.encode("latin-1")))
        else:
            cookie = self.set_cookie_header(session.id)
            headers.append((b"set-cookie", cookie.encode("latin-1")))
        message["headers"] = headers
