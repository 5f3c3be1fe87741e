"""``make bench``: aiosessions side by side with chuk-sessions and the floors.

Every measurement runs in a fresh process (``python -m benchmarks.worker``),
one library at a time, and the order of the libraries alternates from round
to round so that none always runs first on a cold machine or last on a hot
one. Redis figures come from a redis-server this script starts on a free
loopback port (``tests/servers.py``) and flushes between processes; no other
Redis is touched.

Prints Markdown tables (ops/sec, with the ratio of aiosessions to each peer
and floor, and the targets of issue 7 with the measured ratio) and writes
the whole run as JSON to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .libs import LIBS
from .report import render, targets
from .worker import RESULT_PREFIX
from .workloads import machine

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
BACKENDS = ("memory", "redis")
WORKER_TIMEOUT = 900  # seconds; a worker past this is a hung run


@dataclass(frozen=True)
class Profile:
    """How much to measure."""

    rounds: int
    budget: float  # seconds per timed pass, roughly
    limits: tuple[int, int]  # calls per timed pass, at least and at most
    bytes_sessions: int
    scale_sizes: tuple[int, ...]
    scale_probe: int  # calls timed at each size


# At least 1,100 calls a pass: chuk-sessions caches 1,024 sessions per
# manager, and a longer pass keeps its reads as cold as ours always are.
FULL = Profile(3, 0.4, (2_100, 200_000), 10_000, (10_000, 100_000, 1_000_000), 20_000)
QUICK = Profile(1, 0.05, (1_100, 20_000), 2_000, (10_000, 100_000), 5_000)


class BenchError(Exception):
    """A run could not be carried out; the message says why."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="aiosessions side by side with chuk-sessions and the floors.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="one short round (about a minute)"
    )
    parser.add_argument(
        "--libs",
        default=",".join(LIBS),
        help=f"comma-separated subset of {','.join(LIBS)}",
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated subset of memory,redis",
    )
    parser.add_argument(
        "--suites",
        default="ops,bytes,scale",
        help="comma-separated subset of ops,bytes,scale",
    )
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument(
        "--concurrency", type=int, default=1000, help="tasks at once (default 1000)"
    )
    parser.add_argument(
        "--output", type=Path, help="JSON file (default: benchmarks/results/)"
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="print the tables of a saved run again, measuring nothing",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit with code 1 when a target is missed",
    )
    return parser.parse_args(argv)


def _subset(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in allowed]
    if unknown or not chosen:
        raise BenchError(f"unknown {what} {unknown!r}; choose from {allowed}", 2)
    return chosen


