"""The demo app (examples/webapp.py) in a real browser: headless Chromium.

The app runs under uvicorn on a free 127.0.0.1 port; an "attacker" site on
another port (another origin) auto-submits a form to it. The browser is
Debian's Chromium driven by Playwright; it never downloads a browser, and
every request to a host other than 127.0.0.1 is aborted.

Screenshots of every page land in the test's ``tmp_path``.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest

from aiosessions import SessionManager
from aiosessions.stores import MemoryStore

from ..conftest import in_ci

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHROMIUM_MISSING = (
    f"Chromium not found at {CHROMIUM}: real-browser tests SKIPPED;"
    " install Debian's chromium (apt-get install chromium chromium-driver)"
)

pytestmark = pytest.mark.slow


def require_browser() -> Any:
    """Return Playwright's sync API, or skip (fail under CI) without Chromium."""
    reason = None
    if not Path(CHROMIUM).exists():
        reason = CHROMIUM_MISSING
    try:
        from playwright import sync_api
    except ImportError:
        reason = "playwright (Python) missing: pip install -e '.[test]'"
    if reason is not None:
        if in_ci():
            pytest.fail(f"{reason} (CI=true: browser tests must not be skipped)")
        pytest.skip(reason)
    return sync_api


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "aiosessions_demo_webapp", ROOT / "examples" / "webapp.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def demo() -> Iterator[tuple[str, SessionManager]]:
    """The demo app on a free loopback port: (base URL, its manager)."""
    import uvicorn

    manager = SessionManager(
        "webapp-demo", store=MemoryStore(), secret_key=secrets.token_urlsafe(48)
    )
    app = load_demo().create_app(manager)
    sock = loopback_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn failed"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", manager
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def attacker(demo: tuple[str, SessionManager]) -> Iterator[str]:
    """A page on another origin that auto-submits a form to the demo app."""
    target = f"{demo[0]}/profile"
    page = f"""<!doctype html><title>Win a prize</title>
<form id="f" method="post" action="{target}">
 <input type="hidden" name="display_name" value="HACKED">
 <input type="hidden" name="bio" value="pwned">
</form><script>document.getElementById('f').submit()</script>"""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/prize"
    finally:
        server.shutdown()
        server.server_close()


class Browser:
    """Fresh Chromium profiles ("devices"), each its own persistent context."""

    def __init__(self, sync_api: Any, tmp_path: Path) -> None:
        self.playwright = sync_api.sync_playwright().start()
        self.tmp_path = tmp_path
        self.contexts: list[Any] = []
        self.shots: list[Path] = []

    def device(self, name: str | None = None) -> Any:
        """A new browser with a fresh profile; *name* becomes its user agent."""
        profile = self.tmp_path / f"profile-{len(self.contexts)}"
        options = {} if name is None else {"user_agent": f"{name} browser"}
        context = self.playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            **options,
        )
        # Belt and braces: nothing may leave the machine.
        context.route("**/*", _loopback_only)
        self.contexts.append(context)
        return context.pages[0] if context.pages else context.new_page()

    def shot(self, page: Any, name: str) -> None:
        path = self.tmp_path / f"{len(self.shots):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.playwright.stop()


def _loopback_only(route: Any) -> None:
    if urlsplit(route.request.url).hostname == "127.0.0.1":
        route.continue_()
    else:
        route.abort()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    sync_api = require_browser()
    chrome = Browser(sync_api, tmp_path)
    try:
        yield chrome
    finally:
        chrome.close()
        keep = os.environ.get("AIOSESSIONS_SCREENSHOTS")
        if keep:  # copy the pictures somewhere a person can look at them
            for path in chrome.shots:
                shutil.copy(path, Path(keep) / path.name)


def session_cookie(page: Any) -> str | None:
    cookies = [c for c in page.context.cookies() if c["name"] == "session"]
    return cookies[0]["value"] if cookies else None


