"""`python -m tap_klaviyo`."""

from tap_klaviyo.tap import TapKlaviyo

TapKlaviyo.cli()
