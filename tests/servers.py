"""Real ``redis-server`` processes for the test-suite.

Every server started here is our own: a fresh process on a free loopback port with
its own temporary directory, no persistence, and a log file in that directory.
Nothing here ever talks to a Redis that we did not start (in particular never to
the one that may be listening on 127.0.0.1:6379).

Provided:

* :func:`redis_server_binary` / :func:`redis_cli_binary` - paths or ``None``.
* :func:`free_port` - a free port on 127.0.0.1 (its cluster bus port ``+10000`` is
  free too).
* :class:`RedisServer` - one standalone server (``start``/``stop``/``restart``/
  ``kill``/``close``).
* :class:`TLSRedis` - a TLS-only server with a throwaway CA and certificates.
* :class:`RedisCluster` - 3 primaries + 3 replicas, created with
  ``redis-cli --cluster create``.
* :class:`RedisSentinel` - 1 primary, 1 replica and 3 sentinels.

All processes are also stopped by an ``atexit`` hook, and on Linux they get
``PR_SET_PDEATHSIG`` so that they die with the test process even if it is killed.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import datetime as dt
import ipaddress
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "HOST",
    "PortInUseError",
    "RedisCluster",
    "RedisSentinel",
    "RedisServer",
    "RedisStartError",
    "TLSRedis",
    "free_port",
    "redis_cli_binary",
    "redis_server_binary",
]

HOST = "127.0.0.1"
"""Every server binds to this address only."""

DEFAULT_START_TIMEOUT = 15.0
"""Seconds to wait for one process to answer PING."""

CLUSTER_BUS_OFFSET = 10000

# Ports are drawn from a range below Linux's ephemeral range (32768-60999 by
# default), so that outgoing client connections never take them, and low enough
# that the cluster bus port (+10000) is also below that range.
_PORT_LOW = 15000
_PORT_HIGH = 22000

_T = TypeVar("_T")


class RedisStartError(RuntimeError):
    """A redis process did not come up (the message includes its log)."""


class PortInUseError(RedisStartError):
    """The process could not bind its port (someone else took it)."""


# --------------------------------------------------------------------------------------
# Binaries
# --------------------------------------------------------------------------------------


def redis_server_binary() -> str | None:
    """Path of ``redis-server`` (``$REDIS_SERVER`` overrides ``$PATH``), or None."""
    override = os.environ.get("REDIS_SERVER")
    if override:
        return override if os.access(override, os.X_OK) else None
    return shutil.which("redis-server")


def redis_cli_binary() -> str | None:
    """Path of ``redis-cli`` (``$REDIS_CLI`` overrides ``$PATH``), or None."""
    override = os.environ.get("REDIS_CLI")
    if override:
        return override if os.access(override, os.X_OK) else None
    found = shutil.which("redis-cli")
    if found:
        return found
    server = redis_server_binary()
    if server:
        sibling = Path(server).with_name("redis-cli")
        if os.access(sibling, os.X_OK):
            return str(sibling)
    return None


def _need_server_binary() -> str:
    binary = redis_server_binary()
    if binary is None:
        raise RedisStartError("redis-server not found (install redis-server)")
    return binary


# --------------------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------------------

_port_lock = threading.Lock()
_handed_out: set[int] = set()
_rng = random.Random()


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option redis uses, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """Return a port on 127.0.0.1 that is free now, as is ``port + 10000``.

    A port is never handed out twice by one process. Another process may still take
    it before our server binds it; :meth:`RedisServer.start` then retries on another
    port.
    """
    with _port_lock:
        for _ in range(1000):
            port = _rng.randrange(_PORT_LOW, _PORT_HIGH)
            bus = port + CLUSTER_BUS_OFFSET
            if port in _handed_out or bus in _handed_out:
                continue
            if _bindable(port) and _bindable(bus):
                _handed_out.update((port, bus))
                return port
    raise RuntimeError("no free port found on 127.0.0.1")


# --------------------------------------------------------------------------------------
# Process bookkeeping
# --------------------------------------------------------------------------------------

_live: set[RedisServer] = set()
_live_lock = threading.Lock()


def _close_everything() -> None:
    with _live_lock:
        servers = list(_live)
    for server in servers:
        with contextlib.suppress(Exception):
            server.close()


atexit.register(_close_everything)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGKILL the child if the parent thread goes away."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _preexec() -> Callable[[], None] | None:
    # PDEATHSIG fires when the *thread* that forked exits, so only use it from the
    # main thread (a worker thread of asyncio.to_thread would kill the server).
    if sys.platform.startswith("linux") and (
        threading.current_thread() is threading.main_thread()
    ):
        return _die_with_parent
    return None


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _wait_for(
    what: str,
    check: Callable[[], _T | None],
    timeout: float,
    interval: float = 0.05,
    describe: Callable[[], str] | None = None,
) -> _T:
    """Poll ``check`` until it returns something other than None."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
        except (redis.exceptions.RedisError, OSError) as exc:
            last_error = exc
            result = None
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            extra = f"\n{describe()}" if describe else ""
            raise TimeoutError(
                f"timed out after {timeout}s waiting for {what}{detail}" + extra
            )
        time.sleep(interval)


