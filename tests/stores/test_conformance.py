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


# -- record lifecycle: validation, rotation, bulk work ----------------------

OTHER = "conformance:{other}"
IDX = "conformance:u:{alice}"
MARKS = "conformance:r:{alice}"


class TestValidate:
    async def test_validate_returns_the_touched_record(self, store: Store) -> None:
        await store.session_create(REC, {"u": "alice"}, 60_000, 300, None)
        await asyncio.sleep(0.05)
        record = await store.session_validate(REC)
        assert record is not None
        assert record.fields["u"] == "alice"
        assert int(record.fields["l"]) > int(record.fields["c"])
        assert 250 < record.ttl_ms <= 300

    async def test_validate_slides_like_touch(self, store: Store) -> None:
        await store.session_create(REC, {}, 60_000, 600, None)
        for _ in range(3):
            await asyncio.sleep(0.3)
            assert await store.session_validate(REC) is not None
        await asyncio.sleep(0.9)
        assert await store.session_validate(REC) is None
        assert not await store.exists(REC)

    async def test_validate_of_a_missing_record_is_none(self, store: Store) -> None:
        assert await store.session_validate(REC) is None
        assert not await store.exists(REC)


class TestRetire:
    async def test_retire_without_grace_deletes_and_returns_it(
        self, store: Store
    ) -> None:
        await store.session_create(REC, {"u": "a", ":k": "1"}, 60_000, None, None)
        before = await store.session_retire(REC, 0)
        assert before is not None
        assert before.fields["u"] == "a" and before.fields[":k"] == "1"
        assert "r" not in before.fields
        assert 59_000 < before.ttl_ms <= 60_000
        assert not await store.exists(REC)

    async def test_retire_with_grace_shortens_and_marks(self, store: Store) -> None:
        await store.session_create(REC, {}, 60_000, None, 120_000)
        before = await store.session_retire(REC, 5_000)
        record = await store.session_read(REC)
        assert before is not None and record is not None
        now = int(record.fields["r"])
        assert int(record.fields["a"]) == now + 5_000
        assert int(record.fields["x"]) == now + 5_000
        assert record.ttl_ms <= 5_000

    async def test_retire_never_lengthens(self, store: Store) -> None:
        await store.session_create(REC, {}, 1_000, None, None)
        await store.session_retire(REC, 60_000)
        record = await store.session_read(REC)
        assert record is not None
        assert record.ttl_ms <= 1_000
        assert int(record.fields["a"]) == int(record.fields["c"]) + 1_000
        assert int(record.fields["x"]) >= int(record.fields["a"])

    async def test_retired_record_cannot_be_lengthened(self, store: Store) -> None:
        await store.session_create(REC, {"u": "a"}, 60_000, None, None)
        await store.session_retire(REC, 2_000)
        left = await store.session_extend(REC, 3_600_000)
        assert left is not None and left <= 2_000
        assert not await store.session_touch(REC, 3_600_000, "a")
        assert await store.session_touch(REC)
        left = await store.pttl(REC)
        assert left is not None and left <= 2_000

    async def test_retire_happens_once(self, store: Store) -> None:
        await store.session_create(REC, {}, 60_000, None, None)
        assert await store.session_retire(REC, 5_000) is not None
        assert await store.session_retire(REC, 5_000) is None
        assert await store.exists(REC)

    async def test_retire_of_a_missing_record_is_none(self, store: Store) -> None:
        assert await store.session_retire(REC, 0) is None
        assert await store.session_retire(REC, 1_000) is None
        assert not await store.exists(REC)


