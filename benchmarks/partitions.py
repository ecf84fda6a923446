"""A large account's unchanged hourly run: partitions read concurrently vs one after another.

The account: 1,000 lists, 100 segments, 300 metrics, 200 flows with 1,000 actions (defaults; see
--help). An unchanged incremental run costs about one request per list, segment, metric and
changed flow action, so its wall time is round trips unless the partitions are read concurrently.

1. Prime: one full sync against an emulator without latency or limits, to get the STATE that an
   hourly run starts from.
2. From that STATE, against an emulator with 150 ms per request and Klaviyo's rate-limit tiers,
   one run with the concurrent partition reader (the default) and one with
   `concurrent_partitions: false`, interleaved `--repeat` times (the machine's speed drifts); a
   fresh emulator for each run, so no run inherits another's rate-limit windows.
3. Report per stream: requests, wall seconds (medians), and the floor the rate limits allow for
   that many requests (the earliest schedule within the burst and steady windows), and the floor
   that `max_workers` requests in flight at the latency allow.

Run: python benchmarks/partitions.py      (about 8 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import API_KEY, REPO, EmulatorProcess, catalog  # noqa: E402

STREAMS = ("lists", "list_members", "segments", "segment_members", "events", "flows", "flow_messages")
PARTITIONED = ("list_members", "segment_members", "events", "flow_messages")
# Klaviyo's tiers (burst per s, steady per min) of each stream's endpoint (tap_klaviyo/streams/).
TIERS = {"list_members": (75, 750), "segment_members": (75, 750), "events": (350, 3500), "flow_messages": (3, 60)}
SYNCED = re.compile(r"Stream (?P<stream>\S+) synced: (?P<records>\d+) records in (?P<seconds>[\d.]+) s .*?(?P<requests>\d+) requests")


def rate_limit_floor(requests: int, burst: int, steady: int) -> float:
    """Seconds from the first to the last of `requests` sends when none waits for an answer:
    each send at the earliest moment that keeps `burst` in any second and `steady` in any minute."""
    times: list[float] = []
    for k in range(requests):
        t = times[-1] if times else 0.0
        if k >= burst:
            t = max(t, times[k - burst] + 1.0)
        if k >= steady:
            t = max(t, times[k - steady] + 60.0)
        times.append(t)
    return times[-1] if times else 0.0


def run(url: str, workdir: Path, state: dict | None, **settings) -> tuple[dict, dict, float]:
    """One sync with stdout captured for its last STATE; per-stream figures from its summary lines."""
    config = {"api_key": API_KEY, "api_url": url, "request_timeout": 60, **settings}
    (workdir / "config.json").write_text(json.dumps(config))
    (workdir / "catalog.json").write_text(json.dumps(catalog(STREAMS)))
    argv = [sys.executable, "-m", "tap_klaviyo", "--config", str(workdir / "config.json"), "--catalog", str(workdir / "catalog.json")]
    if state is not None:
        (workdir / "state.json").write_text(json.dumps(state))
        argv += ["--state", str(workdir / "state.json")]
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, cwd=REPO, check=False)
    wall = time.monotonic() - started
    log = done.stderr.decode(errors="replace")
    if done.returncode != 0:
        raise RuntimeError(f"the tap failed:\n{log[-3000:]}")
    last = json.loads(done.stdout.splitlines()[-1])
    streams = {m["stream"]: {"requests": int(m["requests"]), "seconds": float(m["seconds"])} for m in SYNCED.finditer(log)}
    return last["value"], streams, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lists", type=int, default=1000)
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--metrics", type=int, default=300, help="metrics of the account (34 are standard or later ones)")
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--flow-actions", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=150)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=1, help="interleaved pairs of concurrent and sequential runs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    account = ["--size", "tiny", "--profiles", "20000", "--events", "100000", "--lists", str(args.lists),
               "--segments", str(args.segments), "--custom-metrics", str(args.metrics - 34), "--flows", str(args.flows),
               "--flow-actions", str(args.flow_actions)]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with EmulatorProcess(*account) as emulator:
            state, primed, _ = run(emulator.url, workdir, None, max_workers=args.workers, respect_rate_limits=False)
        print(f"primed: {sum(s['requests'] for s in primed.values())} requests", file=sys.stderr)
        results: dict[str, list] = {"concurrent": [], "sequential": []}
        for _ in range(args.repeat):
            for mode in results:
                realistic = [*account, "--latency-ms", str(args.latency_ms), "--rate-limits", "on"]
                with EmulatorProcess(*realistic) as emulator:
                    _, streams, wall = run(emulator.url, workdir, state, max_workers=args.workers,
                                           concurrent_partitions=mode == "concurrent")  # fmt: skip
                results[mode].append((streams, wall))
                print(f"{mode}: {wall:.1f} s", file=sys.stderr)
    report = {}
    for mode, runs in results.items():
        report[mode] = {
            "wall_seconds": statistics.median(wall for _, wall in runs),
            "streams": {
                name: {
                    "requests": runs[0][0][name]["requests"],
                    "seconds": statistics.median(streams[name]["seconds"] for streams, _ in runs),
                }
                for name in STREAMS if name in runs[0][0]
            },
        }
    latency = args.latency_ms / 1000
    print(f"\nUnchanged incremental run, {args.lists} lists, {args.segments} segments, {args.metrics} metrics, "
          f"{args.flows} flows / {args.flow_actions} actions; {args.latency_ms} ms per request, Klaviyo's tiers, "
          f"max_workers {args.workers}, medians of {args.repeat}:")  # fmt: skip
    print(f"{'stream':<16}{'requests':>9}{'sequential s':>14}{'concurrent s':>14}{'rate-limit floor s':>20}{'in-flight floor s':>19}")
    for name in STREAMS:
        if name not in report["concurrent"]["streams"]:
            continue
        requests = report["concurrent"]["streams"][name]["requests"]
        floors = ""
        if name in PARTITIONED:  # what the limits and max_workers in flight would allow these requests
            floor = rate_limit_floor(requests, *TIERS[name]) + latency
            in_flight = max(requests * latency / args.workers, latency)
            report["concurrent"]["streams"][name].update(rate_limit_floor=floor, in_flight_floor=in_flight)
            floors = f"{floor:>20.1f}{in_flight:>19.1f}"
        print(f"{name:<16}{requests:>9}{report['sequential']['streams'][name]['seconds']:>14.1f}"
              f"{report['concurrent']['streams'][name]['seconds']:>14.1f}{floors}")  # fmt: skip
    print(f"{'whole run':<16}{'':>9}{report['sequential']['wall_seconds']:>14.1f}{report['concurrent']['wall_seconds']:>14.1f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
