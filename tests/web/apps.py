"""A small Starlette app exercising the session middleware, and its client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from aiosessions import SessionManager
from aiosessions.web.csrf import CSRFMiddleware
from aiosessions.web.starlette import SessionMiddleware, session_from

BASE_URL = "https://testserver"


class Rendezvous:
    """Hold each request at a point until *parties* requests reached it."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.all_here = asyncio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived >= self.parties:
            self.all_here.set()
        await asyncio.wait_for(self.all_here.wait(), 5)


def make_app(
    manager: SessionManager,
    *,
    csrf: dict[str, Any] | None = None,
    rendezvous: Rendezvous | None = None,
    **options: Any,
) -> Starlette:
    """Routes: read, write (JSON body), delete (?key=), login, logout..."""

    async def read(request: Request) -> Response:
        session = await request.session.load()
        return JSONResponse(
            {"id": session.id, "user": session.user_id, "data": dict(session)}
        )

    async def write(request: Request) -> Response:
        changes = await request.json()
        session = request.session
        if rendezvous is not None:
            await session.load()
            await rendezvous.wait()
        session.update(changes)
        return PlainTextResponse("written")

    async def delete(request: Request) -> Response:
        for key in request.query_params.getlist("key"):
            del request.session[key]
        return PlainTextResponse("deleted")

    async def nothing(request: Request) -> Response:
        return PlainTextResponse("no session used")

    async def login(request: Request) -> Response:
        session = session_from(request)
        await session.regenerate(user_id=request.query_params["user"])
        session["signed_in"] = True
        return PlainTextResponse("signed in")

    async def rotate(request: Request) -> Response:
        new = await session_from(request).regenerate()
        return PlainTextResponse("rotated" if new else "nothing to rotate")

    async def logout(request: Request) -> Response:
        request.session.clear()
        if "flash" in request.query_params:
            request.session["flash"] = request.query_params["flash"]
        return PlainTextResponse("signed out")

    async def token(request: Request) -> Response:
        return PlainTextResponse(await session_from(request).csrf_token())

    async def form(request: Request) -> Response:
        fields = await request.form()
        request.session["note"] = str(fields.get("note", ""))
        return PlainTextResponse("saved")

    async def cached(request: Request) -> Response:
        request.session["seen"] = True
        return PlainTextResponse("x", headers={"Cache-Control": "public, max-age=60"})

    middleware = [Middleware(SessionMiddleware, manager=manager, **options)]
    if csrf is not None:
        middleware.append(Middleware(CSRFMiddleware, **csrf))
    routes = [
        Route("/read", read),
        Route("/write", write, methods=["POST", "GET"]),
        Route("/delete", delete, methods=["POST", "GET"]),
        Route("/nothing", nothing, methods=["GET", "POST"]),
        Route("/login", login, methods=["POST", "GET"]),
        Route("/rotate", rotate, methods=["POST", "GET"]),
        Route("/logout", logout, methods=["POST", "GET"]),
        Route("/token", token),
        Route("/form", form, methods=["POST", "PUT", "DELETE", "PATCH"]),
        Route("/cached", cached),
    ]
    return Starlette(routes=routes, middleware=middleware)


def client(app: Any, base_url: str = BASE_URL) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


def plant(http: httpx.AsyncClient, value: str, name: str = "session") -> None:
    """Put a cookie in the client's jar as if the test server had set it."""
    http.cookies.set(name, value, domain="testserver.local")


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def cookie_of(response: httpx.Response, name: str = "session") -> SimpleCookie:
    """Parse the one Set-Cookie header of *response* for cookie *name*."""
    headers = [h for h in set_cookies(response) if h.startswith(f"{name}=")]
    assert len(headers) == 1, headers
    jar: SimpleCookie = SimpleCookie()
    jar.load(headers[0])
    return jar


def attributes(response: httpx.Response, name: str = "session") -> dict[str, str]:
    """Set-Cookie attributes as lower-case names (flags map to '')."""
    header = next(h for h in set_cookies(response) if h.startswith(f"{name}="))
    parts = [p.strip() for p in header.split(";")][1:]
    return {
        p.partition("=")[0].lower(): p.partition("=")[2] for p in parts if p.strip()
    }


Factory = Callable[..., Starlette]
