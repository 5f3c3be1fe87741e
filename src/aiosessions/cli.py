"""The ``aiosessions`` command: inspect and manage sessions from a shell.

::

    aiosessions stats [--sandbox S]            counts, per sandbox by default
    aiosessions list --sandbox S --user U      a user's live sessions
    aiosessions revoke --sandbox S --session ID
    aiosessions revoke --sandbox S --user U [--except ID]
    aiosessions cleanup [--sandbox S]          reclaim expired entries now
    aiosessions demo                           the quickstart tour
    aiosessions bench [ARGS...]                the benchmark (source checkout)

Every command takes ``--url`` (else the environment picks the store, as for
the library) and ``--json`` (one JSON document on stdout). Exit codes: 0
done, 1 not found (or a demo step misbehaved), 2 usage or bad input, 3 the
store is down or refused us; failures print one line on stderr.

Needs the ``cli`` extra (click).
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import unquote

try:
    import click
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the aiosessions command needs click: pip install 'aiosessions[cli]'"
    ) from exc

from .config import Settings
from .errors import ConfigurationError, InvalidInputError, ProviderError
from .keys import DEFAULT_PREFIX
from .manager import SessionManager
from .models import SessionMetadata
from .stores.base import Store
from .stores.factory import create_store, set_default_store
from .stores.memory import MemoryStore

__all__ = ["main"]

T = TypeVar("T")

EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_BACKEND = 3
SCAN_LIMIT = 1_000_000
"""Most keys a ``stats`` or ``cleanup`` scan visits by default."""


class Failure(Exception):
    """A failure to report as one line on stderr, with its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _fail(message: str, exit_code: int) -> NoReturn:
    raise Failure(message, exit_code)


def open_store(url: str | None) -> Store:
    """Return the store *url* names, or the environment's when ``None``.

    ``memory`` (or ``memory://``) is an empty store of this process.
    """
    if url is None:
        return create_store()
    if url in ("memory", "memory://"):
        return MemoryStore()
    from .stores.redis import RedisStore

    return RedisStore(url, tls_insecure=Settings.from_env().redis_tls_insecure)


