"""Sentinel: the primary is found by name; data and sentinel auth are separate."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from aiosessions import ProviderError, RedisStore, SessionManager
from tests.conftest import require_redis
from tests.servers import RedisSentinel

pytestmark = pytest.mark.redis

DATA_PW = "data:pw#1@x"
SENTINEL_PW = "sentinel-pw/2"


@pytest.fixture(scope="module")
def guarded() -> Iterator[RedisSentinel]:
    """A Sentinel set-up whose data servers and sentinels have passwords."""
    require_redis()
    setup = RedisSentinel(password=DATA_PW, sentinel_password=SENTINEL_PW)
    try:
        setup.start()
        yield setup
    finally:
        setup.stop()


async def test_health_names_the_primary_sentinel_reports(
    redis_sentinel: RedisSentinel,
) -> None:
    store = RedisStore(redis_sentinel.url)
    report = await store.health()

    primary = redis_sentinel.current_primary()
    assert report["ok"] is True
    assert report["service_name"] == "mymaster"
    assert report["nodes"][0] == {
        "address": f"{primary.host}:{primary.port}",
        "role": "primary",
        "latency_ms": report["nodes"][0]["latency_ms"],
    }
    assert [n["role"] for n in report["nodes"][1:]] == ["sentinel"] * 3
    await store.aclose()


async def test_data_and_sentinel_passwords_both_work(
    guarded: RedisSentinel,
) -> None:
    assert "sentinel_password=" in guarded.url
    store = RedisStore(guarded.url)
    mgr = SessionManager("guarded", store=store)

    sid = await mgr.allocate_session()
    report = await mgr.health()

    assert await mgr.validate_session(sid)
    text = json.dumps(report) + repr(store) + json.dumps(store.describe())
    assert report["ok"] is True
    for secret in ("pw#1", "sentinel-pw"):
        assert secret not in text
    await store.aclose()


async def test_a_missing_sentinel_password_names_the_option(
    guarded: RedisSentinel,
) -> None:
    store = RedisStore(guarded.url.split("?")[0], retries=1)
    with pytest.raises(ProviderError, match=r"\?sentinel_password=") as caught:
        await store.get("k")
    assert "pw#1" not in str(caught.value)
    await store.aclose()


async def test_a_wrong_data_password_is_refused_not_retried(
    guarded: RedisSentinel,
) -> None:
    url = guarded.url.replace("data%3Apw%231%40x", "wrong")
    store = RedisStore(url, retries=3)
    with pytest.raises(ProviderError, match="credentials"):
        await store.get("k")
    await store.aclose()
