"""Print {stream: rows} that a full sync of an emulator account must produce, as JSON.

    python scripts/emulator_counts.py --seed 1 --size demo

Ground truth comes from the emulator's account (tests/tap_klaviyo/expected.py), not from the tap.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from klaviyo_emulator import Account  # noqa: E402
from tap_klaviyo.streams import STREAMS as TAP_STREAMS  # noqa: E402
from tests.tap_klaviyo.expected import expected_keys  # noqa: E402

STREAMS = tuple(stream.name for stream in TAP_STREAMS)  # every stream: the demo selects them all


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", default="demo")
    args = parser.parse_args()
    account = Account.generate(seed=args.seed, size=args.size)
    print(json.dumps({stream: len(expected_keys(account, stream)) for stream in STREAMS}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
