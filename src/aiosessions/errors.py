"""Exceptions raised by aiosessions.

Every error the library raises on purpose derives from :class:`SessionError`::

    SessionError
    ├── ConfigurationError          bad argument or environment variable
    ├── InvalidInputError (ValueError)
    │   ├── InvalidKeyError         a key the store cannot take
    │   ├── InvalidTTLError         zero, negative, NaN, infinite or too large
    │   ├── InvalidMetadataError    not JSON, too large, or not a counter
    │   ├── InvalidIdentifierError  a sandbox or user id that is not allowed
    │   └── InvalidValueTypeError (TypeError)  a value of the wrong type
    ├── ProviderError               the store failed
    │   └── BackendUnavailableError the store could not be reached
    └── MissingDependencyError (ImportError)  an optional extra is not installed

Subclasses carry the context of the failure as attributes, and their messages
quote the bad value (cut to a readable length) and say how to fix it.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "ConfigurationError",
    "InvalidIdentifierError",
    "InvalidInputError",
    "InvalidKeyError",
    "InvalidMetadataError",
    "InvalidTTLError",
    "InvalidValueTypeError",
    "MissingDependencyError",
    "ProviderError",
    "SessionError",
]

_REPR_LIMIT = 60


def short_repr(value: object, limit: int = _REPR_LIMIT) -> str:
    """Return ``repr(value)`` cut to *limit* characters, marking the cut.

    Never raises: a value whose ``repr`` fails (a hostile ``__repr__``, an
    int too long to print, a structure too deep) is shown by its type.
    """
    try:
        text = repr(value)
    except Exception:  # an error message must never fail
        return f"<{type(value).__name__} object>"
    if len(text) <= limit:
        return text
    return f"{text[: limit - 12]}...<{len(text)} chars>"


class SessionError(Exception):
    """Base class of every error raised by aiosessions."""


class ConfigurationError(SessionError, ValueError):
    """A setting, from an argument or the environment, is not usable.

    ``name`` is the argument or environment variable, ``value`` what it held.
    """

    def __init__(self, name: str, value: object, reason: str) -> None:
        self.name = name
        self.value = value
        super().__init__(f"{name}={short_repr(value)}: {reason}")


class InvalidInputError(SessionError, ValueError):
    """An argument is malformed; nothing was written to the store.

    ``field`` names the argument, ``value`` is what the caller passed.
    """

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        super().__init__(f"invalid {field} {short_repr(value)}: {reason}")


class InvalidKeyError(InvalidInputError):
    """A key is empty, too long, or holds control characters."""


class InvalidTTLError(InvalidInputError):
    """A duration is zero, negative, NaN, infinite or past the store's range."""


class InvalidMetadataError(InvalidInputError):
    """Metadata is not JSON-serialisable, too large, or not a counter."""


class InvalidIdentifierError(InvalidInputError):
    """A sandbox or user id is empty, too long, or holds control characters."""


class InvalidValueTypeError(InvalidInputError, TypeError):
    """A value has a type the store does not take (values are ``str``).

    Also a :class:`TypeError`, as Python code expects of a wrong type.
    """

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.expected = expected
        super().__init__(
            field, value, f"must be {expected}, not {type(value).__name__}"
        )


class ProviderError(SessionError):
    """The store failed to carry out an operation.

    ``store`` describes the store (its URL without password), ``operation``
    names what was attempted.
    """

    def __init__(self, message: str, *, store: str = "", operation: str = "") -> None:
        self.store = store
        self.operation = operation
        context = " ".join(
            part for part in (operation, f"on {store}" if store else "") if part
        )
        super().__init__(f"{message} [{context}]" if context else message)


class BackendUnavailableError(ProviderError):
    """The store could not be reached after the retry budget was spent.

    A session is never reported invalid because its store is down: callers
    get this error instead and can answer 503 rather than log the user out.
    """

    def __init__(
        self,
        message: str,
        *,
        store: str = "",
        operation: str = "",
        attempts: int = 1,
    ) -> None:
        self.attempts = attempts
        super().__init__(
            f"{message} (after {attempts} attempt{'s' if attempts != 1 else ''})",
            store=store,
            operation=operation,
        )


class MissingDependencyError(SessionError, ImportError):
    """A feature needs an optional dependency that is not installed.

    ``package`` is the missing distribution, ``extra`` the aiosessions extra
    that installs it.
    """

    def __init__(self, feature: str, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{feature} needs {package}, which is not installed:"
            f" pip install 'aiosessions[{extra}]'"
        )
