"""aiosessions: async-first session management.

Sessions that expire on time, stay isolated per tenant, survive concurrent
requests without losing writes, and run in process or on Redis.
"""

from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from .config import Settings
from .enums import ProtocolType, ProviderType, SessionStatus, TokenType
from .errors import (
    BackendUnavailableError,
    ConfigurationError,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidKeyError,
    InvalidMetadataError,
    InvalidTTLError,
    InvalidValueTypeError,
    MissingDependencyError,
    ProviderError,
    SessionError,
)
from .hooks import LifecycleEvent, SessionEvent
from .keyvalue import KeyValueSession, get_session, session
from .manager import SessionManager
from .models import CleanupReport, CSRFTokenInfo, SessionMetadata
from .security.ids import generate_session_id
from .stores import (
    MemoryStore,
    Store,
    create_store,
    get_default_store,
    set_default_store,
)

if TYPE_CHECKING:
    from .stores.redis import RedisStore

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError",
    "CSRFTokenInfo",
    "CleanupReport",
    "ConfigurationError",
    "InvalidIdentifierError",
    "InvalidInputError",
    "InvalidKeyError",
    "InvalidMetadataError",
    "InvalidTTLError",
    "InvalidValueTypeError",
    "KeyValueSession",
    "LifecycleEvent",
    "MemoryStore",
    "MissingDependencyError",
    "ProtocolType",
    "ProviderError",
    "ProviderType",
    "RedisStore",
    "SessionError",
    "SessionEvent",
    "SessionManager",
    "SessionMetadata",
    "SessionStatus",
    "Settings",
    "Store",
    "TokenType",
    "__version__",
    "create_store",
    "generate_session_id",
    "get_default_store",
    "get_session",
    "session",
    "set_default_store",
]


def _redis_installed() -> bool:
    try:
        return find_spec("redis") is not None
    except ValueError:  # a module set to None in sys.modules
        return False


if not _redis_installed():
    # RedisStore would raise MissingDependencyError: keep it out of the names
    # that ``from aiosessions import *`` fetches on a plain install.
    __all__.remove("RedisStore")


def __getattr__(name: str) -> Any:
    # RedisStore needs the optional redis extra: import it only when asked,
    # so the memory store works without it.
    if name == "RedisStore":
        from .stores.redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
