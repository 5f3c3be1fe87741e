"""The Redis URL forms that ``RedisStore`` and ``SESSION_REDIS_URL`` accept.

::

    redis://[[user]:password@]host[:port][/db]            one server
    rediss://...                                          one server, TLS
    unix://[[user]:password@]/path/to/redis.sock[?db=N]   one server, socket
    redis://[[user]:password@]h1[:p1],h2[:p2][,...]       Cluster, 2+ seeds
    redis+cluster://[[user]:password@]h1[:p1][,...]       Cluster, 1+ seeds
    redis+sentinel://[[user]:password@]s1[:p1][,...]/service[/db]

``rediss+cluster://`` and ``rediss+sentinel://`` use TLS; with a node list,
TLS applies to every node. Ports default to 6379, and to 26379 for
sentinels. Cluster has only database 0.

Credentials in the URL authenticate to the data servers (the primary and
its replicas, or every Cluster node). Sentinels are often run without a
password, or with one of their own: give it in the query, as
``?sentinel_password=...`` (and ``sentinel_username=...`` for an ACL user).

Query options: ``db``; for TLS ``ssl_ca_certs``, ``ssl_certfile``,
``ssl_keyfile`` (paths), ``ssl_cert_reqs`` (``required``, ``optional`` or
``none``) and ``ssl_check_hostname`` (``true``/``false``). The user info runs to the
last ``@`` of the URL, so percent-encode an ``@`` anywhere after it (in a
path option, say) as ``%40``; encoding special characters in passwords
(``%23`` for ``#``) is always safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, unquote

from ..errors import ConfigurationError

__all__ = ["RedisTarget", "Topology", "parse_redis_url", "redact_url"]

Topology = Literal["standalone", "cluster", "sentinel"]
CertReqs = Literal["required", "optional", "none"]

DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379

_SCHEMES: dict[str, tuple[Topology | None, bool]] = {
    # scheme: (topology, or None when the host count decides; TLS)
    "redis": (None, False),
    "rediss": (None, True),
    "unix": ("standalone", False),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
}
_TLS_OPTIONS = frozenset(
    {
        "ssl_ca_certs",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_cert_reqs",
        "ssl_check_hostname",
    }
)
_SENTINEL_OPTIONS = frozenset({"sentinel_username", "sentinel_password"})
_FORMS = (
    "redis://[user:password@]host:port/db, rediss:// for TLS, "
    "unix:///path/to/redis.sock, redis://h1:p1,h2:p2 for Cluster, "
    "or redis+sentinel://h1:p1,h2:p2/service/db"
)
_QUERY_OPTION = re.compile(r"([?&])([^=&#]*)=([^&#]*)")


def _mask_secret_option(match: re.Match[str]) -> str:
    # Decode the name first: 'pass%77ord' names a password just as well.
    if "password" in unquote(match.group(2)).lower():
        return f"{match.group(1)}{match.group(2)}=***"
    return match.group(0)


@dataclass(frozen=True)
class RedisTarget:
    """Where a Redis URL points, and how to authenticate and encrypt.

    ``nodes`` are the server, the Cluster seeds or the sentinels, as
    ``(host, port)`` pairs; empty for a Unix socket (``path``).
    """

    topology: Topology
    nodes: tuple[tuple[str, int], ...] = ()
    path: str | None = None
    db: int = 0
    service_name: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    tls: bool = False
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_cert_reqs: CertReqs = "required"
    ssl_check_hostname: bool = True

    @property
    def addresses(self) -> list[str]:
        """``host:port`` of every node (IPv6 hosts in brackets), or the path."""
        if self.path is not None:
            return [self.path]
        return [format_address(host, port) for host, port in self.nodes]

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every password in the URL, to scrub from error messages."""
        return tuple(s for s in (self.password, self.sentinel_password) if s)


def format_address(host: str, port: int) -> str:
    """Return ``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def redact_url(url: str) -> str:
    """Return *url* with its password, and any ``*password*`` option, as ``***``.

    Works on every form this module accepts, and on malformed URLs too: a
    URL whose host part cannot be read is shown as ``<unparsable url>``.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<unparsable url>" if "@" in url else url
    # Everything up to the last '@' is user info, even a password holding a
    # '/', '?' or '#' that should have been percent-encoded: better to hide
    # too much than to show part of a password.
    at = rest.rfind("@")
    if at >= 0:
        user, colon, _ = rest[:at].partition(":")
        rest = (f"{user}:***" if colon else "***") + rest[at:]
    hosts = re.split(r"[/?#]", rest[rest.find("@") + 1 :], maxsplit=1)[0]
    if hosts.count("[") != hosts.count("]"):
        return "<unparsable url>"
    return f"{scheme}://{_QUERY_OPTION.sub(_mask_secret_option, rest)}"


def _refuse(url: str, reason: str) -> ConfigurationError:
    return ConfigurationError("url", redact_url(url), reason)


