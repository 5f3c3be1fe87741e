"""health(): every store and manager answers a readiness probe, JSON-safe."""

from __future__ import annotations

import json

from aiosessions import ProviderError, SessionManager
from aiosessions.stores import MemoryStore, Store


async def test_every_store_reports_itself_healthy(store: Store) -> None:
    report = await store.health()

    json.dumps(report)
    assert report["ok"] is True
    assert report["error"] is None
    assert report["provider"] == store.provider
    assert 0 <= report["latency_ms"] < 5000


async def test_manager_health_names_its_sandbox(store: Store) -> None:
    report = await SessionManager("probe", store=store).health()

    json.dumps(report)
    assert report["ok"] is True
    assert report["sandbox_id"] == "probe"
    assert report["store"]["provider"] == store.provider


class BrokenStore(MemoryStore):
    async def ping(self) -> float:
        raise ProviderError("disk on fire", store="broken://", operation="ping")


async def test_a_failing_store_is_reported_not_raised() -> None:
    report = await SessionManager("probe", store=BrokenStore()).health()

    assert report["ok"] is False
    assert report["store"]["latency_ms"] is None
    assert "disk on fire" in report["store"]["error"]
