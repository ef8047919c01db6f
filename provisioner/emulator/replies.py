"""Graph-shaped answers for the emulator: the reply record, the error body, the request counters. No I/O.

Error body, as Graph writes it: {"error": {"code", "message", "innerError": {"request-id", "date"}}}.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


@dataclass
class Reply:
    status: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Stats:
    """What /_emulator/stats reports (CONTRACT §4 keys). `requests` counts top-level /v1.0 requests, `batches`
    the $batch envelopes among them, `subRequests` their sub-requests; `throttled` every 429 and `errors` every
    other answer >= 400, top level or sub-request (a $batch envelope answered 200 is not an error even when
    some of its sub-requests are); `byRoute` counts top-level requests and sub-requests by route template."""

    requests: int = 0
    batches: int = 0
    subRequests: int = 0  # the contract's spelling
    throttled: int = 0
    errors: int = 0
    byRoute: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "batches": self.batches, "subRequests": self.subRequests,
                "throttled": self.throttled, "errors": self.errors, "byRoute": dict(sorted(self.byRoute.items()))}

    def outcome(self, status: int) -> None:
        if status == 429:
            self.throttled += 1
        elif status >= 400:
            self.errors += 1


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def error_reply(status: int, code: str, message: str, request_id: str,
                headers: Mapping[str, str] | None = None) -> Reply:
    """Graph's error body: {"error": {"code", "message", "innerError": {"request-id", "date"}}}."""
    body = {"error": {"code": code, "message": message,
                      "innerError": {"date": _now(), "request-id": request_id}}}
    return Reply(status, orjson.dumps(body), {"Content-Type": JSON_TYPE, **dict(headers or {})})


def json_reply(obj: Any, status: int = 200) -> Reply:
    return Reply(status, orjson.dumps(obj), {"Content-Type": JSON_TYPE})
