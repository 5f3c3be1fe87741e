"""Markdown tables and the targets of issue 7, from a run's summary."""

from __future__ import annotations

import statistics
from typing import Any

from .libs import LIBS

__all__ = ["render", "targets"]

OURS, PEER, FLOOR = LIBS
OPERATIONS = (
    "kv get",
    "kv setex",
    "kv delete",
    "allocate",
    "validate",
    "get_info",
    "update",
    "increment",
    "delete",
)


def _find(
    summary: dict[str, Any], backend: str, workload: str, tasks: int, lib: str
) -> dict[str, Any] | None:
    for row in summary["ops"]:
        if (row["backend"], row["workload"], row["tasks"], row["lib"]) == (
            backend,
            workload,
            tasks,
            lib,
        ):
            return row
    return None


def _ratio(
    summary: dict[str, Any], backend: str, workload: str, tasks: int, other: str
) -> float | None:
    ours = _find(summary, backend, workload, tasks, OURS)
    them = _find(summary, backend, workload, tasks, other)
    if ours is None or them is None or not all(them["rounds"]):
        return None
    # Per round, then the median: the two processes of one round ran next
    # to each other, under the same load from the rest of the machine.
    pairs = zip(ours["rounds"], them["rounds"], strict=False)
    return float(statistics.median(mine / theirs for mine, theirs in pairs))


def _bytes(summary: dict[str, Any], backend: str, lib: str = OURS) -> float | None:
    for entry in summary["bytes"]:
        if entry["backend"] == backend and entry["lib"] == lib:
            return float(entry["bytes_per_session"])
    return None


def _scale(summary: dict[str, Any], lib: str = OURS) -> dict[str, Any] | None:
    for entry in summary["scale"]:
        if entry["lib"] == lib:
            return entry
    return None


