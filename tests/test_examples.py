"""The security examples run with no server and show what they claim."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            "csrf_demo.py",
            ["POST with the token:       True", "after logout:              False"],
        ),
        ("session_id_demo.py", ["valid in blog:   False", "after rotation:  True"]),
    ],
)
def test_example_runs(script: str, expected: list[str]) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SESSION_", "REDIS"))
    }
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for line in expected:
        assert line in done.stdout
