"""Session ids: formats, entropy, strength checks, and signed ids.

Needs no server (the in-process memory store)::

    python examples/session_id_demo.py
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys

from aiosessions import InvalidInputError, MemoryStore, ProtocolType, SessionManager
from aiosessions.security import (
    IdFormat,
    analyze_session_id_strength,
    estimate_entropy,
    generate_secure_session_id,
    validate_session_id_format,
)


def formats() -> None:
    print("== one id per format (each holds at least 128 random bits)")
    for protocol in ProtocolType:
        sid = generate_secure_session_id(protocol)
        bits = estimate_entropy(sid, protocol)
        print(f"{protocol.value:>10}  {bits:5.0f} bits  {sid}")

    print("\n== asking for more entropy makes the id longer")
    for bits in (128, 256, 512):
        sid = generate_secure_session_id("api_key", entropy_bits=bits)
        print(f"{bits:>4} bits asked -> {len(sid)} characters")

    print("\n== a custom format: digits only, with a prefix")
    order = IdFormat("0123456789", prefix="order:")
    sid = generate_secure_session_id(custom_format=order)
    print(sid, "valid:", validate_session_id_format(sid, custom_format=order))


def refusals() -> None:
    print("\n== what is refused, and why")
    for options in ({"include_timestamp": True}, {"entropy_bits": 40}):
        try:
            generate_secure_session_id(**options)  # type: ignore[arg-type]
        except InvalidInputError as exc:
            print(f"{options} -> {exc}")
    try:
        IdFormat("abcabc")
    except InvalidInputError as exc:
        print(f"IdFormat('abcabc') -> {exc}")


def strength() -> None:
    print("\n== judging ids someone else made")
    samples = {
        "ours": generate_secure_session_id(),
        "user + time": "alice_1733300000",
        "uuid v1": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "repeated": "ab" * 20,
    }
    for name, sid in samples.items():
        report = analyze_session_id_strength(sid)
        issues = "; ".join(report.issues) or "none"
        print(
            f"{name:>12}: {report.strength:<8} ~{report.entropy_bits:.0f} bits;"
            f" issues: {issues}"
        )


async def signed_ids() -> None:
    print("\n== signed ids: forged or foreign ids are refused before the store")
    store = MemoryStore()
    key = secrets.token_urlsafe(32)
    shop = SessionManager("shop", store=store, secret_key=key)
    blog = SessionManager("blog", store=store, secret_key=key)

    sid = await shop.allocate_session(user_id="alice")
    random_part, _, tag = sid.partition(".")
    print("issued id:      ", f"{random_part}.{tag}")
    print("valid in shop:  ", await shop.validate_session(sid))
    print("valid in blog:  ", await blog.validate_session(sid))
    forged = random_part + "." + "A" * len(tag)
    print("forged tag:     ", await shop.validate_session(forged))

    rotated = SessionManager(
        "shop", store=store, secret_key=[secrets.token_urlsafe(32), key]
    )
    print(
        "after rotation: ",
        await rotated.validate_session(sid),
        "(old key still verifies)",
    )
    await store.aclose()


if __name__ == "__main__":
    # The library logs refusals; show them in line with the output.
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.INFO,
        format="    [log %(levelname)s] %(message)s",
    )
    formats()
    refusals()
    strength()
    asyncio.run(signed_ids())
