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
   and the medians are compared. Each stream runs in its own tap process, so that the tap's CPU
   time per event (user + system time of that process alone, from wait4, never the emulator's)
   is the events' own. Peak RSS is read for two sizes of the event stream at each of
   `--rss-workers`. With `--baseline DIR` (another checkout, e.g. the previous commit), CPU-bound
   event runs of that tree and of this one alternate on one emulator: before and after, side by side.
2. The sequential reader (max_workers=1) once, in the same realistic setting.
3. Report: records/s, requests, 429s, peak RSS, and the ratio to the ceiling, where the ceiling
   is the lower of what the rate limits allow over the run's duration (burst and steady windows,
   times the page size) and the median CPU-bound rate of phase 1; for events also the tap's CPU
   per event and the rate against Klaviyo's sustained ceiling (3,500 requests a minute of 1,000).

Run: python benchmarks/bench.py            (defaults: about 15 minutes on 2 cores)
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
EVENTS_API_CEILING = 3500 / 60 * 1000  # events/s Klaviyo's steady limit allows: 3,500 requests a minute of 1,000


@dataclass
class Run:
    """One tap process: per-stream figures from its summary lines, its peak RSS and CPU time."""

    label: str
    streams: dict[str, dict]
    peak_rss_mb: float
    wall_seconds: float
    cpu_seconds: float  # user + system time of the tap process alone

    def cpu_us_per_record(self, stream: str) -> float:
        return self.cpu_seconds / max(self.streams[stream]["records"], 1) * 1e6


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
    label: str,
    url: str,
    streams: tuple[str, ...],
    workers: int,
    workdir: Path,
    *,
    paced: bool = True,
    tree: Path = REPO,
    **settings: t.Any,
) -> Run:
    """Run one sync with stdout to /dev/null; peak RSS and CPU time from wait4's rusage of that child alone.

    `paced=False` turns the tap's own rate limiting off, for the CPU-bound phase; `tree` is the
    checkout whose tap runs; `settings` go into the config.
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
            cwd=tree,
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
    return Run(label, found, usage.ru_maxrss / 1024, wall, usage.ru_utime + usage.ru_stime)


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


def cpu_figures(runs: list[Run], stream: str) -> dict:
    """Median tap CPU per record (µs) and records/s of `runs`, with every run's values (sorted)."""
    cpu = sorted(run.cpu_us_per_record(stream) for run in runs)
    rates = sorted(rate(run.streams[stream]) for run in runs)
    return {"cpu_us": statistics.median(cpu), "cpu_us_runs": cpu, "rate": statistics.median(rates), "rates": rates}


