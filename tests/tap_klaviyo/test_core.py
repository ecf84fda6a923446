"""singer-sdk's standard tap tests, run against the emulator."""

from __future__ import annotations

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from klaviyo_emulator import Account, Emulator
from tap_klaviyo.streams import REPORT_STREAMS, STREAMS
from tap_klaviyo.tap import TapKlaviyo
from tests.conftest import catalog_for, tap_config, with_reports

# The standard suite needs its config when the class is built, so the emulator starts at import.
_EMULATOR = Emulator(Account.generate(seed=3, size="tiny"), rate_limits=False)
_EMULATOR.start()

# Every stream, the opt-in report streams too (offered by report_streams, selected in the catalog): they need a conversion metric (the account
# has two "Placed Order"), and no client-side pacing at 2 requests a minute (the emulator has no limits here).
TestTapKlaviyo = get_tap_test_class(
    tap_class=TapKlaviyo,
    config=with_reports(tap_config(_EMULATOR, conversion_metric="shopify:Placed Order", respect_rate_limits=False)),
    suite_config=SuiteConfig(max_records_limit=500, ignore_no_records=False),
    catalog=catalog_for(*(stream.name for stream in (*STREAMS, *REPORT_STREAMS))),
)


def teardown_module() -> None:
    _EMULATOR.stop()
