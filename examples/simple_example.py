"""The shortest useful tour of aiosessions.

Runs on the store named by the environment (the in-process memory store
when nothing is set)::

    python examples/simple_example.py
"""

from __future__ import annotations

import asyncio

from aiosessions import SessionManager, get_default_store, get_session


async def main() -> None:
    print("store:", get_default_store().describe())

    # Key-value facade: string values that expire.
    async with get_session() as kv:
        await kv.setex("greeting", 60, "hello")
        print("get greeting ->", await kv.get("greeting"))
        print("ttl greeting ->", await kv.ttl("greeting"), "s")
        await kv.delete("greeting")

    # A session manager for one tenant.
    manager = SessionManager(sandbox_id="simple-demo", default_ttl_hours=1)
    session_id = await manager.allocate_session(
        user_id="alice", custom_metadata={"role": "reader"}
    )
    print("allocated     ->", session_id)
    print("valid         ->", await manager.validate_session(session_id))

    info = await manager.get_session_info(session_id)
    assert info is not None
    print("user          ->", info["user_id"])
    print("metadata      ->", info["custom_metadata"])
    print("expires at    ->", info["expires_at"])

    print("deleted       ->", await manager.delete_session(session_id))
    print("valid after   ->", await manager.validate_session(session_id))

    await get_default_store().aclose()


if __name__ == "__main__":
    asyncio.run(main())
