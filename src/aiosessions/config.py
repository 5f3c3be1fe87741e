"""Settings, from arguments or the environment, checked once.

The environment is read when a store is first needed, never at import, so
a test or an app can set variables after importing the package.

=========================  =========================================  ==========
variable                   meaning                                    default
=========================  =========================================  ==========
``SESSION_PROVIDER``       ``memory``, ``redis``, or the name of a    see below
                           store registered under the entry point
                           group ``aiosessions.stores``
``SESSION_DEFAULT_TTL``    key-value TTL when none is given, seconds  ``3600``
``SESSION_REDIS_URL``      Redis URL (``REDIS_URL`` is read too)      local 6379
``REDIS_TLS_INSECURE``     ``1`` skips TLS certificate checks         ``0``
``SESSION_MEMORY_MAX``     cap on memory store entries                none
=========================  =========================================  ==========

``SESSION_PROVIDER`` defaults to ``redis`` when ``SESSION_REDIS_URL`` is set,
to ``memory`` otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ConfigurationError

__all__ = ["DEFAULT_REDIS_URL", "MAX_TTL_SECONDS", "Settings"]

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
MAX_TTL_SECONDS = 100 * 365 * 24 * 3600
"""Longest duration any store accepts (100 years)."""
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigurationError(name, env[name], "expected 1/true/yes or 0/false/no")


def _positive_int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        number = int(raw)
    except ValueError:
        raise ConfigurationError(name, raw, "expected a whole number") from None
    if number <= 0:
        raise ConfigurationError(name, raw, "must be greater than zero")
    return number


@dataclass(frozen=True, repr=False)
class Settings:
    """Everything needed to build the default store.

    Durations are in seconds.
    """

    provider: str = "memory"
    default_ttl: int = 3600
    redis_url: str = DEFAULT_REDIS_URL
    redis_tls_insecure: bool = False
    memory_max_entries: int | None = None

    def __repr__(self) -> str:
        from .stores.redis_urls import redact_url

        return (
            f"Settings(provider={self.provider!r}, default_ttl={self.default_ttl},"
            f" redis_url={redact_url(self.redis_url)!r},"
            f" redis_tls_insecure={self.redis_tls_insecure},"
            f" memory_max_entries={self.memory_max_entries})"
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from *environ* (default: ``os.environ``).

        Raises:
            ConfigurationError: a variable holds a value that cannot be
                used; the message names the variable.
        """
        env = os.environ if environ is None else environ
        session_redis_url = env.get("SESSION_REDIS_URL", "").strip()
        # Naming a Redis for sessions is enough to use it; REDIS_URL alone
        # is too often set for other purposes to switch stores by itself.
        provider = env.get("SESSION_PROVIDER", "").strip().lower() or (
            "redis" if session_redis_url else "memory"
        )
        redis_url = (
            session_redis_url or env.get("REDIS_URL", "").strip() or DEFAULT_REDIS_URL
        )
        default_ttl = _positive_int(env, "SESSION_DEFAULT_TTL", 3600)
        assert default_ttl is not None
        if default_ttl > MAX_TTL_SECONDS:
            raise ConfigurationError(
                "SESSION_DEFAULT_TTL",
                env["SESSION_DEFAULT_TTL"],
                f"longer than the {MAX_TTL_SECONDS} s the stores can hold",
            )
        return cls(
            provider=provider,
            default_ttl=default_ttl,
            redis_url=redis_url,
            redis_tls_insecure=_flag(env, "REDIS_TLS_INSECURE"),
            memory_max_entries=_positive_int(env, "SESSION_MEMORY_MAX", None),
        )
