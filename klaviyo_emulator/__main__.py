"""Command line: `klaviyo-emulator --port 0` prints its base URL as the first stdout line, then serves until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time

from .account import PRESETS, SIZES, Account
from .faults import FaultPlan
from .server import Emulator


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="klaviyo-emulator", description="Serve a synthetic Klaviyo account over the Klaviyo REST API.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--size", choices=sorted(PRESETS), default="tiny")
    p.add_argument("--profiles", type=int, help="override the preset's profile count")
    p.add_argument("--events", type=int, help="override the preset's event count")
    for name in SIZES:
        p.add_argument("--" + name.replace("_", "-"), type=int, help=f"override the preset's {name.replace('_', ' ')} count")
    p.add_argument("--rate-limits", choices=("on", "off"), default="off")
    p.add_argument("--rate-limit-scale", type=float, default=1.0)
    p.add_argument("--latency-ms", type=float, default=0)
    p.add_argument("--fault-seed", type=int, default=0)
    p.add_argument("--error-rate", type=float, default=0.0, help="probability that a request starts a burst of 5xx")
    p.add_argument("--error-burst", type=int, default=1)
    p.add_argument("--reset-rate", type=float, default=0.0)
    p.add_argument("--truncate-rate", type=float, default=0.0)
    p.add_argument("--stall-rate", type=float, default=0.0)
    p.add_argument("--stall-seconds", type=float, default=5.0)
    p.add_argument("--outage", action="store_true", help="answer 503 to everything")
    p.add_argument("--forbidden-key-prefix", default="pk_noscope_", help="API keys with this prefix get 403")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    sizes = {name: getattr(args, name) for name in SIZES}
    account = Account.generate(seed=args.seed, size=args.size, profiles=args.profiles, events=args.events, **sizes)
    logging.getLogger("klaviyo_emulator").info("account built in %.2fs", time.perf_counter() - started)
    faulty = any((args.error_rate, args.reset_rate, args.truncate_rate, args.stall_rate, args.outage))
    plan = (
        FaultPlan(seed=args.fault_seed, error_rate=args.error_rate, burst=args.error_burst, reset_rate=args.reset_rate,
                  truncate_rate=args.truncate_rate, stall_rate=args.stall_rate, stall_seconds=args.stall_seconds, outage=args.outage)
        if faulty else None
    )  # fmt: skip
    emulator = Emulator(
        account, rate_limits=args.rate_limits == "on", rate_limit_scale=args.rate_limit_scale, latency_ms=args.latency_ms,
        faults=plan, forbidden_key_prefix=args.forbidden_key_prefix or None, host=args.host, port=args.port,
    )  # fmt: skip
    emulator.start()
    print(emulator.base_url, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