def _split(url: str) -> tuple[str, str, str, str, str]:
    """Return scheme, user info, hosts, path and query of *url*."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _SCHEMES:
        raise _refuse(url, f"unsupported URL; expected {_FORMS}")
    # As in redact_url: user info runs to the last '@'.
    at = rest.rfind("@")
    user_info, rest = (rest[:at], rest[at + 1 :]) if at >= 0 else ("", rest)
    if "#" in rest:
        raise _refuse(url, "unexpected '#' (percent-encode it as %23)")
    rest, _, query = rest.partition("?")
    hosts, slash, path = rest.partition("/")
    return scheme, user_info, hosts, slash + path, query


def _parse_host(url: str, text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):
        host, bracket, port_text = text[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            raise _refuse(url, f"bad IPv6 address {text!r}")
        port_text = port_text[1:]
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise _refuse(url, "a host is missing")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise _refuse(url, f"bad port {port_text!r} (1-65535)")
    return host, int(port_text)


def _parse_db(url: str, text: str) -> int:
    if not text.isdigit():
        raise _refuse(url, f"bad database number {text!r}")
    return int(text)


def _parse_bool(url: str, name: str, text: str) -> bool:
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise _refuse(url, f"{name}={text!r}: expected true or false")


def _parse_cert_reqs(url: str, text: str) -> CertReqs:
    lowered = text.lower()
    if lowered == "required":
        return "required"
    if lowered == "optional":
        return "optional"
    if lowered == "none":
        return "none"
    raise _refuse(url, f"ssl_cert_reqs={text!r}: expected required, optional or none")


def parse_redis_url(url: str) -> RedisTarget:
    """Return the :class:`RedisTarget` that *url* describes.

    Raises:
        ConfigurationError: the URL is not one of the forms above, or holds
            an unknown option; the message shows the URL without password.
    """
    if not isinstance(url, str):
        raise ConfigurationError("url", type(url).__name__, f"expected {_FORMS}")
    scheme, user_info, hosts, path, query = _split(url)
    topology, tls = _SCHEMES[scheme]

    username: str | None = None
    password: str | None = None
    if user_info:
        user, colon, secret = user_info.partition(":")
        if not colon:
            raise _refuse(
                url,
                "a user name without a password; write redis://:password@host,"
                " or redis://user:password@host for an ACL user",
            )
        username, password = unquote(user) or None, unquote(secret)

    options = dict(parse_qsl(query, keep_blank_values=True))
    known = {"db"} | _TLS_OPTIONS | _SENTINEL_OPTIONS
    unknown = sorted(set(options) - known)
    if unknown:
        raise _refuse(
            url, f"unknown option {unknown[0]!r}; known: {', '.join(sorted(known))}"
        )
    if not tls and _TLS_OPTIONS & set(options):
        raise _refuse(url, "TLS options need a rediss:// URL")

    nodes: tuple[tuple[str, int], ...] = ()
    socket_path: str | None = None
    service_name: str | None = None
    db = 0
    if scheme == "unix":
        if hosts:
            raise _refuse(url, "write unix:///path/to/redis.sock (three slashes)")
        if len(path) < 2:
            raise _refuse(url, "the socket path is missing")
        socket_path = unquote(path)
    else:
        parts = [part.strip() for part in hosts.split(",")]
        default_port = DEFAULT_SENTINEL_PORT if topology == "sentinel" else DEFAULT_PORT
        nodes = tuple(_parse_host(url, part, default_port) for part in parts)
        if topology is None:
            topology = "cluster" if len(nodes) > 1 else "standalone"
        segments = [unquote(part) for part in path.split("/") if part]
        if topology == "sentinel":
            if not segments:
                raise _refuse(
                    url, "the primary's service name is missing: .../mymaster/0"
                )
            service_name, segments = segments[0], segments[1:]
        if len(segments) > 1:
            raise _refuse(url, f"unexpected path {path!r}")
        if segments:
            db = _parse_db(url, segments[0])
    if "db" in options:
        db = _parse_db(url, options["db"])
    if topology == "cluster" and db != 0:
        raise _refuse(url, "Redis Cluster has only database 0")
    if topology != "sentinel" and _SENTINEL_OPTIONS & set(options):
        raise _refuse(url, "sentinel options need a redis+sentinel:// URL")

    assert topology is not None
    return RedisTarget(
        topology=topology,
        nodes=nodes,
        path=socket_path,
        db=db,
        service_name=service_name,
        username=username,
        password=password,
        sentinel_username=options.get("sentinel_username") or None,
        sentinel_password=options.get("sentinel_password") or None,
        tls=tls,
        ssl_ca_certs=options.get("ssl_ca_certs") or None,
        ssl_certfile=options.get("ssl_certfile") or None,
        ssl_keyfile=options.get("ssl_keyfile") or None,
        ssl_cert_reqs=_parse_cert_reqs(url, options.get("ssl_cert_reqs", "required")),
        ssl_check_hostname=_parse_bool(
            url, "ssl_check_hostname", options.get("ssl_check_hostname", "true")
        ),
    )
