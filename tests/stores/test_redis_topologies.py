"""What must hold on every Redis set-up: standalone, TLS, Cluster, Sentinel."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from aiosessions import RedisStore, SessionManager, create_store, get_session
from tests.conftest import RedisSetup, fresh_redis

pytestmark = pytest.mark.redis


def make_store(setup: RedisSetup, **options: object) -> RedisStore:
    return RedisStore(setup.url, **{**setup.options, **options})  # type: ignore[arg-type]


class TestConfiguration:
    async def test_the_url_alone_configures_the_store(
        self, redis_setup: RedisSetup, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = redis_setup.url
        if "tls_ca_file" in redis_setup.options:
            url += f"?ssl_ca_certs={redis_setup.options['tls_ca_file']}"
        monkeypatch.setenv("SESSION_REDIS_URL", url)
        monkeypatch.delenv("SESSION_PROVIDER", raising=False)

        from_env = create_store()
        from_string = SessionManager("str", store=url)
        sid = await SessionManager("env", store=from_env).allocate_session()

        assert isinstance(from_env, RedisStore)
        assert from_env.topology == make_store(redis_setup).topology
        assert await SessionManager("env", store=from_env).validate_session(sid)
        assert not await from_string.validate_session(sid)  # another sandbox
        assert await from_string.validate_session(await from_string.allocate_session())
        await from_env.aclose()
        await from_string.store.aclose()


class TestLoopsAndThreads:
    def test_one_store_serves_several_runs_and_threads(
        self, redis_setup: RedisSetup
    ) -> None:
        store = make_store(redis_setup)
        mgr = SessionManager("loops", store=store)
        sid = asyncio.run(mgr.allocate_session())
        assert asyncio.run(mgr.validate_session(sid))
        results: list[bool] = []

        def in_thread() -> None:
            async def work() -> bool:
                ok = await mgr.validate_session(sid)
                async with get_session(store) as kv:
                    await kv.setex(f"thread:{threading.get_ident()}", 30, "v")
                return ok

            results.append(asyncio.run(work()))

        threads = [threading.Thread(target=in_thread) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

        assert results == [True, True, True]
        assert asyncio.run(mgr.delete_session(sid))


class TestCancellation:
    async def test_cancelled_calls_leak_no_connection(
        self, redis_setup: RedisSetup
    ) -> None:
        store = make_store(redis_setup, max_connections=2)
        mgr = SessionManager("cancel", store=store)
        sid = await mgr.allocate_session()
        timed_out = 0

        async def impatient(i: int) -> None:
            nonlocal timed_out
            try:
                # From "never started" to "mid-reply": 0 to 2 ms.
                await asyncio.wait_for(mgr.validate_session(sid), (i % 5) * 0.0005)
            except asyncio.TimeoutError:
                timed_out += 1

        await asyncio.gather(*(impatient(i) for i in range(50)))

        assert timed_out > 0
        assert await mgr.validate_session(sid)
        health = await store.health()
        assert health["pool"]["in_use"] == 0
        assert store._bind().limiter._value == 2  # every turn was given back
        await store.aclose()


class TestBurst:
    @pytest.mark.parametrize("kind", ["redis", "redis-cluster"])
    async def test_twenty_thousand_concurrent_operations_succeed(
        self, request: pytest.FixtureRequest, kind: str
    ) -> None:
        setup = fresh_redis(request, kind)
        store = make_store(setup)
        mgr = SessionManager("burst", store=store)
        sid = await mgr.allocate_session()
        kv = get_session(store)

        async def one(i: int) -> bool:
            if i % 3 == 0:
                return bool(await mgr.allocate_session())
            if i % 3 == 1:
                return await mgr.validate_session(sid)
            await kv.setex(f"burst:{i}", 60, "v")
            return True

        start = time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(20_000)))
        elapsed = time.perf_counter() - start

        assert all(results)
        print(f"\n20,000 concurrent operations on {kind}: {elapsed:.2f} s")
        stats = await mgr.get_cache_stats()
        assert stats["active_sessions"] == 1 + len(range(0, 20_000, 3))
        assert (await store.health())["pool"]["in_use"] == 0
        await store.aclose()


class TestScripts:
    async def test_scripts_come_back_after_the_servers_forget_them(
        self, redis_setup: RedisSetup
    ) -> None:
        store = make_store(redis_setup)
        mgr = SessionManager("noscript", store=store)
        ids = [await mgr.allocate_session() for _ in range(12)]
        for server in redis_setup.servers:
            with server.connect() as client:
                client.script_flush()

        assert all([await mgr.validate_session(sid) for sid in ids])
        assert all([await mgr.extend_session_ttl(sid) for sid in ids])
        await store.aclose()


class TestHealth:
    async def test_health_is_json_safe_and_names_the_topology(
        self, redis_setup: RedisSetup
    ) -> None:
        store = make_store(redis_setup)
        report = await store.health()

        json.dumps(report)
        assert report["ok"] is True, report
        assert report["error"] is None
        assert report["provider"] == "redis"
        assert report["topology"] == store.topology
        assert 0 <= report["latency_ms"] < 5000
        assert report["pool"] == {"max_connections": 64, "in_use": 0}
        assert report["nodes"]
        assert all(":" in node["address"] for node in report["nodes"])
        await store.aclose()

    async def test_manager_health_wraps_the_store_report(
        self, redis_setup: RedisSetup
    ) -> None:
        store = make_store(redis_setup)
        report = await SessionManager("probe", store=store).health()
        assert report["ok"] is True
        assert report["sandbox_id"] == "probe"
        assert report["store"]["topology"] == store.topology
        await store.aclose()


class TestConnectionNames:
    async def test_every_connection_is_named_for_operators(
        self, redis_setup: RedisSetup
    ) -> None:
        store = make_store(redis_setup)
        mgr = SessionManager("names", store=store)
        await asyncio.gather(*(mgr.allocate_session() for _ in range(30)))
        names: list[str] = []
        for server in redis_setup.servers:
            with server.connect() as client:
                names += [c["name"] for c in client.client_list()]
        # Besides ours: the test's own connection, replicas and sentinels.
        ours = [name for name in names if name and not name.startswith("sentinel-")]
        assert ours and set(ours) == {"aiosessions"}
        await store.aclose()
