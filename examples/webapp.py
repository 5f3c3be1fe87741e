"""A server-rendered web app on aiosessions: sign in, profile, your sessions.

Run it (memory store, http://127.0.0.1:8000)::

    pip install -e '.[web]'
    python examples/webapp.py

On Redis, shared by several workers, give every worker the same secret key
(CSRF tokens and signed ids are checked with it)::

    export SESSION_SECRET_KEY="$(head -c 48 /dev/urandom | base64)"
    SESSION_REDIS_URL=redis://127.0.0.1:6380/0 python examples/webapp.py

What it shows: a session is created only when a page needs one (the sign-in
form, for its CSRF token); signing in moves the session to a new id; every
form is CSRF-protected; "your active sessions" lists the user's sessions in
every browser, each with a revoke button; log out ends this session, log out
everywhere ends them all. There is no password: it is a demo of sessions,
not of authentication.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
from datetime import datetime, timezone
from typing import Any

try:
    import uvicorn
    from jinja2 import DictLoader, Environment, select_autoescape
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, RedirectResponse, Response
    from starlette.routing import Route
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise SystemExit(
        f"{exc.name} is missing: pip install 'aiosessions[web]' to run this demo"
    ) from exc

from aiosessions import SessionManager, SessionMetadata
from aiosessions.web import CSRFMiddleware, Session, SessionMiddleware, session_from

SANDBOX = "webapp-demo"
NAME_LIMIT = 40
FIELDS = ("display_name", "colour", "bio")
COLOURS = ("teal", "orange", "purple", "crimson", "slategray")

PAGES = {
    "base.html": """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}aiosessions demo{% endblock %}</title>
