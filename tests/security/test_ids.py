"""Session id formats: generation, validation, entropy and strength."""

from __future__ import annotations

import math
import string
import uuid
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiosessions import InvalidInputError, InvalidValueTypeError, ProtocolType
from aiosessions.security.ids import (
    BASE62,
    BASE64URL,
    CROCKFORD32,
    IdFormat,
    analyze_session_id_strength,
    estimate_entropy,
    generate_secure_session_id,
    generate_session_id,
    looks_like_session_id,
    validate_session_id_format,
)

ALL = list(ProtocolType)
VISIBLE_ASCII = {chr(code) for code in range(0x21, 0x7F)}

# The characters each format may use, prefix and separators included.
DECLARED: dict[ProtocolType, str] = {
    ProtocolType.GENERIC: BASE64URL,
    ProtocolType.HTTP: BASE64URL,
    ProtocolType.WEBSOCKET: BASE64URL,
    ProtocolType.MCP: BASE64URL,
    ProtocolType.JWT: BASE64URL,
    ProtocolType.UUID: "0123456789abcdef-_",
    ProtocolType.API_KEY: BASE62 + "ak_",
    ProtocolType.TEMP_TOKEN: CROCKFORD32 + "t_",
}

JUNK: list[object] = [
    None,
    0,
    -1,
    3.5,
    True,
    b"abc",
    bytearray(b"\x00" * 40),
    "",
    " ",
    "\x00" * 22,
    "é" * 22,
    "a" * 21,
    "a b" * 10,
    ["a" * 22],
    {"id": "x"},
    object(),
]
HUGE: list[object] = [
    "A" * 2_000_000,
    "ak_" + "A" * 1_500_000,
    "é" * 1_000_000,
    b"\xff" * 1_000_000,
    "-".join(["0" * 8] * 200_000),
]


class TestManagerIds:
    def test_manager_ids_keep_their_shape(self) -> None:
        sid = generate_session_id()
        assert looks_like_session_id(sid)
        assert len(sid) == 32
        assert validate_session_id_format(sid)
        assert estimate_entropy(sid, "generic") == 192

    @pytest.mark.parametrize("value", ["A" * 31, "A" * 33, "A" * 31 + "!", None, 5])
    def test_other_shapes_are_not_manager_ids(self, value: object) -> None:
        assert not looks_like_session_id(value)


