"""What only the in-process store has to prove: reclaiming, caps, threads."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from aiosessions import ConfigurationError, ProviderError, SessionManager
from aiosessions.stores import MemoryStore


class TestReclaiming:
    async def test_expired_entries_nobody_reads_are_reclaimed_by_writes(
        self,
    ) -> None:
        store = MemoryStore()
        for i in range(500):
            await store.set(f"old:{i}", "v", 20)
        await asyncio.sleep(1.1)  # the one-second bucket has to close
        for i in range(20):
            await store.set(f"new:{i}", "v")
        assert len(store) == 20

    async def test_sweep_work_per_write_is_bounded(self) -> None:
        store = MemoryStore()
        for i in range(1000):
            await store.set(f"old:{i}", "v", 20)
        await asyncio.sleep(1.1)
        await store.set("trigger", "v")
        assert 1000 - 64 <= len(store) - 1 < 1000

    async def test_sliding_expiry_leaves_no_stale_entries(self) -> None:
        store = MemoryStore()
        mgr = SessionManager("app", store=store, idle_timeout=0.05)
        sid = await mgr.allocate_session()
        for _ in range(50):
            await mgr.validate_session(sid)
        await asyncio.sleep(1.2)
        assert await store.cleanup() == 1
        assert len(store) == 0
        assert not store._buckets and not store._heap

    async def test_cleanup_reclaims_everything_expired(self) -> None:
        store = MemoryStore()
        for i in range(300):
            await store.set(f"k:{i}", "v", 10)
        await store.set("keep", "v", 60_000)
        await asyncio.sleep(1.1)
        assert await store.cleanup() == 300
        assert len(store) == 1
        assert await store.cleanup() == 0

    async def test_clear_drops_everything(self) -> None:
        store = MemoryStore()
        await store.set("k", "v", 1000)
        store.clear()
        assert len(store) == 0
        assert await store.get("k") is None


class TestCap:
    async def test_cap_evicts_the_entry_nearest_expiry(self) -> None:
        store = MemoryStore(max_entries=3)
        await store.set("soon", "v", 5_000)
        await store.set("later", "v", 60_000)
        await store.set("never", "v")
        await store.set("new", "v", 30_000)

        assert await store.get("soon") is None
        assert await store.get("later") == "v"
        assert await store.get("never") == "v"
        assert await store.get("new") == "v"
        assert store.evictions == 1
        assert store.describe()["evictions"] == 1

    async def test_cap_prefers_reclaiming_expired_entries(self) -> None:
        store = MemoryStore(max_entries=2)
        await store.set("gone", "v", 10)
        await store.set("keep", "v", 60_000)
        await asyncio.sleep(1.1)
        await store.set("new", "v", 60_000)
        assert store.evictions == 0
        assert await store.get("keep") == "v"

    async def test_full_of_entries_without_expiry_is_an_error(self) -> None:
        store = MemoryStore(max_entries=2)
        await store.set("a", "v")
        await store.set("b", "v")
        await store.set("a", "v2")  # overwriting needs no room
        with pytest.raises(ProviderError, match="full"):
            await store.set("c", "v")
        assert await store.get("c") is None

    @pytest.mark.parametrize("bad", [0, -1, True, 2.5, "10"])
    def test_bad_cap_is_refused(self, bad: object) -> None:
        with pytest.raises(ConfigurationError, match="max_entries"):
            MemoryStore(max_entries=bad)  # type: ignore[arg-type]


class TestThreads:
    def test_threads_with_their_own_loops_count_exactly(self) -> None:
        store = MemoryStore()
        mgr = SessionManager("app", store=store)
        sid = asyncio.run(mgr.allocate_session())

        def work() -> None:
            async def run() -> None:
                for _ in range(250):
                    await mgr.increment_metadata(sid, "n")
                    await mgr.update_session_metadata(sid, {"t": time.time()})

            asyncio.run(run())

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        info = asyncio.run(mgr.get_session_info(sid))
        assert info is not None and info["custom_metadata"]["n"] == 1000

    def test_repr_names_the_size(self) -> None:
        assert "entries=0" in repr(MemoryStore())
