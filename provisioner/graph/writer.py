"""The Graph writer: executes plan actions as `$batch` requests, several in flight, one outcome per action.

Impure (network, through transport.py). What goes in which batch, and when, is schedule.py's (pure);
this module sends, reads each sub-response and retries throttled / transient sub-requests itself
(retry.py: honouring each Retry-After, jittered backoff, a bounded wait; never a 4xx verdict).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from provisioner.errors import GraphError
from provisioner.graph import failures
from provisioner.graph.outcome import ActionOutcome
from provisioner.graph.parse import user_from_json
from provisioner.graph.schedule import Batch, WriteSchedule, action_request, is_idempotent
from provisioner.graph.transport import Transport
from provisioner.model.observed import Sku
from provisioner.model.plan import Action

OnOutcome = Callable[[ActionOutcome], None]


class Writer:
    def __init__(
        self, transport: Transport, skus: Callable[[], tuple[Sku, ...] | None] = lambda: None
    ) -> None:
        self.t = transport
        self.skus = skus

    async def execute(
        self, actions: Sequence[Action], *, parallelism: int = 4, on_outcome: OnOutcome | None = None
    ) -> list[ActionOutcome]:
        sched = WriteSchedule(actions)
        running: dict[asyncio.Task[dict[str, dict[str, Any]]], Batch] = {}
        error: BaseException | None = None

        def emit() -> None:
            for o in sched.take_new_outcomes():
                if on_outcome is not None:
                    on_outcome(o)

        while not sched.done:
            now = time.monotonic()
            if error is None:
                for b in sched.next_batches(now, max(1, parallelism) - len(running)):
                    running[asyncio.ensure_future(self.t.batch(b.body()["requests"]))] = b
            emit()
            if not running:
                if error is not None:
                    break
                wake = sched.next_wake()
                if wake is None:
                    sched.stuck()
                    emit()
                    break
                await asyncio.sleep(max(0.0, wake - now))
                continue
            wake = sched.next_wake()
            timeout = max(0.0, wake - now) if wake is not None and error is None else None
            done, _ = await asyncio.wait(running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                batch = running.pop(task)
                exc = task.exception()
                if exc is not None:
                    # The whole batch failed past our retries (or auth): in-flight batches still report,
                    # nothing new is sent, and the error is raised once they are in.
                    error = error or exc
                    for a in batch.actions:
                        sched.in_flight.discard(a.id)
                    continue
                unsure = self._absorb(sched, batch, task.result())
                if unsure:
                    await self._settle(sched, unsure)
        emit()
        if error is not None:
            raise error
        return sched.outcomes()

    def _absorb(
        self, sched: WriteSchedule, batch: Batch, answers: dict[str, dict[str, Any]]
    ) -> list[tuple[Action, int, str | None, str, str | None]]:
        """Record each sub-response's verdict; return the refusals that an earlier attempt may explain (see
        _settle), as (action, status, code, message, request id), undecided."""
        unsure: list[tuple[Action, int, str | None, str, str | None]] = []
        now = time.monotonic()
        skus = {s.sku_id: s for s in (self.skus() or ())}
        for n, a in enumerate(batch.actions, start=1):
            sub = answers[str(n)]
            status = int(sub.get("status") or 0)
            headers = sub.get("headers") or {}
            rid = (
                failures.header(headers, "request-id")
                or failures.header(headers, "client-request-id")
                or sub.get("batchRequestId")
            )
            if 200 <= status < 300:
                sched.succeeded(a.id, status, rid)
                continue
            if status == 424:
                # Not run: an earlier request of the batch failed. Graph's verdict is for that one.
                if a.id not in sched.final:
                    sched.requeue(a.id)
                continue
            req = action_request(a)
            err = failures.from_sub_response(sub, method=req["method"], url=self.t.absolute(req["url"]))
            tries = sched.attempts[a.id]
            if self.t.policy.is_retryable(status, idempotent=is_idempotent(a)):
                delay = self.t.policy.delay(tries, err.retry_after, self.t.rng)
                if self.t.policy.may_retry(tries, delay, now - sched.first_try.get(a.id, now)):
                    self.t.log(f"{a.id}: HTTP {status}; retrying in {delay:.1f} s")
                    sched.retry_at(a.id, now + delay)
                    continue
                message = f"{err.graph_message} (gave up after {tries} attempt{'s' if tries != 1 else ''}). {err.hint}"
            else:
                plain = failures.plain_sentence(err.graph_message, skus)
                message = f"{plain} (Graph: {err.graph_message})" if plain else err.graph_message
                if tries > 1 and a.type == "assignLicenses" and a.remove and failures.not_held(err.graph_message):
                    # An earlier attempt got no answer (5xx, a dropped connection) and may have removed it
                    unsure.append((a, status, err.code, message, err.request_id or rid))
                    continue
            sched.failed(a.id, status, err.code, message, err.request_id or rid)
        return unsure

    async def _settle(
        self, sched: WriteSchedule, unsure: list[tuple[Action, int, str | None, str, str | None]]
    ) -> None:
        """A retried assignLicense refused because a license to remove is not held: when an earlier attempt was
        made but its answer lost, that is the call's own effect. Read the user: if every license to add is held
        directly and none to remove is, the call took effect (succeeded); else the refusal stands."""
        for a, status, code, message, rid in unsure:
            try:
                body = await self.t.get_json(
                    f"/users/{a.user_id}?$select=id,userPrincipalName,assignedLicenses,licenseAssignmentStates"
                )
                direct = {x.sku_id for x in user_from_json(body or {}).assignments if x.by_group is None}
            except (GraphError, KeyError, TypeError, ValueError):
                direct = None
            if direct is not None and all(r.sku_id.lower() in direct for r in a.add) and not any(
                r.sku_id.lower() in direct for r in a.remove
            ):
                self.t.log(f"{a.id}: refused on retry ({message}), but the user already has the result: succeeded")
                sched.succeeded(a.id, 200, rid)
            else:
                sched.failed(a.id, status, code, message, rid)
