"""The ``aiosessions`` command, run as a subprocess against our own Redis."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from aiosessions import RedisStore, SessionManager, cli
from tests.servers import RedisServer, free_port

COMMAND = str(Path(sys.executable).with_name("aiosessions"))
ROOT = Path(__file__).resolve().parent.parent

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run the installed command; the environment names no store."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SESSION_", "REDIS_"))
    }

    def invoke(*args: str, extra_env: dict[str, str] | None = None, **kw: object):  # type: ignore[no-untyped-def]
        return subprocess.run(
            [COMMAND, *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, **(extra_env or {})},
            check=False,
            **kw,
        )

    return invoke


async def _sessions(url: str, layout: dict[str, int], **options: object) -> list[str]:
    store = RedisStore(url)
    ids = []
    try:
        for sandbox, count in layout.items():
            manager = SessionManager(sandbox, store=store, **options)  # type: ignore[arg-type]
            # Anonymous: a user's session also writes a per-user index key,
            # and these tests count session keys.
            for _ in range(count):
                ids.append(await manager.allocate_session())
    finally:
        await store.aclose()
    return ids


async def _user_sessions(
    url: str, sandbox: str, user: str, count: int, **options: object
) -> list[str]:
    """Log *user* in *count* times; return the ids, oldest first."""
    store = RedisStore(url)
    try:
        manager = SessionManager(sandbox, store=store, **options)  # type: ignore[arg-type]
        return [await manager.allocate_session(user_id=user) for _ in range(count)]
    finally:
        await store.aclose()


async def _live(url: str, sandbox: str, ids: list[str]) -> list[bool]:
    store = RedisStore(url)
    try:
        manager = SessionManager(sandbox, store=store)
        return [await manager.validate_session(sid) for sid in ids]
    finally:
        await store.aclose()


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("aiosessions: ")
    return lines[0]


class TestStats:
    async def test_counts_sessions_of_every_sandbox(
        self, run: Run, redis_url: str
    ) -> None:
        await _sessions(redis_url, {"shop": 3, "a b:{c}*": 2})

        done = run("stats", "--url", redis_url)

        assert done.returncode == 0, done.stderr
        assert "sessions: 5 in 2 sandboxes" in done.stdout
        assert "a b:{c}*" in done.stdout
        assert done.stderr == ""

    async def test_json_lists_sandboxes_and_kv_keys(
        self, run: Run, redis_url: str
    ) -> None:
        await _sessions(redis_url, {"shop": 2})
        store = RedisStore(redis_url)
        await store.set("aiosessions:kv:otp", "1", 60_000)
        await store.set("aiosessions:other", "1", 60_000)
        await store.aclose()

        done = run("stats", "--url", redis_url, "--json")

        found = json.loads(done.stdout)
        assert found["sandboxes"] == {"shop": 2}
        assert (found["kv_keys"], found["other_keys"]) == (1, 1)
        assert found["truncated"] is False
        assert found["store"]["url"] == redis_url

    async def test_limit_stops_the_scan_and_says_so(
        self, run: Run, redis_url: str
    ) -> None:
        await _sessions(redis_url, {"shop": 5})

        done = run("stats", "--url", redis_url, "--limit", "2")

        assert done.returncode == 0
        assert "stopped after 2 keys" in done.stdout

    async def test_one_sandbox_gives_its_manager_stats(
        self, run: Run, redis_url: str
    ) -> None:
        await _sessions(redis_url, {"shop": 2, "blog": 1})

        done = run("stats", "--sandbox", "shop", "--url", redis_url, "--json")

        found = json.loads(done.stdout)
        assert (found["sandbox_id"], found["active_sessions"]) == ("shop", 2)
        text = run("stats", "--sandbox", "blog", "--url", redis_url).stdout
        assert "active_sessions: 1" in text

    def test_environment_picks_the_store(self, run: Run, redis_url: str) -> None:
        done = run("stats", extra_env={"SESSION_REDIS_URL": redis_url})

        assert done.returncode == 0
        assert redis_url in done.stdout

    def test_memory_store_says_counts_need_redis(self, run: Run) -> None:
        done = run("stats")

        assert done.returncode == 0
        assert "memory" in done.stdout
        assert json.loads(run("stats", "--json").stdout)["sessions"] == 0


class TestList:
    async def test_shows_the_users_sessions_newest_first(
        self, run: Run, redis_url: str
    ) -> None:
        ids = await _user_sessions(redis_url, "shop", "alice", 3)
        await _user_sessions(redis_url, "shop", "bob", 1)
        await _user_sessions(redis_url, "blog", "alice", 1)

        done = run("list", "--sandbox", "shop", "--user", "alice", "--url", redis_url)

        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].split("  ")[0] == "session id"
        listed = [line.split()[0] for line in lines[1:-1]]
        assert sorted(listed) == sorted(ids)
        assert lines[-1] == "(3 sessions)"
        assert done.stderr == ""

    async def test_json_lists_each_session_with_its_times(
        self, run: Run, redis_url: str
    ) -> None:
        ids = await _user_sessions(redis_url, "shop", "alice", 2, idle_timeout=600)

        done = run(
            "list", "--json", "--sandbox", "shop", "--user", "alice", "--url", redis_url
        )

        found = json.loads(done.stdout)
        assert (found["sandbox"], found["user"]) == ("shop", "alice")
        sessions = found["sessions"]
        assert sorted(s["session_id"] for s in sessions) == sorted(ids)
        created = [s["created_at"] for s in sessions]
        assert created == sorted(created, reverse=True)
        assert sessions[0]["idle_timeout"] == 600
        assert {"last_accessed", "expires_at", "absolute_expires_at"} <= set(
            sessions[0]
        )
        assert "sandbox_id" not in sessions[0]

    def test_a_user_without_sessions_is_an_empty_list(
        self, run: Run, redis_url: str
    ) -> None:
        args = ("list", "--sandbox", "shop", "--user", "nobody", "--url", redis_url)

        text = run(*args)
        document = run(*args, "--json")

        assert (text.returncode, document.returncode) == (0, 0)
        assert "no live sessions" in text.stdout
        assert json.loads(document.stdout)["sessions"] == []

    async def test_revoked_sessions_are_no_longer_listed(
        self, run: Run, redis_url: str
    ) -> None:
        (sid,) = await _user_sessions(redis_url, "shop", "alice", 1)
        run("revoke", "--sandbox", "shop", "--session", sid, "--url", redis_url)

        done = run(
            "list", "--json", "--sandbox", "shop", "--user", "alice", "--url", redis_url
        )

        assert json.loads(done.stdout)["sessions"] == []


class TestRevoke:
    async def test_ends_the_session_for_every_worker(
        self, run: Run, redis_url: str
    ) -> None:
        (sid,) = await _sessions(redis_url, {"shop": 1})

        done = run("revoke", "--sandbox", "shop", "--session", sid, "--url", redis_url)

        assert done.returncode == 0, done.stderr
        assert "revoked 1 session" in done.stdout
        store = RedisStore(redis_url)
        assert not await SessionManager("shop", store=store).validate_session(sid)
        await store.aclose()

    async def test_unknown_session_exits_1_with_one_line(
        self, run: Run, redis_url: str
    ) -> None:
        (sid,) = await _sessions(redis_url, {"shop": 1})

        other = run("revoke", "--sandbox", "blog", "--session", sid, "--url", redis_url)
        junk = run("revoke", "--sandbox", "shop", "--session", "x", "--url", redis_url)

        assert (other.returncode, junk.returncode) == (1, 1)
        assert "no live session" in _one_line(other.stderr)
        assert sid not in other.stderr

    async def test_signed_ids_need_the_apps_secret_key(
        self, run: Run, redis_url: str
    ) -> None:
        key = "k" * 40
        (sid,) = await _sessions(redis_url, {"shop": 1}, secret_key=key)
        args = ("revoke", "--sandbox", "shop", "--session", sid, "--url", redis_url)

        without = run(*args)
        done = run(*args, extra_env={"SESSION_SECRET_KEY": key})

        assert (without.returncode, done.returncode) == (1, 0)
        assert key not in done.stdout + done.stderr

    async def test_json_reports_the_revocation(self, run: Run, redis_url: str) -> None:
        (sid,) = await _sessions(redis_url, {"shop": 1})

        done = run(
            "revoke",
            "--json",
            "--sandbox",
            "shop",
            "--session",
            sid,
            "--url",
            redis_url,
        )

        assert json.loads(done.stdout) == {"sandbox": "shop", "revoked": 1}

    async def test_user_ends_every_session_of_that_user(
        self, run: Run, redis_url: str
    ) -> None:
        ids = await _user_sessions(redis_url, "shop", "alice", 3)
        (bobs,) = await _user_sessions(redis_url, "shop", "bob", 1)
        (blogs,) = await _user_sessions(redis_url, "blog", "alice", 1)

        done = run("revoke", "--sandbox", "shop", "--user", "alice", "--url", redis_url)

        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "revoked 3 sessions"
        assert await _live(redis_url, "shop", [*ids, bobs]) == [False] * 3 + [True]
        assert await _live(redis_url, "blog", [blogs]) == [True]

    async def test_except_keeps_that_one_session(
        self, run: Run, redis_url: str
    ) -> None:
        ids = await _user_sessions(redis_url, "shop", "alice", 3)

        done = run(
            "revoke",
            "--json",
            "--sandbox",
            "shop",
            "--user",
            "alice",
            "--except",
            ids[1],
            "--url",
            redis_url,
        )

        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout)
        assert found == {"sandbox": "shop", "user": "alice", "revoked": 2}
        assert await _live(redis_url, "shop", ids) == [False, True, False]

    async def test_except_naming_no_live_session_revokes_nothing(
        self, run: Run, redis_url: str
    ) -> None:
        ids = await _user_sessions(redis_url, "shop", "alice", 2)
        args = ("revoke", "--sandbox", "shop", "--user", "alice", "--url", redis_url)

        done = run(*args, "--except", ids[0][:-1] + "x")

        assert done.returncode == 1
        assert "nothing revoked" in _one_line(done.stderr)
        assert await _live(redis_url, "shop", ids) == [True, True]

    async def test_user_without_sessions_exits_1_with_one_line(
        self, run: Run, redis_url: str
    ) -> None:
        await _user_sessions(redis_url, "shop", "alice", 1)

        done = run("revoke", "--sandbox", "shop", "--user", "bob", "--url", redis_url)

        assert done.returncode == 1
        assert "no live sessions" in _one_line(done.stderr)
        assert done.stdout == ""

    async def test_user_revocation_needs_no_secret_key(
        self, run: Run, redis_url: str
    ) -> None:
        key = "k" * 40
        ids = await _user_sessions(redis_url, "shop", "alice", 2, secret_key=key)

        done = run("revoke", "--sandbox", "shop", "--user", "alice", "--url", redis_url)

        assert done.returncode == 0, done.stderr
        store = RedisStore(redis_url)
        manager = SessionManager("shop", store=store, secret_key=key)
        assert [await manager.validate_session(sid) for sid in ids] == [False] * 2
        await store.aclose()


class TestCleanup:
    async def test_reclaims_expired_keys_redis_had_not_sampled(
        self, run: Run, redis_server_factory: Callable[..., RedisServer]
    ) -> None:
        server = redis_server_factory()
        with server.connect() as client:
            client.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        await _sessions(server.url, {"shop": 4}, idle_timeout=0.05)
        await _sessions(server.url, {"blog": 1})
        await asyncio.sleep(0.2)
        with server.connect() as client:
            assert client.dbsize() == 5  # expired, still held

        done = run("cleanup", "--url", server.url, "--json")

        found = json.loads(done.stdout)
        assert (found["reclaimed"], found["scanned"]) == (4, 1)
        with server.connect() as client:
            assert client.dbsize() == 1

    def test_human_output_and_sandbox_cleanup(self, run: Run, redis_url: str) -> None:
        done = run("cleanup", "--sandbox", "shop", "--url", redis_url)

        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("reclaimed 0 expired entries")

    def test_expired_keys_of_a_cluster_reply_are_summed(self) -> None:
        reply = {"a:1": {"expired_keys": 2}, "b:2": {"expired_keys": 3}, "x": 1}

        assert cli._expired_keys(reply) == 5

    def test_memory_store_runs_its_own_cleanup(self, run: Run) -> None:
        done = run("cleanup", "--url", "memory", "--json")

        assert json.loads(done.stdout)["reclaimed"] == 0


class TestDemo:
    def test_tour_passes_on_memory(self, run: Run) -> None:
        done = run("demo")

        assert done.returncode == 0, done.stderr
        assert "every step behaved as described" in done.stdout

    def test_tour_passes_on_redis(self, run: Run, redis_url: str) -> None:
        done = run("demo", "--url", redis_url)

        assert done.returncode == 0, done.stderr
        assert redis_url in done.stdout

    def test_example_script_runs_the_same_tour(self, run: Run) -> None:
        done = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "quickstart.py")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

        assert done.returncode == 0, done.stderr
        assert "every step behaved as described" in done.stdout

    def test_a_misbehaving_step_exits_1(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        from aiosessions import demo

        async def broken() -> None:
            raise demo.TourFailed("a key outlived its TTL")

        monkeypatch.setattr(demo, "tour", broken)

        with pytest.raises(SystemExit) as exit_info:
            cli.main(["demo", "--url", "memory"])

        assert exit_info.value.code == 1
        assert "a key outlived its TTL" in _one_line(capsys.readouterr().err)


class TestExitCodes:
    def test_backend_down_exits_3_with_one_line(self, run: Run) -> None:
        url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there

        for args in (
            ["stats"],
            ["revoke", "--sandbox", "s", "--session", "x" * 32],
            ["revoke", "--sandbox", "s", "--user", "u"],
            ["list", "--sandbox", "s", "--user", "u"],
        ):
            done = run(*args, "--url", url)
            assert done.returncode == 3
            assert "store unavailable" in _one_line(done.stderr)

    @pytest.mark.parametrize(
        "args",
        [
            ["revoke", "--sandbox", "shop"],
            ["revoke", "--sandbox", "s", "--user", "u", "--session", "x" * 32],
            ["revoke", "--sandbox", "s", "--session", "x" * 32, "--except", "y"],
            ["list", "--sandbox", "shop"],
            ["list", "--sandbox", "s", "--user", "", "--url", "memory"],
            ["no-such-command"],
            ["stats", "--limit", "0"],
            ["stats", "--url", "http://example.invalid/"],
            ["stats", "--sandbox", "", "--url", "memory"],
        ],
        ids=[
            "missing-option",
            "user-and-session",
            "except-without-user",
            "list-without-user",
            "bad-user",
            "unknown-command",
            "bad-limit",
            "bad-url",
            "bad-sandbox",
        ],
    )
    def test_usage_errors_exit_2_with_one_line(self, run: Run, args: list[str]) -> None:
        done = run(*args)

        assert done.returncode == 2
        _one_line(done.stderr)

    def test_user_and_session_together_say_so(self, run: Run) -> None:
        done = run("revoke", "--sandbox", "s", "--user", "u", "--session", "x" * 32)

        assert done.returncode == 2
        assert "mutually exclusive" in _one_line(done.stderr)
        assert "x" * 32 not in done.stderr

    def test_help_and_version_exit_0(self, run: Run) -> None:
        assert run("--help").returncode == 0
        version = run("--version")
        assert version.returncode == 0
        assert "version" in version.stdout


class TestBench:
    def test_runs_a_small_benchmark_and_writes_json(
        self, run: Run, tmp_path: Path
    ) -> None:
        output = tmp_path / "bench.json"

        done = run(
            "bench",
            "--quick",
            "--libs",
            "aiosessions,floor",
            "--backends",
            "memory",
            "--suites",
            "ops",
            "--concurrency",
            "10",
            "--output",
            str(output),
            cwd=tmp_path,
        )

        assert done.returncode == 0, done.stderr
        assert "| kv get |" in done.stdout
        report = json.loads(output.read_text())
        assert {row["lib"] for row in report["summary"]["ops"]} == {
            "aiosessions",
            "floor",
        }

    def test_bad_arguments_exit_2(self, run: Run) -> None:
        done = run("bench", "--libs", "nope")

        assert done.returncode == 2
        assert "unknown library" in done.stderr

    def test_without_a_checkout_exits_2(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setattr(cli, "find_checkout", lambda: None)

        with pytest.raises(SystemExit) as exit_info:
            cli.main(["bench"])

        assert exit_info.value.code == 2
        assert "source checkout" in _one_line(capsys.readouterr().err)

    def test_checkout_is_found_from_a_subdirectory(self) -> None:
        assert cli.find_checkout(ROOT / "tests") == ROOT
