"""The fast paths of the input checks decide exactly as the slow ones."""

from __future__ import annotations

import json
import unicodedata

import pytest

from aiosessions import (
    InvalidIdentifierError,
    InvalidKeyError,
    InvalidMetadataError,
    KeyValueSession,
    MemoryStore,
)
from aiosessions._metadata import check_metadata_key, encode_metadata
from aiosessions.keys import check_identifier
from aiosessions.stores.base import check_key, ttl_to_ms

# Unprintable to str.isprintable() but not control characters: the checks
# fall back to their exact rule for these.
SEPARATORS = ["\u00a0", "\u2028", "\u3000"]


class TestKeys:
    @pytest.mark.parametrize("char", SEPARATORS)
    def test_unprintable_separators_are_allowed(self, char: str) -> None:
        assert check_key(f"a{char}b") == f"a{char}b"

    @pytest.mark.parametrize("char", ["\x00", "\x1f", "\x7f", "\n"])
    def test_control_characters_are_refused(self, char: str) -> None:
        with pytest.raises(InvalidKeyError):
            check_key(f"a{char}b")

    async def test_key_value_call_refuses_a_bad_key_before_any_await(self) -> None:
        kv = KeyValueSession(MemoryStore())

        with pytest.raises(InvalidKeyError):
            kv.get("a\x00")  # no coroutine left un-awaited


class TestIdentifiers:
    @pytest.mark.parametrize("char", SEPARATORS)
    def test_separators_are_allowed(self, char: str) -> None:
        assert check_identifier("sandbox_id", f"acme{char}corp")

    @pytest.mark.parametrize("char", ["\u200b", "\ue000", "\x85"])
    def test_format_private_and_control_characters_are_refused(self, char: str) -> None:
        assert unicodedata.category(char)[0] == "C"
        with pytest.raises(InvalidIdentifierError):
            check_identifier("user_id", f"a{char}")


class TestMetadata:
    @pytest.mark.parametrize(
        "value",
        [
            "plain",
            "é ü 漢",
            'q"uote\\',
            "",
            0,
            -7,
            2**70,
            True,
            False,
            None,
            1.5,
            [1, "a"],
            {"n": None},
        ],
    )
    def test_values_encode_as_json_dumps_writes_them(self, value: object) -> None:
        expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"))

        assert encode_metadata({"k": value}) == {":k": expected}

    def test_a_lone_surrogate_is_refused_with_the_callers_value(self) -> None:
        with pytest.raises(InvalidMetadataError) as error:
            encode_metadata({"k": "\ud800"})

        assert error.value.value == "\ud800"

    def test_metadata_key_with_a_separator_is_allowed(self) -> None:
        assert check_metadata_key("a\u00a0b") == ":a\u00a0b"


class TestDurations:
    @pytest.mark.parametrize(("ttl", "ms"), [(1, 1000), (0.0001, 1), (2.5, 2500)])
    def test_whole_and_fractional_seconds(self, ttl: float, ms: int) -> None:
        assert ttl_to_ms(ttl) == ms
