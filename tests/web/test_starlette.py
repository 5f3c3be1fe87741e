"""SessionMiddleware over httpx's ASGI transport, on every store."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from fastapi import FastAPI, Request

from aiosessions import ConfigurationError, SessionManager
from aiosessions.security.ids import generate_session_id
from aiosessions.stores import Store
from aiosessions.web import Session
from aiosessions.web.starlette import SessionMiddleware, parse_cookie, session_from

from ..spy import CountingStore
from .apps import (
    Rendezvous,
    attributes,
    client,
    cookie_of,
    make_app,
    plant,
    set_cookies,
)


@pytest.fixture
def manager(store: Store) -> SessionManager:
    return SessionManager("web", store=store)


async def stored(manager: SessionManager, sid: str) -> dict[str, Any] | None:
    info = await manager.get_session_info(sid)
    return None if info is None else dict(info["custom_metadata"])


class TestCookie:
    async def test_secure_defaults(self, manager: SessionManager) -> None:
        async with client(make_app(manager)) as http:
            response = await http.post("/write", json={"a": 1})

        attrs = attributes(response)
        assert set(attrs) == {"path", "secure", "httponly", "samesite"}
        assert attrs["path"] == "/"
        assert attrs["samesite"] == "Lax"
        assert response.headers["cache-control"] == "no-store"

    async def test_cookie_holds_only_an_opaque_id(
        self, manager: SessionManager
    ) -> None:
        async with client(make_app(manager)) as http:
            response = await http.post("/write", json={"name": "alice"})

        sid = cookie_of(response)["session"].value
        assert "alice" not in sid
        assert await stored(manager, sid) == {"name": "alice"}

    async def test_options_shape_the_cookie(self, manager: SessionManager) -> None:
        app = make_app(
            manager,
            cookie_name="__Secure-sid",
            max_age=600,
            path="/app",
            domain="example.test",
            same_site="strict",
            http_only=True,
        )
        async with client(app) as http:
            response = await http.post("/write", json={"a": 1})

        attrs = attributes(response, "__Secure-sid")
        assert attrs["max-age"] == "600"
        assert attrs["path"] == "/app"
        assert attrs["domain"] == "example.test"
        assert attrs["samesite"] == "Strict"

    async def test_secure_can_be_turned_off_for_localhost(
        self, manager: SessionManager
    ) -> None:
        app = make_app(manager, secure=False)
        async with client(app, "http://127.0.0.1") as http:
            response = await http.post("/write", json={"a": 1})
            read = await http.get("/read")

        assert "secure" not in attributes(response)
        assert read.json()["data"] == {"a": 1}

    async def test_same_site_none_is_always_secure(
        self, manager: SessionManager
    ) -> None:
        app = make_app(manager, same_site="none")
        async with client(app) as http:
            response = await http.post("/write", json={"a": 1})

        attrs = attributes(response)
        assert attrs["samesite"] == "None" and "secure" in attrs

    async def test_responses_that_set_no_cookie_keep_their_cache_headers(
        self, manager: SessionManager
    ) -> None:
        async with client(make_app(manager)) as http:
            first = await http.get("/cached")
            second = await http.get("/cached")

        assert first.headers["cache-control"] == "no-store"
        assert len(first.headers.get_list("cache-control")) == 1
        assert second.headers["cache-control"] == "public, max-age=60"
        assert set_cookies(second) == []

    def test_first_cookie_of_the_name_wins(self) -> None:
        header = 'other=1; session="abc"; session=def'
        assert parse_cookie(header, "session") == "abc"
        assert parse_cookie("sessionx=1; flag", "session") is None


class TestLaziness:
    async def test_an_unused_session_costs_no_store_call(self, store: Store) -> None:
        spy = CountingStore(store)
        manager = SessionManager("web", store=spy)  # type: ignore[arg-type]
        sid = await manager.allocate_session()
        spy.calls.clear()

        async with client(make_app(manager)) as http:
            plant(http, sid)
            response = await http.get("/nothing")
            anonymous = await http.post("/nothing", headers={"Cookie": "session="})

        assert spy.calls == []
        assert set_cookies(response) == [] and set_cookies(anonymous) == []

    async def test_no_session_is_created_for_a_request_that_writes_nothing(
        self, store: Store
    ) -> None:
        spy = CountingStore(store)
        manager = SessionManager("web", store=spy)  # type: ignore[arg-type]
        async with client(make_app(manager)) as http:
            response = await http.get("/read")

        assert response.json() == {"id": None, "user": None, "data": {}}
        assert spy.calls == []
        assert set_cookies(response) == []
        assert "cache-control" not in response.headers

    async def test_a_blind_write_is_one_check_and_one_merge(self, store: Store) -> None:
        spy = CountingStore(store)
        manager = SessionManager("web", store=spy)  # type: ignore[arg-type]
        sid = await manager.allocate_session(custom_metadata={"keep": 1})
        spy.calls.clear()

        async with client(make_app(manager)) as http:
            plant(http, sid)
            response = await http.post("/write", json={"a": 2})

        assert spy.calls == ["session_touch", "session_update"]
        assert set_cookies(response) == []
        assert await stored(manager, sid) == {"keep": 1, "a": 2}

    async def test_reading_is_one_check_and_one_read(self, store: Store) -> None:
        spy = CountingStore(store)
        manager = SessionManager("web", store=spy)  # type: ignore[arg-type]
        sid = await manager.allocate_session(custom_metadata={"a": 1})
        spy.calls.clear()

        async with client(make_app(manager)) as http:
            plant(http, sid)
            response = await http.get("/read")

        assert response.json()["data"] == {"a": 1}
        assert spy.calls == ["session_touch", "session_read"]


class TestWrites:
    async def test_data_survives_between_requests(
        self, manager: SessionManager
    ) -> None:
        async with client(make_app(manager)) as http:
            await http.post("/write", json={"a": 1, "nested": {"b": [1, 2]}})
            await http.post("/write", json={"c": "three"})
            response = await http.get("/read")

        assert response.json()["data"] == {
            "a": 1,
            "nested": {"b": [1, 2]},
            "c": "three",
        }

    async def test_only_changed_keys_are_written(self, manager: SessionManager) -> None:
        async with client(make_app(manager)) as http:
            await http.post("/write", json={"a": 1, "b": 2})
            sid = http.cookies["session"]
            # Another worker changes "a" behind this client's back...
            await manager.update_session_metadata(sid, {"a": "other worker"})
            await http.post("/write", json={"b": 3})

        assert await stored(manager, sid) == {"a": "other worker", "b": 3}

    async def test_deleted_keys_are_removed(self, manager: SessionManager) -> None:
        async with client(make_app(manager)) as http:
            await http.post("/write", json={"a": 1, "b": 2, "c": 3})
            await http.post("/delete?key=a&key=c")
            response = await http.get("/read")

        assert response.json()["data"] == {"b": 2}

    async def test_two_concurrent_requests_both_keep_their_writes(
        self, manager: SessionManager
    ) -> None:
        sid = await manager.allocate_session(custom_metadata={"start": 0})
        meeting = Rendezvous(2)
        app = make_app(manager, rendezvous=meeting)

        async with client(app) as http:
            plant(http, sid)
            # Both load the session before either writes: a whole-dict save
            # would lose one of the two keys.
            first, second = await asyncio.gather(
                http.post("/write", json={"left": 1}),
                http.post("/write", json={"right": 2}),
            )

        assert first.status_code == second.status_code == 200
        assert await stored(manager, sid) == {"start": 0, "left": 1, "right": 2}

    async def test_a_failed_request_writes_nothing(
        self, manager: SessionManager
    ) -> None:
        async def broken(scope: Any, receive: Any, send: Any) -> None:
            session_from(scope)["half"] = "written"
            raise RuntimeError("boom")

        sid = await manager.allocate_session()
        middleware = SessionMiddleware(broken, manager=manager)
        scope = {
            "type": "http",
            "headers": [(b"cookie", f"session={sid}".encode())],
        }

        with pytest.raises(RuntimeError, match="boom"):
            await middleware(scope, None, None)  # type: ignore[arg-type]
        assert await stored(manager, sid) == {}


class TestFixation:
    async def test_an_unknown_id_is_replaced_never_adopted(
        self, manager: SessionManager
    ) -> None:
        planted = generate_session_id()
        async with client(make_app(manager)) as http:
            plant(http, planted)
            response = await http.post("/write", json={"a": 1})

        issued = cookie_of(response)["session"].value
        assert issued != planted
        assert await manager.get_session_info(planted) is None
        assert await stored(manager, issued) == {"a": 1}

    async def test_an_expired_id_is_replaced(self, store: Store) -> None:
        manager = SessionManager("web", store=store, idle_timeout=0.1)
        sid = await manager.allocate_session(custom_metadata={"old": True})
        await asyncio.sleep(0.25)

        async with client(make_app(manager)) as http:
            plant(http, sid)
            response = await http.post("/write", json={"a": 1})

        issued = cookie_of(response)["session"].value
        assert issued != sid
        assert await stored(manager, issued) == {"a": 1}

    async def test_a_malformed_id_costs_no_store_call(self, store: Store) -> None:
        spy = CountingStore(store)
        manager = SessionManager("web", store=spy)  # type: ignore[arg-type]
        async with client(make_app(manager)) as http:
            plant(http, "x" * 5000)
            response = await http.get("/read")

        assert spy.calls == []
        assert response.json()["data"] == {}
        # The client is told to forget the bad id.
        assert attributes(response)["max-age"] == "0"

    async def test_login_moves_an_attackers_session_to_a_new_id(
        self, manager: SessionManager
    ) -> None:
        # The attacker got a real session and plants its id in the victim.
        planted = await manager.allocate_session(custom_metadata={"cart": [1]})
        async with client(make_app(manager)) as http:
            plant(http, planted)
            response = await http.post("/login?user=victim")
            read = await http.get("/read")

        issued = cookie_of(response)["session"].value
        assert issued != planted
        assert await manager.get_session_info(planted) is None
        body = read.json()
        assert body["id"] == issued and body["user"] == "victim"
        # An anonymous session's data follows the login (a cart survives).
        assert body["data"] == {"cart": [1], "signed_in": True}

    async def test_login_as_another_user_carries_no_data_over(
        self, manager: SessionManager
    ) -> None:
        async with client(make_app(manager)) as http:
            await http.post("/login?user=alice")
            await http.post("/write", json={"secret": "alice's"})
            alice = http.cookies["session"]
            await http.post("/login?user=bob")
            read = await http.get("/read")

        assert read.json()["user"] == "bob"
        assert read.json()["data"] == {"signed_in": True}
        assert await manager.get_session_info(alice) is None

    async def test_login_again_as_the_same_user_rotates_the_id(
        self, manager: SessionManager
    ) -> None:
        async with client(make_app(manager)) as http:
            await http.post("/login?user=alice")
            first = http.cookies["session"]
            await http.post("/write", json={"kept": 1})
            await http.post("/login?user=alice")
            read = await http.get("/read")

        assert read.json()["id"] != first
        assert read.json()["data"] == {"signed_in": True, "kept": 1}
        assert await manager.get_session_info(first) is None


class TestLogout:
    async def test_logout_deletes_server_side_and_expires_the_cookie(
        self, manager: SessionManager
    ) -> None:
        app = make_app(manager, domain="example.test", same_site="strict")
        async with client(app, "https://www.example.test") as http:
            await http.post("/write", json={"a": 1})
            sid = http.cookies["session"]
            response = await http.post("/logout")

        attrs = attributes(response)
        assert response.headers["set-cookie"].startswith("session=;")
        assert attrs["max-age"] == "0"
        assert attrs["path"] == "/" and attrs["domain"] == "example.test"
        assert attrs["samesite"] == "Strict" and "secure" in attrs
        assert response.headers["cache-control"] == "no-store"
        assert await manager.get_session_info(sid) is None

    async def test_the_old_cookie_no_longer_works(
        self, manager: SessionManager
    ) -> None:
        async with client(make_app(manager)) as http:
            await http.post("/login?user=alice")
            sid = http.cookies["session"]
            await http.post("/logout")
            plant(http, sid)
            read = await http.get("/read")

        assert read.json() == {"id": None, "user": None, "data": {}}

    async def test_writes_after_logout_start_a_new_session(
        self, manager: SessionManager
    ) -> None:
        async with client(make_app(manager)) as http:
            await http.post("/login?user=alice")
            old = http.cookies["session"]
            response = await http.post("/logout?flash=bye")
            read = await http.get("/read")

        new = cookie_of(response)["session"].value
        assert new and new != old
        assert read.json() == {"id": new, "user": None, "data": {"flash": "bye"}}


class TestLogging:
    async def test_a_whole_web_lifecycle_logs_no_raw_id(
        self, manager: SessionManager, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        planted = generate_session_id()
        seen: set[str] = {planted}
        async with client(make_app(manager)) as http:
            plant(http, planted)
            await http.post("/write", json={"a": 1})
            seen.add(http.cookies["session"])
            await http.post("/login?user=alice")
            seen.add(http.cookies["session"])
            await http.get("/read")
            await http.post("/logout")

        assert "session ended" in caplog.text
        for sid in seen:
            assert sid not in caplog.text


class TestHeaderTransport:
    async def test_id_travels_in_the_header(self, manager: SessionManager) -> None:
        app = make_app(manager, transport="header")
        async with client(app) as http:
            created = await http.post("/write", json={"a": 1})
            sid = created.headers["mcp-session-id"]
            read = await http.get("/read", headers={"Mcp-Session-Id": sid})
            again = await http.post(
                "/write", json={"b": 2}, headers={"Mcp-Session-Id": sid}
            )

        assert set_cookies(created) == []
        assert created.headers["cache-control"] == "no-store"
        assert read.json()["data"] == {"a": 1}
        assert "mcp-session-id" not in again.headers
        assert await stored(manager, sid) == {"a": 1, "b": 2}

    async def test_unknown_header_id_gets_a_fresh_session(
        self, manager: SessionManager
    ) -> None:
        planted = generate_session_id()
        app = make_app(manager, transport="header", header_name="X-Session")
        async with client(app) as http:
            response = await http.post(
                "/write", json={"a": 1}, headers={"X-Session": planted}
            )
            blank = await http.get("/read", headers={"X-Session": "  "})

        assert response.headers["x-session"] != planted
        assert await manager.get_session_info(planted) is None
        assert blank.json()["id"] is None

    async def test_logout_sends_no_header(self, manager: SessionManager) -> None:
        app = make_app(manager, transport="header")
        async with client(app) as http:
            sid = (await http.post("/write", json={"a": 1})).headers["mcp-session-id"]
            response = await http.post("/logout", headers={"Mcp-Session-Id": sid})

        assert "mcp-session-id" not in response.headers
        assert await manager.get_session_info(sid) is None


class TestFrameworks:
    async def test_fastapi_sees_the_session_on_request(
        self, manager: SessionManager
    ) -> None:
        app = FastAPI()
        app.add_middleware(SessionMiddleware, manager=manager)

        @app.post("/visit")
        async def visit(request: Request) -> dict[str, int]:
            session = await session_from(request).load()
            session["visits"] = session.get("visits", 0) + 1
            return {"visits": session["visits"]}

        async with client(app) as http:
            counts = [(await http.post("/visit")).json()["visits"] for _ in range(3)]

        assert counts == [1, 2, 3]

    async def test_other_scopes_pass_through(self, manager: SessionManager) -> None:
        seen: list[dict[str, Any]] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            seen.append(scope)

        await SessionMiddleware(app, manager=manager)(
            {"type": "lifespan"},
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
        )
        assert seen == [{"type": "lifespan"}]

    def test_session_from_names_the_missing_middleware(self) -> None:
        with pytest.raises(RuntimeError, match="SessionMiddleware"):
            session_from({"type": "http"})
        with pytest.raises(RuntimeError, match="SessionMiddleware"):
            session_from(object())


class TestConfiguration:
    @pytest.mark.parametrize(
        ("options", "field"),
        [
            ({"transport": "query"}, "transport"),
            ({"cookie_name": "bad name"}, "cookie_name"),
            ({"cookie_name": ""}, "cookie_name"),
            ({"header_name": "X:Y"}, "header_name"),
            ({"max_age": 0}, "max_age"),
            ({"max_age": True}, "max_age"),
            ({"max_age": 1.5}, "max_age"),
            ({"path": "app"}, "path"),
            ({"path": "/a;b"}, "path"),
            ({"domain": "a.test; Secure"}, "domain"),
            ({"same_site": "relaxed"}, "same_site"),
            ({"same_site": "none", "secure": False}, "secure"),
            ({"cookie_name": "__Host-s", "secure": False}, "cookie_name"),
            ({"cookie_name": "__Secure-s", "secure": False}, "cookie_name"),
            ({"cookie_name": "__Host-s", "path": "/app"}, "cookie_name"),
            ({"cookie_name": "__Host-s", "domain": "a.test"}, "cookie_name"),
        ],
    )
    def test_unsafe_or_malformed_options_are_refused(
        self, options: dict[str, Any], field: str
    ) -> None:
        manager = SessionManager("web")
        with pytest.raises(ConfigurationError) as caught:
            SessionMiddleware(None, manager=manager, **options)  # type: ignore[arg-type]
        assert caught.value.name == field

    def test_host_prefixed_cookie_is_accepted_with_its_rules(self) -> None:
        middleware = SessionMiddleware(
            None,  # type: ignore[arg-type]
            manager=SessionManager("web"),
            cookie_name="__Host-session",
        )
        header = middleware.set_cookie_header("abc")
        assert header == "__Host-session=abc; Path=/; Secure; HttpOnly; SameSite=Lax"


def test_session_is_exported_from_the_web_package() -> None:
    import aiosessions.web as web

    assert web.Session is Session
    assert set(web.__all__) == {
        "CSRFMiddleware",
        "Session",
        "SessionMiddleware",
        "SessionNotLoadedError",
        "session_from",
    }
