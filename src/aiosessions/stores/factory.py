"""Building stores by provider name, and the process-wide default store."""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib.metadata import entry_points

from ..config import Settings
from ..errors import ConfigurationError
from .base import Store

__all__ = [
    "ENTRY_POINT_GROUP",
    "available_providers",
    "create_store",
    "get_default_store",
    "set_default_store",
]

ENTRY_POINT_GROUP = "aiosessions.stores"
"""Third-party stores register a ``factory(settings) -> Store`` here."""

StoreFactory = Callable[[Settings], Store]


def _builtin(provider: str) -> StoreFactory | None:
    if provider == "memory":
        from .memory import MemoryStore

        return MemoryStore.from_settings
    if provider == "redis":
        from .redis import RedisStore

        return RedisStore.from_settings
    return None


def available_providers() -> list[str]:
    """Return the provider names that ``SESSION_PROVIDER`` accepts."""
    plugged = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(plugged | {"memory", "redis"})


def create_store(settings: Settings | None = None) -> Store:
    """Build the store that *settings* (default: the environment) name.

    Raises:
        ConfigurationError: the provider is unknown (the message lists the
            known ones) or a setting is unusable.
    """
    settings = Settings.from_env() if settings is None else settings
    factory = _builtin(settings.provider)
    if factory is None:
        matches = entry_points(group=ENTRY_POINT_GROUP, name=settings.provider)
        if not matches:
            raise ConfigurationError(
                "SESSION_PROVIDER",
                settings.provider,
                f"unknown store; choose one of: {', '.join(available_providers())}",
            )
        factory = next(iter(matches)).load()
    store = factory(settings)
    if not isinstance(store, Store):
        raise ConfigurationError(
            "SESSION_PROVIDER",
            settings.provider,
            f"its factory returned {type(store).__name__}, not a Store",
        )
    store.default_ttl = settings.default_ttl
    return store


_default: Store | None = None
_default_lock = threading.Lock()


def get_default_store() -> Store:
    """Return the shared store, building it from the environment once."""
    global _default
    store = _default
    if store is None:
        with _default_lock:
            if _default is None:
                _default = create_store()
            store = _default
    return store


def set_default_store(store: Store | None) -> None:
    """Replace the shared store; ``None`` rebuilds it from the environment."""
    global _default
    with _default_lock:
        _default = store
