"""singer-sdk's standard tap tests, run against the emulator."""

from __future__ import annotations

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from klaviyo_emulator import Account, Emulator
from tap_klaviyo.tap import TapKlaviyo
from tests.conftest import tap_config

# The standard suite needs its config when the class is built, so the emulator starts at import.
_EMULATOR = Emulator(Account.generate(seed=3, size="tiny"), rate_limits=False)
_EMULATOR.start()

TestTapKlaviyo = get_tap_test_class(
    tap_class=TapKlaviyo,
    config=tap_config(_EMULATOR),
    suite_config=SuiteConfig(max_records_limit=500, ignore_no_records=False),
)


def teardown_module() -> None:
    _EMULATOR.stop()