class TestClone:
    async def test_clone_keeps_fields_and_deadline(self, store: Store) -> None:
        await store.session_create(REC, {"u": "a", ":k": "1"}, 60_000, 9_000, 90_000)
        source = await store.session_read(REC)
        assert source is not None
        fields = {n: v for n, v in source.fields.items() if n not in ("l", "t")}
        await asyncio.sleep(0.02)

        assert await store.session_clone(OTHER, fields)
        copy = await store.session_read(OTHER)
        assert copy is not None
        for name in ("c", "a", "x", "i", "u", ":k"):
            assert copy.fields[name] == source.fields[name]
        assert copy.fields["t"] == copy.fields["l"]
        assert int(copy.fields["t"]) > int(source.fields["c"])
        assert copy.ttl_ms <= 9_000

    async def test_clone_expiry_follows_the_deadline(self, store: Store) -> None:
        fields = {"c": "1", "a": str(await _now_ms(store) + 3_000)}
        assert await store.session_clone(OTHER, fields)
        left = await store.pttl(OTHER)
        assert left is not None and 2_000 < left <= 3_000

    async def test_clone_never_overwrites(self, store: Store) -> None:
        await store.session_create(OTHER, {":k": "old"}, 60_000, None, None)
        fields = {"c": "1", "a": str(await _now_ms(store) + 60_000), ":k": "new"}
        assert not await store.session_clone(OTHER, fields)
        record = await store.session_read(OTHER)
        assert record is not None and record.fields[":k"] == "old"

    async def test_clone_past_its_deadline_writes_nothing(self, store: Store) -> None:
        fields = {"c": "1", "a": str(await _now_ms(store) - 1)}
        assert not await store.session_clone(OTHER, fields)
        assert not await store.exists(OTHER)


class TestBulk:
    async def test_pop_returns_the_record_and_deletes_it(self, store: Store) -> None:
        await store.session_create(REC, {"u": "a"}, 60_000, None, None)
        popped = await store.session_pop(REC)
        assert popped is not None and popped.fields["u"] == "a"
        assert popped.ttl_ms > 59_000
        assert await store.session_pop(REC) is None
        assert not await store.exists(REC)

    async def test_read_many_keeps_the_order(self, store: Store) -> None:
        await store.session_create(REC, {"u": "a"}, 60_000, None, None)
        await store.session_create(OTHER, {"u": "b"}, 60_000, None, None)
        records = await store.session_read_many([OTHER, "conformance:{none}", REC])
        assert [r and r.fields["u"] for r in records] == ["b", None, "a"]
        assert await store.session_read_many([]) == []

    async def test_read_many_handles_large_batches(self, store: Store) -> None:
        keys = [f"conformance:{{bulk{i}}}" for i in range(1_200)]
        for key in keys[::2]:
            await store.session_create(key, {}, 60_000, None, None)
        records = await store.session_read_many(keys)
        assert [r is not None for r in records] == [i % 2 == 0 for i in range(1_200)]

    async def test_delete_owned_spares_other_owners(self, store: Store) -> None:
        await store.session_create(REC, {"u": "alice"}, 60_000, None, None)
        await store.session_create(OTHER, {"u": "bob"}, 60_000, None, None)
        anon = "conformance:{anon}"
        await store.session_create(anon, {}, 60_000, None, None)
        gone = "conformance:{gone}"

        results = await store.session_delete_owned([REC, OTHER, anon, gone], "alice")
        assert results == [True, False, False, None]
        assert not await store.exists(REC)
        assert await store.exists(OTHER) and await store.exists(anon)

    async def test_bulk_operations_on_a_value_are_an_error(self, store: Store) -> None:
        await store.set(KEY, "v")
        with pytest.raises(ProviderError):
            await store.session_read_many([KEY])
        with pytest.raises(ProviderError):
            await store.session_delete_owned([KEY], "alice")
        with pytest.raises(ProviderError):
            await store.session_pop(KEY)


# -- user indexes ------------------------------------------------------------


async def _now_ms(store: Store) -> int:
    return (await store.index_read("conformance:u:{clock}")).now_ms