# --------------------------------------------------------------------------------------
# One server
# --------------------------------------------------------------------------------------


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1 in its own temporary directory.

    ``port=None`` picks a free port at the first start; after a successful start the
    port is fixed, so :meth:`restart` (and ``stop``/``start``) keeps the same URL.
    ``stop`` keeps the directory (and its log); ``close`` also removes it.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        password: str | None = None,
        extra_args: Sequence[str] = (),
        name: str = "redis",
        start_timeout: float = DEFAULT_START_TIMEOUT,
        binary: str | None = None,
    ) -> None:
        self._binary = binary
        self._port = port if port is not None else free_port()
        self._port_pinned = port is not None
        self.password = password
        self.extra_args = list(extra_args)
        self.name = name
        self.start_timeout = start_timeout
        self.dir = Path(tempfile.mkdtemp(prefix=f"aiosessions-{name}-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        with _live_lock:
            _live.add(self)

    # -- description -------------------------------------------------------------------

    host = HOST

    @property
    def port(self) -> int:
        return self._port

    @property
    def pid(self) -> int | None:
        """PID of the running process, or None when it is not running."""
        return self._proc.pid if self.running and self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def scheme(self) -> str:
        return "redis"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (with ``:password@`` when there is one)."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}/0"

    @property
    def log_file(self) -> Path:
        return self.dir / "redis.log"

    @property
    def output_file(self) -> Path:
        """stdout/stderr of the process (errors before the log file is opened)."""
        return self.dir / "output.log"

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {self.name} {self.host}:{self.port} {state}>"

    def logs(self, lines: int = 40) -> str:
        """Last lines of the log file and of the process output."""
        parts = [f"--- {self.log_file} ---", _tail(self.log_file, lines)]
        output = _tail(self.output_file, lines)
        if output.strip():
            parts += [f"--- {self.output_file} ---", output]
        return "\n".join(parts)

    # -- clients -----------------------------------------------------------------------

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for a ``redis.Redis`` / ``redis.asyncio.Redis``."""
        return {"host": self.host, "port": self.port, "password": self.password}

    def client(self, **kwargs: Any) -> redis.Redis:
        """A synchronous client for setup and inspection (close it after use)."""
        options: dict[str, Any] = {
            **self.client_kwargs(),
            "socket_timeout": 5.0,
            "socket_connect_timeout": 2.0,
            "decode_responses": True,
            # Fail fast: callers poll. (redis-py retries 3 times with backoff by
            # default, which turns one probe of a silent port into many seconds.)
            "retry": Retry(NoBackoff(), 0),
        }
        options.update(kwargs)
        return redis.Redis(**options)

    @contextlib.contextmanager
    def connect(self, **kwargs: Any) -> Iterator[redis.Redis]:
        client = self.client(**kwargs)
        try:
            yield client
        finally:
            client.close()

    def flushall(self) -> None:
        with self.connect() as client:
            client.flushall()

    # -- lifecycle ---------------------------------------------------------------------

    def _args(self) -> list[str]:
        """Command line after the binary; subclasses change the ports part."""
        return [
            *self._port_args(),
            "--bind",
            self.host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.dir),
            "--logfile",
            str(self.log_file),
            # Replicas sync at once (the default waits 5 s for more replicas).
            "--repl-diskless-sync-delay",
            "0",
            # Lets tests use DEBUG SLEEP etc., from loopback connections only.
            "--enable-debug-command",
            "local",
            *(["--requirepass", self.password] if self.password else []),
            *self.extra_args,
        ]

    def _port_args(self) -> list[str]:
        return ["--port", str(self.port)]

    def _launch(self) -> None:
        """Spawn the process without waiting for it."""
        if self._closed:
            raise RedisStartError(f"{self!r} is closed")
        if self.running:
            return
        binary = self._binary or _need_server_binary()
        with self.output_file.open("ab") as output:
            self._proc = subprocess.Popen(
                [binary, *self._args()],
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C on pytest does not hit it first
                preexec_fn=_preexec(),
            )

    def _is_ours(self) -> bool | None:
        """True when our process answers on our port; None while not yet."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise self._start_failure()
        with self.connect(socket_timeout=0.5, socket_connect_timeout=0.5) as client:
            client.ping()
            info = client.info("server")
        if int(info["process_id"]) != proc.pid:
            # Somebody else answers on this port: ours will exit with EADDRINUSE.
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(self.start_timeout)
            raise self._start_failure()
        return True

    def _start_failure(self) -> RedisStartError:
        proc = self._proc
        code = proc.poll() if proc else None
        self._proc = None
        if code is None and proc is not None:  # still running but not ours: stop it
            _terminate(proc, 2.0)
        logs = self.logs()
        cls = PortInUseError if "Address already in use" in logs else RedisStartError
        return cls(
            f"{self.name} on {self.host}:{self.port} did not start "
            f"(exit code {code})\n{logs}"
        )

    def _await_ready(self) -> None:
        try:
            _wait_for(
                f"{self!r} to answer PING",
                self._is_ours,
                self.start_timeout,
                interval=0.02,
            )
        except TimeoutError as exc:
            proc, self._proc = self._proc, None
            if proc is not None:
                _terminate(proc, 2.0)
            raise RedisStartError(f"{exc}\n{self.logs()}") from None

    def _finish_start(self, attempts: int = 5) -> None:
        """Wait for a launched process; on a lost port race, retry on a new port."""
        for attempt in range(attempts):
            try:
                if attempt:
                    self._launch()
                self._await_ready()
            except PortInUseError:
                if self._port_pinned or attempt == attempts - 1:
                    raise
                self._port = free_port()
            else:
                self._port_pinned = True
                return

    def start(self) -> RedisServer:
        """Start (no-op when running) and wait until the server answers PING."""
        if not self.running:
            self._launch()
            self._finish_start()
        return self

    def ensure_running(self) -> RedisServer:
        """Start again if a test killed or stopped it."""
        return self.start()

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Keeps the directory."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _terminate(proc, timeout)

    def kill(self) -> None:
        """SIGKILL (a crash: no shutdown, no goodbye to replicas or the cluster)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait()

    def restart(self, timeout: float = 5.0) -> RedisServer:
        """Stop and start again on the same port (data is lost: no persistence)."""
        self.stop(timeout)
        return self.start()

    def close(self) -> None:
        """Stop and remove the temporary directory. The object is unusable after."""
        if self._closed:
            return
        self.stop()
        self._closed = True
        shutil.rmtree(self.dir, ignore_errors=True)
        with _live_lock:
            _live.discard(self)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()


def _start_all(servers: Sequence[RedisServer]) -> None:
    """Launch every server first, then wait for each (parallel start-up)."""
    for server in servers:
        server._launch()
    for server in servers:
        server._finish_start()


# --------------------------------------------------------------------------------------
# TLS
# --------------------------------------------------------------------------------------


class _CertAuthority:
    """A throwaway CA (EC P-256, fast to generate) that signs leaf certificates."""

    def __init__(self, common_name: str) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.timezone.utc)
        public = self.key.public_key()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), False)
            .sign(self.key, hashes.SHA256())
        )

    def issue(self, common_name: str, *, server: bool) -> tuple[bytes, bytes]:
        """A leaf certificate and key (PEM). Servers get SANs 127.0.0.1/localhost."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        usage = (
            ExtendedKeyUsageOID.SERVER_AUTH
            if server
            else ExtendedKeyUsageOID.CLIENT_AUTH
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
            )
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.key.public_key()
                ),
                False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.IPAddress(ipaddress.ip_address(HOST)),
                        x509.DNSName("localhost"),
                    ]
                ),
                False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    def cert_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.cert.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


