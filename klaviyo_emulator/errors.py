"""Klaviyo's JSON:API error documents."""

from __future__ import annotations

import uuid

import msgspec

TITLES = {
    400: "Invalid input.",
    401: "Authentication credentials were not provided.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    405: "Method not allowed.",
    415: "Unsupported media type.",
    429: "Request was throttled.",
    500: "A server error occurred.",
    502: "Bad gateway.",
    503: "Service unavailable.",
    504: "Gateway timeout.",
}


class ApiError(Exception):
    """An error response: raised anywhere in request handling, rendered once by the server."""

    def __init__(self, status: int, code: str, detail: str, source: dict | None = None, title: str | None = None, headers: dict | None = None):
        super().__init__(detail)
        self.headers = headers or {}
        self.status = status
        self.code = code
        self.detail = detail
        self.source = source
        self.title = title or TITLES.get(status, "Error.")

    def document(self) -> dict:
        """The body: a uuid, integer status and (except in the captured 429 body) empty links/meta."""
        error = {"id": str(uuid.uuid4()), "status": self.status, "code": self.code, "title": self.title, "detail": self.detail}
        if self.source is not None:
            error["source"] = self.source
        if self.code != "throttled":
            error["links"] = {}
            error["meta"] = {}
        return {"errors": [error]}


def invalid(detail: str, parameter: str) -> ApiError:
    """400 `invalid` pointing at a query parameter."""
    return ApiError(400, "invalid", detail, {"parameter": parameter})


def invalid_filter(reason: str) -> ApiError:
    return invalid(f"Invalid filter provided. {reason}", "filter")


def not_found(detail: str = "Not found.") -> ApiError:
    return ApiError(404, "not_found", detail)


def throttled(retry_after: int) -> ApiError:
    """The real 429 body (klaviyo-api-python#15)."""
    detail = f"Request was throttled. Expected available in {retry_after} seconds."
    return ApiError(429, "throttled", detail, {"pointer": "/data/"}, headers={"Retry-After": str(retry_after)})


def body_error(detail: str, pointer: str) -> ApiError:
    """A 400 for a request body, pointing at the offending member (JSON pointer)."""
    return ApiError(400, "invalid", detail, {"pointer": pointer})


def request_attributes(body: bytes, rtype: str, wrong_type: str) -> dict:
    """`data.attributes` of a JSON:API request body of type `rtype`; `wrong_type` is the 400's detail otherwise."""
    try:
        doc = msgspec.json.decode(body) if body else None
    except msgspec.DecodeError:
        raise ApiError(400, "parse_error", "Malformed request body: not valid JSON.") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise body_error("'data' is a required object.", "/data")
    if data.get("type") != rtype:
        raise body_error(wrong_type.format(given=data.get("type")), "/data/type")
    attrs = data.get("attributes")
    if not isinstance(attrs, dict):
        raise body_error("'attributes' is a required object.", "/data/attributes")
    return attrs
