"""CSRF tokens: signed, double-submit and encrypted."""

from __future__ import annotations

import builtins
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aiosessions import (
    ConfigurationError,
    InvalidInputError,
    InvalidTTLError,
    InvalidValueTypeError,
    TokenType,
)
from aiosessions.errors import MissingDependencyError
from aiosessions.security.csrf import (
    CLOCK_SKEW,
    extract_csrf_token_info,
    generate_csrf_token,
    generate_double_submit_token,
    generate_encrypted_csrf_token,
    is_csrf_token_expired,
    validate_csrf_token,
    validate_double_submit_token,
    validate_encrypted_csrf_token,
)
from aiosessions.security.ids import BASE64URL

SECRET = "s" * 32
OLD = "o" * 32
SID = "session-a"
NOW = 1_800_000_000.0

Generate = Callable[..., str]
Validate = Callable[..., bool]


def validate_double(token: object, session_id: object, secret: Any, **kw: Any) -> bool:
    return validate_double_submit_token(token, token, session_id, secret, **kw)


KINDS: list[tuple[Generate, Validate]] = [
    (generate_csrf_token, validate_csrf_token),
    (generate_double_submit_token, validate_double),
    (generate_encrypted_csrf_token, validate_encrypted_csrf_token),
]
KIND_IDS = ["signed", "double-submit", "encrypted"]

JUNK: list[object] = [
    None,
    0,
    12.5,
    True,
    b"c1.1.x.y",
    bytearray(100),
    "",
    ".",
    "c1...",
    "c1.1800000000." + "A" * 22 + "." + "A" * 43 + "\n",
    "e1." + "A" * 47 + "=",
    "c1.99999999999." + "A" * 22 + "." + "A" * 43,
    "c1.0" + "1" * 9 + "." + "A" * 22 + "." + "A" * 43,
    "c1.١٢٣." + "A" * 22 + "." + "A" * 43,
    "x" * 1_000_000,
    "c1." + "9" * 2_000_000,
    b"\xff" * 1_000_000,
    ["c1"],
]


