"""Seeded fault injection (latency, 429 throttling, 503 errors). Pure decisions plus one asyncio sleep.

Determinism: every decision draws exactly three numbers from one random.Random(seed), synchronously, in the
order requests reach the emulator, so the same seed and request sequence give the same faults.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class FaultConfig:
    latency_ms: float = 0
    throttle_rate: float = 0
    error_rate: float = 0
    seed: int = 0
    retry_after_s: int = 1
    # A write made, but its answer lost on the way back (a gateway timeout, 504): the caller cannot tell that
    # it happened. HTTP does not promise that a 5xx changed nothing; tests of the writer use it.
    lost_reply_rate: float = 0

    @property
    def active(self) -> bool:
        return bool(self.latency_ms or self.throttle_rate or self.error_rate or self.lost_reply_rate)


@dataclass(frozen=True)
class Fault:
    status: int  # 429 or 503
    code: str
    message: str
    headers: dict[str, str]


class FaultInjector:
    def __init__(self, config: FaultConfig | None) -> None:
        self.config = config or FaultConfig()
        self._rng = random.Random(self.config.seed)
        self._lost_rng = random.Random(self.config.seed + 1)  # its own draws: other faults repeat as before
        self.lost = 0  # answers lost so far

    def lose_reply(self) -> Fault | None:
        """After a write was made: whether its answer is lost (504, Graph's gateway timeout)."""
        if self.config.lost_reply_rate and self._lost_rng.random() < self.config.lost_reply_rate:
            self.lost += 1
            return Fault(504, "GatewayTimeout", "The gateway did not receive a timely response.", {})
        return None

    def decide(self) -> Fault | None:
        """Draw this request's fault (or None). Call once per top-level request and per batch sub-request."""
        c = self.config
        if not (c.throttle_rate or c.error_rate):
            return None
        throttle, error, with_retry = self._rng.random(), self._rng.random(), self._rng.random()
        if throttle < c.throttle_rate:
            # Graph's throttling answer (learn.microsoft.com/graph/throttling): 429 + Retry-After seconds.
            return Fault(429, "TooManyRequests", "Please retry again later.",
                         {"Retry-After": str(c.retry_after_s)})
        if error < c.error_rate:
            headers = {"Retry-After": str(c.retry_after_s)} if with_retry < 0.5 else {}
            return Fault(503, "serviceNotAvailable", "Service unavailable. Please retry later.", headers)
        return None

    async def delay(self, times: int = 1) -> None:
        if self.config.latency_ms > 0 and times > 0:
            await asyncio.sleep(times * self.config.latency_ms / 1000)
