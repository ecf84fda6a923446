"""Throughput and memory of tap-klaviyo against the bundled emulator: sequential vs concurrent.

Every figure comes from real processes: the emulator runs as its own process (`klaviyo-emulator`)
and the tap as another (`python -m tap_klaviyo`, stdout to /dev/null), so the two share this
machine's cores the way a real sync shares nothing with Klaviyo but the network.

Three phases:
1. Paired runs: each pair is one CPU-bound run (emulator with no latency and no rate limits, the
   tap's own pacing off: the tap's ceiling) and, right after it, one realistic run of the
   concurrent reader (150 ms latency per request, Klaviyo's published rate-limit tiers, a fresh
   emulator so no run inherits another's rate-limit windows). The machine's speed drifts a lot
   over minutes (2 shared cores), so the two sides are sampled side by side, `--repeat` times,
   and the medians are compared. Peak RSS is read for two sizes of the event stream.
2. The sequential reader (max_workers=1) once, in the same realistic setting.
3. Report: records/s, requests, 429s, peak RSS, and the ratio to the ceiling, where the ceiling
   is the lower of what the rate limits allow over the run's duration (burst and steady windows,
   times the page size) and the median CPU-bound rate of phase 1.

Run: python benchmarks/bench.py            (defaults: about 10 minutes on 2 cores)
     python benchmarks/bench.py --help
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
API_KEY = "pk_benchmark0123456789abcdefghij"
SYNCED = re.compile(
    r"Stream (?P<stream>\S+) synced: (?P<records>\d+) records in (?P<seconds>[\d.]+) s .*?"
    r"(?P<requests>\d+) requests, (?P<throttled>\d+) throttled"
)
# Klaviyo's published tiers and the page size the tap uses, per stream (see tap_klaviyo/streams/).
LIMITS = {"receive": (350, 3500, 1000), "profiles": (75, 750, 100)}
EVENT_SHARE = 0.36  # share of the emulator's events that belong to "Received Email"


@dataclass
class Run:
    """One tap process: per-stream figures from its summary lines, and its peak RSS."""

    label: str
    streams: dict[str, dict]
    peak_rss_mb: float
    wall_seconds: float


class EmulatorProcess:
    """`klaviyo-emulator` in its own process; the base URL is its first stdout line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "klaviyo_emulator", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
        )
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.stop()
            raise RuntimeError("the emulator did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def __enter__(self) -> "EmulatorProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def catalog(streams: tuple[str, ...]) -> dict:
    """The tap's catalog with only `streams` selected (the test suite's helper)."""
    sys.path.insert(0, str(REPO))
    from tests.conftest import catalog_for

    return catalog_for(*streams)


def run_tap(
    label: str, url: str, streams: tuple[str, ...], workers: int, workdir: Path, *, paced: bool = True, **settings: t.Any
) -> Run:
    """Run one sync with stdout to /dev/null; peak RSS from wait4's rusage of that child alone.

    `paced=False` turns the tap's own rate limiting off, for the CPU-bound phase; `settings` go into the config.
    """
    config = {"api_key": API_KEY, "api_url": url, "max_workers": workers, "request_timeout": 60,
              "respect_rate_limits": paced, **settings}
    (workdir / "config.json").write_text(json.dumps(config))
    (workdir / "catalog.json").write_text(json.dumps(catalog(streams)))
    log = workdir / "tap.log"
    started = time.monotonic()
    with open(os.devnull, "wb") as devnull, open(log, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tap_klaviyo", "--config", str(workdir / "config.json"),
             "--catalog", str(workdir / "catalog.json")],
            stdout=devnull,
            stderr=stderr,
            cwd=REPO,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    text = log.read_text(errors="replace")
    if status != 0:
        raise RuntimeError(f"{label}: the tap failed:\n{text[-3000:]}")
    found = {}
    for match in SYNCED.finditer(text):
        found[match["stream"]] = {
            "records": int(match["records"]),
            "seconds": float(match["seconds"]),
            "requests": int(match["requests"]),
            "throttled": int(match["throttled"]),
        }
    return Run(label, found, usage.ru_maxrss / 1024, wall)


def rate_limit_ceiling(stream: str, seconds: float) -> float:
    """Records/s that the fixed burst and steady windows allow over `seconds`, at full pages.

    Each minute window holds at most `steady` requests and at most `burst` per second of it that
    the run spans, counting a partly spanned window or second as a whole one (the generous side).
    """
    burst, steady, page = LIMITS[stream]
    minutes = math.ceil(seconds / 60)
    requests = sum(min(steady, burst * math.ceil(min(60.0, seconds - 60 * k))) for k in range(minutes))
    return requests * page / seconds


def rate(figures: dict) -> float:
    return figures["records"] / max(figures["seconds"], 1e-9)


def median_figures(runs: list[dict]) -> dict:
    """The figures of the run with the median records/s, plus every run's rate (sorted)."""
    ordered = sorted(runs, key=rate)
    return {**ordered[len(ordered) // 2], "rates": [rate(figures) for figures in ordered]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--receive-events", type=int, default=300_000, help="events of the receive stream")
    parser.add_argument("--profiles", type=int, default=50_000)
    parser.add_argument("--latency-ms", type=int, default=150, help="added latency per request (realistic phase)")
    parser.add_argument("--workers", type=int, default=16, help="max_workers of the concurrent reader (the tap's default)")
    parser.add_argument("--memory-sizes", default="100000,1000000", help="receive-stream sizes for the RSS check")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of CPU-bound and realistic concurrent runs; medians are compared")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    total_events = int(args.receive_events / EVENT_SHARE)
    streams = ("receive", "profiles")
    results: dict = {"args": vars(args) | {"json": str(args.json)}, "cpu": {}, "memory": {}, "realistic": {}}

    realistic = ("--rate-limits", "on", "--latency-ms", str(args.latency_ms))
    emulator_size = ("--profiles", str(args.profiles), "--events", str(total_events))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"Phase 1: {args.repeat} pairs of a CPU-bound run (no latency, no rate limits) and a realistic "
              f"concurrent run ({args.latency_ms} ms per request, Klaviyo's tiers); {args.receive_events:,} "
              f"receive events, {args.profiles:,} profiles", flush=True)
        cpu_runs, concurrent_runs = [], []
        with EmulatorProcess(*emulator_size, "--rate-limits", "off") as unlimited:
            for pair in range(1, args.repeat + 1):
                cpu_runs.append(run_tap("cpu-bound", unlimited.url, streams, args.workers, workdir, paced=False))
                with EmulatorProcess(*emulator_size, *realistic) as emulator:
                    concurrent_runs.append(run_tap("concurrent", emulator.url, streams, args.workers, workdir))
                print(f"  pair {pair}: " + "; ".join(
                    f"{stream} {rate(cpu_runs[-1].streams[stream]):,.0f} CPU-bound, "
                    f"{rate(concurrent_runs[-1].streams[stream]):,.0f} concurrent records/s" for stream in streams),
                    flush=True)
        for stream in streams:
            results["cpu"][stream] = median_figures([run.streams[stream] for run in cpu_runs])
            print(f"  {stream:9} {rate(results['cpu'][stream]):>10,.0f} records/s CPU-bound (tap ceiling; median)",
                  flush=True)
        results["realistic"]["concurrent"] = {
            "peak_rss_mb": max(run.peak_rss_mb for run in concurrent_runs),
            "streams": {stream: median_figures([run.streams[stream] for run in concurrent_runs]) for stream in streams},
        }

        # The `events` stream reads the same Received Email events as `receive` (event_metrics), CPU-bound, in
        # interleaved pairs on one emulator: the same throughput per event is the goal.
        receive_rates, events_rates = [], []
        with EmulatorProcess(*emulator_size, "--rate-limits", "off") as unlimited:
            for _ in range(args.repeat):
                run = run_tap("receive", unlimited.url, ("receive",), args.workers, workdir, paced=False)
                receive_rates.append(rate(run.streams["receive"]))
                run = run_tap("events", unlimited.url, ("events",), args.workers, workdir, paced=False,
                              event_metrics=["klaviyo:Received Email"], late_event_days=0)
                events_rates.append(rate(run.streams["events"]))
        results["events_vs_receive"] = {"receive": receive_rates, "events": events_rates}
        print(f"  events vs receive, CPU-bound: {statistics.median(events_rates):,.0f} vs "
              f"{statistics.median(receive_rates):,.0f} records/s (median; ratio per pair: "
              + ", ".join(f"{e / r:.0%}" for e, r in zip(events_rates, receive_rates)) + ")", flush=True)

        for size in [int(s) for s in args.memory_sizes.split(",") if s]:
            with EmulatorProcess("--profiles", "1000", "--events", str(int(size / EVENT_SHARE)),
                                 "--rate-limits", "off") as emulator:
                run = run_tap(f"memory-{size}", emulator.url, ("receive",), args.workers, workdir, paced=False)
            results["memory"][size] = {"peak_rss_mb": run.peak_rss_mb, **run.streams["receive"]}
            print(f"  peak RSS with {run.streams['receive']['records']:,} receive events: {run.peak_rss_mb:.0f} MB "
                  f"({rate(run.streams['receive']):,.0f} records/s)", flush=True)

        print(f"Phase 2: the sequential reader, realistic ({args.latency_ms} ms per request, Klaviyo's tiers)",
              flush=True)
        with EmulatorProcess(*emulator_size, *realistic) as emulator:
            run = run_tap("sequential", emulator.url, streams, 1, workdir)
        results["realistic"] = {"sequential": {"peak_rss_mb": run.peak_rss_mb, "streams": run.streams},
                                **results["realistic"]}
        print(f"  sequential done in {run.wall_seconds:.0f} s", flush=True)

    print()
    print("| reader | stream | records | records/s | requests | 429s | peak RSS | ceiling (records/s) | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, run in results["realistic"].items():
        for stream in streams:
            figures = run["streams"][stream]
            ceiling = min(rate_limit_ceiling(stream, figures["seconds"]), rate(results["cpu"][stream]))
            figures["ceiling"] = ceiling
            print(f"| {label} | {stream} | {figures['records']:,} | {rate(figures):,.0f} | {figures['requests']:,} | "
                  f"{figures['throttled']} | {run['peak_rss_mb']:.0f} MB | {ceiling:,.0f} | {rate(figures) / ceiling:.0%} |")
    print()
    for stream in streams:
        print(f"{stream}, per pair (concurrent / min(rate limits, CPU-bound) of the same pair): " + ", ".join(
            f"{rate(real.streams[stream]) / min(rate_limit_ceiling(stream, real.streams[stream]['seconds']), rate(cpu.streams[stream])):.0%}"
            for cpu, real in zip(cpu_runs, concurrent_runs)))
    cpu_receive = rate(results["cpu"]["receive"])
    print(f"\nCPU-bound receive: {cpu_receive:,.0f} events/s (median; runs: "
          + ", ".join(f"{r:,.0f}" for r in results["cpu"]["receive"]["rates"]) + "); peak RSS by size: "
          + ", ".join(f"{size:,} events {m['peak_rss_mb']:.0f} MB" for size, m in results["memory"].items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