def sign_in(page: Any, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#name", name)
    page.click("#submit")
    page.wait_for_url(f"{base}/profile")


def test_sign_in_profile_csrf_and_logout_in_a_real_browser(
    demo: tuple[str, SessionManager], attacker: str, browser: Browser
) -> None:
    base, _ = demo
    page = browser.device()

    # A visitor who only looks gets no session.
    page.goto(base)
    browser.shot(page, "home")
    assert session_cookie(page) is None

    # The sign-in form needs a CSRF token, so it makes an anonymous session;
    # signing in moves it to a new id.
    page.click("#sign-in")
    page.wait_for_url(f"{base}/login")
    browser.shot(page, "login")
    anonymous = session_cookie(page)
    assert anonymous is not None
    page.fill("#name", "Ada")
    page.click("#submit")
    page.wait_for_url(f"{base}/profile")
    signed_in = session_cookie(page)
    assert signed_in is not None and signed_in != anonymous
    assert page.inner_text("#who") == "Ada"
    assert "Welcome, Ada." in page.inner_text("#flash")

    # The CSRF-protected form updates the session; a reload shows the data.
    page.fill("#display_name", "Ada Lovelace")
    page.select_option("#colour", "teal")
    page.fill("#bio", "Analytical engines.")
    page.click("#save")
    page.wait_for_url(f"{base}/profile")
    assert page.inner_text("#flash") == "Profile saved."
    page.reload()
    assert page.input_value("#display_name") == "Ada Lovelace"
    assert page.input_value("#colour") == "teal"
    assert page.input_value("#bio") == "Analytical engines."
    assert page.locator("#flash").count() == 0
    browser.shot(page, "profile")

    # Another origin auto-submits a form: the browser sends the cookie
    # (same site, SameSite=Lax), but no token, and the app refuses.
    page.goto(attacker)
    page.wait_for_url(f"{base}/profile")
    assert "CSRF token missing" in page.inner_text("body")
    browser.shot(page, "forged-post-refused")
    page.goto(f"{base}/profile")
    assert page.input_value("#display_name") == "Ada Lovelace"
    assert page.input_value("#bio") == "Analytical engines."

    # Log out; the old cookie, replayed, no longer signs anyone in.
    page.click("#logout")
    page.wait_for_url(f"{base}/")
    browser.shot(page, "logged-out")
    assert session_cookie(page) is None
    page.context.add_cookies([{"name": "session", "value": signed_in, "url": base}])
    page.goto(f"{base}/profile")
    page.wait_for_url(f"{base}/login")
    browser.shot(page, "old-cookie-refused")


def test_active_sessions_revoke_and_log_out_everywhere(
    demo: tuple[str, SessionManager], browser: Browser
) -> None:
    base, _ = demo
    laptop, phone = browser.device("Laptop"), browser.device("Phone")
    tablet = browser.device("Tablet")
    for device in (laptop, phone, tablet):
        sign_in(device, base, "Grace")

    laptop.goto(f"{base}/sessions")
    assert laptop.locator("#sessions .revoke").count() == 3
    assert laptop.locator(".this").count() == 1
    browser.shot(laptop, "sessions")

    assert "(this one)" in laptop.inner_text("#sessions tr:has-text('Laptop')")

    laptop.locator("#sessions tr", has_text="Phone browser").locator(".revoke").click()
    laptop.wait_for_url(f"{base}/sessions")
    assert laptop.locator("#sessions .revoke").count() == 2
    assert "Phone" not in laptop.inner_text("#sessions")
    browser.shot(laptop, "session-revoked")
    phone.goto(f"{base}/profile")
    phone.wait_for_url(f"{base}/login")
    tablet.goto(f"{base}/profile")
    assert tablet.inner_text("#who") == "Grace"

    # Log out everywhere: the tablet is signed out too.
    laptop.click("#logout-everywhere")
    laptop.wait_for_url(f"{base}/")
    tablet.goto(f"{base}/profile")
    tablet.wait_for_url(f"{base}/login")
    browser.shot(tablet, "signed-out-everywhere")
