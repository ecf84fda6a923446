"""A local emulator of the Klaviyo REST API (revision 2026-07-15, plus 2026-10-15 campaigns), for offline tests, benchmarks and demos."""

from .account import Account
from .faults import FaultPlan
from .server import Emulator, RequestRecord

__all__ = ["Account", "Emulator", "FaultPlan", "RequestRecord"]
