"""CSRFMiddleware: unsafe methods need a token bound to the session."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import httpx
import pytest

from aiosessions import ConfigurationError, SessionManager
from aiosessions.stores import Store
from aiosessions.web.csrf import CSRFMiddleware
from aiosessions.web.session import Session

from .apps import client, make_app

KEY = secrets.token_urlsafe(48)


@pytest.fixture
def manager(store: Store) -> SessionManager:
    return SessionManager("web", store=store, secret_key=KEY)


async def start(http: httpx.AsyncClient) -> str:
    """Open a session (by asking for a token) and return the token."""
    response = await http.get("/token")
    assert response.status_code == 200
    return response.text


async def note(manager: SessionManager, http: httpx.AsyncClient) -> Any:
    info = await manager.get_session_info(http.cookies["session"])
    assert info is not None
    return info["custom_metadata"].get("note")


class TestAccepted:
    async def test_a_valid_form_field_passes(self, manager: SessionManager) -> None:
        async with client(make_app(manager, csrf={})) as http:
            token = await start(http)
            response = await http.post(
                "/form", data={"csrf_token": token, "note": "hello"}
            )
            assert response.status_code == 200, response.text
            assert await note(manager, http) == "hello"

    async def test_a_valid_header_passes(self, manager: SessionManager) -> None:
        async with client(make_app(manager, csrf={})) as http:
            token = await start(http)
            for method in ("POST", "PUT", "PATCH", "DELETE"):
                response = await http.request(
                    method,
                    "/form",
                    data={"note": method},
                    headers={"X-CSRF-Token": token},
                )
                assert response.status_code == 200, (method, response.text)

    async def test_a_multipart_form_field_passes(self, manager: SessionManager) -> None:
        async with client(make_app(manager, csrf={})) as http:
            token = await start(http)
            response = await http.post(
                "/form",
                data={"csrf_token": token, "note": "with a file"},
                files={"upload": ("a.txt", b"content", "text/plain")},
            )
            assert response.status_code == 200, response.text
            assert await note(manager, http) == "with a file"

    async def test_safe_methods_never_need_a_token(
        self, manager: SessionManager
    ) -> None:
        async with client(make_app(manager, csrf={})) as http:
            for method in ("GET", "HEAD", "OPTIONS"):
                response = await http.request(method, "/nothing")
                assert response.status_code in (200, 405), method
                assert response.status_code != 403

    async def test_exempt_paths_need_no_token(self, manager: SessionManager) -> None:
        app = make_app(manager, csrf={"exempt_paths": ["/nothing"]})
        async with client(app) as http:
            response = await http.post("/nothing")
        assert response.status_code == 200

    async def test_custom_names_and_max_age(self, manager: SessionManager) -> None:
        options = {"field_name": "tok", "header_name": "X-Tok", "max_age": 600}
        async with client(make_app(manager, csrf=options)) as http:
            token = await start(http)
            by_field = await http.post("/form", data={"tok": token, "note": "a"})
            by_header = await http.post("/form", headers={"X-Tok": token})
        assert by_field.status_code == by_header.status_code == 200


class TestRejected:
    async def test_a_missing_token_is_403_and_writes_nothing(
        self, manager: SessionManager
    ) -> None:
        async with client(make_app(manager, csrf={})) as http:
            await start(http)
            response = await http.post("/form", data={"note": "forged"})
            assert response.status_code == 403
            assert response.text == "Forbidden: CSRF token missing\n"
            assert await note(manager, http) is None

    async def test_a_wrong_token_is_403(self, manager: SessionManager) -> None:
        async with client(make_app(manager, csrf={})) as http:
            token = await start(http)
            forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
            response = await http.post(
                "/form", data={"csrf_token": forged, "note": "x"}
            )
        assert response.status_code == 403
        assert "invalid" in response.text

    async def test_a_token_of_another_session_is_403(
        self, manager: SessionManager
    ) -> None:
        app = make_app(manager, csrf={})
        async with client(app) as attacker, client(app) as victim:
            attackers_token = await start(attacker)
            await start(victim)
            response = await victim.post(
                "/form", data={"csrf_token": attackers_token, "note": "x"}
            )
        assert response.status_code == 403

    async def test_no_session_is_403(self, manager: SessionManager) -> None:
        async with client(make_app(manager, csrf={})) as http:
            response = await http.post("/form", data={"note": "x"})
        assert response.status_code == 403
        assert "no session" in response.text
        assert response.headers["cache-control"] == "no-store"

    async def test_a_token_dies_with_its_session(self, manager: SessionManager) -> None:
        async with client(make_app(manager, csrf={})) as http:
            token = await start(http)
            sid = http.cookies["session"]
            await manager.delete_session(sid)
            response = await http.post("/form", headers={"X-CSRF-Token": token})
        assert response.status_code == 403

    async def test_a_token_dies_when_the_session_is_regenerated(
        self, manager: SessionManager
    ) -> None:
        async with client(make_app(manager, csrf={})) as http:
            old = await start(http)
            await http.get("/login?user=alice")
            refused = await http.post("/form", headers={"X-CSRF-Token": old})
            fresh = await start(http)
            accepted = await http.post("/form", headers={"X-CSRF-Token": fresh})
        assert refused.status_code == 403
        assert accepted.status_code == 200

    async def test_a_malformed_multipart_body_is_403(
        self, manager: SessionManager
    ) -> None:
        async with client(make_app(manager, csrf={})) as http:
            await start(http)
            response = await http.post(
                "/form",
                content=b"--zz\r\nno headers at all",
                headers={"Content-Type": "multipart/form-data; boundary=zz"},
            )
        assert response.status_code == 403

    async def test_a_token_in_a_json_body_is_not_looked_for(
        self, manager: SessionManager
    ) -> None:
        async with client(make_app(manager, csrf={})) as http:
            token = await start(http)
            response = await http.post("/form", json={"csrf_token": token})
        assert response.status_code == 403

    async def test_a_form_too_large_to_read_must_use_the_header(
        self, manager: SessionManager
    ) -> None:
        app = make_app(manager, csrf={"max_body_size": 100})
        async with client(app) as http:
            token = await start(http)
            response = await http.post(
                "/form", data={"csrf_token": token, "note": "x" * 200}
            )
            by_header = await http.post(
                "/form", data={"note": "x" * 200}, headers={"X-CSRF-Token": token}
            )
        assert response.status_code == 403
        assert "header" in response.text
        assert by_header.status_code == 200

    async def test_a_rejection_is_logged_without_the_token(
        self, manager: SessionManager, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="aiosessions")
        async with client(make_app(manager, csrf={})) as http:
            token = await start(http)
            sid = http.cookies["session"]
            forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
            await http.post("/form", headers={"X-CSRF-Token": forged})

        refusals = [r for r in caplog.records if "CSRF check refused" in r.message]
        assert len(refusals) == 1
        assert refusals[0].levelno == logging.WARNING
        assert "POST /form" in refusals[0].message
        assert "invalid" in refusals[0].message
        assert token not in caplog.text and forged not in caplog.text
        assert sid not in caplog.text

    async def test_a_client_that_leaves_mid_body_is_refused(
        self, manager: SessionManager
    ) -> None:
        sid = await manager.allocate_session()
        called: list[bool] = []
        sent: list[dict[str, Any]] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            called.append(True)

        messages = iter(
            [
                {"type": "http.request", "body": b"note=x", "more_body": True},
                {"type": "http.disconnect"},
            ]
        )

        async def receive() -> dict[str, Any]:
            return next(messages)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/form",
            "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
            "session": Session(manager, sid),
        }
        await CSRFMiddleware(app)(scope, receive, send)

        assert called == []
        assert sent[0]["status"] == 403


class TestConfiguration:
    @pytest.mark.parametrize(
        ("options", "field"),
        [
            ({"field_name": ""}, "field_name"),
            ({"header_name": "X Token"}, "header_name"),
            ({"max_body_size": -1}, "max_body_size"),
            ({"max_body_size": 1.5}, "max_body_size"),
            ({"max_body_size": True}, "max_body_size"),
        ],
    )
    def test_malformed_options_are_refused(
        self, options: dict[str, Any], field: str
    ) -> None:
        with pytest.raises(ConfigurationError) as caught:
            CSRFMiddleware(None, **options)  # type: ignore[arg-type]
        assert caught.value.name == field

    async def test_it_needs_the_session_middleware(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            raise AssertionError("not reached")

        scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
        with pytest.raises(RuntimeError, match="SessionMiddleware"):
            await CSRFMiddleware(app)(scope, None, None)  # type: ignore[arg-type]

    async def test_other_scopes_pass_through(self) -> None:
        seen: list[str] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            seen.append(scope["type"])

        await CSRFMiddleware(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
        assert seen == ["lifespan"]