class TLSRedis(RedisServer):
    """A TLS-only server (``--port 0 --tls-port P``), client certs optional.

    Files (PEM, in the server's directory): ``ca_file`` (the CA that signed the
    server and client certificates), ``client_cert``/``client_key``, and
    ``wrong_ca_file``, an unrelated CA that must not verify the server.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        password: str | None = None,
        extra_args: Sequence[str] = (),
        name: str = "redis-tls",
        start_timeout: float = DEFAULT_START_TIMEOUT,
        binary: str | None = None,
    ) -> None:
        super().__init__(
            port=port,
            password=password,
            extra_args=extra_args,
            name=name,
            start_timeout=start_timeout,
            binary=binary,
        )
        ca = _CertAuthority("aiosessions test CA")
        other = _CertAuthority("aiosessions unrelated CA")
        self.ca_file = self.dir / "ca.crt"
        self.wrong_ca_file = self.dir / "wrong-ca.crt"
        self.server_cert = self.dir / "server.crt"
        self.server_key = self.dir / "server.key"
        self.client_cert = self.dir / "client.crt"
        self.client_key = self.dir / "client.key"
        self.ca_file.write_bytes(ca.cert_pem())
        self.wrong_ca_file.write_bytes(other.cert_pem())
        cert, key = ca.issue("localhost", server=True)
        self.server_cert.write_bytes(cert)
        _write_private(self.server_key, key)
        cert, key = ca.issue("aiosessions test client", server=False)
        self.client_cert.write_bytes(cert)
        _write_private(self.client_key, key)

    @property
    def scheme(self) -> str:
        return "rediss"

    def _port_args(self) -> list[str]:
        return [
            "--port",
            "0",
            "--tls-port",
            str(self.port),
            "--tls-cert-file",
            str(self.server_cert),
            "--tls-key-file",
            str(self.server_key),
            "--tls-ca-cert-file",
            str(self.ca_file),
            "--tls-auth-clients",
            "optional",
        ]

    def client_kwargs(self) -> dict[str, Any]:
        """Client options with verification on against ``ca_file``, presenting the
        client certificate (so ``--tls-auth-clients yes`` servers work too)."""
        return {
            **super().client_kwargs(),
            "ssl": True,
            "ssl_ca_certs": str(self.ca_file),
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": True,
            "ssl_certfile": str(self.client_cert),
            "ssl_keyfile": str(self.client_key),
        }


# --------------------------------------------------------------------------------------
# Cluster
# --------------------------------------------------------------------------------------


def _parse_cluster_info(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep:
            fields[key] = value
    return fields


class RedisCluster:
    """A Redis Cluster on loopback: ``primaries`` primaries with ``replicas`` each.

    ``url`` is ``redis://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`` built from the
    nodes that were primaries when the cluster was created (any node works as a
    start-up node). ``node_timeout_ms`` is the cluster node timeout: a killed
    primary is replaced by its replica roughly that long after the kill.
    """

    SLOTS = 16384

    def __init__(
        self,
        *,
        primaries: int = 3,
        replicas: int = 1,
        node_timeout_ms: int = 2000,
        start_timeout: float = 60.0,
    ) -> None:
        if primaries < 3:
            raise ValueError("redis-cli --cluster create needs at least 3 primaries")
        self.primaries_count = primaries
        self.replicas_per_primary = replicas
        self.node_timeout_ms = node_timeout_ms
        self.start_timeout = start_timeout
        self.nodes: list[RedisServer] = []
        self._initial_primaries: list[RedisServer] = []

    # -- description -------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        """``redis://127.0.0.1:P/0`` of every node."""
        return [node.url for node in self.nodes]

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [node.address for node in self.nodes]

    @property
    def url(self) -> str:
        hosts = ",".join(f"{n.host}:{n.port}" for n in self._initial_primaries)
        return f"redis://{hosts}"

    def node_at(self, port: int) -> RedisServer:
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(port)

    def __repr__(self) -> str:
        return f"<RedisCluster {[n.port for n in self.nodes]}>"

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> RedisCluster:
        """Start the nodes, create the cluster, wait until it is healthy."""
        if self.nodes:
            if any(node.dir.exists() for node in self.nodes):
                return self
            raise RedisStartError(f"{self!r} was stopped; make a new one")
        cli = redis_cli_binary()
        if cli is None:
            raise RedisStartError("redis-cli not found (install redis-tools)")
        count = self.primaries_count * (1 + self.replicas_per_primary)
        self.nodes = [
            RedisServer(
                name=f"cluster-{i}",
                extra_args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    str(self.node_timeout_ms),
                    "--cluster-require-full-coverage",
                    "yes",
                ],
            )
            for i in range(count)
        ]
        try:
            _start_all(self.nodes)
            self._create(cli)
            self.wait_ok(self.start_timeout, require_replicas=True)
            self._initial_primaries = self.primaries()
        except BaseException:
            self.stop()
            raise
        return self

    def _create(self, cli: str) -> None:
        command = [
            cli,
            "--cluster",
            "create",
            *(f"{n.host}:{n.port}" for n in self.nodes),
            "--cluster-replicas",
            str(self.replicas_per_primary),
            "--cluster-yes",
        ]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=self.start_timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if result.returncode != 0 or "[OK] All 16384 slots covered" not in (
            result.stdout
        ):
            raise RedisStartError(
                f"redis-cli --cluster create failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )

    def _roles(self, nodes: Sequence[RedisServer]) -> dict[int, list[Any]]:
        roles: dict[int, list[Any]] = {}
        for node in nodes:
            with node.connect() as client:
                roles[node.port] = list(_raw(client, "ROLE"))
        return roles

    def _healthy(self, require_replicas: bool) -> bool | None:
        live = [n for n in self.nodes if n.running]
        for node in live:
            with node.connect() as client:
                info = _parse_cluster_info(_raw(client, "CLUSTER", "INFO"))
            if info.get("cluster_state") != "ok":
                return None
            if info.get("cluster_slots_ok") != str(self.SLOTS):
                return None
            if int(info.get("cluster_known_nodes", "0")) < len(self.nodes):
                return None
        roles = self._roles(live)
        primaries = [p for p, r in roles.items() if r[0] == "master"]
        if len(primaries) != self.primaries_count:
            return None
        live_ports = {n.port for n in live}
        for role in roles.values():
            # ['slave', ip, port, state, offset]: state must be 'connected'.
            if role[0] == "slave" and (
                role[3] != "connected" or int(role[2]) not in live_ports
            ):
                return None
        if require_replicas:
            for port in primaries:
                replicas = roles[port][2]
                if len(replicas) < self.replicas_per_primary:
                    return None
            # Every node's gossip view must agree on the roles too (it lags ROLE
            # by a second or two); clients read the topology from any node.
            replica_ports = {p for p, r in roles.items() if r[0] == "slave"}
            for node in live:
                with node.connect() as client:
                    table = _raw(client, "CLUSTER", "NODES")
                seen = {
                    int(fields[1].split("@")[0].rsplit(":", 1)[1])
                    for fields in (line.split() for line in table.splitlines())
                    if len(fields) > 2 and "slave" in fields[2].split(",")
                }
                if seen != replica_ports:
                    return None
        return True

    def wait_ok(self, timeout: float = 30.0, *, require_replicas: bool = False) -> None:
        """Wait until every running node says ``cluster_state:ok`` and knows every
        node, there are exactly ``primaries`` primaries, every running replica is
        connected and (``require_replicas``) every primary has its replicas."""
        _wait_for(
            "the cluster to be healthy",
            lambda: self._healthy(require_replicas),
            timeout,
            interval=0.1,
            describe=self.describe,
        )

    def describe(self) -> str:
        lines = []
        for node in self.nodes:
            if not node.running:
                lines.append(f"{node!r}: not running")
                continue
            try:
                with node.connect() as client:
                    lines.append(f"{node!r}:\n{_raw(client, 'CLUSTER', 'NODES')}")
            except redis.exceptions.RedisError as exc:
                lines.append(f"{node!r}: {exc!r}")
        return "\n".join(lines)

    def primaries(self) -> list[RedisServer]:
        """Running nodes whose ROLE is master, now."""
        live = [n for n in self.nodes if n.running]
        return [
            self.node_at(p) for p, r in self._roles(live).items() if r[0] == "master"
        ]

    def replicas(self) -> list[RedisServer]:
        """Running nodes whose ROLE is replica, now."""
        live = [n for n in self.nodes if n.running]
        return [
            self.node_at(p) for p, r in self._roles(live).items() if r[0] == "slave"
        ]

    def primary_for_key(self, key: str | bytes) -> RedisServer:
        """The running primary that serves ``key``'s slot now."""
        node = next(n for n in self.nodes if n.running)
        with node.connect() as client:
            slot = int(_raw(client, "CLUSTER", "KEYSLOT", key))
            shards = _raw(client, "CLUSTER", "SLOTS")
        for start, end, primary, *_ in shards:
            if int(start) <= slot <= int(end):
                return self.node_at(int(primary[1]))
        raise LookupError(f"no node serves slot {slot}")

    def kill_primary(self, key: str | bytes | None = None) -> RedisServer:
        """SIGKILL a primary (the one serving ``key`` if given) and return it.

        Its replica takes over after about ``node_timeout_ms``; use
        :meth:`wait_ok` to wait for that, and ``node.start()`` to bring the killed
        node back (it rejoins as a replica).
        """
        victim = self.primary_for_key(key) if key is not None else self.primaries()[0]
        victim.kill()
        return victim

    def restore(self, timeout: float = 30.0) -> None:
        """Start every stopped node and wait until all replicas are attached."""
        for node in self.nodes:
            node.start()
        self.wait_ok(timeout, require_replicas=True)

    def flushall(self) -> None:
        for node in self.primaries():
            with node.connect() as client:
                client.flushall()

    def stop(self) -> None:
        """Stop every node and remove their directories."""
        for node in self.nodes:
            node.close()

    close = stop

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------------------
# Sentinel
# --------------------------------------------------------------------------------------


class _SentinelNode(RedisServer):
    """``redis-server sentinel.conf --sentinel`` (sentinel rewrites that file)."""

    def __init__(
        self,
        *,
        port: int,
        name: str,
        owner: RedisSentinel,
        peers: Sequence[_SentinelNode],
    ) -> None:
        super().__init__(port=port, name=name, password=owner.sentinel_password)
        self._owner = owner
        self._peers = peers  # the whole trio, filled in by the owner
        self.myid = secrets.token_hex(20)

    @property
    def config_file(self) -> Path:
        return self.dir / "sentinel.conf"

    @property
    def log_file(self) -> Path:
        return self.dir / "sentinel.log"

    def _args(self) -> list[str]:
        if not self.config_file.exists():
            config = self._owner._sentinel_config(self.port, self, self._peers)
            self.config_file.write_text(config)
        return [str(self.config_file), "--sentinel"]


class RedisSentinel:
    """A primary, a replica and ``sentinels`` sentinels watching ``service_name``.

    ``primary`` and ``replica`` are the servers in their *initial* roles; after a
    failover ask :meth:`current_primary`. ``url`` is
    ``redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/mymaster/0``.

    ``password`` protects the data servers (``requirepass``/``masterauth``, and the
    sentinels' ``auth-pass``); ``sentinel_password`` the sentinels themselves.
    ``url`` then carries both (``?sentinel_password=...``).
    """

    def __init__(
        self,
        *,
        service_name: str = "mymaster",
        quorum: int = 2,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 5000,
        start_timeout: float = 30.0,
        password: str | None = None,
        sentinel_password: str | None = None,
    ) -> None:
        self.password = password
        self.sentinel_password = sentinel_password
        self.service_name = service_name
        self.quorum = quorum
        self.sentinel_count = sentinels
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.start_timeout = start_timeout
        self.primary = RedisServer(
            name="sentinel-primary", password=password, extra_args=self._masterauth()
        )
        self.replica = RedisServer(
            name="sentinel-replica", password=password, extra_args=self._masterauth()
        )
        self.sentinel_nodes: list[_SentinelNode] = []
        self._started = False

    # -- description -------------------------------------------------------------------

    @property
    def servers(self) -> list[RedisServer]:
        """The data servers (primary and replica, in their initial roles)."""
        return [self.primary, self.replica]

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [node.address for node in self.sentinel_nodes]

    @property
    def url(self) -> str:
        hosts = ",".join(f"{h}:{p}" for h, p in self.sentinels)
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        query = (
            f"?sentinel_password={quote(self.sentinel_password, safe='')}"
            if self.sentinel_password
            else ""
        )
        return f"redis+sentinel://{auth}{hosts}/{self.service_name}/0{query}"

    def _masterauth(self) -> list[str]:
        # Either server may become a replica of the other after a failover.
        return ["--masterauth", self.password] if self.password else []

    def __repr__(self) -> str:
        return (
            f"<RedisSentinel {self.service_name} primary={self.primary.port} "
            f"replica={self.replica.port} sentinels={[p for _, p in self.sentinels]}>"
        )

    # -- lifecycle ---------------------------------------------------------------------

    def _sentinel_config(
        self, port: int, me: _SentinelNode, peers: Sequence[_SentinelNode]
    ) -> str:
        name = self.service_name
        lines = [
            f"port {port}",
            f"bind {HOST}",
            "daemonize no",
            f'dir "{me.dir}"',
            f'logfile "{me.log_file}"',
            f"sentinel myid {me.myid}",
            "sentinel resolve-hostnames no",
            f"sentinel monitor {name} {HOST} {self.primary.port} {self.quorum}",
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {name} 1",
            f"sentinel known-replica {name} {HOST} {self.replica.port}",
        ]
        if self.password:
            lines.append(f"sentinel auth-pass {name} {_quoted(self.password)}")
        if self.sentinel_password:
            # Sentinels ask each other for votes, so they need the password too.
            lines.append(f"requirepass {_quoted(self.sentinel_password)}")
            lines.append(f"sentinel sentinel-pass {_quoted(self.sentinel_password)}")
        # Introduce the sentinels to each other up front, instead of waiting for
        # the hello messages (every 2 s) to make them discover each other.
        lines += [
            f"sentinel known-sentinel {name} {HOST} {peer.port} {peer.myid}"
            for peer in peers
            if peer is not me
        ]
        return "\n".join(lines) + "\n"

    def start(self) -> RedisSentinel:
        """Start primary, replica and sentinels; wait until they are ready."""
        if self._started:
            if self.primary.dir.exists():
                return self
            raise RedisStartError(f"{self!r} was stopped; make a new one")
        self._started = True
        try:
            self.primary.start()
            self.replica.extra_args = [
                *self._masterauth(),
                "--replicaof",
                HOST,
                str(self.primary.port),
            ]
            self.replica.start()
            _wait_for(
                "the replica to sync",
                lambda: self._link_up(self.replica, self.primary),
                self.start_timeout,
            )
            self._start_sentinels()
            self.wait_ready(self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_sentinels(self, attempts: int = 5) -> None:
        for attempt in range(attempts):
            nodes: list[_SentinelNode] = []
            for i in range(self.sentinel_count):
                nodes.append(
                    _SentinelNode(
                        port=free_port(), name=f"sentinel-{i}", owner=self, peers=nodes
                    )
                )
            try:
                _start_all(nodes)
            except BaseException as exc:
                for node in nodes:
                    node.close()
                # Peers' configs name each other's ports: start the trio afresh.
                if not isinstance(exc, PortInUseError) or attempt == attempts - 1:
                    raise
            else:
                self.sentinel_nodes = nodes
                return

    @staticmethod
    def _link_up(server: RedisServer, primary: RedisServer) -> bool | None:
        """True once ``server`` replicates from ``primary`` with its link up."""
        with server.connect() as client:
            info = client.info("replication")
        if info.get("role") != "slave" or int(info.get("master_port", 0)) != (
            primary.port
        ):
            return None
        return True if info.get("master_link_status") == "up" else None

    def _server_at(self, port: int) -> RedisServer:
        for server in self.servers:
            if server.port == port:
                return server
        raise KeyError(port)

    def _ready(self) -> bool | None:
        name = self.service_name
        primaries: set[int] = set()
        for node in self.sentinel_nodes:
            with node.connect() as client:
                _, port = _raw(client, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
                primaries.add(int(port))
                peers = _raw(client, "SENTINEL", "SENTINELS", name)
                if len(peers) != self.sentinel_count - 1:
                    return None
                # Only the flags: a sentinel refreshes a replica's view of its
                # link every 10 s, so the link itself is checked on the replica.
                replicas = [
                    _pairs(r) for r in _raw(client, "SENTINEL", "REPLICAS", name)
                ]
                others = {s.port for s in self.servers} - {int(port)}
                if {int(r["port"]) for r in replicas if r["flags"] == "slave"} < others:
                    return None
                _raw(client, "SENTINEL", "CKQUORUM", name)
        if len(primaries) != 1:
            return None
        primary = self._server_at(primaries.pop())
        with primary.connect() as client:
            if _raw(client, "ROLE")[0] != "master":
                return None
        for server in self.servers:
            if server is not primary and self._link_up(server, primary) is None:
                return None
        return True

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until every sentinel agrees on the primary, knows the other
        sentinels and a healthy replica, and the quorum check passes."""
        _wait_for(
            "the sentinels to be ready",
            self._ready,
            timeout,
            interval=0.1,
            describe=self.describe,
        )

    def describe(self) -> str:
        lines = []
        for node in self.sentinel_nodes:
            try:
                with node.connect() as client:
                    master = _raw(client, "SENTINEL", "MASTER", self.service_name)
                lines.append(f"{node!r}: {_pairs(master)}")
            except redis.exceptions.RedisError as exc:
                lines.append(f"{node!r}: {exc!r}")
        return "\n".join(lines)

    def current_primary(self) -> RedisServer:
        """The server that the (first reachable) sentinel reports as primary."""
        error: Exception | None = None
        for node in self.sentinel_nodes:
            try:
                with node.connect() as client:
                    _, port = _raw(
                        client, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service_name
                    )
                return self._server_at(int(port))
            except redis.exceptions.RedisError as exc:
                error = exc
        raise RedisStartError(f"no sentinel answered: {error!r}")

    def current_replica(self) -> RedisServer:
        primary = self.current_primary()
        return next(s for s in self.servers if s is not primary)

    def wait_for_new_primary(
        self, old: RedisServer, timeout: float = 30.0
    ) -> RedisServer:
        """Wait until every sentinel reports a primary other than ``old``."""

        def moved() -> RedisServer | None:
            ports = set()
            for node in self.sentinel_nodes:
                with node.connect() as client:
                    _, port = _raw(
                        client, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service_name
                    )
                ports.add(int(port))
            if len(ports) == 1 and old.port not in ports:
                new = self._server_at(ports.pop())
                with new.connect() as client:
                    if _raw(client, "ROLE")[0] == "master":
                        return new
            return None

        return _wait_for(
            "a failover", moved, timeout, interval=0.1, describe=self.describe
        )

    def failover(self, timeout: float = 30.0) -> RedisServer:
        """Force a failover with ``SENTINEL FAILOVER``; return the new primary once
        the old one has become its replica and the sentinels are ready again."""
        old = self.current_primary()
        with self.sentinel_nodes[0].connect() as client:
            _raw(client, "SENTINEL", "FAILOVER", self.service_name)
        new = self.wait_for_new_primary(old, timeout)
        if old.running:
            # A sentinel demotes the old primary only at its next INFO poll of it
            # (every 10 s); send it the same REPLICAOF now.
            with old.connect() as client:
                _raw(client, "REPLICAOF", new.host, str(new.port))
        self.wait_ready(timeout)
        return new

    def kill_primary(self) -> RedisServer:
        """SIGKILL the current primary and return it (``start()`` brings it back;
        the sentinels then turn it into a replica)."""
        victim = self.current_primary()
        victim.kill()
        return victim

    def restore(self, timeout: float = 30.0) -> None:
        """Start whatever is stopped and wait until the set-up is ready again.

        A restarted old primary comes back as a primary; the sentinels demote it
        only after ``failover-timeout`` and their next INFO poll (5-15 s), so this
        sends it the same ``REPLICAOF`` at once.
        """
        for server in (*self.sentinel_nodes, *self.servers):
            server.start()
        primary = self.current_primary()
        for server in self.servers:
            if server is primary:
                continue
            with server.connect() as client:
                if _raw(client, "ROLE")[0] == "master":
                    _raw(client, "REPLICAOF", primary.host, str(primary.port))
        self.wait_ready(timeout)

    def stop(self) -> None:
        """Stop every process and remove their directories."""
        for node in self.sentinel_nodes:
            node.close()
        self.replica.close()
        self.primary.close()

    close = stop

    def __enter__(self) -> RedisSentinel:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _quoted(value: str) -> str:
    """``value`` as a double-quoted redis.conf string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _raw(client: redis.Redis, *words: str | bytes) -> Any:
    """Run a command with its words as separate arguments.

    redis-py looks up reply parsers by the first argument, and parses some
    two-word commands ("CLUSTER INFO", "SENTINEL SLAVES", ...) differently from one
    version to the next. Splitting the words keeps every reply raw.
    """
    return client.execute_command(*words)  # type: ignore[no-untyped-call]


def _pairs(flat: Any) -> dict[str, str]:
    """``[k1, v1, k2, v2, ...]`` (or a dict, depending on the client) to a dict."""
    if isinstance(flat, dict):
        return {str(k): str(v) for k, v in flat.items()}
    items = list(flat)
    return {str(items[i]): str(items[i + 1]) for i in range(0, len(items) - 1, 2)}