def _target(
    name: str, measured: float | None, goal: float, op: str, unit: str, note: str = ""
) -> dict[str, Any]:
    met = None
    if measured is not None:
        met = measured >= goal if op == ">=" else measured <= goal
    return {
        "target": name,
        "measured": measured,
        "goal": goal,
        "op": op,
        "unit": unit,
        "met": met,
        "note": note,
    }


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 7 with its measured value (``None``: not run)."""
    many = max((row["tasks"] for row in summary["ops"]), default=1000)
    found = []
    for workload in ("kv get", "kv setex"):
        found.append(
            _target(
                f"memory {workload} vs floor",
                _ratio(summary, "memory", workload, 1, FLOOR),
                0.8,
                ">=",
                "x",
            )
        )
    found.append(
        _target(
            "memory validate vs chuk-sessions",
            _ratio(summary, "memory", "validate", 1, PEER),
            10,
            ">=",
            "x",
        )
    )
    found.append(
        _target(
            "memory allocate vs chuk-sessions",
            _ratio(summary, "memory", "allocate", 1, PEER),
            5,
            ">=",
            "x",
        )
    )
    found.append(
        _target(
            "redis validate vs bare GET (one at a time)",
            _ratio(summary, "redis", "validate", 1, FLOOR),
            0.9,
            ">=",
            "x",
        )
    )
    found.append(
        _target(
            "redis validate vs chuk-sessions (one at a time)",
            _ratio(summary, "redis", "validate", 1, PEER),
            15,
            ">=",
            "x",
        )
    )
    row = _find(summary, "redis", "validate", many, OURS)
    errors = None if row is None else row["errors"]
    found.append(
        _target(
            f"redis validate vs bare GET ({many} at once)",
            _ratio(summary, "redis", "validate", many, FLOOR),
            2,
            ">=",
            "x",
            "" if errors is None else f"{errors} errors",
        )
    )
    if errors:
        found[-1]["met"] = False
    found.append(
        _target("redis bytes per session", _bytes(summary, "redis"), 250, "<=", "B")
    )
    found.append(
        _target("memory bytes per session", _bytes(summary, "memory"), 400, "<=", "B")
    )
    found += _scale_targets(summary)
    return found


def _scale_targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    scale = _scale(summary)
    if scale is None:
        return []
    points = scale["points"]
    small, large = points[0], points[-1]
    found = []
    for call in ("validate", "allocate"):
        found.append(
            _target(
                f"memory {call} cost at {large['sessions']:,} / at"
                f" {small['sessions']:,} sessions",
                large[f"{call}_us"] / small[f"{call}_us"],
                1.5,
                "<=",
                "x",
            )
        )
    reclaim = scale.get("reclaim")
    if reclaim is not None:
        share = reclaim["reclaimed_by_writes"] / reclaim["expired_sessions"]
        target = _target(
            "expired entries reclaimed by ordinary writes (share)",
            share,
            1.0,
            ">=",
            "",
            f"{reclaim['write_us_while_reclaiming']:.1f} µs a write while"
            f" reclaiming, {reclaim['write_us_baseline']:.1f} µs before",
        )
        found.append(target)
    return found


def _rate(row: dict[str, Any] | None) -> str:
    if row is None:
        return "n/a"
    text = f"{row['ops_per_sec']:,.0f}"
    if row["errors"]:
        text += f" ({row['errors']} errors)"
    return text


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _ops_tables(summary: dict[str, Any]) -> list[str]:
    lines = []
    combos = sorted(
        {(row["backend"], row["tasks"]) for row in summary["ops"]},
        key=lambda c: (c[0] != "memory", c[1]),
    )
    for backend, tasks in combos:
        how = "one call at a time" if tasks == 1 else f"{tasks} tasks at once"
        lines += [
            f"\n### {backend}, {how} (calls per second, median of rounds;"
            " ratios: median of the per-round ratios)\n",
            f"| operation | {OURS} | {PEER} | {FLOOR} | vs {PEER} | vs {FLOOR} |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for workload in OPERATIONS:
            cells = [_find(summary, backend, workload, tasks, lib) for lib in LIBS]
            if all(cell is None for cell in cells):
                continue
            lines.append(
                f"| {workload} | "
                + " | ".join(_rate(cell) for cell in cells)
                + f" | {_x(_ratio(summary, backend, workload, tasks, PEER))}"
                + f" | {_x(_ratio(summary, backend, workload, tasks, FLOOR))} |"
            )
    return lines


def _bytes_table(summary: dict[str, Any]) -> list[str]:
    if not summary["bytes"]:
        return []
    lines = [
        "\n### Bytes per session (user id and two metadata fields)\n",
        "| library | memory (tracemalloc) | redis (MEMORY USAGE) |"
        " redis (used_memory growth) |",
        "|---|---:|---:|---:|",
    ]
    for lib in LIBS:
        entries = {e["backend"]: e for e in summary["bytes"] if e["lib"] == lib}
        if not entries:
            continue
        memory = entries.get("memory")
        redis = entries.get("redis")
        lines.append(
            f"| {lib} | "
            + ("n/a" if memory is None else f"{memory['bytes_per_session']:,.0f}")
            + " | "
            + ("n/a" if redis is None else f"{redis['bytes_per_session']:,.0f}")
            + " | "
            + ("n/a" if redis is None else f"{redis['used_memory_per_session']:,.0f}")
            + " |"
        )
    return lines


def _scale_table(summary: dict[str, Any]) -> list[str]:
    if not summary["scale"]:
        return []
    lines = [
        "\n### Memory store at scale (µs per call, one at a time)\n",
        "| library | sessions | validate | get_info | allocate | RSS MB |"
        " RSS bytes/session |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for lib in LIBS:
        entry = _scale(summary, lib)
        if entry is None:
            continue
        for point in entry["points"]:
            lines.append(
                f"| {lib} | {point['sessions']:,} | {point['validate_us']:.2f}"
                f" | {point['get_info_us']:.2f} | {point['allocate_us']:.2f}"
                f" | {point['rss_mb']:,.0f} | {point['rss_bytes_per_session']:,.0f} |"
            )
        reclaim = entry.get("reclaim")
        if reclaim:
            notes.append(
                f"\n{lib}: {reclaim['expired_sessions']:,} sessions expired in a"
                f" store of {reclaim['entries_before']:,} entries;"
                f" {reclaim['writes']:,} ordinary writes reclaimed"
                f" {reclaim['reclaimed_by_writes']:,} of them at"
                f" {reclaim['write_us_while_reclaiming']:.1f} µs a write"
                f" ({reclaim['write_us_baseline']:.1f} µs before they expired);"
                f" cleanup() then found {reclaim['reclaimed_by_cleanup']:,} more"
                f" in {reclaim['cleanup_ms']:.1f} ms."
            )
    return lines + notes


def _targets_table(found: list[dict[str, Any]]) -> list[str]:
    lines = [
        "\n### Targets\n",
        "| target | measured | goal | met |",
        "|---|---:|---:|:---:|",
    ]
    for t in found:
        measured = (
            "n/a" if t["measured"] is None else f"{t['measured']:,.2f}{t['unit']}"
        )
        met = {True: "yes", False: "**no**", None: "not run"}[t["met"]]
        note = f" ({t['note']})" if t["note"] else ""
        lines.append(
            f"| {t['target']}{note} | {measured} | {t['op']} {t['goal']}{t['unit']}"
            f" | {met} |"
        )
    return lines


def render(report: dict[str, Any]) -> str:
    """The whole run as Markdown."""
    summary = report["summary"]
    m = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in sorted(summary["versions"].items()))
    lines = [
        f"## aiosessions benchmark ({report['profile']}, {report['seconds']:.0f} s)\n",
        f"{m['cpu']}, {m['cores']} cores; {m['implementation']} {m['python']};"
        f" Redis {m['redis'] or 'not run'}; {versions}",
    ]
    lines += _ops_tables(summary)
    lines += _bytes_table(summary)
    lines += _scale_table(summary)
    lines += _targets_table(report["targets"])
    return "\n".join(lines)
