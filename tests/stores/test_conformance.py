"""One suite, every store: values, expiry, records and errors behave alike."""

from __future__ import annotations

import asyncio

import pytest

from aiosessions.errors import InvalidMetadataError, ProviderError
from aiosessions.stores import Store

pytestmark = pytest.mark.asyncio

KEY = "conformance:key"
REC = "conformance:{record}"


class TestValues:
    async def test_set_then_get_returns_the_value(self, store: Store) -> None:
        await store.set(KEY, "héllo ✓")
        assert await store.get(KEY) == "héllo ✓"

    async def test_empty_string_is_a_value(self, store: Store) -> None:
        await store.set(KEY, "")
        assert await store.get(KEY) == ""
        assert await store.exists(KEY)

    async def test_missing_key_reads_as_none(self, store: Store) -> None:
        assert await store.get("conformance:absent") is None
        assert not await store.exists("conformance:absent")

    async def test_set_overwrites_value_and_expiry(self, store: Store) -> None:
        await store.set(KEY, "a", 60_000)
        await store.set(KEY, "b")
        assert await store.get(KEY) == "b"
        assert await store.pttl(KEY) == -1

    async def test_delete_reports_whether_the_key_existed(self, store: Store) -> None:
        await store.set(KEY, "v")
        assert await store.delete(KEY) is True
        assert await store.delete(KEY) is False
        assert await store.get(KEY) is None

    async def test_pttl_conventions(self, store: Store) -> None:
        assert await store.pttl(KEY) is None
        await store.set(KEY, "v")
        assert await store.pttl(KEY) == -1
        await store.set(KEY, "v", 5_000)
        left = await store.pttl(KEY)
        assert left is not None and 4_000 < left <= 5_000

    async def test_value_expires_after_its_ttl(self, store: Store) -> None:
        await store.set(KEY, "v", 60)
        assert await store.get(KEY) == "v"
        await asyncio.sleep(0.15)
        assert await store.get(KEY) is None
        assert not await store.exists(KEY)
        assert await store.pttl(KEY) is None
        assert await store.delete(KEY) is False

    async def test_pexpire_sets_expiry_only_on_live_keys(self, store: Store) -> None:
        assert await store.pexpire(KEY, 1_000) is False
        await store.set(KEY, "v")
        assert await store.pexpire(KEY, 50) is True
        await asyncio.sleep(0.15)
        assert await store.get(KEY) is None

    async def test_reading_a_record_as_a_value_is_an_error(self, store: Store) -> None:
        await store.session_create(REC, {}, 60_000, None, None)
        with pytest.raises(ProviderError):
            await store.get(REC)

    async def test_record_operations_on_a_value_are_an_error(
        self, store: Store
    ) -> None:
        await store.set(KEY, "v")
        with pytest.raises(ProviderError):
            await store.session_read(KEY)


