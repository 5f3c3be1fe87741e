"""Three things a web service does with sessions, without a web framework.

1. Login sessions: log in, authenticated requests, log out, log in again.
2. An API gateway that rate-limits each client exactly, under concurrency.
3. A one-time email verification code that cannot be replayed.

Requests are plain objects here; in a real app the session id travels in a
cookie or a header. Runs on the store named by the environment::

    python examples/web_app_example.py
    SESSION_PROVIDER=redis SESSION_REDIS_URL=redis://127.0.0.1:6380/0 \\
        python examples/web_app_example.py
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import sys
import time
from dataclasses import dataclass, field

from aiosessions import ProviderError, SessionManager, get_default_store, get_session

COOKIE = "sid"

# A real app keeps password hashes (argon2, scrypt), never the passwords.
PASSWORDS = {"alice": "correct horse battery staple"}


@dataclass
class Request:
    path: str
    cookies: dict[str, str] = field(default_factory=dict)


@dataclass
class Response:
    status: int
    body: str
    cookies: dict[str, str] = field(default_factory=dict)


def check(condition: bool, claim: str) -> None:
    """Stop with exit code 1 if the library did not do what we expect."""
    if not condition:
        print(f"\nUNEXPECTED: {claim}", file=sys.stderr)
        raise SystemExit(1)


# -- 1. Login sessions ----------------------------------------------------


class WebApp:
    """Cookie sessions for one site (one sandbox)."""

    def __init__(self) -> None:
        self.sessions = SessionManager("webapp-demo", default_ttl_hours=8)

    async def login(self, request: Request, user: str, password: str) -> Response:
        expected = PASSWORDS.get(user, "")
        if not hmac.compare_digest(expected.encode(), password.encode()):
            return Response(401, "bad credentials")

        # Whatever session the browser had before logging in is dropped:
        # the authenticated session always gets an id of its own.
        old = request.cookies.get(COOKIE)
        if old is not None:
            await self.sessions.delete_session(old)
        session_id = await self.sessions.allocate_session(
            user_id=user, custom_metadata={"login_at": time.time()}
        )
        return Response(200, f"welcome {user}", {COOKIE: session_id})

    async def handle(self, request: Request) -> Response:
        session_id = request.cookies.get(COOKIE, "")
        if not await self.sessions.validate_session(session_id):
            return Response(401, "please log in")
        info = await self.sessions.get_session_info(session_id)
        if info is None:  # deleted between the two calls
            return Response(401, "please log in")
        return Response(200, f"{request.path} for {info['user_id']}")

    async def logout(self, request: Request) -> Response:
        await self.sessions.delete_session(request.cookies.get(COOKIE, ""))
        return Response(200, "bye", {COOKIE: ""})


async def login_sessions() -> None:
    print("\n1. Login sessions")
    app = WebApp()

    refused = await app.login(Request("/login"), "alice", "wrong")
    print(f"   wrong password          -> {refused.status} {refused.body}")

    browser: dict[str, str] = {}
    response = await app.login(Request("/login", browser), "alice", PASSWORDS["alice"])
    browser.update(response.cookies)
    first_id = browser[COOKIE]
    print(f"   login                   -> {response.status} {response.body}")

    for path in ("/inbox", "/settings"):
        response = await app.handle(Request(path, browser))
        print(f"   GET {path:<19} -> {response.status} {response.body}")
        check(response.status == 200, "a logged-in request was refused")

    await app.logout(Request("/logout", browser))
    response = await app.handle(Request("/inbox", {COOKIE: first_id}))
    print(f"   GET /inbox, old cookie  -> {response.status} {response.body}")
    check(response.status == 401, "a logged-out session still works")

    response = await app.login(
        Request("/login", {COOKIE: first_id}), "alice", PASSWORDS["alice"]
    )
    second_id = response.cookies[COOKIE]
    print(f"   login again             -> new id: {second_id != first_id}")
    check(second_id != first_id, "a re-login reused the old id")
    await app.logout(Request("/logout", response.cookies))


# -- 2. API gateway with a rate limit -------------------------------------


class Gateway:
    """One session per API client; at most ``limit`` requests a minute."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sessions = SessionManager("gateway-demo", default_ttl_hours=1)

    async def open(self, client: str) -> str:
        return await self.sessions.allocate_session(user_id=client)

    async def call(self, session_id: str) -> int:
        """Return the HTTP status of one API call."""
        # A fixed window: one counter per minute. increment_metadata is one
        # atomic step in the store, so concurrent calls never share a count.
        window = f"requests:{int(time.time() // 60)}"
        count = await self.sessions.increment_metadata(session_id, window)
        if count is None:
            return 401
        return 200 if count <= self.limit else 429


async def rate_limit() -> None:
    print("\n2. API gateway: an exact rate limit under concurrency")
    gateway = Gateway(limit=10)
    session_id = await gateway.open("client-42")

    statuses = await asyncio.gather(*(gateway.call(session_id) for _ in range(25)))
    allowed, limited = statuses.count(200), statuses.count(429)
    print(f"   25 concurrent calls, limit 10 -> {allowed} x 200, {limited} x 429")
    check(allowed == 10 and limited == 15, "the limit was not enforced exactly")

    await gateway.sessions.delete_session(session_id)
    print(f"   call after the session ends  -> {await gateway.call(session_id)}")


# -- 3. One-time email verification code ----------------------------------


class EmailVerifier:
    """Codes that expire quickly and verify at most once."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds

    @staticmethod
    def _key(email: str) -> str:
        return f"verify-email:{email.lower()}"

    async def send_code(self, email: str) -> str:
        code = f"{secrets.randbelow(1_000_000):06d}"
        async with get_session() as kv:
            await kv.setex(self._key(email), self.ttl_seconds, code)
        return code  # a real app emails it instead

    async def verify(self, email: str, code: str) -> bool:
        async with get_session() as kv:
            expected = await kv.get(self._key(email))
            if expected is None or not hmac.compare_digest(expected, code):
                return False
            # Only one caller can delete the key, so of two requests racing
            # with the right code exactly one succeeds.
            return await kv.delete(self._key(email))


async def one_time_code() -> None:
    print("\n3. One-time email verification code")
    verifier = EmailVerifier(ttl_seconds=0.5)  # 10 minutes in a real app
    email = "alice@example.com"

    code = await verifier.send_code(email)
    wrong = "000000" if code != "000000" else "111111"
    print(f"   wrong code              -> {await verifier.verify(email, wrong)}")
    results = await asyncio.gather(
        verifier.verify(email, code), verifier.verify(email, code)
    )
    print(f"   right code, sent twice  -> {sorted(results)}")
    check(sorted(results) == [False, True], "a code verified twice")
    print(f"   replayed later          -> {await verifier.verify(email, code)}")

    code = await verifier.send_code(email)
    await asyncio.sleep(0.6)
    expired = await verifier.verify(email, code)
    print(f"   right code, too late    -> {expired}")
    check(not expired, "an expired code verified")


async def main() -> None:
    store = get_default_store()
    print("store:", store.describe())
    try:
        await login_sessions()
        await rate_limit()
        await one_time_code()
    except ProviderError as exc:
        print(f"\nThe store failed: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    finally:
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(main())