class TestIndex:
    async def test_add_then_read_lists_by_score(self, store: Store) -> None:
        state = await store.index_update(IDX, add={"s2": 20_000, "s1": 10_000})
        listed = await store.index_read(IDX)
        assert state.size == 2 and listed.size == 2
        assert [m for m, _ in listed.members] == ["s1", "s2"]
        score = dict(listed.members)["s1"]
        assert 0 <= score - (state.now_ms + 10_000) <= 1_000

    async def test_read_of_a_missing_index_is_empty(self, store: Store) -> None:
        state = await store.index_read(IDX)
        assert state.size == 0 and state.members == []
        assert state.now_ms > 1_600_000_000_000

    async def test_read_due_only_and_limit(self, store: Store) -> None:
        await store.index_update(IDX, add={"a": 0, "b": 0, "c": 0, "later": 60_000})
        await asyncio.sleep(0.01)
        due = await store.index_read(IDX, due_only=True)
        assert sorted(m for m, _ in due.members) == ["a", "b", "c"]
        assert due.size == 4
        assert len((await store.index_read(IDX, due_only=True, limit=2)).members) == 2
        assert len((await store.index_read(IDX, limit=3)).members) == 3

    async def test_add_updates_an_existing_member(self, store: Store) -> None:
        await store.index_update(IDX, add={"s": 0})
        await store.index_update(IDX, add={"s": 60_000})
        state = await store.index_read(IDX, due_only=True)
        assert state.members == [] and state.size == 1

    async def test_recheck_never_adds(self, store: Store) -> None:
        await store.index_update(IDX, add={"s": 0})
        await asyncio.sleep(0.01)
        await store.index_update(IDX, recheck={"s": 60_000, "ghost": 60_000})
        state = await store.index_read(IDX)
        assert [m for m, _ in state.members] == ["s"]
        assert state.members[0][1] > state.now_ms + 50_000

    async def test_recheck_due_skips_members_rescored_meanwhile(
        self, store: Store
    ) -> None:
        await store.index_update(IDX, add={"due": 0, "fresh": 60_000})
        await asyncio.sleep(0.01)
        await store.index_update(
            IDX, recheck_due={"due": 30_000, "fresh": 1, "ghost": 5}
        )
        scores = dict((await store.index_read(IDX)).members)
        now = await _now_ms(store)
        assert set(scores) == {"due", "fresh"}
        assert 25_000 < scores["due"] - now <= 30_000
        assert scores["fresh"] - now > 50_000

    async def test_discard_reports_what_it_removed(self, store: Store) -> None:
        await store.index_update(IDX, add={"a": 60_000, "b": 60_000})
        state = await store.index_update(IDX, discard=["a", "ghost"])
        assert state.removed == ["a"] and state.size == 1

    async def test_emptied_index_is_deleted(self, store: Store) -> None:
        await store.index_update(IDX, add={"a": 60_000}, keep_ms=60_000)
        state = await store.index_update(IDX, discard=["a"])
        assert state.size == 0
        assert not await store.exists(IDX)

    async def test_update_of_a_missing_index_creates_nothing(
        self, store: Store
    ) -> None:
        state = await store.index_update(
            IDX, recheck={"a": 1}, discard=["b"], keep_ms=60_000, list_limit=5
        )
        assert state.size == 0 and state.removed == []
        assert not await store.exists(IDX)

    async def test_new_index_expires_after_keep(self, store: Store) -> None:
        await store.index_update(IDX, add={"a": 60_000}, keep_ms=100)
        left = await store.pttl(IDX)
        assert left is not None and 0 < left <= 100
        await asyncio.sleep(0.2)
        assert (await store.index_read(IDX)).size == 0

    async def test_index_without_keep_does_not_expire(self, store: Store) -> None:
        await store.index_update(IDX, add={"a": 60_000})
        assert await store.pttl(IDX) == -1
        await store.index_update(IDX, keep_ms=5_000)
        left = await store.pttl(IDX)
        assert left is not None and 4_000 < left <= 5_000

    async def test_expiry_only_grows(self, store: Store) -> None:
        await store.index_update(IDX, add={"a": 60_000}, keep_ms=10_000)
        await store.index_update(IDX, keep_ms=1_000)
        left = await store.pttl(IDX)
        assert left is not None and left > 9_000
        await store.index_update(IDX, grow_ms=20_000)
        left = await store.pttl(IDX)
        assert left is not None and 29_000 < left <= 30_000
        await store.index_update(IDX, keep_ms=50_000)
        left = await store.pttl(IDX)
        assert left is not None and 49_000 < left <= 50_000

    async def test_update_lists_members_as_it_found_them(self, store: Store) -> None:
        await store.index_update(IDX, add={"a": 0, "b": 0, "c": 60_000})
        await asyncio.sleep(0.01)
        state = await store.index_update(IDX, add={"d": 0}, list_limit=1)
        assert len(state.members) == 1 and state.members[0][0] in {"a", "b"}
        state = await store.index_update(IDX, discard=["a"], list_limit=10)
        assert sorted(m for m, _ in state.members) == ["a", "b", "d"]
        assert state.size == 3
        state = await store.index_update(
            IDX, add={"e": 0}, list_limit=-1, due_only=False
        )
        assert [m for m, _ in state.members][-1] == "c"
        assert sorted(m for m, _ in state.members) == ["b", "c", "d"]
        state = await store.index_update(IDX, list_limit=2, due_only=False)
        assert len(state.members) == 2 and state.size == 4
        assert (await store.index_update(IDX, discard=["zz"])).members == []

    async def test_update_of_an_emptied_index_still_lists(self, store: Store) -> None:
        await store.index_update(IDX, add={"a": 60_000})
        state = await store.index_update(
            IDX, discard=["a"], list_limit=-1, due_only=False
        )
        assert [m for m, _ in state.members] == ["a"] and state.size == 0

    async def test_check_reports_absent_and_marked(self, store: Store) -> None:
        await store.index_update(IDX, add={"a": 60_000, "b": 60_000})
        await store.index_mark(IDX, MARKS, 60_000, members=["b", "x"])
        state = await store.index_update(
            IDX, discard=["a"], marks_key=MARKS, check=["a", "b", "x", "y"]
        )
        assert state.absent == ["x", "y"]
        assert state.marked == ["b", "x"]
        assert state.removed == ["a"]

    async def test_check_without_marks(self, store: Store) -> None:
        state = await store.index_update(IDX, check=["a"])
        assert state.absent == ["a"] and state.marked == []

    async def test_index_operations_on_a_value_are_an_error(self, store: Store) -> None:
        await store.set(KEY, "v")
        with pytest.raises(ProviderError):
            await store.index_read(KEY)
        with pytest.raises(ProviderError):
            await store.index_update(KEY, add={"a": 1})

    async def test_an_index_is_neither_value_nor_record(self, store: Store) -> None:
        await store.index_update(IDX, add={"a": 60_000})
        with pytest.raises(ProviderError):
            await store.get(IDX)
        with pytest.raises(ProviderError):
            await store.session_read(IDX)
        await store.session_create(REC, {}, 60_000, None, None)
        with pytest.raises(ProviderError):
            await store.index_read(REC)