@pytest.mark.parametrize(("generate", "validate"), KINDS, ids=KIND_IDS)
class TestEveryKind:
    def test_round_trip(self, generate: Generate, validate: Validate) -> None:
        token = generate(SID, SECRET, now=NOW)
        assert validate(token, SID, SECRET, now=NOW)
        assert validate(token, SID, SECRET, now=NOW + 3599)
        assert validate(generate(SID, SECRET), SID, SECRET)

    def test_same_input_twice_gives_different_tokens(
        self, generate: Generate, validate: Validate
    ) -> None:
        assert generate(SID, SECRET, now=NOW) != generate(SID, SECRET, now=NOW)

    def test_another_session_is_refused(
        self, generate: Generate, validate: Validate
    ) -> None:
        token = generate("session-a", SECRET, now=NOW)
        assert not validate(token, "session-b", SECRET, now=NOW)
        assert not validate(token, "session-a ", SECRET, now=NOW)
        assert not validate(token, "", SECRET, now=NOW)
        assert not validate(token, None, SECRET, now=NOW)
        assert not validate(token, "x" * 5000, SECRET, now=NOW)

    def test_another_key_is_refused_and_rotation_keeps_old_tokens(
        self, generate: Generate, validate: Validate
    ) -> None:
        old_token = generate(SID, OLD, now=NOW)
        assert not validate(old_token, SID, SECRET, now=NOW)
        assert validate(old_token, SID, [SECRET, OLD], now=NOW)
        new_token = generate(SID, [SECRET, OLD], now=NOW)
        assert validate(new_token, SID, SECRET, now=NOW)
        assert not validate(new_token, SID, OLD, now=NOW)

    def test_past_max_age_is_refused(
        self, generate: Generate, validate: Validate
    ) -> None:
        token = generate(SID, SECRET, now=NOW)
        assert validate(token, SID, SECRET, max_age=60, now=NOW + 59)
        assert not validate(token, SID, SECRET, max_age=60, now=NOW + 61)
        assert not validate(token, SID, SECRET, now=NOW + 3601)

    def test_from_the_future_is_refused_past_the_skew(
        self, generate: Generate, validate: Validate
    ) -> None:
        token = generate(SID, SECRET, now=NOW)
        assert validate(token, SID, SECRET, now=NOW - CLOCK_SKEW + 1)
        assert not validate(token, SID, SECRET, now=NOW - CLOCK_SKEW - 1)

    @pytest.mark.parametrize("token", JUNK, ids=repr)
    def test_junk_is_invalid_not_an_error(
        self, generate: Generate, validate: Validate, token: object
    ) -> None:
        assert validate(token, SID, SECRET) is False

    @pytest.mark.parametrize("secret", ["", [], ["short"], [SECRET, ""], None, 5])
    def test_unusable_secrets_are_refused(
        self, generate: Generate, validate: Validate, secret: object
    ) -> None:
        token = generate(SID, SECRET)
        with pytest.raises(ConfigurationError):
            generate(SID, secret)
        with pytest.raises(ConfigurationError):
            validate(token, SID, secret)

    @pytest.mark.parametrize("max_age", [0, -1, float("nan"), float("inf")])
    def test_unusable_max_age_is_refused(
        self, generate: Generate, validate: Validate, max_age: float
    ) -> None:
        with pytest.raises(InvalidTTLError):
            validate(generate(SID, SECRET), SID, SECRET, max_age=max_age)

    @pytest.mark.parametrize("session_id", ["", "x" * 1025, None, b"sid"])
    def test_tokens_need_a_session_id(
        self, generate: Generate, validate: Validate, session_id: object
    ) -> None:
        with pytest.raises((InvalidInputError, InvalidValueTypeError)) as caught:
            generate(session_id, SECRET)
        assert caught.value.value == "<redacted>"

    @pytest.mark.parametrize("now", [float("nan"), -1, 10**11, "now", True])
    def test_unusable_clocks_are_refused(
        self, generate: Generate, validate: Validate, now: object
    ) -> None:
        with pytest.raises((InvalidInputError, InvalidValueTypeError)):
            generate(SID, SECRET, now=now)

    def test_every_position_changed_invalidates(
        self, generate: Generate, validate: Validate
    ) -> None:
        token = generate(SID, SECRET, now=NOW)
        for position, char in enumerate(token):
            for replacement in {"A", "z", "0", ".", "-", chr(ord(char) ^ 1)} - {char}:
                changed = token[:position] + replacement + token[position + 1 :]
                assert not validate(changed, SID, SECRET, now=NOW), changed
        assert not validate(token[:-1], SID, SECRET, now=NOW)
        assert not validate(token + "A", SID, SECRET, now=NOW)

    @settings(max_examples=150, deadline=None)
    @given(data=st.data())
    def test_changing_any_character_invalidates(
        self, generate: Generate, validate: Validate, data: st.DataObject
    ) -> None:
        token = generate(SID, SECRET, now=NOW)
        position = data.draw(st.integers(0, len(token) - 1), label="position")
        replacement = data.draw(st.sampled_from(BASE64URL + ".0123456789"))
        changed = token[:position] + replacement + token[position + 1 :]
        if changed != token:
            assert not validate(changed, SID, SECRET, now=NOW)

    @settings(max_examples=100, deadline=None)
    @given(
        session_id=st.text(min_size=1, max_size=200),
        now=st.floats(0, 9_000_000_000, allow_nan=False),
    )
    def test_round_trip_for_any_session_and_time(
        self, generate: Generate, validate: Validate, session_id: str, now: float
    ) -> None:
        token = generate(session_id, SECRET, now=now)
        assert validate(token, session_id, SECRET, now=now)

    @settings(max_examples=200, deadline=None)
    @given(
        token=st.one_of(
            st.text(),
            st.text(alphabet=BASE64URL + ".cde1", max_size=120),
            st.binary(),
            st.integers(),
            st.none(),
        )
    )
    def test_arbitrary_input_is_invalid(
        self, generate: Generate, validate: Validate, token: object
    ) -> None:
        assert validate(token, SID, SECRET) is False


class TestKindsDoNotMix:
    def test_a_token_of_one_kind_fails_as_another(self) -> None:
        signed = generate_csrf_token(SID, SECRET)
        double = generate_double_submit_token(SID, SECRET)
        sealed = generate_encrypted_csrf_token(SID, SECRET)
        forged_double = "d" + signed[1:]
        assert not validate_double_submit_token(signed, signed, SID, SECRET)
        assert not validate_double_submit_token(
            forged_double, forged_double, SID, SECRET
        )
        assert not validate_csrf_token(double, SID, SECRET)
        assert not validate_csrf_token(sealed, SID, SECRET)
        assert not validate_encrypted_csrf_token(signed, SID, SECRET)


