"""A real store wrapped to record which operations reach it."""

from __future__ import annotations

from typing import Any

from aiosessions.stores import Store


class CountingStore:
    """Forwards every call to a real store and records its name."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.provider = inner.provider

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not callable(target):
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return await target(*args, **kwargs)

        if name == "describe":
            return target
        return call


Store.register(CountingStore)  # type: ignore[attr-defined]
