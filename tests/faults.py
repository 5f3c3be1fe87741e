"""A real store wrapped to fail, or to run code, at a chosen operation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiosessions.errors import BackendUnavailableError
from aiosessions.stores import Store


class FaultyStore:
    """Forwards every call to a real store, with traps on chosen methods.

    ``fail_on("session_clone")`` makes the next call of that method raise
    :class:`BackendUnavailableError` *after* the real call ran (a lost
    reply), or before it with ``before=True``. ``run_after(name, fn)`` awaits
    ``fn()`` right after the next call of *name* returns.
    """

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.provider = inner.provider
        self._fail: dict[str, bool] = {}
        self._after: dict[str, Callable[[], Awaitable[Any]]] = {}

    def fail_on(self, name: str, *, before: bool = False) -> None:
        self._fail[name] = before

    def run_after(self, name: str, fn: Callable[[], Awaitable[Any]]) -> None:
        self._after[name] = fn

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not callable(target) or name in ("describe", "iter_keys"):
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            before = self._fail.pop(name, None)
            if before is True:
                raise BackendUnavailableError("injected", operation=name)
            result = await target(*args, **kwargs)
            if before is False:
                raise BackendUnavailableError("injected", operation=name)
            hook = self._after.pop(name, None)
            if hook is not None:
                await hook()
            return result

        return call


Store.register(FaultyStore)  # type: ignore[attr-defined]