class TestMarks:
    async def test_mark_all_but_one(self, store: Store) -> None:
        await store.index_update(IDX, add={"a": 1_000, "b": 2_000, "keep": 500})
        state = await store.index_mark(IDX, MARKS, 60_000, keep="keep")
        assert [m for m, _ in state.members] == ["a", "b"]
        assert state.size == 3
        check = await store.index_update(IDX, marks_key=MARKS, check=["a", "b", "keep"])
        assert check.marked == ["a", "b"]
        assert (await store.index_read(IDX)).size == 3  # the index is unchanged

    async def test_mark_listed_members(self, store: Store) -> None:
        await store.index_update(IDX, add={"a": 1_000})
        state = await store.index_mark(IDX, MARKS, 60_000, members=["a", "gone"])
        assert [m for m, _ in state.members] == ["a"]
        check = await store.index_update(IDX, marks_key=MARKS, check=["gone"])
        assert check.marked == ["gone"]

    async def test_marks_expire_after_hold(self, store: Store) -> None:
        await store.index_mark(IDX, MARKS, 100, members=["a"])
        left = await store.pttl(MARKS)
        assert left is not None and 0 < left <= 100
        await asyncio.sleep(0.2)
        await store.index_mark(IDX, MARKS, 60_000, members=["b"])
        check = await store.index_update(IDX, marks_key=MARKS, check=["a", "b"])
        assert check.marked == ["b"]

    async def test_marking_nothing_writes_nothing(self, store: Store) -> None:
        state = await store.index_mark(IDX, MARKS, 60_000)
        assert state.members == [] and state.size == 0
        assert not await store.exists(MARKS)


class TestIterKeys:
    async def test_iter_keys_yields_every_live_key_in_batches(
        self, store: Store
    ) -> None:
        for i in range(25):
            await store.set(f"iter:a:{i}", "v")
        await store.set("iter:a*:x", "v")
        await store.set("iter:b:0", "v")
        await store.set("iter:a:short", "v", 30)
        await asyncio.sleep(0.1)

        seen: set[str] = set()
        async for batch in store.iter_keys("iter:a:", batch_size=10):
            assert 0 < len(batch) <= 10
            seen.update(batch)
        assert seen == {f"iter:a:{i}" for i in range(25)}

    async def test_iter_keys_of_nothing(self, store: Store) -> None:
        batches = [batch async for batch in store.iter_keys("iter:none:")]
        assert batches == []
