"""Which plan actions to send next, packed into `$batch` requests: the writer's state machine. Pure (no I/O, no clock).

Rules (CONTRACT §3, issue 4):
* Every `$batch` is fully parallel: no `dependsOn`. Graph refuses a batch that mixes `dependsOn` chains with
  independent requests ("Batch should be either fully sequential or fully parallel.", json-batching.md,
  graph-docs#16280), and one chain per batch would waste it. So a user has at most one action in flight: the
  next goes (in a later batch) once the one before is final, and a later action never overtakes an earlier one.
* The plan's `dependsOn` across users is honoured: an action is sent only after its dependencies
  succeeded; if one failed or was skipped, the action is skipped and never sent.
* Seat order: an action that adds SKU X waits until every earlier action (in plan order) that removes X
  has finished, so removals that free seats land before the adds that need them, whatever the plan's
  dependsOn says. This is ordering only: a failed removal does not skip the add (Graph judges the seats).
* A 424 from Graph means "not run, a dependency in this batch failed". The writer sends no `dependsOn`, so
  Graph has no reason to give one; should it, the action is sent again when its own dependencies all
  succeeded, and is never counted as a failure.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from provisioner.graph.outcome import ActionOutcome
from provisioner.model.plan import Action

BATCH_SIZE = 20


def action_request(action: Action) -> dict[str, Any]:
    """The `$batch` sub-request (without id/dependsOn) that performs one plan action."""
    uid = action.user_id
    if action.type == "setUsageLocation":
        return {
            "method": "PATCH",
            "url": f"/users/{uid}",
            "headers": {"Content-Type": "application/json"},
            "body": {"usageLocation": action.usage_location_to},
        }
    return {
        "method": "POST",
        "url": f"/users/{uid}/assignLicense",
        "headers": {"Content-Type": "application/json"},
        "body": {
            "addLicenses": [{"skuId": r.sku_id, "disabledPlans": []} for r in action.add],
            "removeLicenses": [r.sku_id for r in action.remove],
        },
    }


def is_idempotent(action: Action) -> bool:
    """Safe to repeat after an unknown outcome (500): setting a location, or adding licenses only."""
    return action.type == "setUsageLocation" or not action.remove


@dataclass
class Batch:
    """One `$batch` to send: the actions in it (at most one per user), in plan order; sub-request ids "1".."n"."""

    actions: list[Action] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        """Fully parallel (no `dependsOn`): Graph refuses a batch mixing chains and independent requests."""
        return {"requests": [{"id": str(i), **action_request(a)} for i, a in enumerate(self.actions, start=1)]}


LOOKAHEAD = 1000  # actions considered per packing call (see next_batches)


class WriteSchedule:
    """Tracks every action from pending to its one final ActionOutcome.

    `next_batches(now, slots)` hands out work (and marks it in flight); the writer then reports each
    sub-response with `succeeded` / `failed` / `retry_at` / `requeue`. New final outcomes come from
    `take_new_outcomes()`; `done` when every action has one.
    """

    def __init__(self, actions: Sequence[Action]) -> None:
        self.actions = list(actions)
        self.index = {a.id: i for i, a in enumerate(self.actions)}
        self.pending: set[str] = set(self.index)
        self.in_flight: set[str] = set()
        self.final: dict[str, ActionOutcome] = {}
        self.attempts: dict[str, int] = dict.fromkeys(self.index, 0)
        self.not_before: dict[str, float] = {}
        self.first_try: dict[str, float] = {}
        self._new: list[ActionOutcome] = []
        # per user, action ids in plan order
        self.by_user: dict[str, list[str]] = {}
        self._open_users: dict[str, None] | None = None  # users with actions not yet final, in plan order
        # Ready fragments pulled by earlier calls and not sent yet, per user. They stay ready: readiness only
        # grows (dependencies succeed, removals finish); an action that becomes final meanwhile (a skipped
        # dependent) drops its fragment. Keeping them is what makes each call cost what it sends.
        self._pool: dict[str, list[Action]] = {}
        self._pool_size = 0
        self.dependents: dict[str, list[str]] = {}
        for a in self.actions:
            self.by_user.setdefault(a.user_id, []).append(a.id)
            for d in a.depends_on:
                self.dependents.setdefault(d, []).append(a.id)
        # seat order: for each add of SKU X, the earlier removals of X
        removals_before: dict[str, list[str]] = {}
        self.after_removals: dict[str, tuple[str, ...]] = {}
        for a in self.actions:
            waits: list[str] = []
            for r in a.add:
                waits.extend(removals_before.get(r.sku_id.lower(), ()))
            self.after_removals[a.id] = tuple(dict.fromkeys(w for w in waits if w != a.id))
            for r in a.remove:
                removals_before.setdefault(r.sku_id.lower(), []).append(a.id)

    # -- state -----------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return len(self.final) == len(self.actions)

    def take_new_outcomes(self) -> list[ActionOutcome]:
        out, self._new = self._new, []
        return out

    def outcomes(self) -> list[ActionOutcome]:
        return [self.final[a.id] for a in self.actions if a.id in self.final]

    def _finish(self, outcome: ActionOutcome) -> None:
        aid = outcome.action_id
        if aid in self.final:
            return
        self.final[aid] = outcome
        self.pending.discard(aid)
        self.in_flight.discard(aid)
        self._new.append(outcome)
        if outcome.status != "succeeded":
            self._skip_dependents(aid)

    def _skip_dependents(self, failed_id: str) -> None:
        """Every pending action depending (transitively) on `failed_id` is skipped, never sent."""
        what = "was skipped" if self.final[failed_id].status == "skipped" else "failed"
        for aid in self.dependents.get(failed_id, ()):
            if aid in self.pending:
                sent_unrun = (
                    1 if aid in self.in_flight else 0
                )  # sent in the same batch, answered 424: not run
                self._finish(
                    ActionOutcome(
                        aid,
                        "skipped",
                        message=f"not attempted: it depends on {failed_id}, which {what}",
                        attempts=self.attempts[aid] - sent_unrun,
                    )
                )

    # -- results ---------------------------------------------------------------------------------------
    def succeeded(self, action_id: str, http_status: int, request_id: str | None) -> None:
        self._finish(
            ActionOutcome(
                action_id, "succeeded", http_status, request_id=request_id, attempts=self.attempts[action_id]
            )
        )

    def failed(
        self,
        action_id: str,
        http_status: int | None,
        code: str | None,
        message: str | None,
        request_id: str | None,
    ) -> None:
        self._finish(
            ActionOutcome(
                action_id, "failed", http_status, code, message, request_id, self.attempts[action_id]
            )
        )

    def retry_at(self, action_id: str, when: float) -> None:
        """Send again no earlier than `when` (throttled or transient)."""
        self.in_flight.discard(action_id)
        self.not_before[action_id] = when

    def requeue(self, action_id: str) -> None:
        """Not run (424 from an order-only chain): send again as soon as it is ready; not an attempt."""
        self.in_flight.discard(action_id)
        self.attempts[action_id] = max(0, self.attempts[action_id] - 1)

    def _status(self, action_id: str) -> str | None:
        o = self.final.get(action_id)
        return o.status if o else None

    # -- what to send ----------------------------------------------------------------------------------
    def _ready(self, aid: str, now: float, earlier_in_batch: set[str]) -> bool:
        if self.not_before.get(aid, 0.0) > now:
            return False
        a = self.actions[self.index[aid]]
        for d in a.depends_on:
            if d not in self.index or d in earlier_in_batch:
                continue  # unknown ids are not this run's business; same-batch deps run first (dependsOn)
            if self._status(d) != "succeeded":
                return False
        return all(w in self.final or w in earlier_in_batch for w in self.after_removals[aid])

    def _fragments(self, now: float) -> Iterator[list[Action]]:
        """Per user, its next action if it can go now (a list of one), users in plan order.

        Lazy, and users whose actions are all final are dropped for good, so a call costs what it yields
        plus the users in flight or waiting, not the whole plan (a full scan per batch is O(n²) per run).
        """
        if self._open_users is None:
            self._open_users = dict.fromkeys(self.by_user)
        finished: list[str] = []
        try:
            for user in self._open_users:
                if user in self._pool:
                    continue
                todo = [i for i in self.by_user[user] if i not in self.final]
                if not todo:
                    finished.append(user)
                    continue
                if any(i in self.in_flight for i in todo):
                    continue  # a user's actions never overtake each other
                if self._ready(todo[0], now, set()):
                    yield [self.actions[self.index[todo[0]]]]
        finally:
            for user in finished:
                del self._open_users[user]

    def next_batches(self, now: float, slots: int) -> list[Batch]:
        """Up to `slots` batches of ready actions (one per user, ≤ BATCH_SIZE each); marks them in flight.

        Ready actions wait in a pool (users in plan order) and fill the batches in that order, so batches come
        out full (≤ ceil(n/20) round trips in practice). An action that became final while pooled (a skipped
        dependent) is dropped when its turn comes: a call costs what it sends, not the pool's size.
        """
        if slots <= 0:
            return []
        # A bounded look-ahead: top the pool up (users in plan order) to LOOKAHEAD actions, or twice what the
        # free slots take; walking every waiting user on each call would be O(n²) over a run.
        wanted = max(2 * slots * BATCH_SIZE, LOOKAHEAD)
        if self._pool_size < wanted:
            for frag in self._fragments(now):
                self._pool[frag[0].user_id] = frag
                self._pool_size += len(frag)
                if self._pool_size >= wanted:
                    break
        batches: list[Batch] = []
        room = slots * BATCH_SIZE
        taken: list[str] = []
        for user, frag in self._pool.items():
            if room == 0:
                break
            taken.append(user)
            if any(a.id in self.final or a.id in self.in_flight for a in frag):
                continue  # final meanwhile (skipped): dropped
            if not batches or len(batches[-1].actions) + len(frag) > BATCH_SIZE:
                batches.append(Batch())
            batches[-1].actions.extend(frag)
            room -= len(frag)
        for user in taken:
            self._pool_size -= len(self._pool.pop(user))
        for b in batches:
            b.actions.sort(key=lambda a: self.index[a.id])  # plan order inside the batch (each user's stays)
            for a in b.actions:
                self.in_flight.add(a.id)
                self.attempts[a.id] += 1
                self.first_try.setdefault(a.id, now)
        return batches

    def next_wake(self) -> float | None:
        """The earliest time a waiting (throttled) action may go again, if any."""
        times = [t for aid, t in self.not_before.items() if aid in self.pending and aid not in self.in_flight]
        return min(times) if times else None

    def stuck(self) -> None:
        """Nothing in flight and nothing can ever become ready: skip the rest (a dependency cycle)."""
        for a in self.actions:
            if a.id in self.pending:
                self._finish(
                    ActionOutcome(
                        a.id,
                        "skipped",
                        message="not attempted: its dependencies can never be met (cycle)",
                        attempts=self.attempts[a.id],
                    )
                )
