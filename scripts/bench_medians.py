#!/usr/bin/env python3
"""Print a Markdown table of medians from the JSON files scripts/bench.sh writes.

Usage: scripts/bench_medians.py RESULTS_DIR
Files are grouped by name without the trailing run number (post-sqlite-2.json
belongs to post-sqlite), and each figure is the median over the group's runs.
"""

import json
import pathlib
import re
import statistics
import sys


def phase(results, index):
    return results["phases"][index]["report"]


def http_figures(results):
    target = phase(results, -1)
    figures = {
        "req/s": target["rate_per_s"],
        "p50 ms": target["latency"]["p50_ms"],
        "p99 ms": target["latency"]["p99_ms"],
        "p999 ms": target["latency"]["p999_ms"],
        "errors": target["errors_total"],
    }
    if results.get("ratio_to_baseline") is not None:
        figures["baseline req/s"] = phase(results, 0)["rate_per_s"]
        figures["% of baseline"] = 100 * results["ratio_to_baseline"]
    if results.get("verification"):
        figures["lost messages"] = results["verification"]["lost"]
    cpu = results["phases"][-1]["cpu"]
    figures["server cores"] = cpu.get("server_cores")
    figures["tool cores"] = cpu.get("tool_cores")
    return figures


def login_storm_figures(results):
    return {
        "logins/s": results["logins"]["rate_per_s"],
        "login p99 ms": results["logins"]["latency"]["p99_ms"],
        "me p99 ms before": results["me_baseline"]["latency"]["p99_ms"],
        "me p99 ms during": results["me_during_storm"]["latency"]["p99_ms"],
        "me p999 ms during": results["me_during_storm"]["latency"]["p999_ms"],
        "server cores": results["cpu_storm"].get("server_cores"),
    }


def sockets_figures(results):
    per_socket = results.get("server_bytes_per_socket")
    return {
        "opened": results["opened"],
        "held to end": results["held_to_end"],
        "KiB per socket": per_socket / 1024 if per_socket is not None else None,
        "handshake p99 ms": results["handshake_latency"]["p99_ms"],
        "connects/s": results["connect_rate_per_s"],
    }


def fanout_figures(results):
    return {
        "events/s": results["delivered_per_s"],
        "received": results["deliveries_received"],
        "expected": results["deliveries_expected"],
        "p50 ms": results["delivery_latency"]["p50_ms"],
        "p99 ms": results["delivery_latency"]["p99_ms"],
        "p999 ms": results["delivery_latency"]["p999_ms"],
        "post p99 ms": results["post"]["latency"]["p99_ms"],
        "server cores": results["cpu"].get("server_cores"),
        "tool cores": results["cpu"].get("tool_cores"),
    }


FIGURES = {
    "http": http_figures,
    "login-storm": login_storm_figures,
    "sockets": sockets_figures,
    "fanout": fanout_figures,
}


def main():
    folder = pathlib.Path(sys.argv[1])
    groups = {}
    for path in sorted(folder.glob("*.json")):
        name = re.sub(r"-\d+$", "", path.stem)
        report = json.loads(path.read_text())
        figures = FIGURES[report["scenario"]](report["results"])
        groups.setdefault(name, []).append(figures)

    print("| run | runs | median figures |")
    print("| --- | --- | --- |")
    for name, runs in groups.items():
        cells = []
        for key in runs[0]:
            values = [run[key] for run in runs if run.get(key) is not None]
            if values:
                cells.append(f"{key} {statistics.median(values):,.2f}")
        print(f"| {name} | {len(runs)} | {'; '.join(cells)} |")


if __name__ == "__main__":
    main()
