"""Signed session ids: bound to the key and the sandbox, checked offline."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiosessions.security.ids import BASE64URL, looks_like_session_id
from aiosessions.security.keyring import KeyRing
from aiosessions.security.policy import SessionIdPolicy

KEY = "k" * 32
OLD = "o" * 32


def signed(sandbox: str = "app", keys: object = KEY) -> SessionIdPolicy:
    return SessionIdPolicy(sandbox, KeyRing(keys))


class TestUnsigned:
    def test_ids_are_the_plain_random_ids(self) -> None:
        policy = SessionIdPolicy("app")
        sid = policy.issue()
        assert not policy.signed
        assert looks_like_session_id(sid)
        assert policy.check(sid)
        assert not policy.check(sid + ".x")


class TestSigned:
    def test_issued_ids_check_and_carry_a_tag(self) -> None:
        policy = signed()
        sid = policy.issue()
        random_part, _, tag = sid.partition(".")
        assert policy.signed
        assert len(random_part) == 32 and len(tag) == 22
        assert policy.check(sid)

    def test_ids_are_unique(self) -> None:
        policy = signed()
        assert len({policy.issue() for _ in range(1000)}) == 1000

    def test_another_sandbox_refuses_the_id(self) -> None:
        sid = signed("tenant-a").issue()
        assert not signed("tenant-b").check(sid)
        # Sandbox names that would collide if simply concatenated.
        assert not signed("ab").check(signed("a").issue())

    def test_another_key_refuses_the_id(self) -> None:
        assert not signed(keys="x" * 32).check(signed().issue())

    def test_old_keys_verify_and_the_newest_signs(self) -> None:
        before = signed(keys=OLD).issue()
        rotated = signed(keys=[KEY, OLD])
        after = rotated.issue()
        assert rotated.check(before)
        assert rotated.check(after)
        assert signed(keys=KEY).check(after)
        assert not signed(keys=KEY).check(before)

    def test_an_unsigned_id_is_refused(self) -> None:
        policy = signed()
        assert not policy.check(policy.issue()[:32])

    def test_forgery_is_logged_as_a_warning_without_the_id(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        forged = "A" * 32 + "." + "B" * 22
        with caplog.at_level(logging.DEBUG, logger="aiosessions"):
            assert not signed().check(forged)
        assert [r.levelno for r in caplog.records] == [logging.WARNING]
        assert "AAAA" not in caplog.text

    def test_repr_shows_no_key(self) -> None:
        assert repr(signed()) == "SessionIdPolicy(sandbox_id='app', signed=True)"
        assert KEY not in repr(signed())

    def test_every_position_changed_invalidates_the_id(self) -> None:
        policy = signed()
        sid = policy.issue()
        for position, char in enumerate(sid):
            for replacement in {"A", "z", "0", ".", "-", chr(ord(char) ^ 1)} - {char}:
                assert not policy.check(
                    sid[:position] + replacement + sid[position + 1 :]
                )

    @settings(max_examples=200, deadline=None)
    @given(data=st.data())
    def test_changing_any_character_invalidates_the_id(
        self, data: st.DataObject
    ) -> None:
        policy = signed()
        sid = policy.issue()
        position = data.draw(st.integers(0, len(sid) - 1))
        replacement = data.draw(st.sampled_from(BASE64URL + "."))
        changed = sid[:position] + replacement + sid[position + 1 :]
        if changed != sid:
            assert not policy.check(changed)

    @settings(max_examples=200, deadline=None)
    @given(
        value=st.one_of(
            st.text(),
            st.text(alphabet=BASE64URL + ".", min_size=50, max_size=60),
            st.binary(),
            st.integers(),
            st.none(),
        )
    )
    def test_arbitrary_input_is_refused_without_raising(self, value: object) -> None:
        assert signed().check(value) is False

    @pytest.mark.parametrize("value", ["A" * 1_000_000, b"A" * 1_000_000, "é" * 55])
    def test_huge_input_is_refused(self, value: object) -> None:
        assert signed().check(value) is False
