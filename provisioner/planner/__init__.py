"""The planner: `plan(desired, observed, catalog) -> Plan`. Pure: no clock, no network, no globals.

    resolve (per user: wanted licenses and usage location, made safe)  -> resolve.py
    order   (calls per user, seats simulated across users, dependsOn)  -> order.py
    report  (seats, pools, per-user view, fingerprint, preconditions)  -> report.py

Everything the plan contains is sorted, and action ids ("a001", ...) follow the execution order, so the same
inputs always give the same plan, byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from provisioner.model.desired import Desired
from provisioner.model.observed import Observed
from provisioner.model.plan import Action, Diagnostic, LicenseRef, Plan
from provisioner.planner import messages as msg
from provisioner.planner import report
from provisioner.planner.order import Schedule, Step, schedule
from provisioner.planner.resolve import Resolver, Target
from provisioner.planner.tenant import CALLING_PLAN, TenantView

if TYPE_CHECKING:
    from provisioner.catalog import Catalog

__all__ = ["plan"]

_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


def plan(
    desired: Desired, observed: Observed, catalog: Catalog, group_names: Mapping[str, str] | None = None
) -> Plan:
    """Compare the manifests with the tenant; return the ordered, seat-safe plan and its diagnostics.

    `group_names` (group id -> display name) adds to `Observed.groups` for messages; groups show by id otherwise.
    """
    extra = frozenset(
        u.calling_plan[4:].upper()
        for u in desired.users
        if u.calling_plan and u.calling_plan.startswith("sku:")
    )
    view = TenantView(observed, catalog, extra)
    if group_names:
        view.groups.update({k.lower(): v for k, v in group_names.items()})
    fp = report.fingerprint(observed)
    diags: list[Diagnostic] = []
    tenant = observed.tenant
    if desired.tenant and not _tenant_matches(desired.tenant, observed):
        diags.append(
            Diagnostic(
                "error",
                "tenant-mismatch",
                msg.tenant_mismatch(
                    desired.tenant, tenant.id, tenant.display_name, sorted(tenant.verified_domains)
                ),
            )
        )
        return Plan(
            tenant.id,
            tenant.display_name,
            fp,
            diagnostics=tuple(diags),
            max_removals=desired.policy.max_removals,
        )

    resolver = Resolver(view, desired.policy, diags)
    declared = desired.by_key()
    targets: list[Target] = []
    for key in sorted(declared):
        du = declared[key]
        user = observed.users.get(key)
        if user is None:
            diags.append(Diagnostic("error", "user-not-found", msg.user_not_found(), du.upn, str(du.source)))
            continue
        targets.append(resolver.declared(du, user))
    if desired.policy.unlisted == "remove":
        for key in sorted(observed.users):
            if key not in declared:
                t = resolver.unlisted(observed.users[key])
                if t is not None:
                    targets.append(t)
    targets.sort(key=lambda t: t.key)

    sched = schedule(targets, view, observed)
    for t in sched.blocked:
        t.blocked = "blocked: not enough seats (see insufficient-seats)"
    actions = _actions(sched.steps, view)
    diags += _seat_diagnostics(view, sched)
    diags += _subscription_diagnostics(view, sched, resolver.inactive)
    diags += _assignment_error_diagnostics(view, observed, declared)
    planned = {t.key: t for t in targets}
    pools = report.pools(view, observed, planned)
    diags += _split_pool_diagnostics(view, pools)
    removals = sum(len(a.remove) for a in actions)
    if removals > desired.policy.max_removals:
        # A warning: apply enforces the limit (and --allow-removals lifts it); the plan itself is sound.
        diags.append(
            Diagnostic("warning", "removal-limit", msg.removal_limit(removals, desired.policy.max_removals))
        )
    diags = sorted(
        set(diags), key=lambda d: (_SEVERITY_RANK[d.severity], d.code, d.upn or "", d.source or "", d.message)
    )
    flagged = {d.upn.lower() for d in diags if d.upn}
    return Plan(
        tenant_id=tenant.id,
        tenant_name=tenant.display_name,
        fingerprint=fp,
        actions=actions,
        diagnostics=tuple(diags),
        seats=report.seat_lines(view, sched),
        pools=pools,
        users=report.user_changes(view, targets, observed, declared, flagged),
        max_removals=desired.policy.max_removals,
        user_preconditions=report.user_preconditions(targets),
        seat_preconditions=report.seat_preconditions(view, sched),
    )


def _tenant_matches(declared: str, observed: Observed) -> bool:
    want = declared.strip().lower()
    t = observed.tenant
    return want == t.id.lower() or want in {d.lower() for d in t.verified_domains}


def _actions(steps: list[Step], view: TenantView) -> tuple[Action, ...]:
    width = max(3, len(str(len(steps))))
    ids = [f"a{i + 1:0{width}d}" for i in range(len(steps))]

    def refs(skus: tuple[str, ...]) -> tuple[LicenseRef, ...]:
        return tuple(LicenseRef(s, view.part(s)) for s in skus)

    out = []
    for st in steps:
        u = st.target.user
        deps = tuple(ids[p] for p in sorted(st.deps))
        if st.type == "setUsageLocation":
            out.append(
                Action(
                    ids[st.position],
                    "setUsageLocation",
                    u.id,
                    u.upn,
                    u.usage_location,
                    st.target.location_to,
                    depends_on=deps,
                    reason=st.reason,
                )
            )
        else:
            out.append(
                Action(
                    ids[st.position],
                    "assignLicenses",
                    u.id,
                    u.upn,
                    add=refs(st.add),
                    remove=refs(st.remove),
                    depends_on=deps,
                    reason=st.reason,
                )
            )
    return tuple(out)


def _seat_diagnostics(view: TenantView, sched: Schedule) -> list[Diagnostic]:
    out = []
    for sku_id, need, free, freed, stuck in sched.problems:
        part = view.part(sku_id)
        who = ", ".join(_describe(st, view) for st in stuck[:10]) + (
            f" and {len(stuck) - 10} more" if len(stuck) > 10 else ""
        )
        head = f"not enough {part} seats: the plan needs {need}, {free} free, {freed} freed by this plan."
        if need > free + freed:
            text = (
                f"{head} Buy {need - free - freed} more in the Microsoft 365 admin center > Billing > Purchase services, "
                f"or assign fewer; "
                f"not planned: {who}."
            )
        else:
            splitters = sorted({st.target.user.upn for st in stuck if st.frees})
            text = (
                f"{head} The seats it frees are freed only by calls that themselves need a seat, so no order works: "
                f"{who}. Split it: first plan and apply with {', '.join(splitters) or 'those users'} dropping the "
                "license they give up (e.g. `callingPlan: none`), then apply the rest; or buy 1 more seat."
            )
        upn = stuck[0].target.user.upn if len(stuck) == 1 else None
        out.append(Diagnostic("error", "insufficient-seats", text, upn, None))
    return out


def _describe(st: Step, view: TenantView) -> str:
    parts = [f"+{view.part(s)}" for s in st.add] + [f"−{view.part(s)}" for s in st.remove]
    return f"{st.target.user.upn} ({' '.join(parts)})"


def _subscription_diagnostics(
    view: TenantView, sched: Schedule, inactive: dict[str, int]
) -> list[Diagnostic]:
    out = []
    for sku_id, n in sorted(inactive.items(), key=lambda kv: (view.part(kv[0]), kv[0])):
        info = view.skus[sku_id]
        out.append(
            Diagnostic(
                "error",
                "subscription-not-active",
                msg.subscription_not_active(info.part, info.sku.capability_status, n),
            )
        )
    for sku_id, n in sorted(sched.taken.items(), key=lambda kv: (view.part(kv[0]), kv[0])):
        held = view.skus.get(sku_id)
        if held is not None and held.sku.capability_status == "Warning":
            out.append(
                Diagnostic("warning", "subscription-not-active", msg.subscription_warning(held.part, n))
            )
    return out


def _assignment_error_diagnostics(view: TenantView, observed: Observed, declared: dict) -> list[Diagnostic]:  # type: ignore[type-arg]
    """Group assignments Graph marks in error (CountViolation, ...) for declared users: the drift view's "broken"."""
    out = []
    for key in sorted(declared):
        user = observed.users.get(key)
        if user is None:
            continue
        for a in user.assignments:
            if a.error and a.error != "None" and a.sku_id in view.managed:
                source = f"group '{view.group_name(a.by_group)}'" if a.by_group else "its direct assignment"
                out.append(
                    Diagnostic(
                        "warning",
                        "license-assignment-error",
                        msg.license_error(view.part(a.sku_id), source, a.error),
                        user.upn,
                        str(declared[key].source),
                    )
                )
    return out


def _split_pool_diagnostics(view: TenantView, pools: tuple) -> list[Diagnostic]:  # type: ignore[type-arg]
    by: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for p in pools:
        info = view.skus.get(p.sku_id)
        if (
            info is None
            or info.kind != CALLING_PLAN
            or info.plan_id is None
            or p.users_after == 0
            or not p.country
        ):
            continue
        by.setdefault((p.country, info.plan_id), []).append((p.part_number, p.users_after))
    out = []
    for (country, plan_id), skus in sorted(by.items()):
        if len(skus) > 1:
            parts = ", ".join(f"{part}: {n} users" for part, n in skus)
            out.append(Diagnostic("warning", "split-pool", msg.split_pool(country, plan_id, parts)))
    return out
