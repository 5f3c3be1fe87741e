"""Settings from the environment and stores chosen by name."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from aiosessions import ConfigurationError, MemoryStore, RedisStore, Settings
from aiosessions.stores import available_providers, create_store


class TestSettings:
    def test_defaults(self) -> None:
        settings = Settings.from_env({})
        assert settings.provider == "memory"
        assert settings.default_ttl == 3600
        assert settings.redis_url == "redis://localhost:6379/0"
        assert settings.redis_tls_insecure is False
        assert settings.memory_max_entries is None

    def test_every_variable_is_read(self) -> None:
        settings = Settings.from_env(
            {
                "SESSION_PROVIDER": " Redis ",
                "SESSION_DEFAULT_TTL": "90",
                "SESSION_REDIS_URL": "redis://h:1/2",
                "REDIS_TLS_INSECURE": "yes",
                "SESSION_MEMORY_MAX": "10",
            }
        )
        assert settings == Settings("redis", 90, "redis://h:1/2", True, 10)

    def test_session_redis_url_alone_selects_redis(self) -> None:
        settings = Settings.from_env({"SESSION_REDIS_URL": "redis://h:1/0"})
        assert settings.provider == "redis"
        assert Settings.from_env({"REDIS_URL": "redis://h"}).provider == "memory"
        explicit = {"SESSION_REDIS_URL": "redis://h", "SESSION_PROVIDER": "memory"}
        assert Settings.from_env(explicit).provider == "memory"

    def test_redis_url_is_a_fallback(self) -> None:
        assert Settings.from_env({"REDIS_URL": "redis://x"}).redis_url == "redis://x"

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("SESSION_DEFAULT_TTL", "soon"),
            ("SESSION_DEFAULT_TTL", "0"),
            ("SESSION_DEFAULT_TTL", "-5"),
            ("SESSION_DEFAULT_TTL", "1.5"),
            ("REDIS_TLS_INSECURE", "maybe"),
            ("SESSION_MEMORY_MAX", "lots"),
        ],
    )
    def test_bad_values_name_the_variable(self, name: str, value: str) -> None:
        with pytest.raises(ConfigurationError, match=name) as caught:
            Settings.from_env({name: value})
        assert caught.value.name == name
        assert value in str(caught.value)

    def test_environment_is_read_late(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SESSION_DEFAULT_TTL", "42")
        assert Settings.from_env().default_ttl == 42


class TestProviders:
    def test_builtin_providers(self) -> None:
        assert isinstance(create_store(Settings("memory")), MemoryStore)
        store = create_store(Settings("redis", redis_url="redis://127.0.0.1:1"))
        assert isinstance(store, RedisStore)

    def test_memory_cap_comes_from_settings(self) -> None:
        store = create_store(Settings("memory", memory_max_entries=5))
        assert isinstance(store, MemoryStore) and store.max_entries == 5

    def test_unknown_provider_lists_the_choices(self) -> None:
        with pytest.raises(ConfigurationError, match="SESSION_PROVIDER") as caught:
            create_store(Settings("mongo"))
        assert "memory, redis" in str(caught.value)

    def test_environment_picks_the_provider(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SESSION_PROVIDER", "memory")
        assert isinstance(create_store(), MemoryStore)

    def test_third_party_store_plugs_in_by_entry_point(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        package = tmp_path / "extstore.py"
        package.write_text(
            "from aiosessions.stores import MemoryStore\n"
            "class ExtStore(MemoryStore):\n"
            "    provider = 'ext'\n"
            "def build(settings):\n"
            "    return ExtStore()\n"
            "def broken(settings):\n"
            "    return object()\n"
        )
        info = tmp_path / "extstore-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: extstore\n")
        (info / "entry_points.txt").write_text(
            "[aiosessions.stores]\next = extstore:build\nbroken = extstore:broken\n"
        )
        monkeypatch.syspath_prepend(str(tmp_path))

        assert "ext" in available_providers()
        assert create_store(Settings("ext")).provider == "ext"
        with pytest.raises(ConfigurationError, match="not a Store"):
            create_store(Settings("broken"))
        sys.modules.pop("extstore", None)
