"""Web integration: ASGI middleware for sessions and CSRF protection.

The middleware imports no framework and works with Starlette, FastAPI and
any other ASGI application. Parsing CSRF tokens out of form bodies uses
Starlette's form parser, from the ``web`` extra
(``pip install 'aiosessions[web]'``).
"""

from .csrf import CSRFMiddleware
from .session import Session, SessionNotLoadedError
from .starlette import SessionMiddleware, session_from

__all__ = [
    "CSRFMiddleware",
    "Session",
    "SessionMiddleware",
    "SessionNotLoadedError",
    "session_from",
]