class TestRecords:
    async def test_create_sets_clock_fields_and_expiry(self, store: Store) -> None:
        created = await store.session_create(REC, {"u": "alice"}, 60_000, None, None)
        record = await store.session_read(REC)

        assert created is True
        assert record is not None
        fields = record.fields
        assert fields["u"] == "alice"
        assert fields["c"] == fields["l"]
        assert int(fields["a"]) == int(fields["c"]) + 60_000
        assert "i" not in fields and "x" not in fields
        assert 59_000 < record.ttl_ms <= 60_000
        assert abs(record.now_ms - int(fields["c"])) < 5_000

    async def test_create_never_overwrites(self, store: Store) -> None:
        assert await store.session_create(REC, {":k": "1"}, 60_000, None, None)
        assert not await store.session_create(REC, {":k": "2"}, 60_000, None, None)
        record = await store.session_read(REC)
        assert record is not None and record.fields[":k"] == "1"

    async def test_cap_bounds_the_deadline_at_creation(self, store: Store) -> None:
        await store.session_create(REC, {}, 60_000, None, 10_000)
        record = await store.session_read(REC)
        assert record is not None
        assert int(record.fields["x"]) == int(record.fields["c"]) + 10_000
        assert record.fields["a"] == record.fields["x"]
        assert record.ttl_ms <= 10_000

    async def test_idle_timeout_sets_the_first_expiry(self, store: Store) -> None:
        await store.session_create(REC, {}, 60_000, 2_000, None)
        record = await store.session_read(REC)
        assert record is not None
        assert record.fields["i"] == "2000"
        assert record.ttl_ms <= 2_000

    async def test_touch_slides_the_idle_expiry(self, store: Store) -> None:
        await store.session_create(REC, {}, 60_000, 300, None)
        for _ in range(4):
            await asyncio.sleep(0.15)
            assert await store.session_touch(REC)
        await asyncio.sleep(0.45)
        assert not await store.session_touch(REC)
        assert await store.session_read(REC) is None

    async def test_touch_never_slides_past_the_deadline(self, store: Store) -> None:
        await store.session_create(REC, {}, 400, 300, None)
        await asyncio.sleep(0.2)
        assert await store.session_touch(REC)
        record = await store.session_read(REC)
        assert record is not None and record.ttl_ms <= 200
        await asyncio.sleep(0.3)
        assert not await store.session_touch(REC)

    async def test_touch_without_idle_keeps_the_expiry(self, store: Store) -> None:
        await store.session_create(REC, {}, 60_000, None, None)
        before = await store.pttl(REC)
        await asyncio.sleep(0.05)
        assert await store.session_touch(REC)
        after = await store.pttl(REC)
        assert before is not None and after is not None and after <= before

    async def test_touch_records_the_access_time(self, store: Store) -> None:
        await store.session_create(REC, {}, 60_000, None, None)
        await asyncio.sleep(0.02)
        await store.session_touch(REC)
        record = await store.session_read(REC)
        assert record is not None
        assert int(record.fields["l"]) > int(record.fields["c"])

    async def test_touch_of_a_missing_record_is_false(self, store: Store) -> None:
        assert not await store.session_touch(REC)
        assert not await store.session_touch(REC, 1_000, None)
        assert not await store.exists(REC)

    async def test_refresh_needs_the_same_owner(self, store: Store) -> None:
        await store.session_create(REC, {"u": "alice"}, 1_000, None, None)
        assert not await store.session_touch(REC, 60_000, "bob")
        assert not await store.session_touch(REC, 60_000, None)
        left = await store.pttl(REC)
        assert left is not None and left <= 1_000
        assert await store.session_touch(REC, 60_000, "alice")
        left = await store.pttl(REC)
        assert left is not None and left > 50_000

    async def test_refresh_merges_fields_in_the_same_step(self, store: Store) -> None:
        await store.session_create(REC, {"u": "a", ":k": "1"}, 1_000, None, None)
        assert await store.session_touch(REC, 60_000, "a", {":j": "2"})
        assert not await store.session_touch(REC, 60_000, "b", {":z": "3"})
        record = await store.session_read(REC)
        assert record is not None
        assert record.fields[":k"] == "1" and record.fields[":j"] == "2"
        assert ":z" not in record.fields

    async def test_refresh_of_an_anonymous_record(self, store: Store) -> None:
        await store.session_create(REC, {}, 1_000, None, None)
        assert not await store.session_touch(REC, 60_000, "alice")
        assert await store.session_touch(REC, 60_000, None)

    async def test_refresh_never_passes_the_cap(self, store: Store) -> None:
        await store.session_create(REC, {}, 1_000, None, 5_000)
        assert await store.session_touch(REC, 60_000, None)
        record = await store.session_read(REC)
        assert record is not None
        assert record.fields["a"] == record.fields["x"]
        assert record.ttl_ms <= 5_000

    async def test_update_merges_custom_fields(self, store: Store) -> None:
        await store.session_create(REC, {"u": "a", ":k1": "1"}, 60_000, None, None)
        assert await store.session_update(REC, {":k2": "2"}, replace=False)
        record = await store.session_read(REC)
        assert record is not None
        assert record.fields[":k1"] == "1" and record.fields[":k2"] == "2"

    async def test_update_replaces_only_custom_fields(self, store: Store) -> None:
        await store.session_create(REC, {"u": "a", ":k1": "1"}, 60_000, 9_000, None)
        assert await store.session_update(REC, {":k2": "2"}, replace=True)
        record = await store.session_read(REC)
        assert record is not None
        assert ":k1" not in record.fields
        assert record.fields[":k2"] == "2"
        assert record.fields["u"] == "a" and record.fields["i"] == "9000"

    async def test_update_removes_named_custom_fields(self, store: Store) -> None:
        fields = {"u": "a", ":k1": "1", ":k2": "2", ":k3": "3"}
        await store.session_create(REC, fields, 60_000, None, None)
        assert await store.session_update(
            REC, {":k4": "4"}, replace=False, remove=[":k1", ":k3", ":absent"]
        )
        record = await store.session_read(REC)
        assert record is not None
        assert {n for n in record.fields if n.startswith(":")} == {":k2", ":k4"}
        assert record.fields["u"] == "a"

    async def test_remove_never_touches_lifecycle_fields(self, store: Store) -> None:
        await store.session_create(REC, {"u": "a"}, 60_000, 9_000, 90_000)
        assert await store.session_update(
            REC, {}, replace=False, remove=["u", "a", "i", "x", "c", "l"]
        )
        record = await store.session_read(REC)
        assert record is not None
        assert set(record.fields) == {"u", "a", "i", "x", "c", "l"}

    async def test_a_field_both_removed_and_written_keeps_the_new_value(
        self, store: Store
    ) -> None:
        await store.session_create(REC, {":k": "old"}, 60_000, None, None)
        assert await store.session_update(
            REC, {":k": "new"}, replace=False, remove=[":k"]
        )
        record = await store.session_read(REC)
        assert record is not None and record.fields[":k"] == "new"

    async def test_concurrent_merges_with_removals_all_survive(
        self, store: Store
    ) -> None:
        start = {f":old{i}": "x" for i in range(20)}
        await store.session_create(REC, start, 60_000, None, None)
        await asyncio.gather(
            *(
                store.session_update(
                    REC, {f":new{i}": str(i)}, replace=False, remove=[f":old{i}"]
                )
                for i in range(20)
            )
        )
        record = await store.session_read(REC)
        assert record is not None
        custom = {n: v for n, v in record.fields.items() if n.startswith(":")}
        assert custom == {f":new{i}": str(i) for i in range(20)}

    async def test_remove_on_a_missing_record_creates_nothing(
        self, store: Store
    ) -> None:
        assert not await store.session_update(REC, {}, replace=False, remove=[":k"])
        assert not await store.exists(REC)

    async def test_update_keeps_the_expiry(self, store: Store) -> None:
        await store.session_create(REC, {}, 60_000, None, None)
        before = await store.pttl(REC)
        await store.session_update(REC, {":k": "1"}, replace=False)
        after = await store.pttl(REC)
        assert before is not None and after is not None and after <= before

    async def test_update_never_creates_a_record(self, store: Store) -> None:
        assert not await store.session_update(REC, {":k": "1"}, replace=False)
        assert not await store.session_update(REC, {":k": "1"}, replace=True)
        assert not await store.exists(REC)

    async def test_incr_counts_from_zero(self, store: Store) -> None:
        await store.session_create(REC, {}, 60_000, None, None)
        assert await store.session_incr(REC, ":n", 1) == 1
        assert await store.session_incr(REC, ":n", 41) == 42
        assert await store.session_incr(REC, ":n", -50) == -8

    async def test_incr_of_a_missing_record_is_none(self, store: Store) -> None:
        assert await store.session_incr(REC, ":n", 1) is None
        assert not await store.exists(REC)

    @pytest.mark.parametrize("stored", ['"5"', "5.0", "true", "05", "-0", "[1]"])
    async def test_incr_refuses_non_integers(self, store: Store, stored: str) -> None:
        await store.session_create(REC, {":n": stored}, 60_000, None, None)
        with pytest.raises(InvalidMetadataError, match="integer"):
            await store.session_incr(REC, ":n", 1)
        record = await store.session_read(REC)
        assert record is not None and record.fields[":n"] == stored

    async def test_incr_refuses_to_overflow(self, store: Store) -> None:
        await store.session_create(REC, {":n": str(2**63 - 2)}, 60_000, None, None)
        assert await store.session_incr(REC, ":n", 1) == 2**63 - 1
        with pytest.raises(InvalidMetadataError, match="64-bit"):
            await store.session_incr(REC, ":n", 1)

    async def test_extend_moves_the_deadline(self, store: Store) -> None:
        await store.session_create(REC, {}, 10_000, None, None)
        left = await store.session_extend(REC, 50_000)
        record = await store.session_read(REC)
        assert left is not None and 55_000 < left <= 60_000
        assert record is not None
        assert int(record.fields["a"]) == int(record.fields["c"]) + 60_000

    async def test_extend_stops_at_the_cap(self, store: Store) -> None:
        await store.session_create(REC, {}, 10_000, None, 20_000)
        left = await store.session_extend(REC, 3_600_000)
        record = await store.session_read(REC)
        assert left is not None and left <= 20_000
        assert record is not None and record.fields["a"] == record.fields["x"]

    async def test_extend_keeps_the_idle_timeout(self, store: Store) -> None:
        await store.session_create(REC, {}, 10_000, 2_000, None)
        left = await store.session_extend(REC, 50_000)
        assert left is not None and left <= 2_000

    async def test_extend_of_a_missing_record_is_none(self, store: Store) -> None:
        assert await store.session_extend(REC, 1_000) is None
        assert not await store.exists(REC)

    async def test_delete_removes_a_record(self, store: Store) -> None:
        await store.session_create(REC, {}, 60_000, None, None)
        assert await store.delete(REC)
        assert await store.session_read(REC) is None
        assert not await store.session_touch(REC)

    @pytest.mark.parametrize("idle", [None, 2_000, 90_000])
    async def test_expiry_is_always_derivable_from_the_fields(
        self, store: Store, idle: int | None
    ) -> None:
        def expected(fields: dict[str, str]) -> int:
            deadline = int(fields["a"])
            if "i" not in fields:
                return deadline
            return min(int(fields["l"]) + int(fields["i"]), deadline)

        await store.session_create(REC, {}, 60_000, idle, None)
        for step in ("create", "touch", "extend", "refresh", "update"):
            if step == "touch":
                await store.session_touch(REC)
            elif step == "extend":
                await store.session_extend(REC, 5_000)
            elif step == "refresh":
                await store.session_touch(REC, 30_000, None)
            elif step == "update":
                await store.session_update(REC, {":k": "v"}, replace=False)
            record = await store.session_read(REC)
            assert record is not None
            actual = record.now_ms + record.ttl_ms
            assert abs(actual - expected(record.fields)) <= 5, step
            await asyncio.sleep(0.01)


class TestHousekeeping:
    async def test_count_sees_only_live_keys_with_the_prefix(
        self, store: Store
    ) -> None:
        for i in range(5):
            await store.set(f"count:a:{i}", "v")
        await store.set("count:a*:x", "v")
        await store.set("count:ab", "v")
        await store.set("count:a:short", "v", 30)
        await asyncio.sleep(0.1)
        assert await store.count("count:a:") == 5
        assert await store.count("count:a*") == 1

    async def test_cleanup_returns_a_count(self, store: Store) -> None:
        assert await store.cleanup() >= 0

    async def test_ping_reports_latency_in_seconds(self, store: Store) -> None:
        latency = await store.ping()
        assert 0 <= latency < 5

    async def test_describe_is_json_safe(self, store: Store) -> None:
        import json

        description = store.describe()
        assert description["provider"] == store.provider
        json.dumps(description)
