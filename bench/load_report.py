"""bench/load.py's targets, the medians over its repeats, and its human-readable report."""

from __future__ import annotations

import statistics
from typing import Any

from wrk import WrkResult

TARGETS = {
    "submit_rps": 1500.0,
    "get_rps": 3000.0,
    "added_p99_ms": 5.0,
    "rss_mb": 150.0,
    "ready_s": 1.5,
}


def summarise(results: dict[str, list[WrkResult]]) -> dict[str, dict[str, float]]:
    """Median of each figure over the repeats, plus the spread of throughput (min, max)."""
    out: dict[str, dict[str, float]] = {}
    for name, runs in results.items():
        out[name] = {
            "rps": statistics.median(r.rps for r in runs),
            "rps_min": min(r.rps for r in runs),
            "rps_max": max(r.rps for r in runs),
            "p50_ms": statistics.median(r.p50_ms for r in runs),
            "p99_ms": statistics.median(r.p99_ms for r in runs),
            "p99_ms_max": max(r.p99_ms for r in runs),
            "errors": sum(r.errors for r in runs),
            "requests": sum(r.requests for r in runs),
        }
    return out


def report(r: dict[str, Any], connections: list[int]) -> list[str]:
    """Human-readable lines: the table, ratios, added p99 and each target met or not."""
    ph = r["phases"]
    lines = []
    if "calibration_ms_before_after" in r:
        before, after = r["calibration_ms_before_after"]
        lines.append(
            f"machine: calibration loop {before:.0f} ms before, {after:.0f} ms after (lower = "
            "faster core)"
        )
    lines.append(f"{'phase':<26}{'req/s (min–max)':>24}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, s in ph.items():
        spread = f"{s['rps']:.0f} ({s['rps_min']:.0f}–{s['rps_max']:.0f})"
        lines.append(
            f"{name:<26}{spread:>24}{s['p50_ms']:>9.2f}{s['p99_ms']:>9.2f}{s['errors']:>8}"
        )
    met: dict[str, bool] = {}
    for c in connections:
        for op in ("submit", "get"):
            g, flat = ph[f"gateway {op} c={c}"], ph[f"simulator {op} c={c}"]
            paced = ph.get(f"sim-paced {op} c={c}")  # none at c=1: the flat-out run is the baseline
            base = paced or flat
            added_flat, added = g["p99_ms"] - flat["p99_ms"], g["p99_ms"] - base["p99_ms"]
            at_rate = (
                f"{added:+.2f} ms vs the simulator at the gateway's rate ({base['rps']:.0f}/s), "
            )
            lines.append(
                f"c={c} {op}: throughput gateway/simulator {g['rps'] / flat['rps']:.2f}; added p99 "
                f"{at_rate if paced else ''}{added_flat:+.2f} ms vs flat out; "
                f"added p50 {g['p50_ms'] - base['p50_ms']:+.2f} ms"
            )
            if c == 20:
                met[f"{op} ≥ {TARGETS[op + '_rps']:.0f}/s"] = g["rps"] >= TARGETS[op + "_rps"]
                limit = TARGETS["added_p99_ms"]
                name = f"added p99 {op} ≤ {limit:g} ms (equal rate, gateway saturated)"
                met[name] = added <= TARGETS["added_p99_ms"]
        g_t, s_t = ph.get(f"gateway-target submit c={c}"), ph.get(f"sim-target submit c={c}")
        if g_t is not None and s_t is not None:
            added_t = g_t["p99_ms"] - s_t["p99_ms"]
            rate = f"{r.get('held_rate', TARGETS['submit_rps']):.0f}/s"
            lines.append(
                f"c={c} submit, both held to {rate} "
                f"(gateway {g_t['rps']:.0f}/s, simulator {s_t['rps']:.0f}/s): "
                f"added p99 {added_t:+.2f} ms, added p50 {g_t['p50_ms'] - s_t['p50_ms']:+.2f} ms"
            )
            if c == 20:
                name = f"added p99 submit ≤ {TARGETS['added_p99_ms']:g} ms (both at {rate})"
                met[name] = added_t <= TARGETS["added_p99_ms"]
    for name, own in r.get("gateway_own", {}).items():
        lines.append(
            f"{name}: the gateway's own time per request (access log, total − upstream_ms): "
            f"p50 {own['own_p50_ms']:.2f} ms, p99 {own['own_p99_ms']:.2f} ms "
            f"(total p99 {own['total_p99_ms']:.2f}, upstream p99 {own['upstream_p99_ms']:.2f}; "
            f"{own['n']:.0f} requests)"
        )
        if name.endswith("c=20") and name.startswith(("gateway-target submit", "gateway get")):
            op = name.split()[1]
            met[f"added p99 {op} ≤ {TARGETS['added_p99_ms']:g} ms (the gateway's own time)"] = (
                own["own_p99_ms"] <= TARGETS["added_p99_ms"]
            )
    first, restart = (
        statistics.median(r["ready_first_start_s"]),
        statistics.median(r["ready_restart_s"]),
    )
    lines.append(
        f"gateway RSS idle {r['rss_idle_mb']:.0f} MB, peak under load {r['rss_load_mb']:.0f} MB"
    )
    lines.append(
        f"start → /readyz 200: first start (fresh DB) median {first:.2f} s "
        f"{[round(x, 2) for x in r['ready_first_start_s']]}; restart median {restart:.2f} s "
        f"{[round(x, 2) for x in r['ready_restart_s']]}"
    )
    lines.append(f"venv size {r['venv_mb']:.0f} MB")
    met[f"RSS ≤ {TARGETS['rss_mb']:g} MB"] = r["rss_load_mb"] <= TARGETS["rss_mb"]
    met[f"ready ≤ {TARGETS['ready_s']:g} s (restart)"] = restart <= TARGETS["ready_s"]
    met[f"ready ≤ {TARGETS['ready_s']:g} s (first start)"] = first <= TARGETS["ready_s"]
    lines += [f"target {name}: {'met' if ok else 'NOT met'}" for name, ok in met.items()]
    return lines
