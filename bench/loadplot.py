"""Plot bench/load.py's results: throughput and p50/p99 latency, gateway beside simulator.

    python bench/loadplot.py [docs/img/load.json] [docs/img/load.png]

Separate from load.py so the figure can be redrawn from the stored JSON without re-running the load,
and so matplotlib (the ``bench`` extra) is needed only for drawing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt

COLOURS = {"simulator": "#9aa5b1", "sim-paced": "#d0d7de", "gateway": "#1f6feb"}
LABELS = {
    "simulator": "simulator, flat out",
    "sim-paced": "simulator at the gateway's rate",
    "gateway": "gateway (→ simulator)",
}


def plot(result: dict[str, Any], path: Path) -> None:
    phases: dict[str, dict[str, float]] = result["phases"]
    # "gateway submit c=20" → group "submit c=20", with one bar per side that ran it
    groups = sorted(
        {name.split(" ", 1)[1] for name in phases},
        key=lambda g: (g.split()[0] != "submit", int(g.rsplit("=", 1)[1])),
    )
    fig, axes = plt.subplots(1, 3, figsize=(18, 5))
    width = 0.27
    panels = (
        ("rps", "throughput (req/s; median of repeats, whiskers min–max)"),
        ("p50_ms", "p50 latency (ms, log scale)"),
        ("p99_ms", "p99 latency (ms, log scale)"),
    )
    for ax, (metric, title) in zip(axes, panels, strict=True):
        for i, side in enumerate(COLOURS):
            present = [
                (g, phases[f"{side} {group}"])
                for g, group in enumerate(groups)
                if f"{side} {group}" in phases
            ]
            xs = [g + (i - 1) * width for g, _ in present]
            values = [row[metric] for _, row in present]
            err = None
            if metric == "rps":
                err = [
                    [v - row["rps_min"] for v, (_, row) in zip(values, present, strict=True)],
                    [row["rps_max"] - v for v, (_, row) in zip(values, present, strict=True)],
                ]
            bars = ax.bar(
                xs, values, width, yerr=err, capsize=2, label=LABELS[side], color=COLOURS[side]
            )
            ax.bar_label(bars, fmt="%.0f" if metric == "rps" else "%.1f", fontsize=7, padding=1)
        ax.set_xticks(range(len(groups)), groups, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        if metric != "rps":
            ax.set_yscale("log")
    targets = {"submit": 1500, "get": 3000}
    for g, group in enumerate(groups):
        target = targets[group.split()[0]]
        axes[0].hlines(
            target, g - 0.45, g + 0.45, colors="#d1242f", linestyles="dashed", linewidth=1
        )
    axes[0].plot([], [], color="#d1242f", linestyle="dashed", label="issue 7 target (gateway)")
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"kling-gateway vs built-in simulator — wrk, 1 gateway worker, SQLite, money on "
        f"({result['when']}, {result['repeat']}× {result['seconds']:g} s per phase, 2 shared "
        "cores)",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img/load.json")
    target = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/img/load.png")
    plot(json.loads(source.read_text()), target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
