"""The public API against the README, and the README's own snippets."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import aiosessions

README = Path(__file__).resolve().parents[2] / "README.md"


def test_names_the_readme_uses_are_exported() -> None:
    imported: set[str] = set()
    for block in re.findall(r"```python\n(.*?)```", README.read_text(), re.S):
        try:
            tree = ast.parse(block)
        except SyntaxError:
            continue  # a fragment (top-level await)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "aiosessions":
                imported |= {alias.name for alias in node.names}
    assert imported >= {"SessionManager", "get_session", "Settings", "RedisStore"}
    assert imported <= set(aiosessions.__all__), imported - set(aiosessions.__all__)


def test_readme_python_snippets_run(tmp_path: Path) -> None:
    """The two self-contained snippets (settings in code, API overview)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    runnable = [
        b for b in blocks if b.startswith(("from aiosessions", "import asyncio"))
    ]
    assert len(runnable) == 2
    for block in runnable:
        script = tmp_path / "snippet.py"
        script.write_text(block)
        done = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin"},
        )
        assert done.returncode == 0, done.stderr


# -- findings ---------------------------------------------------------------


def test_star_import_works_without_the_redis_extra() -> None:
    script = "import sys; sys.modules['redis'] = None\nfrom aiosessions import *\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.splitlines()[-1]


def test_missing_redis_extra_is_a_missing_dependency_error() -> None:
    script = (
        "import sys; sys.modules['redis'] = None\n"
        "import aiosessions\n"
        "try:\n"
        "    aiosessions.SessionManager('x', store='redis://127.0.0.1:1/0')\n"
        "except aiosessions.MissingDependencyError:\n"
        "    print('typed')\n"
        "except ImportError as exc:\n"
        "    print('bare', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "typed", done.stdout + done.stderr