def _execute(url: str | None, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run *work* on the store in a fresh loop; map errors to exit codes."""
    try:
        store = open_store(url)
    except (ConfigurationError, ImportError) as exc:
        _fail(str(exc), EXIT_USAGE)

    async def run() -> T:
        try:
            return await work(store)
        finally:
            await store.aclose()

    try:
        return asyncio.run(run())
    except ProviderError as exc:
        _fail(f"store unavailable: {exc}", EXIT_BACKEND)
    except (ConfigurationError, InvalidInputError) as exc:
        _fail(str(exc), EXIT_USAGE)


def _emit(as_json: bool, document: dict[str, Any], lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))
    else:
        for line in lines:
            click.echo(line)


def _manager(store: Store, sandbox: str, key_prefix: str) -> SessionManager:
    return SessionManager(sandbox, store=store, key_prefix=key_prefix)


def common(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--url``, ``--json`` and ``--key-prefix`` to *command*."""
    options = [
        click.option(
            "--url",
            metavar="URL",
            help="redis://, rediss:// or memory; default: the environment"
            " (SESSION_PROVIDER, SESSION_REDIS_URL).",
        ),
        click.option(
            "--json", "as_json", is_flag=True, help="Print one JSON document."
        ),
        click.option(
            "--key-prefix",
            default=DEFAULT_PREFIX,
            show_default=True,
            help="First part of every key, as given to SessionManager.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aiosessions")
def app() -> None:
    """Inspect and manage aiosessions sessions."""


# -- stats --------------------------------------------------------------------


def _redis_client(store: Store) -> Any:
    """The redis-py client behind *store*, or ``None`` for other stores.

    Only ``cleanup`` needs it, for Redis's own statistics (INFO, DBSIZE):
    they say nothing about other stores, so they stay out of the contract.
    """
    from .stores.redis import RedisStore

    if not isinstance(store, RedisStore):
        return None
    return store._bind().client


async def _scan(
    store: Store, prefix: str, limit: int, seen: Callable[[int], None] | None = None
) -> tuple[list[str], bool]:
    """Return up to *limit* keys starting with *prefix*, and whether cut short."""
    keys: list[str] = []
    batches = store.iter_keys(prefix, batch_size=1000)
    try:
        async for batch in batches:
            batch = batch[: limit - len(keys)]
            keys.extend(batch)
            if seen is not None:
                seen(len(batch))
            if len(keys) >= limit:
                return keys, True
    finally:
        # Stopping early leaves the walk suspended; end it before the store.
        if isinstance(batches, AsyncGenerator):
            await batches.aclose()
    return keys, False


def _sandbox_of(key: str, session_prefix: str) -> str | None:
    rest = key[len(session_prefix) :]
    encoded, brace, _ = rest.partition(":{")
    return unquote(encoded) if brace else None


@app.command()
@click.option("--sandbox", help="Only this sandbox (its manager's get_cache_stats).")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=SCAN_LIMIT,
    show_default=True,
    help="Most keys scanned when counting every sandbox.",
)
@common
def stats(
    sandbox: str | None, limit: int, url: str | None, as_json: bool, key_prefix: str
) -> None:
    """Count sessions: per sandbox, or the details of one sandbox."""

    async def work(store: Store) -> dict[str, Any]:
        latency = await store.ping()
        if sandbox is not None:
            found = await _manager(store, sandbox, key_prefix).get_cache_stats()
            return {**found, "ping_ms": latency * 1000}
        session_prefix = f"{key_prefix}:s:"
        keys, truncated = await _scan(store, f"{key_prefix}:", limit)
        per_sandbox: dict[str, int] = {}
        kv = other = 0
        for key in keys:
            if key.startswith(session_prefix):
                name = _sandbox_of(key, session_prefix)
                if name is not None:
                    per_sandbox[name] = per_sandbox.get(name, 0) + 1
                    continue
            if key.startswith(f"{key_prefix}:kv:"):
                kv += 1
            else:
                other += 1
        return {
            "store": store.describe(),
            "ping_ms": latency * 1000,
            "sessions": sum(per_sandbox.values()),
            "sandboxes": dict(sorted(per_sandbox.items())),
            "kv_keys": kv,
            "other_keys": other,
            "scanned": len(keys),
            "truncated": truncated,
        }

    found = _execute(url, work)
    if sandbox is not None:
        lines = [f"{name}: {value}" for name, value in found.items()]
    else:
        lines = _stats_lines(found)
    _emit(as_json, found, lines)


def _stats_lines(found: dict[str, Any]) -> list[str]:
    store = found["store"]
    where = store.get("url", store["provider"])
    lines = [f"store: {where} (ping {found['ping_ms']:.2f} ms)"]
    if store["provider"] != "redis":
        lines.append(
            "per-sandbox counts need Redis: a memory store lives in one process"
        )
        return lines
    count = len(found["sandboxes"])
    lines.append(
        f"sessions: {found['sessions']} in {count} sandbox{'es' if count != 1 else ''}"
    )
    lines.append(f"key-value keys: {found['kv_keys']}")
    if found["other_keys"]:
        lines.append(f"other keys: {found['other_keys']}")
    if found["truncated"]:
        lines.append(f"(stopped after {found['scanned']} keys: raise --limit)")
    if found["sandboxes"]:
        width = max(len("sandbox"), *(len(name) for name in found["sandboxes"]))
        lines.append("")
        lines.append(f"{'sandbox':<{width}}  sessions")
        for name, number in found["sandboxes"].items():
            lines.append(f"{name:<{width}}  {number:>8}")
    return lines


# -- list ---------------------------------------------------------------------


def _session_rows(sessions: list[SessionMetadata]) -> list[str]:
    """A table of *sessions*: the id (to revoke one), then UTC times."""
    header = ("session id", "created (UTC)", "last access", "expires")
    rows = [
        (
            found.session_id,
            *(
                moment.strftime("%Y-%m-%d %H:%M:%S")
                for moment in (found.created_at, found.last_accessed, found.expires_at)
            ),
        )
        for found in sessions
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(4)]
    return [
        "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in (header, *rows)
    ]


@app.command(name="list")
@click.option("--sandbox", required=True, help="The sandbox to look in.")
@click.option("--user", "user_id", required=True, help="The user id.")
@common
def list_sessions(
    sandbox: str, user_id: str, url: str | None, as_json: bool, key_prefix: str
) -> None:
    """List a user's live sessions, newest first (times in UTC).

    Shows the session ids, which ``revoke --session`` takes: treat the
    output as a credential. A user without sessions is an empty list
    (exit code 0): the store keeps no record of users to say "unknown".
    """

    async def work(store: Store) -> list[SessionMetadata]:
        return await _manager(store, sandbox, key_prefix).list_user_sessions(user_id)

    sessions = _execute(url, work)
    document = {
        "sandbox": sandbox,
        "user": user_id,
        "sessions": [
            found.model_dump(mode="json", exclude={"sandbox_id", "user_id"})
            for found in sessions
        ],
    }
    if sessions:
        lines = [*_session_rows(sessions), f"({_plural(len(sessions))})"]
    else:
        lines = [f"no live sessions for that user in sandbox {sandbox!r}"]
    _emit(as_json, document, lines)


def _plural(count: int) -> str:
    return f"{count} session{'' if count == 1 else 's'}"


# -- revoke -------------------------------------------------------------------


@app.command()
@click.option("--sandbox", required=True, help="The sandbox the sessions are in.")
@click.option("--session", "session_id", help="End this one session.")
@click.option("--user", "user_id", help="End every session of this user.")
@click.option(
    "--except",
    "except_id",
    metavar="ID",
    help="With --user: spare this session (one that `list` shows).",
)
@click.option(
    "--secret-key",
    envvar="SESSION_SECRET_KEY",
    show_envvar=True,
    help="The manager's secret_key, when the app signs its ids (prefer the"
    " environment variable: arguments show in the process list).",
)
@common
def revoke(
    sandbox: str,
    session_id: str | None,
    user_id: str | None,
    except_id: str | None,
    secret_key: str | None,
    url: str | None,
    as_json: bool,
    key_prefix: str,
) -> None:
    """End one session, or every session of a user, at once.

    Exit code 1 when there was no live session to end. With ``--except``,
    nothing is revoked unless that id is a live session of the user: a
    mistyped id must not end the session it meant to keep.
    """
    if session_id is not None and user_id is not None:
        raise click.UsageError("--session and --user are mutually exclusive")
    if session_id is None and user_id is None:
        raise click.UsageError("give --session ID or --user U")
    if except_id is not None and user_id is None:
        raise click.UsageError("--except goes with --user, not --session")

    async def one(store: Store) -> int:
        manager = SessionManager(
            sandbox, store=store, key_prefix=key_prefix, secret_key=secret_key
        )
        return int(await manager.delete_session(str(session_id)))

    async def every(store: Store) -> int | None:
        manager = _manager(store, sandbox, key_prefix)
        if except_id is not None:
            live = await manager.list_user_sessions(str(user_id))
            if all(found.session_id != except_id for found in live):
                return None
        return await manager.revoke_user_sessions(str(user_id), except_id)

    if session_id is not None:
        if not _execute(url, one):
            _fail(
                f"no live session with that id in sandbox {sandbox!r}", EXIT_NOT_FOUND
            )
        _emit(as_json, {"sandbox": sandbox, "revoked": 1}, ["revoked 1 session"])
        return
    count = _execute(url, every)
    if count is None:
        _fail(
            f"the --except session is not a live session of that user in sandbox"
            f" {sandbox!r}; nothing revoked",
            EXIT_NOT_FOUND,
        )
    if count == 0:
        _fail(f"no live sessions for that user in sandbox {sandbox!r}", EXIT_NOT_FOUND)
    document = {"sandbox": sandbox, "user": user_id, "revoked": count}
    _emit(as_json, document, [f"revoked {_plural(count)}"])


# -- cleanup ------------------------------------------------------------------


@contextmanager
def _progress(show: bool, total: int, label: str) -> Iterator[Callable[[int], None]]:
    if not show:
        yield lambda _: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


def _expired_keys(info: dict[str, Any]) -> int:
    """Redis's ``expired_keys``, summed over the nodes of a Cluster reply."""
    if "expired_keys" in info:
        return int(info["expired_keys"])
    return sum(_expired_keys(node) for node in info.values() if isinstance(node, dict))


@app.command()
@click.option("--sandbox", help="Also run this sandbox's cleanup_expired_sessions.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=SCAN_LIMIT,
    show_default=True,
    help="Most keys scanned.",
)
@common
def cleanup(
    sandbox: str | None, limit: int, url: str | None, as_json: bool, key_prefix: str
) -> None:
    """Reclaim expired entries now.

    On Redis, a SCAN over the library's keys makes Redis drop every expired
    one it meets (Redis expires keys by itself, but only by sampling); the
    count is Redis's own ``expired_keys`` statistic over the sweep. On the
    memory store, the store's cleanup.
    """

    async def work(store: Store) -> dict[str, Any]:
        client = _redis_client(store)
        reclaimed = scanned = 0
        if client is None:
            reclaimed = await store.cleanup()
        else:
            before = _expired_keys(await client.info("stats"))
            total = min(limit, int(await client.dbsize()))
            show = not as_json and total > 0
            with _progress(show, total, "scanning") as update:
                keys, _ = await _scan(store, f"{key_prefix}:", limit, update)
            scanned = len(keys)
            after = _expired_keys(await client.info("stats"))
            reclaimed = after - before
        if sandbox is not None:
            manager = _manager(store, sandbox, key_prefix)
            reclaimed += await manager.cleanup_expired_sessions()
        return {"store": store.describe(), "scanned": scanned, "reclaimed": reclaimed}

    found = _execute(url, work)
    line = f"reclaimed {found['reclaimed']} expired entries"
    if found["scanned"]:
        line += f" (scanned {found['scanned']} keys)"
    _emit(as_json, found, [line])


# -- demo ---------------------------------------------------------------------


@app.command()
@click.option(
    "--url",
    metavar="URL",
    help="redis://, rediss:// or memory; default: the environment.",
)
def demo(url: str | None) -> None:
    """Run the quickstart tour (about two seconds) on the store."""
    from .demo import TourFailed, tour

    async def work(store: Store) -> None:
        set_default_store(store)
        try:
            await tour()
        finally:
            set_default_store(None)

    try:
        _execute(url, work)
    except TourFailed as exc:
        _fail(f"the tour found a misbehaving step: {exc}", 1)


# -- bench --------------------------------------------------------------------


def find_checkout(start: Path | None = None) -> Path | None:
    """Return the source checkout holding ``benchmarks/``, if there is one.

    Looks in the current directory and its parents, then beside the
    installed package (an editable install).
    """
    here = (start or Path.cwd()).resolve()
    candidates = [here, *here.parents, Path(__file__).resolve().parents[2]]
    for root in candidates:
        if (root / "benchmarks" / "run.py").is_file() and (
            root / "tests" / "servers.py"
        ).is_file():
            return root
    return None


@app.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def bench(arguments: tuple[str, ...]) -> None:
    """Run the benchmark (python -m benchmarks ARGUMENTS; try --help).

    Needs a source checkout (it starts its own redis-server through the
    test fixtures) and the ``bench`` extra.
    """
    root = find_checkout()
    if root is None:
        _fail(
            "bench needs a source checkout of aiosessions (benchmarks/ and"
            " tests/servers.py); run it from the repository",
            EXIT_USAGE,
        )
    command = [sys.executable, "-m", "benchmarks", *arguments]
    code = subprocess.call(command, cwd=root)  # noqa: S603
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``aiosessions`` console script."""
    # The library logs retries as warnings; here the one-line error says it.
    logging.getLogger("aiosessions").addHandler(logging.NullHandler())
    try:
        app.main(args=argv, prog_name="aiosessions", standalone_mode=False)
    except Failure as exc:
        click.echo(f"aiosessions: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        message = exc.format_message().rstrip(".")
        path = exc.ctx.command_path if exc.ctx else "aiosessions"
        click.echo(f"aiosessions: {message} (try '{path} --help')", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:  # pragma: no cover - click's own
        click.echo(f"aiosessions: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aiosessions: aborted", err=True)
        sys.exit(EXIT_USAGE)