class TestFormats:
    @pytest.mark.parametrize("protocol", ALL)
    def test_each_format_validates_and_holds_128_bits(
        self, protocol: ProtocolType
    ) -> None:
        sid = generate_secure_session_id(protocol)
        assert validate_session_id_format(sid, protocol)
        assert validate_session_id_format(sid, protocol.value)
        assert estimate_entropy(sid, protocol) >= 128
        assert set(sid) <= set(DECLARED[protocol])
        assert analyze_session_id_strength(sid, protocol).is_strong

    def test_protocol_may_be_given_by_name(self) -> None:
        assert generate_secure_session_id("api_key").startswith("ak_")

    def test_mcp_ids_are_visible_ascii(self) -> None:
        for _ in range(200):
            assert set(generate_secure_session_id("mcp")) <= VISIBLE_ASCII

    def test_uuid_format_is_two_version_4_uuids(self) -> None:
        sid = generate_secure_session_id("uuid")
        parts = sid.split("_")
        assert len(parts) == 2
        for part in parts:
            parsed = uuid.UUID(part)
            assert parsed.version == 4
            assert parsed.variant == uuid.RFC_4122
            assert str(parsed) == part
        assert estimate_entropy(sid, "uuid") == 244

    def test_api_keys_are_one_word(self) -> None:
        key = generate_secure_session_id(ProtocolType.API_KEY)
        assert key.startswith("ak_")
        assert set(key[3:]) <= set(string.ascii_letters + string.digits)

    def test_temp_tokens_avoid_look_alike_characters(self) -> None:
        token = generate_secure_session_id(ProtocolType.TEMP_TOKEN)
        assert token.startswith("tt_")
        assert not set(token[3:]) & set("ilou")

    @pytest.mark.parametrize(
        ("protocol", "bits", "length"),
        [
            ("generic", 192, 32),
            ("generic", 256, 43),
            ("api_key", 256, 3 + 43),
            ("temp_token", 1024, 3 + 205),
        ],
    )
    def test_more_entropy_gives_longer_ids(
        self, protocol: str, bits: int, length: int
    ) -> None:
        sid = generate_secure_session_id(protocol, entropy_bits=bits)
        assert len(sid) == length
        assert validate_session_id_format(sid, protocol)
        assert estimate_entropy(sid, protocol) >= bits

    def test_more_entropy_gives_more_uuids(self) -> None:
        sid = generate_secure_session_id("uuid", entropy_bits=512)
        assert len(sid.split("_")) == 5
        assert validate_session_id_format(sid, "uuid")

    @pytest.mark.parametrize("bits", [64, 100, 127, None])
    def test_requests_between_64_and_128_bits_get_128(self, bits: int | None) -> None:
        sid = generate_secure_session_id(entropy_bits=bits)
        assert len(sid) == 22
        assert estimate_entropy(sid, "generic") >= 128

    @pytest.mark.parametrize("bits", [0, 32, 63, -5, 1025, 10**9])
    def test_out_of_range_entropy_is_refused(self, bits: int) -> None:
        with pytest.raises(InvalidInputError, match="entropy_bits"):
            generate_secure_session_id(entropy_bits=bits)

    @pytest.mark.parametrize("bits", [128.0, "128", True])
    def test_entropy_must_be_an_int(self, bits: object) -> None:
        with pytest.raises(InvalidValueTypeError):
            generate_secure_session_id(entropy_bits=bits)  # type: ignore[arg-type]

    def test_timestamps_are_refused_with_the_way_out(self) -> None:
        with pytest.raises(InvalidInputError, match="metadata") as caught:
            generate_secure_session_id(include_timestamp=True)
        assert caught.value.field == "include_timestamp"

    @pytest.mark.parametrize("protocol", ["HTTP", "smtp", "", None, 3])
    def test_unknown_formats_are_refused_with_the_choices(
        self, protocol: object
    ) -> None:
        with pytest.raises(InvalidInputError, match="websocket"):
            generate_secure_session_id(protocol)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            validate_session_id_format("x" * 22, protocol)  # type: ignore[arg-type]


class TestCustomFormat:
    def test_custom_format_round_trip(self) -> None:
        fmt = IdFormat("0123456789", prefix="order:")
        sid = generate_secure_session_id(custom_format=fmt)
        assert sid.startswith("order:")
        assert len(sid) == len("order:") + 39  # 10**39 > 2**128 > 10**38
        assert validate_session_id_format(sid, custom_format=fmt)
        assert not validate_session_id_format(sid)
        assert estimate_entropy(sid, custom_format=fmt) >= 128

    def test_fixed_length_is_kept(self) -> None:
        fmt = IdFormat(BASE62, length=40)
        sid = generate_secure_session_id(custom_format=fmt)
        assert len(sid) == 40
        assert validate_session_id_format(sid, custom_format=fmt)
        assert not validate_session_id_format(sid[:-1], custom_format=fmt)

    def test_fixed_length_too_short_for_the_request_is_refused(self) -> None:
        fmt = IdFormat(BASE62, length=22)
        with pytest.raises(InvalidInputError, match="hold only"):
            generate_secure_session_id(custom_format=fmt, entropy_bits=256)

    @pytest.mark.parametrize(
        ("alphabet", "reason"),
        [
            ("aab", "different"),
            ("a", "at least 2"),
            ("", "at least 2"),
            ("ab c", "visible ASCII"),
            ("abé", "visible ASCII"),
            ("ab\x00", "visible ASCII"),
        ],
    )
    def test_bad_alphabets_are_refused(self, alphabet: str, reason: str) -> None:
        with pytest.raises(InvalidInputError, match=reason):
            IdFormat(alphabet)

    @pytest.mark.parametrize("length", [1, 21, 10_000])
    def test_lengths_outside_128_to_1024_bits_are_refused(self, length: int) -> None:
        with pytest.raises(InvalidInputError, match="use 22 to 172"):
            IdFormat(BASE62, length=length)

    @pytest.mark.parametrize(
        "options",
        [
            {"alphabet": 5},
            {"alphabet": "ab", "prefix": 5},
            {"alphabet": BASE62, "length": True},
        ],
    )
    def test_wrong_types_are_refused(self, options: dict[str, object]) -> None:
        with pytest.raises(InvalidValueTypeError):
            IdFormat(**options)  # type: ignore[arg-type]

    @pytest.mark.parametrize("prefix", ["x" * 33, "a b", "\n"])
    def test_bad_prefixes_are_refused(self, prefix: str) -> None:
        with pytest.raises(InvalidInputError, match="prefix"):
            IdFormat(BASE62, prefix=prefix)

    def test_custom_format_must_be_an_id_format(self) -> None:
        with pytest.raises(InvalidValueTypeError, match="IdFormat"):
            generate_secure_session_id(custom_format="abc")  # type: ignore[arg-type]