<style>
 body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f6f7f9;
        color: #1d2330; }
 header { background: {{ colour or "#1d2330" }}; color: white;
          padding: .8rem 1.5rem; display: flex; gap: 1.5rem;
          align-items: center; }
 header a { color: white; }
 header button { color: white; background: transparent;
                 border: 1px solid #fff9; border-radius: 4px; }
 header .who { margin-left: auto; }
 main { max-width: 46rem; margin: 2rem auto; background: white;
        padding: 1.5rem 2rem; border-radius: 8px;
        box-shadow: 0 1px 3px #0002; }
 label { display: block; margin: .8rem 0 .2rem; font-weight: 600; }
 input, select, textarea { font: inherit; padding: .4rem; width: 100%;
                           box-sizing: border-box; }
 button { font: inherit; padding: .4rem 1rem; cursor: pointer; }
 form.inline { display: inline; }
 .flash { background: #e7f6ec; border: 1px solid #9bd3ae; padding: .5rem 1rem;
          border-radius: 4px; }
 table { width: 100%; border-collapse: collapse; }
 td, th { text-align: left; padding: .4rem; border-bottom: 1px solid #ddd;
          vertical-align: top; }
 .muted { color: #667; font-size: .9rem; }
 .this { font-weight: 600; color: #17803d; }
</style></head>
<body>
<header>
 <strong>aiosessions demo</strong>
 {% if user %}
  <a href="/profile">Profile</a> <a href="/sessions">Your sessions</a>
  <span class="who">Signed in as <b id="who">{{ user }}</b></span>
  <form class="inline" method="post" action="/logout">
   <input type="hidden" name="csrf_token" value="{{ csrf }}">
   <button id="logout">Log out</button></form>
 {% endif %}
</header>
<main>
{% if flash %}<p class="flash" id="flash">{{ flash }}</p>{% endif %}
{% block main %}{% endblock %}
</main></body></html>""",
    "home.html": """{% extends "base.html" %}{% block main %}
<h1>Sessions, server-side</h1>
<p>This page made no session: nothing is stored for a visitor who only
looks. <a href="/login" id="sign-in">Sign in</a> to get one.</p>
{% endblock %}""",
    "login.html": """{% extends "base.html" %}
{% block title %}Sign in{% endblock %}{% block main %}
<h1>Sign in</h1>
<p class="muted">No password: any name will do. Signing in moves your
session to a new id, so an id planted before it is worthless.</p>
<form method="post" action="/login">
 <input type="hidden" name="csrf_token" value="{{ csrf }}">
 <label for="name">Your name</label>
 <input id="name" name="name" maxlength="{{ limit }}" required autofocus>
 {% if error %}<p class="muted" id="error">{{ error }}</p>{% endif %}
 <p><button id="submit">Sign in</button></p>
</form>{% endblock %}""",
    "profile.html": """{% extends "base.html" %}
{% block title %}Profile{% endblock %}{% block main %}
<h1>Hello, <span id="greeting">{{ data.display_name or user }}</span></h1>
<form method="post" action="/profile" id="profile">
 <input type="hidden" name="csrf_token" value="{{ csrf }}">
 <label for="display_name">Display name</label>
 <input id="display_name" name="display_name" maxlength="60"
        value="{{ data.display_name or '' }}">
 <label for="colour">Favourite colour</label>
 <select id="colour" name="colour">
 {% for c in colours %}<option {{ 'selected' if c == data.colour }}>{{ c }}</option>
 {% endfor %}</select>
 <label for="bio">About you</label>
 <textarea id="bio" name="bio" rows="3" maxlength="500">{{ data.bio or '' }}</textarea>
 <p><button id="save">Save</button></p>
</form>
<p class="muted">Saved in this session only; every other session of yours
keeps its own. This session expires at {{ expires }} UTC.</p>
{% endblock %}""",
    "sessions.html": """{% extends "base.html" %}
{% block title %}Your sessions{% endblock %}{% block main %}
<h1>Your active sessions</h1>
<table id="sessions"><tr><th>Browser</th><th>Signed in</th>
<th>Last active</th><th></th></tr>
{% for s in sessions %}
<tr><td>{{ s.agent }}{% if s.current %} <span class="this">(this one)</span>
{% endif %}</td><td>{{ s.created }}</td><td>{{ s.active }}</td>
<td><form method="post" action="/sessions/revoke">
 <input type="hidden" name="csrf_token" value="{{ csrf }}">
 <input type="hidden" name="handle" value="{{ s.handle }}">
 <button class="revoke">Revoke</button></form></td></tr>
{% endfor %}</table>
<form method="post" action="/logout-everywhere">
 <input type="hidden" name="csrf_token" value="{{ csrf }}">
 <p><button id="logout-everywhere">Log out everywhere</button></p></form>
{% endblock %}""",
}

templates = Environment(
    loader=DictLoader(PAGES), autoescape=select_autoescape(default=True)
)


def handle(session_id: str) -> str:
    """Name a session in a page without putting its id (a credential) there."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:20]


def when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


async def render(
    request: Request, page: str, status: int = 200, **context: Any
) -> Response:
    session = await session_from(request).load()
    flash = session.pop("flash", None)
    html = templates.get_template(page).render(
        user=session.user_id,
        colour=session.get("colour"),
        flash=flash,
        csrf=await session.csrf_token() if page != "home.html" else "",
        **context,
    )
    return HTMLResponse(html, status_code=status)


def redirect(path: str) -> Response:
    # 303: the browser follows with a GET, so a reload never re-posts a form.
    return RedirectResponse(path, status_code=303)


async def signed_in(request: Request) -> Session | None:
    session = await session_from(request).load()
    return session if session.user_id is not None else None


# -- pages -----------------------------------------------------------------


async def home(request: Request) -> Response:
    if await signed_in(request):
        return redirect("/profile")
    return await render(request, "home.html")


async def login_page(request: Request) -> Response:
    if await signed_in(request):
        return redirect("/profile")
    return await render(request, "login.html", limit=NAME_LIMIT)


async def login(request: Request) -> Response:
    form = await request.form()
    name = str(form.get("name", "")).strip()
    if not name or len(name) > NAME_LIMIT or not name.isprintable():
        error = f"Pick a name of 1 to {NAME_LIMIT} printable characters."
        return await render(
            request, "login.html", status=400, error=error, limit=NAME_LIMIT
        )

    session = session_from(request)
    await session.regenerate(user_id=name)
    agent = request.headers.get("user-agent", "unknown browser")
    session["agent"] = agent[:120]
    session["flash"] = f"Welcome, {name}."
    return redirect("/profile")


async def profile(request: Request) -> Response:
    session = await signed_in(request)
    if session is None:
        return redirect("/login")
    metadata = await session.manager.get_session_metadata(str(session.id))
    expires = when(metadata.expires_at) if metadata else "?"
    data = {key: session.get(key) for key in FIELDS}
    return await render(
        request, "profile.html", data=data, colours=COLOURS, expires=expires
    )


async def save_profile(request: Request) -> Response:
    session = await signed_in(request)
    if session is None:
        return redirect("/login")
    form = await request.form()
    for key, limit in (("display_name", 60), ("bio", 500)):
        value = str(form.get(key, "")).strip()[:limit]
        if value:
            session[key] = value
        elif key in session:
            del session[key]
    colour = str(form.get("colour", ""))
    if colour in COLOURS:
        session["colour"] = colour
    session["flash"] = "Profile saved."
    return redirect("/profile")


async def user_sessions(session: Session) -> list[SessionMetadata]:
    assert session.user_id is not None
    return await session.manager.list_user_sessions(session.user_id)


async def sessions_page(request: Request) -> Response:
    session = await signed_in(request)
    if session is None:
        return redirect("/login")
    rows = [
        {
            "handle": handle(other.session_id),
            "current": other.session_id == session.id,
            "agent": other.custom_metadata.get("agent", "unknown browser"),
            "created": when(other.created_at),
            "active": when(other.last_accessed),
        }
        for other in sorted(
            await user_sessions(session), key=lambda m: m.created_at, reverse=True
        )
    ]
    return await render(request, "sessions.html", sessions=rows)


async def revoke(request: Request) -> Response:
    session = await signed_in(request)
    if session is None:
        return redirect("/login")
    wanted = str((await request.form()).get("handle", ""))
    for other in await user_sessions(session):
        if handle(other.session_id) != wanted:
            continue
        if other.session_id == session.id:
            session.clear()
            return redirect("/")
        await session.manager.delete_session(other.session_id)
        session["flash"] = "Session revoked."
    return redirect("/sessions")


async def logout(request: Request) -> Response:
    session_from(request).clear()
    return redirect("/")


async def logout_everywhere(request: Request) -> Response:
    session = await signed_in(request)
    if session is not None:
        assert session.user_id is not None
        await session.manager.revoke_user_sessions(session.user_id)
        session.clear()
    return redirect("/")


# -- the app ----------------------------------------------------------------


def create_app(
    manager: SessionManager | None = None, *, secure_cookies: bool = False
) -> Starlette:
    """Build the demo app.

    *secure_cookies* is off because the demo serves plain HTTP on
    127.0.0.1; behind HTTPS, turn it on (it is the middleware's default).
    """
    if manager is None:
        # The manager reads SESSION_SECRET_KEY itself; without it a random
        # key is made: fine for one process on the memory store, wrong for
        # several workers on Redis (each would refuse the others' ids).
        secret = (
            None if os.environ.get("SESSION_SECRET_KEY") else secrets.token_urlsafe(48)
        )
        manager = SessionManager(
            SANDBOX, default_ttl_hours=8, idle_timeout=30 * 60, secret_key=secret
        )
    routes = [
        Route("/", home),
        Route("/login", login_page),
        Route("/login", login, methods=["POST"]),
        Route("/profile", profile),
        Route("/profile", save_profile, methods=["POST"]),
        Route("/sessions", sessions_page),
        Route("/sessions/revoke", revoke, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/logout-everywhere", logout_everywhere, methods=["POST"]),
    ]
    # The first middleware listed is the outermost: sessions, then CSRF.
    middleware = [
        Middleware(SessionMiddleware, manager=manager, secure=secure_cookies),
        Middleware(CSRFMiddleware),
    ]
    return Starlette(routes=routes, middleware=middleware)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    print(f"aiosessions demo on http://{args.host}:{args.port}")
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
