"""A guided tour of aiosessions, step by step, in about two seconds.

The store comes from the environment. With nothing set it is the in-process
memory store; the same script runs on Redis with::

    SESSION_REDIS_URL=redis://127.0.0.1:6380/0 python examples/quickstart.py

Every step checks what it shows, so the exit code is 0 only if the library
behaved as described (1: a step misbehaved, 3: the store failed). The tour
itself lives in the package, in ``aiosessions/demo.py``, so that
``aiosessions demo`` runs the very same steps; read it there.
"""

from aiosessions.demo import main

if __name__ == "__main__":
    main()