class TestValidate:
    @pytest.mark.parametrize(
        ("protocol", "value"),
        [
            ("api_key", "ak-" + "a" * 22),
            ("api_key", "ak_" + "a" * 21),
            ("api_key", "ak_" + "a" * 21 + "-"),
            ("temp_token", "tt_" + "u" * 26),
            ("generic", "a" * 21),
            ("generic", "a" * 172),
            ("generic", "a" * 21 + "="),
            ("mcp", "a" * 21 + "é"),
            ("uuid", str(uuid.uuid4())),
            ("uuid", "6ba7b810-9dad-11d1-80b4-00c04fd430c8_" * 2 + "0"),
            (
                "uuid",
                "6ba7b810-9dad-11d1-80b4-00c04fd430c8_6ba7b811-9dad-11d1-80b4-00c04fd430c8",
            ),
            ("uuid", f"{uuid.uuid4()}_{uuid.uuid4()}".upper()),
            ("uuid", f"{uuid.uuid4()}-{uuid.uuid4()}"),
            ("uuid", f"{uuid.uuid4()}__{uuid.uuid4()}"[:-1]),
        ],
    )
    def test_near_misses_are_refused(self, protocol: str, value: str) -> None:
        assert not validate_session_id_format(value, protocol)
        assert estimate_entropy(value, protocol) == 0

    @pytest.mark.parametrize("protocol", ALL)
    @pytest.mark.parametrize("value", JUNK + HUGE, ids=repr)
    def test_junk_and_huge_inputs_are_just_invalid(
        self, protocol: ProtocolType, value: object
    ) -> None:
        if protocol is not ProtocolType.GENERIC or value != "A" * 2_000_000:
            assert validate_session_id_format(value, protocol) is False
        assert isinstance(estimate_entropy(value, protocol), float)
        assert isinstance(estimate_entropy(value), float)

    @settings(max_examples=300, deadline=None)
    @given(
        value=st.one_of(
            st.text(),
            st.text(alphabet=BASE64URL + "._-", max_size=300),
            st.binary(),
            st.integers(),
            st.none(),
        ),
        protocol=st.sampled_from(ALL),
    )
    def test_arbitrary_input_never_raises(
        self, value: object, protocol: ProtocolType
    ) -> None:
        validate_session_id_format(value, protocol)
        estimate_entropy(value, protocol)
        estimate_entropy(value)
        report = analyze_session_id_strength(value, protocol)
        assert report.strength in {"strong", "moderate", "weak"}

    @settings(max_examples=100, deadline=None)
    @given(protocol=st.sampled_from(ALL), bits=st.integers(64, 1024))
    def test_every_generated_id_validates(
        self, protocol: ProtocolType, bits: int
    ) -> None:
        sid = generate_secure_session_id(protocol, entropy_bits=bits)
        assert validate_session_id_format(sid, protocol)
        assert estimate_entropy(sid, protocol) >= max(bits, 128)


