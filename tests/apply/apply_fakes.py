"""Test doubles for apply's library tests: a plan builder and a fake tenant connection (no Graph, no emulator)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from provisioner.model.observed import Assignment, Sku, TenantInfo, User
from provisioner.model.plan import (
    Action,
    Diagnostic,
    LicenseRef,
    Plan,
    SeatPrecondition,
    UserChange,
    UserPrecondition,
    UserState,
)

TENANT = TenantInfo("11111111-1111-1111-1111-111111111111", "Contoso", ("contoso.com",))
EV = LicenseRef("e43b5b99-8dfb-405f-9987-dc307f34bcbd", "MCOEV")
DOM = LicenseRef("0dab259f-bf13-4952-b7f8-7db8f131b28d", "MCOPSTN1")
INTL = LicenseRef("d3b4fe1f-9992-4930-8acb-ca6ec609365e", "MCOPSTN2")
E3 = LicenseRef("6fd2c87f-b296-42f0-b197-1e91e994b900", "ENTERPRISEPACK")


def uid(name: str) -> str:
    return f"id-{name}"


def user(name: str, loc: str | None = "US", direct: Sequence[LicenseRef] = (E3,)) -> User:
    return User(
        uid(name), f"{name}@contoso.com", name.title(), True, loc, tuple(Assignment(r.sku_id) for r in direct)
    )


def sku(ref: LicenseRef, enabled: int, consumed: int, status: str = "Enabled") -> Sku:
    return Sku(ref.sku_id, ref.part_number, status, enabled, consumed)


def onboarding_plan(names: Sequence[str], **kw: Any) -> Plan:
    """Each user: set usage location (none → US), then assign MCOEV + MCOPSTN1 (depends on the first)."""
    actions: list[Action] = []
    pre: list[UserPrecondition] = []
    view: list[UserChange] = []
    for n in names:
        loc = Action(f"{n}-loc", "setUsageLocation", uid(n), f"{n}@contoso.com", None, "US")
        lic = Action(
            f"{n}-lic", "assignLicenses", uid(n), f"{n}@contoso.com", add=(EV, DOM), depends_on=(loc.id,)
        )
        actions += [loc, lic]
        pre.append(UserPrecondition(uid(n), f"{n}@contoso.com", None, (E3.sku_id,)))
        view.append(
            UserChange(
                f"{n}@contoso.com", uid(n), UserState(None, ()), UserState("US", ("MCOEV", "MCOPSTN1"))
            )
        )
    base = Plan(
        tenant_id=TENANT.id,
        tenant_name=TENANT.display_name,
        fingerprint="f",
        actions=tuple(actions),
        users=tuple(view),
        user_preconditions=tuple(pre),
        seat_preconditions=(
            SeatPrecondition(EV.sku_id, "MCOEV", len(names)),
            SeatPrecondition(DOM.sku_id, "MCOPSTN1", len(names)),
        ),
    )
    return replace(base, **kw)


def removal_plan(n_removals: int, max_removals: int = 10, diagnostics: Sequence[Diagnostic] = ()) -> Plan:
    actions = tuple(
        Action(f"r{i}", "assignLicenses", uid(f"u{i}"), f"u{i}@contoso.com", remove=(DOM,))
        for i in range(n_removals)
    )
    return Plan(TENANT.id, TENANT.display_name, "f", actions, tuple(diagnostics), max_removals=max_removals)


@dataclass(frozen=True)
class Outcome:
    """Shaped like provisioner.graph's ActionOutcome."""

    action_id: str
    status: str
    http_status: int | None = None
    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    attempts: int = 1


@dataclass
class FakeConnection:
    """Answers reads from fixed data; `execute` walks actions in order like the writer does.

    fail: action id -> (http status, code); dependents of a failure are reported as `dependent_status`
    (the real writer says skipped; Graph's raw $batch answer is a 424 failure).
    """

    tenant: TenantInfo = TENANT
    users: dict[str, User] = field(default_factory=dict)
    skus: tuple[Sku, ...] = ()
    fail: dict[str, tuple[int, str]] = field(default_factory=dict)
    dependent_status: str = "skipped"
    drop: set[str] = field(default_factory=set)  # action ids the writer "forgets" to report
    raise_after: int | None = None  # raise GraphError after this many outcomes
    also_return: bool = True  # return the outcomes as well as calling on_outcome (the writer does both)
    before_each: Callable[[str], None] | None = None
    executed: list[str] = field(default_factory=list)
    reads: list[tuple[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def tenant_info(self) -> TenantInfo:
        self.reads.append(("tenant", None))
        return self.tenant

    def read_users_by_id(self, ids: Sequence[str]) -> dict[str, User]:
        self.reads.append(("users", tuple(ids)))
        return {i: self.users[i] for i in ids if i in self.users}

    def read_skus(self) -> tuple[Sku, ...]:
        self.reads.append(("skus", None))
        return self.skus

    def read_stale_inputs(self, ids: Sequence[str]) -> tuple[TenantInfo, dict[str, User], tuple[Sku, ...]]:
        """As the real connection: tenant, users by id and SKUs in one combined read."""
        return self.tenant_info(), self.read_users_by_id(ids), self.read_skus()

    def execute(
        self, actions: Sequence[Action], *, parallelism: int = 4, on_outcome: Any = None
    ) -> list[Outcome]:
        from provisioner.errors import GraphError

        status: dict[str, str] = {}
        out: list[Outcome] = []
        for a in actions:
            if self.raise_after is not None and len(out) >= self.raise_after:
                raise GraphError(
                    "token expired", status=401, code="InvalidAuthenticationToken", request_id="rid-x"
                )
            if self.before_each:
                self.before_each(a.id)
            if any(status.get(d) != "succeeded" for d in a.depends_on):
                o = (
                    Outcome(a.id, "skipped", message="dependency failed")
                    if self.dependent_status == "skipped"
                    else Outcome(a.id, "failed", 424, "FailedDependency", "dependency failed", "rid-424")
                )
            elif a.id in self.fail:
                http, code = self.fail[a.id]
                o = Outcome(a.id, "failed", http, code, f"{code} for {a.upn}", f"rid-{a.id}", 3)
            else:
                self.executed.append(a.id)
                o = Outcome(
                    a.id, "succeeded", 204 if a.type == "setUsageLocation" else 200, request_id=f"rid-{a.id}"
                )
            status[a.id] = o.status
            if a.id in self.drop:
                continue
            out.append(o)
            if on_outcome:
                on_outcome(o)
        return out if self.also_return else []
