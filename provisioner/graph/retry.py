"""Retry rules for Graph calls: what is retried, how long to wait, and the total budget. Pure.

One layer owns every retry: this one. msgraph's RetryHandler middleware stays in the chain but is switched
off (`RetryHandlerOption(should_retry=False)`, see transport.py), because it cannot see `$batch`
sub-responses, ignores 500/502, caps nothing in total, and would multiply with ours.

* Retried: 429 (throttled) and 503/504 (unavailable) for every request, top-level or `$batch` sub-request,
  honouring each `Retry-After`; 500/502 only for idempotent requests (GET, PATCH usageLocation, an
  `assignLicense` that only adds). An `assignLicense` that removes and answered 500 is not repeated: it may
  have happened, and a repeat would fail with a misleading "User does not have a corresponding license".
* Never retried: other 4xx (400 seats / usage location / rules, 401, 403, 404, 409) and 424, which only says
  that a dependency failed (the writer re-sends a 424'd action itself once its dependencies succeeded).
* Waits: `Retry-After` as given; without it, jittered exponential backoff. Every wait must end within
  `budget_s` of the start of the operation, else the request fails with what Graph last said.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

THROTTLED = 429
UNAVAILABLE = frozenset({503, 504})
INTERNAL = frozenset({500, 502})


@dataclass(frozen=True)
class RetryPolicy:
    """How our layer retries: an attempt cap per request and one wall-clock budget for waiting.

    budget_s: a retry is scheduled only if its wait ends within `budget_s` of the start of the operation.
    """

    budget_s: float = 300.0
    max_attempts: int = 10
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def is_retryable(self, status: int | None, *, idempotent: bool) -> bool:
        if status is None:
            return False
        if status == THROTTLED or status in UNAVAILABLE:
            return True
        return status in INTERNAL and idempotent

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
        """Seconds to wait after attempt number `attempt` (1-based) failed: Retry-After, else jittered backoff."""
        if retry_after is not None and retry_after > 0:
            return retry_after
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** max(0, attempt - 1)))
        r = (rng or random).random()
        return ceiling / 2 + r * ceiling / 2  # "equal jitter": never zero, never above the ceiling

    def may_retry(self, attempt: int, wait: float, elapsed: float) -> bool:
        """Whether attempt `attempt + 1` may happen after waiting `wait` s, `elapsed` s into the operation."""
        return attempt < self.max_attempts and elapsed + wait <= self.budget_s


def parse_retry_after(headers: Any) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP-date), or None when absent or unreadable.

    `headers` is any mapping or httpx.Headers; names compare case-insensitively.
    """
    if not headers:
        return None
    value = None
    for k, v in headers.items():
        if str(k).lower() == "retry-after":
            value = str(v).strip()
            break
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
