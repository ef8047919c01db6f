"""Fault injection: latency, 429 throttling (random, or a rate limit), 503 errors, lost answers. Decisions plus
one asyncio sleep.

Determinism: every random decision draws exactly three numbers from one random.Random(seed), synchronously, in
the order requests reach the emulator, so the same seed and request sequence give the same faults. The rate
limit is not random: a token bucket on the clock, as Graph throttles a client that sends more than its budget
(learn.microsoft.com/graph/throttling: each request of a JSON batch is evaluated against the limits on its own).
The n-th request still gets the n-th random verdict when the limit refuses some, but which requests arrive
(the retries of refused ones) then depends on the client's timing: with a rate limit that refuses requests,
a run repeats only as far as that timing does.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable
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
    # Requests per second the tenant accepts (a top-level request or a $batch sub-request each costs one; the
    # $batch envelope costs nothing), with a burst of one second's worth; beyond it 429 + Retry-After until the
    # budget refills. 0: no limit.
    rate_limit: float = 0

    @property
    def active(self) -> bool:
        return bool(self.latency_ms or self.throttle_rate or self.error_rate or self.lost_reply_rate
                    or self.rate_limit)


@dataclass(frozen=True)
class Fault:
    status: int  # 429 or 503
    code: str
    message: str
    headers: dict[str, str]


class FaultInjector:
    def __init__(self, config: FaultConfig | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or FaultConfig()
        self._rng = random.Random(self.config.seed)
        self._lost_rng = random.Random(self.config.seed + 1)  # its own draws: other faults repeat as before
        self.lost = 0  # answers lost so far
        self.rate_limited = 0  # requests refused by the rate limit so far
        self._clock = clock
        self._capacity = max(1.0, self.config.rate_limit)
        self._tokens = self._capacity
        self._stamp = clock()

    def lose_reply(self) -> Fault | None:
        """After a write was made: whether its answer is lost (504, Graph's gateway timeout)."""
        if self.config.lost_reply_rate and self._lost_rng.random() < self.config.lost_reply_rate:
            self.lost += 1
            return Fault(504, "GatewayTimeout", "The gateway did not receive a timely response.", {})
        return None

    def over_limit(self) -> Fault | None:
        """Take one request from the rate limit's budget; a 429 when none is left (the request is not run)."""
        rate = self.config.rate_limit
        if not rate:
            return None
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        self.rate_limited += 1
        wait = max(1, math.ceil((1 - self._tokens) / rate))  # Retry-After is whole seconds
        return Fault(429, "TooManyRequests", "Please retry again later.", {"Retry-After": str(wait)})

    def decide(self, counted: bool = True) -> Fault | None:
        """This request's fault (or None). Call once per top-level request and per batch sub-request; a $batch
        envelope passes `counted=False` (the rate limit counts the requests inside it)."""
        c = self.config
        # Drawn first, whatever the rate limit says: the n-th request to arrive gets the same random verdict.
        draws = (self._rng.random(), self._rng.random(), self._rng.random()) if c.throttle_rate or c.error_rate else None
        if counted:
            limited = self.over_limit()
            if limited is not None:
                return limited
        if draws is None:
            return None
        throttle, error, with_retry = draws
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
