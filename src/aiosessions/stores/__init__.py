"""Stores: one contract (:class:`Store`), several backends.

``RedisStore`` is imported on first use so that the memory store works
without the ``redis`` extra installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import SessionRecord, Store
from .factory import (
    available_providers,
    create_store,
    get_default_store,
    set_default_store,
)
from .memory import MemoryStore

if TYPE_CHECKING:
    from .redis import RedisStore

__all__ = [
    "MemoryStore",
    "RedisStore",
    "SessionRecord",
    "Store",
    "available_providers",
    "create_store",
    "get_default_store",
    "set_default_store",
]


def __getattr__(name: str) -> Any:
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