class TestEstimate:
    @pytest.mark.parametrize(
        ("value", "bits"),
        [
            ("0" * 39, 39 * math.log2(10)),
            ("0123456789abcdef" * 2, 128),
            ("ABCDEF0123456789" * 2, 128),
            ("z" * 10, 10 * math.log2(32)),
            ("Z" * 10, 10 * math.log2(32)),
            ("u" * 10, 10 * math.log2(36)),
            ("U" * 10, 10 * math.log2(36)),
            ("aB" * 5, 10 * math.log2(62)),
            ("a-" * 5, 10 * math.log2(64)),
            ("a!" * 5, 10 * math.log2(94)),
        ],
    )
    def test_smallest_common_alphabet_is_assumed(self, value: str, bits: float) -> None:
        assert estimate_entropy(value) == pytest.approx(bits)

    @pytest.mark.parametrize("value", ["", "a b", "é" * 30, None, b"abc"])
    def test_what_cannot_be_an_id_scores_zero(self, value: object) -> None:
        assert estimate_entropy(value) == 0.0

    def test_prefixes_do_not_count_when_the_format_is_known(self) -> None:
        key = generate_secure_session_id("api_key")
        assert estimate_entropy(key, "api_key") == pytest.approx(22 * math.log2(62))


class TestAnalyze:
    def test_a_generated_id_is_strong(self) -> None:
        report = analyze_session_id_strength(generate_secure_session_id("http"))
        assert report.strength == "strong"
        assert report.issues == ()
        assert ProtocolType.HTTP in report.matches
        assert report.alphabet in {"base62", "base64url"}

    @pytest.mark.parametrize(
        ("value", "issue", "strength"),
        [
            (
                "user42_1733300000_" + "k" * 5 + "Qz9xT4mB7vLp2WcR8",
                "Unix time",
                "moderate",
            ),
            ("sess-1733300000123-" + "Qz9xT4mB7vLp2WcRn8YdK3", "Unix time", "moderate"),
            (
                "6ba7b810-9dad-11d1-80b4-00c04fd430c8_" + str(uuid.uuid4()),
                "version 1 UUID",
                "moderate",
            ),
            ("a" * 40, "6 times|40 times", "weak"),
            ("abc" * 20, "pattern of 3", "weak"),
            ("short", "fewer than 128", "weak"),
            ("Qz9xT4mB7vLp2WcR8é" * 3, "visible ASCII", "weak"),
            ("Q" + "z9xT4mB7vLp2WcRn8YdK3ab" * 200, "longer than 4096", "moderate"),
        ],
    )
    def test_weaknesses_are_named(self, value: str, issue: str, strength: str) -> None:
        report = analyze_session_id_strength(value)
        assert report.strength == strength
        assert any(
            any(part in found for part in issue.split("|")) for found in report.issues
        ), report.issues
        assert not report.is_strong

    def test_digit_runs_that_are_not_plausible_times_are_fine(self) -> None:
        value = "Qz9xT4mB7vLp2WcRn8YdK3_0000012345_9876543210123"
        assert analyze_session_id_strength(value).issues == ()

    def test_wrong_format_is_an_issue(self) -> None:
        report = analyze_session_id_strength(generate_secure_session_id(), "api_key")
        assert report.entropy_bits == 0
        assert any("api_key" in issue for issue in report.issues)

    @pytest.mark.parametrize(
        ("value", "issue"), [(None, "not a string"), ("", "empty")]
    )
    def test_non_ids_are_weak(self, value: object, issue: str) -> None:
        report = analyze_session_id_strength(value)
        assert report.strength == "weak"
        assert report.issues == (issue,)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ALL)
def test_100k_ids_are_unique_in_alphabet_and_hold_128_bits(
    protocol: ProtocolType,
) -> None:
    count = 100_000
    ids = [generate_secure_session_id(protocol) for _ in range(count)]

    assert len(set(ids)) == count
    assert set().union(*map(set, ids)) <= set(DECLARED[protocol])
    assert all(validate_session_id_format(sid, protocol) for sid in ids)
    assert min(estimate_entropy(sid, protocol) for sid in ids) >= 128

    # Measured, not computed from the format: the Shannon entropy of each
    # character position over the sample, summed. Fixed characters (prefix,
    # dashes, UUID version) add nothing; a biased generator would fall short.
    assert len({len(sid) for sid in ids}) == 1
    measured = 0.0
    for column in zip(*ids, strict=True):
        counts = Counter(column).values()
        measured -= sum(n / count * math.log2(n / count) for n in counts)
    assert measured >= 128, measured
