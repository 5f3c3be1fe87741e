"""One library, one backend, one suite, in a process of its own.

Run by :mod:`benchmarks.run`, never by hand: it reads a JSON spec from its
argument and prints one line ``RESULT <json>`` on stdout. Progress bars go
to stderr.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from tqdm import tqdm

from .libs import make_lib
from .workloads import bytes_suite, ops_suite, scale_suite

RESULT_PREFIX = "RESULT "


async def run(spec: dict[str, Any]) -> Any:
    lib = make_lib(spec["lib"], spec["backend"], spec.get("url"))
    await lib.open()
    try:
        suite = spec["suite"]
        if suite == "ops":
            body: Any = await ops_suite(
                lib, spec["budget"], spec["concurrency"], tuple(spec["limits"])
            )
        elif suite == "bytes":
            body = await bytes_suite(lib, spec["sessions"])
        else:
            progress = lambda **kw: tqdm(  # noqa: E731
                file=sys.stderr, leave=False, mininterval=0.5, disable=None, **kw
            )
            body = await scale_suite(lib, spec["sizes"], spec["probe"], progress)
        return {"version": lib.version(), "result": body}
    finally:
        await lib.close()


def main() -> None:
    spec = json.loads(sys.argv[1])
    outcome = asyncio.run(run(spec))
    print(RESULT_PREFIX + json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