class TestDoubleSubmit:
    def test_cookie_and_submitted_copy_must_be_equal(self) -> None:
        first = generate_double_submit_token(SID, SECRET)
        second = generate_double_submit_token(SID, SECRET)
        assert validate_double_submit_token(first, first, SID, SECRET)
        assert not validate_double_submit_token(first, second, SID, SECRET)
        assert not validate_double_submit_token(None, first, SID, SECRET)
        assert not validate_double_submit_token("é" * 80, first, SID, SECRET)
        assert not validate_double_submit_token(first, None, SID, SECRET)


class TestEncrypted:
    def test_the_issue_time_is_not_readable(self) -> None:
        token = generate_encrypted_csrf_token(SID, SECRET, now=NOW)
        info = extract_csrf_token_info(token)
        assert info.valid_format
        assert info.token_type is TokenType.ENCRYPTED_CSRF
        assert info.issued_at is None
        assert str(int(NOW)) not in token

    def test_a_missing_extra_is_named(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_import = builtins.__import__

        def no_cryptography(name: str, *args: Any, **kwargs: Any) -> Any:
            if name.startswith("cryptography"):
                raise ImportError(name)
            return real_import(name, *args, **kwargs)

        for module in [m for m in sys.modules if m.startswith("cryptography")]:
            monkeypatch.delitem(sys.modules, module)
        monkeypatch.setattr(builtins, "__import__", no_cryptography)
        with pytest.raises(MissingDependencyError, match=r"aiosessions\[security\]"):
            generate_encrypted_csrf_token(SID, SECRET)
        with pytest.raises(ImportError):
            validate_encrypted_csrf_token("e1.x", SID, SECRET)


class TestInfo:
    def test_signed_token_info(self) -> None:
        token = generate_csrf_token(SID, SECRET, now=NOW)
        info = extract_csrf_token_info(token, now=NOW + 90)
        assert info.valid_format
        assert info.token_type is TokenType.CSRF
        assert info.issued_at == datetime.fromtimestamp(NOW, tz=timezone.utc)
        assert info.issued_at is not None and info.issued_at.tzinfo is timezone.utc
        assert info.age_seconds == 90
        assert info.nonce is not None and info.nonce in token

    def test_double_submit_info(self) -> None:
        info = extract_csrf_token_info(generate_double_submit_token(SID, SECRET))
        assert info.token_type is TokenType.DOUBLE_SUBMIT
        assert info.age_seconds is not None and 0 <= info.age_seconds < 5

    @pytest.mark.parametrize("token", JUNK, ids=repr)
    def test_junk_gives_an_invalid_info(self, token: object) -> None:
        info = extract_csrf_token_info(token)
        assert not info.valid_format
        assert info.issued_at is None

    def test_info_is_frozen(self) -> None:
        info = extract_csrf_token_info(generate_csrf_token(SID, SECRET))
        with pytest.raises(ValidationError, match="frozen"):
            info.nonce = "x"  # type: ignore[misc]


class TestExpiry:
    def test_expiry_follows_max_age_and_skew(self) -> None:
        token = generate_csrf_token(SID, SECRET, now=NOW)
        assert not is_csrf_token_expired(token, now=NOW + 10)
        assert is_csrf_token_expired(token, now=NOW + 3601)
        assert is_csrf_token_expired(token, 60, now=NOW + 61)
        assert is_csrf_token_expired(token, now=NOW - CLOCK_SKEW - 1)

    @pytest.mark.parametrize("token", [*JUNK[:8], "e1." + "A" * 48])
    def test_unreadable_tokens_count_as_expired(self, token: object) -> None:
        assert is_csrf_token_expired(token)

    @settings(max_examples=200, deadline=None)
    @given(token=st.one_of(st.text(), st.binary(), st.integers(), st.none()))
    def test_readers_never_raise(self, token: object) -> None:
        assert isinstance(is_csrf_token_expired(token), bool)
        assert extract_csrf_token_info(token).valid_format in {True, False}
