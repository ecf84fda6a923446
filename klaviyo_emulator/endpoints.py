"""The endpoints the emulator serves, gathered from areas/, and routing.

Tables come from spec_tables.py (generated from endpoints-summary.json by
scripts/gen_emulator_tables.py) through `core.from_spec`; tests/klaviyo_emulator/
test_tables.py checks them against the summary and the generated module against
a fresh generation, so drift is caught.
"""

from __future__ import annotations

import re

from .areas import ENDPOINTS, Handlers
from .areas.messaging import OMNI_CAMPAIGNS, OMNI_ENDPOINTS
from .errors import not_found
from .core import OMNI_REVISION, Endpoint, FieldSpec, Query, matches, parse_query, predicate  # noqa: F401 (re-exported)

__all__ = ["ENDPOINTS", "OMNI_CAMPAIGNS", "ROUTES", "Endpoint", "FieldSpec", "Handlers", "Query", "match", "parse_query"]


def _route(path: str) -> re.Pattern:
    return re.compile("^" + path.replace("{id}", "(?P<id>[^/]+)") + "/?$")


ROUTES = tuple((_route(ep.path), ep) for ep in ENDPOINTS)
OMNI_ROUTES = tuple((_route(ep.path), ep) for ep in OMNI_ENDPOINTS)  # from 2026-10-15 only


def match(path: str, revision: str) -> tuple[Endpoint, str | None] | None:
    """The endpoint serving `path` (with or without trailing slash) at this revision, and the path id."""
    for pattern, ep in ROUTES:
        m = pattern.match(path)
        if m:
            if ep.operation == "get_campaigns" and revision >= OMNI_REVISION:
                ep = OMNI_CAMPAIGNS
            return ep, m.groupdict().get("id")
    for pattern, ep in OMNI_ROUTES:
        m = pattern.match(path)
        if m:
            if revision < OMNI_REVISION:
                raise not_found("No valid revisions found for method")
            return ep, m.groupdict().get("id")
    return None