def describe_events(label: str, figures: dict) -> str:
    return (f"  {label}: {figures['cpu_us']:.1f} µs tap CPU per event (runs: "
            + ", ".join(f"{v:.1f}" for v in figures["cpu_us_runs"])
            + f"), {figures['rate']:,.0f} events/s = {figures['rate'] / EVENTS_API_CEILING:.0%} of Klaviyo's "
            f"{EVENTS_API_CEILING:,.0f} (runs: " + ", ".join(f"{r:,.0f}" for r in figures["rates"]) + ")")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--receive-events", type=int, default=300_000, help="events of the receive stream")
    parser.add_argument("--profiles", type=int, default=50_000)
    parser.add_argument("--latency-ms", type=int, default=150, help="added latency per request (realistic phase)")
    parser.add_argument("--workers", type=int, default=16, help="max_workers of the concurrent reader (the tap's default)")
    parser.add_argument("--memory-sizes", default="100000,1000000", help="receive-stream sizes for the RSS check")
    parser.add_argument("--rss-workers", default="16,64", help="max_workers values of the RSS check")
    parser.add_argument("--rss-streams", default="receive",
                        help="streams of the RSS check, e.g. receive,events (events: every metric, partitions read ahead)")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of CPU-bound and realistic concurrent runs; medians are compared")
    parser.add_argument("--baseline", type=Path, help="another checkout of tap-klaviyo: its CPU-bound event runs alternate with this tree's")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    total_events = int(args.receive_events / EVENT_SHARE)
    streams = ("receive", "profiles")
    results: dict = {"args": vars(args) | {"json": str(args.json), "baseline": str(args.baseline)},
                     "cpu": {}, "memory": {}, "realistic": {}, "events": {}}

    realistic = ("--rate-limits", "on", "--latency-ms", str(args.latency_ms))
    emulator_size = ("--profiles", str(args.profiles), "--events", str(total_events))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"Phase 1: {args.repeat} pairs of a CPU-bound run (no latency, no rate limits) and a realistic "
              f"concurrent run ({args.latency_ms} ms per request, Klaviyo's tiers); {args.receive_events:,} "
              f"receive events, {args.profiles:,} profiles; one tap process per stream", flush=True)
        cpu_runs: dict[str, list[Run]] = {stream: [] for stream in streams}
        concurrent_runs: dict[str, list[Run]] = {stream: [] for stream in streams}
        with EmulatorProcess(*emulator_size, "--rate-limits", "off") as unlimited:
            for pair in range(1, args.repeat + 1):
                for stream in streams:
                    cpu_runs[stream].append(run_tap("cpu-bound", unlimited.url, (stream,), args.workers, workdir, paced=False))
                with EmulatorProcess(*emulator_size, *realistic) as emulator:
                    for stream in streams:
                        concurrent_runs[stream].append(run_tap("concurrent", emulator.url, (stream,), args.workers, workdir))
                print(f"  pair {pair}: " + "; ".join(
                    f"{stream} {rate(cpu_runs[stream][-1].streams[stream]):,.0f} CPU-bound, "
                    f"{rate(concurrent_runs[stream][-1].streams[stream]):,.0f} concurrent records/s" for stream in streams)
                    + f"; receive {cpu_runs['receive'][-1].cpu_us_per_record('receive'):.1f} and "
                    f"{concurrent_runs['receive'][-1].cpu_us_per_record('receive'):.1f} µs tap CPU per event", flush=True)
            # What a tap process costs before its first record (imports, catalog, metrics): part of every run.
            startup = run_tap("startup", unlimited.url, ("metrics",), args.workers, workdir, paced=False).cpu_seconds
        for stream in streams:
            results["cpu"][stream] = median_figures([run.streams[stream] for run in cpu_runs[stream]])
            print(f"  {stream:9} {rate(results['cpu'][stream]):>10,.0f} records/s CPU-bound (tap ceiling; median)",
                  flush=True)
        results["realistic"]["concurrent"] = {
            "peak_rss_mb": max(run.peak_rss_mb for runs in concurrent_runs.values() for run in runs),
            "streams": {stream: median_figures([run.streams[stream] for run in concurrent_runs[stream]])
                        for stream in streams},
        }
        results["events"] = {"cpu-bound": cpu_figures(cpu_runs["receive"], "receive"),
                             "realistic": cpu_figures(concurrent_runs["receive"], "receive"),
                             "startup_cpu_seconds": startup}
        print(describe_events("CPU-bound", results["events"]["cpu-bound"]))
        print(describe_events("realistic", results["events"]["realistic"]))
        print(f"  (a tap process spends {startup:.2f} s of CPU before its first record; that is in every figure)")

        # The `events` stream reads the same Received Email events as `receive` (event_metrics), CPU-bound, in
        # interleaved pairs on one emulator: the same throughput per event is the goal.
        receive_rates, events_rates = [], []
        baseline_runs, tree_runs = [], []
        with EmulatorProcess(*emulator_size, "--rate-limits", "off") as unlimited:
            for _ in range(args.repeat):
                run = run_tap("receive", unlimited.url, ("receive",), args.workers, workdir, paced=False)
                receive_rates.append(rate(run.streams["receive"]))
                run = run_tap("events", unlimited.url, ("events",), args.workers, workdir, paced=False,
                              event_metrics=["klaviyo:Received Email"], late_event_days=0)
                events_rates.append(rate(run.streams["events"]))
            if args.baseline:
                print(f"Before and after, CPU-bound receive runs alternating: {args.baseline} and {REPO}", flush=True)
                for _ in range(args.repeat):
                    baseline_runs.append(run_tap("baseline", unlimited.url, ("receive",), args.workers, workdir,
                                                 paced=False, tree=args.baseline))
                    tree_runs.append(run_tap("this tree", unlimited.url, ("receive",), args.workers, workdir, paced=False))
        results["events_vs_receive"] = {"receive": receive_rates, "events": events_rates}
        print(f"  events vs receive, CPU-bound: {statistics.median(events_rates):,.0f} vs "
              f"{statistics.median(receive_rates):,.0f} records/s (median; ratio per pair: "
              + ", ".join(f"{e / r:.0%}" for e, r in zip(events_rates, receive_rates)) + ")", flush=True)
        if args.baseline:
            results["baseline"] = {"before": cpu_figures(baseline_runs, "receive"), "after": cpu_figures(tree_runs, "receive")}
            print(describe_events("before", results["baseline"]["before"]))
            print(describe_events("after ", results["baseline"]["after"]))

        for size in [int(s) for s in args.memory_sizes.split(",") if s]:
            with EmulatorProcess("--profiles", "1000", "--events", str(int(size / EVENT_SHARE)),
                                 "--rate-limits", "off") as emulator:
                for stream in [name for name in args.rss_streams.split(",") if name]:
                    for workers in [int(w) for w in args.rss_workers.split(",") if w]:
                        run = run_tap(f"memory-{size}-{workers}", emulator.url, (stream,), workers, workdir, paced=False)
                        label = f"{size} events" if stream == "receive" else f"{stream} of {size} receive events' account"
                        results["memory"][f"{label}, {workers} workers"] = {
                            "peak_rss_mb": run.peak_rss_mb, "cpu_us": run.cpu_us_per_record(stream), **run.streams[stream]}
                        print(f"  peak RSS with {run.streams[stream]['records']:,} events of {stream}, max_workers {workers}: "
                              f"{run.peak_rss_mb:.0f} MB ({rate(run.streams[stream]):,.0f} events/s, "
                              f"{run.cpu_us_per_record(stream):.1f} µs tap CPU per event)", flush=True)

        print(f"Phase 2: the sequential reader, realistic ({args.latency_ms} ms per request, Klaviyo's tiers)",
              flush=True)
        sequential: dict[str, Run] = {}
        with EmulatorProcess(*emulator_size, *realistic) as emulator:
            for stream in streams:
                sequential[stream] = run_tap("sequential", emulator.url, (stream,), 1, workdir)
        results["realistic"] = {
            "sequential": {"peak_rss_mb": max(run.peak_rss_mb for run in sequential.values()),
                           "streams": {stream: run.streams[stream] for stream, run in sequential.items()}},
            **results["realistic"],
        }
        print(f"  sequential done in {sum(run.wall_seconds for run in sequential.values()):.0f} s", flush=True)

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
            for cpu, real in zip(cpu_runs[stream], concurrent_runs[stream])))
    print()
    print("| events, receive stream | tap CPU per event | events/s | of Klaviyo's 58,333/s |")
    print("|---|---:|---:|---:|")
    for label, figures in results["events"].items():
        if isinstance(figures, dict):
            print(f"| {label} (median of {args.repeat}) | {figures['cpu_us']:.1f} µs | {figures['rate']:,.0f} | "
                  f"{figures['rate'] / EVENTS_API_CEILING:.0%} |")
    for label, memory in results["memory"].items():
        print(f"| {label} (CPU-bound) | {memory['cpu_us']:.1f} µs | {rate(memory):,.0f} | "
              f"{rate(memory) / EVENTS_API_CEILING:.0%} |")
    print("\nPeak RSS: " + ", ".join(f"{label}: {m['peak_rss_mb']:.0f} MB" for label, m in results["memory"].items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