@contextmanager
def own_redis(needed: bool) -> Iterator[Any]:
    """A throwaway redis-server on a free loopback port (or ``None``)."""
    if not needed:
        yield None
        return
    from tests.servers import RedisServer, redis_server_binary

    if redis_server_binary() is None:
        raise BenchError(
            "redis-server not found: install it, or pass --backends memory", 3
        )
    with RedisServer(name="bench") as server:
        yield server


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one worker process; return what it printed."""
    command = [sys.executable, "-m", "benchmarks.worker", json.dumps(spec)]
    done = subprocess.run(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        timeout=WORKER_TIMEOUT,
        check=False,
    )
    lines = [
        line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)
    ]
    if done.returncode != 0 or not lines:
        raise BenchError(
            f"worker {spec['lib']}/{spec['backend']}/{spec['suite']} failed"
            f" (exit code {done.returncode})"
        )
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT_PREFIX) :])
    return result


def plan(
    args: argparse.Namespace, profile: Profile, libs: list[str], backends: list[str]
) -> list[dict[str, Any]]:
    """Every worker to run, in order: libraries alternate between rounds."""
    suites = _subset(args.suites, ("ops", "bytes", "scale"), "suite")
    rounds = args.rounds or profile.rounds
    specs: list[dict[str, Any]] = []
    for number in range(rounds):
        order = libs if number % 2 == 0 else libs[::-1]
        for backend in backends:
            if "ops" in suites:
                for lib in order:
                    specs.append(
                        {
                            "suite": "ops",
                            "round": number,
                            "lib": lib,
                            "backend": backend,
                            "budget": profile.budget,
                            "concurrency": args.concurrency,
                            "limits": list(profile.limits),
                        }
                    )
    for backend in backends:
        if "bytes" in suites:
            for lib in libs:
                specs.append(
                    {
                        "suite": "bytes",
                        "lib": lib,
                        "backend": backend,
                        "sessions": profile.bytes_sessions,
                    }
                )
    if "scale" in suites and "memory" in backends:
        for lib in libs[::-1]:
            specs.append(
                {
                    "suite": "scale",
                    "lib": lib,
                    "backend": "memory",
                    "sizes": list(profile.scale_sizes),
                    "probe": profile.scale_probe,
                }
            )
    return specs


def summarise(outcomes: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """Median ops/sec over rounds; bytes and scale as measured."""
    rates: dict[tuple[str, str, int, str], list[float]] = {}
    errors: dict[tuple[str, str, int, str], int] = {}
    summary: dict[str, Any] = {"ops": [], "bytes": [], "scale": [], "versions": {}}
    for spec, outcome in outcomes:
        summary["versions"][spec["lib"]] = outcome["version"]
        if spec["suite"] == "ops":
            for sample in outcome["result"]:
                key = (
                    sample["backend"],
                    sample["workload"],
                    sample["tasks"],
                    sample["lib"],
                )
                rates.setdefault(key, []).append(sample["ops_per_sec"])
                errors[key] = errors.get(key, 0) + sample["errors"]
        else:
            entry = {
                "lib": spec["lib"],
                "backend": spec["backend"],
                **outcome["result"],
            }
            summary[spec["suite"]].append(entry)
    for (backend, workload, tasks, lib), values in rates.items():
        summary["ops"].append(
            {
                "backend": backend,
                "workload": workload,
                "tasks": tasks,
                "lib": lib,
                "ops_per_sec": statistics.median(values),
                "rounds": values,
                "errors": errors[(backend, workload, tasks, lib)],
            }
        )
    return summary


def execute(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render is not None:
        saved = json.loads(args.render.read_text(encoding="utf-8"))
        saved["targets"] = targets(saved["summary"])
        print(render(saved))
        return 0
    profile = QUICK if args.quick else FULL
    libs = _subset(args.libs, LIBS, "library")
    backends = _subset(args.backends, BACKENDS, "backend")
    specs = plan(args, profile, libs, backends)
    started = time.perf_counter()
    outcomes = []
    with own_redis("redis" in backends) as server:
        redis_version = ""
        if server is not None:
            with server.connect() as client:
                redis_version = client.info("server")["redis_version"]
        bar = tqdm(specs, desc="bench", unit="run", file=sys.stderr, disable=None)
        for spec in bar:
            bar.set_postfix_str(f"{spec['suite']} {spec['lib']} {spec['backend']}")
            if spec["backend"] == "redis":
                server.flushall()
                spec = {**spec, "url": server.url}
            outcomes.append((spec, run_worker(spec)))
    summary = summarise(outcomes)
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "profile": "quick" if args.quick else "full",
        "argv": sys.argv[1:] if argv is None else argv,
        "machine": {**machine(), "redis": redis_version},
        "seconds": time.perf_counter() - started,
        "summary": summary,
        "targets": targets(summary),
        "runs": [{"spec": spec, **outcome} for spec, outcome in outcomes],
    }
    path = args.output or RESULTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(render(report))
    print(f"\nJSON: {path}")
    missed = [t for t in report["targets"] if t["met"] is False]
    return 1 if args.check and missed else 0


def main(argv: list[str] | None = None) -> None:
    try:
        code = execute(argv)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        code = exc.code
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        code = 130
    raise SystemExit(code)
