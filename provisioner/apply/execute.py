"""Run a plan's actions through the Graph writer and collect the outcome of each. Talks to Graph via `conn`.

The writer packs actions into $batch requests honouring `dependsOn`, retries throttling, and skips the
dependents of a failed action. This module adds what a run needs around it: each outcome reaches the audit
log (durably) and the progress reporter the moment it arrives; every action ends with exactly one outcome;
and a dependent whose prerequisite did not succeed is reported as skipped, never as a failure of its own.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from provisioner.apply.audit import AuditLog, utc_now
from provisioner.apply.progress import NullProgress, Progress
from provisioner.errors import ProvisionerError
from provisioner.model.plan import Action, Plan

STATUSES = ("succeeded", "failed", "skipped")


@dataclass(frozen=True)
class ActionResult:
    """The outcome of one planned action."""

    action: Action
    status: str  # succeeded | failed | skipped
    http_status: int | None = None
    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    attempts: int = 0

    @property
    def what(self) -> str:
        """What was attempted, in words: `set usage location US → GB`, `assign +MCOEV +MCOPSTN1, remove −X`."""
        a = self.action
        if a.type == "setUsageLocation":
            return f"set usage location {a.usage_location_from or '(none)'} → {a.usage_location_to}"
        parts = [f"+{r.part_number}" for r in a.add] + [f"−{r.part_number}" for r in a.remove]
        return "assignLicenses " + " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "actionId": self.action.id,
            "type": self.action.type,
            "user": {"id": self.action.user_id, "upn": self.action.upn},
            "status": self.status,
            "httpStatus": self.http_status,
            "code": self.code,
            "message": self.message,
            "requestId": self.request_id,
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class ApplyResult:
    tenant_id: str
    tenant_name: str
    results: tuple[ActionResult, ...]  # in plan order
    elapsed_seconds: float = 0.0
    error: str | None = None  # the run stopped early (e.g. auth lost); `results` says what is known

    @property
    def ok(self) -> bool:
        return self.error is None and all(r.status == "succeeded" for r in self.results)

    def counts(self) -> dict[str, dict[str, int]]:
        """{action type: {succeeded, failed, skipped}}, types sorted."""
        c = Counter((r.action.type, r.status) for r in self.results)
        types = sorted({r.action.type for r in self.results})
        return {t: {s: c[(t, s)] for s in STATUSES} for t in types}

    def totals(self) -> dict[str, int]:
        c = Counter(r.status for r in self.results)
        return {s: c[s] for s in STATUSES}

    @property
    def failures(self) -> tuple[ActionResult, ...]:
        return tuple(r for r in self.results if r.status == "failed")

    @property
    def skipped(self) -> tuple[ActionResult, ...]:
        return tuple(r for r in self.results if r.status == "skipped")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tenant": {"id": self.tenant_id, "displayName": self.tenant_name},
            "summary": {**self.totals(), "actions": len(self.results), "byType": self.counts()},
            "elapsedSeconds": round(self.elapsed_seconds, 3),
            "error": self.error,
            "outcomes": [r.to_dict() for r in self.results],
        }


def execute(
    plan: Plan,
    conn: Any,
    *,
    parallelism: int = 4,
    audit: AuditLog | None = None,
    progress: Progress | None = None,
) -> ApplyResult:
    """Apply `plan.actions` (in plan order, dependsOn respected by the writer) and return every outcome."""
    actions = plan.actions
    by_id = {a.id: a for a in actions}
    progress = progress or NullProgress()
    results: dict[str, ActionResult] = {}
    lock = threading.Lock()
    states = _StateTracker(plan)
    started = time.monotonic()

    def record(r: ActionResult) -> None:
        with lock:
            if r.action.id in results:  # one outcome per action, whatever the writer reports twice
                return
            r = _as_skipped_if_blocked(r, results)
            results[r.action.id] = r
            if audit is not None:
                audit.write(_audit_record(plan, r, states))
            progress.advance(r.action.upn, r.action.type, r.status, _short(r))

    def on_outcome(o: Any) -> None:
        action = by_id.get(str(getattr(o, "action_id", "")))
        if action is not None:
            record(_from_outcome(action, o))

    error: str | None = None
    progress.start(len(actions))
    try:
        if actions:
            returned = conn.execute(list(actions), parallelism=parallelism, on_outcome=on_outcome)
            for o in returned or ():
                on_outcome(o)
    except ProvisionerError as exc:
        # Actions in flight may or may not have happened; say so, and let the next plan tell.
        error = str(exc)
    finally:
        progress.stop()
    for a in actions:
        if a.id not in results:
            why = (
                f"not confirmed: the run stopped ({error.splitlines()[0]})"
                if error
                else "the writer reported no outcome for this action"
            )
            r = ActionResult(a, "skipped", message=why)
            results[a.id] = _as_skipped_if_blocked(r, results)
    return ApplyResult(
        tenant_id=plan.tenant_id,
        tenant_name=plan.tenant_name,
        results=tuple(results[a.id] for a in actions),
        elapsed_seconds=time.monotonic() - started,
        error=error,
    )


def _from_outcome(action: Action, o: Any) -> ActionResult:
    status = str(getattr(o, "status", "failed"))
    if status not in STATUSES:
        status = "failed"
    return ActionResult(
        action=action,
        status=status,
        http_status=getattr(o, "http_status", None),
        code=getattr(o, "code", None),
        message=getattr(o, "message", None) or getattr(o, "description", None),
        request_id=getattr(o, "request_id", None),
        attempts=int(getattr(o, "attempts", 0) or 0),
    )


def _as_skipped_if_blocked(r: ActionResult, known: dict[str, ActionResult]) -> ActionResult:
    """A dependent whose prerequisite failed was never tried: it is skipped, not failed (Graph says 424)."""
    if r.status == "succeeded":
        return r
    blocked = [d for d in r.action.depends_on if d in known and known[d].status != "succeeded"]
    if not blocked and r.http_status != 424:
        return r
    dep = blocked[0] if blocked else (r.action.depends_on[0] if r.action.depends_on else "?")
    dep_what = known[dep].what if dep in known else dep
    return ActionResult(
        r.action, "skipped", r.http_status, r.code,
        f"not attempted: it depends on {dep} ({dep_what}), which did not succeed",
        r.request_id, r.attempts,
    )  # fmt: skip


def _short(r: ActionResult) -> str:
    if r.status == "succeeded":
        return ""
    bits = [f"HTTP {r.http_status}" if r.http_status else "", r.code or ""]
    head = " ".join(b for b in bits if b)
    return f"{head}: {r.message}" if head and r.message else (head or r.message or "")


class _StateTracker:
    """Each user's state before and after each of its actions, walking the plan in order (for the audit log).

    Licenses are the user's managed licenses from the plan's per-user view, else the directly assigned ones its
    preconditions recorded; when the plan knows neither, the record carries the change itself (action.add/remove).
    """

    def __init__(self, plan: Plan) -> None:
        names = {r.sku_id.lower(): r.part_number for a in plan.actions for r in (*a.add, *a.remove)}
        names.update({s.sku_id.lower(): s.part_number for s in plan.seats if s.sku_id})
        names.update({s.sku_id.lower(): s.part_number for s in plan.seat_preconditions})
        loc: dict[str, str | None] = {}
        lic: dict[str, set[str]] = {}
        for p in plan.user_preconditions:
            loc[p.user_id] = p.usage_location
            lic[p.user_id] = {names.get(s.lower(), s) for s in p.direct_sku_ids}
        for u in plan.users:  # preferred: managed licenses by name, what this tool changes
            loc[u.user_id] = u.before.usage_location
            lic[u.user_id] = set(u.before.licenses)
        self._states: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for a in plan.actions:
            if a.type == "setUsageLocation":
                before_loc = loc.get(a.user_id, a.usage_location_from)
                loc[a.user_id] = a.usage_location_to
                self._states[a.id] = ({"usageLocation": before_loc}, {"usageLocation": a.usage_location_to})
            elif a.user_id in lic:
                held = lic[a.user_id]
                after = (held | {r.part_number for r in a.add}) - {r.part_number for r in a.remove}
                lic[a.user_id] = after
                self._states[a.id] = ({"licenses": sorted(held)}, {"licenses": sorted(after)})

    def get(self, action_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._states.get(action_id, ({}, {}))


def _audit_record(plan: Plan, r: ActionResult, states: _StateTracker) -> dict[str, Any]:
    a = r.action
    before, after = states.get(a.id)
    if r.status != "succeeded":
        after = before  # a failed or skipped change changed nothing: the record says what the user has
    return {
        "time": utc_now(),
        "tenant": {"id": plan.tenant_id, "displayName": plan.tenant_name},
        "user": {"id": a.user_id, "upn": a.upn},
        "action": _action_record(a),
        "before": before,
        "after": after,
        "outcome": r.status,
        "httpStatus": r.http_status,
        "code": r.code,
        "message": r.message,
        "requestId": r.request_id,
        "attempts": r.attempts,
    }


def _action_record(a: Action) -> dict[str, Any]:
    d: dict[str, Any] = {"id": a.id, "type": a.type}
    if a.type == "setUsageLocation":
        d["usageLocation"] = {"from": a.usage_location_from, "to": a.usage_location_to}
    else:
        d["add"] = [r.part_number for r in a.add]
        d["remove"] = [r.part_number for r in a.remove]
    return d
