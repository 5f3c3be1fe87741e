"""Reproduction: one RedisStore, many asyncio.run calls -> file descriptors run out.

Run from the repository root:  .venv/bin/python -m tests.adversarial.repro_fd_exhaustion

Starts its own redis-server (tests/servers.py, a free loopback port), lowers
this process's open-file limit to 256, then calls asyncio.run(validate) in a
loop, as a sync app or a CLI that builds its store at import time would.
Each finished loop keeps its client and one connection (RedisStore._bound
never lets a dead loop go), so the process runs out of descriptors and every
call fails with BackendUnavailableError although Redis is healthy.
Exit code 1 when the leak shows, 0 when the runs all succeed.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import sys

from aiosessions import BackendUnavailableError, RedisStore, SessionManager
from tests.servers import RedisServer

RUNS = 400
FD_LIMIT = 256


def main() -> int:
    with RedisServer(name="review-fd") as server:
        server.start()
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, hard))
        store = RedisStore(server.url, retries=0)
        mgr = SessionManager("fd", store=store)
        sid = asyncio.run(mgr.allocate_session())
        for run in range(RUNS):
            try:
                asyncio.run(mgr.validate_session(sid))
            except BackendUnavailableError as exc:
                gc.collect()
                print(f"asyncio.run #{run}: {exc}")
                print(
                    f"open fds: {len(os.listdir('/proc/self/fd'))},"
                    f" loops still bound: {len(store._bound)}"
                )
                return 1
        gc.collect()
        print(f"{RUNS} runs fine; loops still bound: {len(store._bound)}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
