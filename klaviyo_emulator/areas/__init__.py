"""The emulator by Klaviyo area, mirroring the tap: each module holds its endpoint table entries, handlers and generators.

Adding an endpoint touches one module: a `from_spec(...)` entry in its ENDPOINTS (a POST query
endpoint: a `PostEndpoint` in its POST_ENDPOINTS),
a handler method on its handler class and, for new data, a generator on its
Account mixin.
"""

from __future__ import annotations

from . import audience, catalog, commerce, content, events, messaging, reports

AREAS = (audience, messaging, content, catalog, commerce, events)
ENDPOINTS = tuple(ep for area in AREAS for ep in area.ENDPOINTS)
POST_ENDPOINTS = {**events.POST_ENDPOINTS, **reports.POST_ENDPOINTS}  # path -> core.PostEndpoint


class Handlers(audience.AudienceHandlers, messaging.MessagingHandlers, content.ContentHandlers, catalog.CatalogHandlers, commerce.CommerceHandlers,
               events.EventsHandlers, reports.ReportsHandlers):
    """Render validated queries against an Account into JSON:API documents (bytes)."""
