"""Secret keys: rotation, derivation, and never showing a key."""

from __future__ import annotations

import pytest

from aiosessions import ConfigurationError
from aiosessions.security.keyring import ENV_VAR, KeyRing

KEY = "k" * 32
OTHER = "o" * 32


class TestKeyRing:
    def test_one_key_or_several(self) -> None:
        assert len(KeyRing(KEY)) == 1
        assert len(KeyRing([KEY, OTHER])) == 2
        assert len(KeyRing(KEY.encode())) == 1
        assert KeyRing((KEY, OTHER)).raw() == (KEY.encode(), OTHER.encode())

    def test_subkeys_differ_by_purpose_and_key(self) -> None:
        ring = KeyRing([KEY, OTHER])
        ids, csrf = ring.derive("session-id"), ring.derive("csrf")
        assert len(ids) == 2
        assert len({*ids, *csrf}) == 4
        assert all(len(subkey) == 32 for subkey in ids)
        assert ring.derive("csrf") is csrf
        assert KeyRing(KEY).derive("csrf") == csrf[:1]

    @pytest.mark.parametrize(
        ("keys", "reason"),
        [
            ("", "empty"),
            ([], "no key"),
            (["secret-but-short"], "shorter than 32 bytes"),
            ([KEY, ""], "empty"),
            ([KEY, 42], "str or bytes"),
            (42, "expected str, bytes or a list"),
            ([KEY] * 17, "more than 16"),
        ],
    )
    def test_unusable_keys_are_refused_without_showing_them(
        self, keys: object, reason: str
    ) -> None:
        with pytest.raises(ConfigurationError, match=reason) as caught:
            KeyRing(keys)
        assert "secret-but-short" not in str(caught.value)
        assert KEY not in str(caught.value)
        assert "redacted" in str(caught.value.value)

    def test_repr_shows_only_the_count(self) -> None:
        text = repr(KeyRing([KEY, OTHER]))
        assert text == "KeyRing(<2 secret keys, redacted>)"

    def test_a_unicode_key_is_measured_in_bytes(self) -> None:
        assert len(KeyRing("é" * 16)) == 1
        with pytest.raises(ConfigurationError):
            KeyRing("é" * 15)


class TestFromEnv:
    def test_unset_or_blank_means_no_keys(self) -> None:
        assert KeyRing.from_env({}) is None
        assert KeyRing.from_env({ENV_VAR: " , "}) is None

    def test_commas_separate_keys_newest_first(self) -> None:
        ring = KeyRing.from_env({ENV_VAR: f" {KEY} ,{OTHER}"})
        assert ring is not None
        assert ring.raw() == (KEY.encode(), OTHER.encode())

    def test_errors_name_the_variable(self) -> None:
        with pytest.raises(ConfigurationError, match=ENV_VAR) as caught:
            KeyRing.from_env({ENV_VAR: "too-short-to-use"})
        assert "too-short-to-use" not in str(caught.value)

    def test_reads_the_process_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(ENV_VAR, KEY)
        ring = KeyRing.from_env()
        assert ring is not None and len(ring) == 1
