"""The planner: `plan(desired, observed, catalog) -> Plan`. Pure: no clock, no network, no globals.

    resolve (per user: wanted licenses and usage location, made safe)  -> resolve.py
    order   (calls per user, seats simulated across users, dependsOn)  -> order.py
    report  (seats, pools, per-user view, fingerprint, preconditions)  -> report.py

Everything the plan contains is sorted, and action ids ("a001", ...) follow the execution order, so the same
inputs always give the same plan, byte for byte.

Decisions worth knowing: the diff is set arithmetic on SKU ids per user (deepdiff would add cost at 100,000
users and nothing a two-set before/after needs); `removal-limit` is a warning here because apply enforces the
limit and `--allow-removals` lifts it; a user some error concerns gets no partial license change that could
break Graph's rules, and users no seat order can serve are left out whole (insufficient-seats says who).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from provisioner.model.desired import Desired, DesiredUser
from provisioner.model.observed import Observed, Sku
from provisioner.model.plan import Action, Diagnostic, LicenseRef, Plan
from provisioner.planner import messages as msg
from provisioner.planner import report
from provisioner.planner.order import Schedule, Step, schedule
from provisioner.planner.resolve import Resolver, Target
from provisioner.planner.tenant import CALLING_PLAN, TenantView

if TYPE_CHECKING:
    from provisioner.catalog import Catalog

__all__ = ["calling_plan_sku_ids", "managed_sku_ids", "plan"]

_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


def plan(
    desired: Desired, observed: Observed, catalog: Catalog, group_names: Mapping[str, str] | None = None
) -> Plan:
    """Compare the manifests with the tenant; return the ordered, seat-safe plan and its diagnostics.

    `group_names` (group id -> display name) adds to `Observed.groups` for messages; groups show by id otherwise.

    A partial read (`observed.complete_for_managed` False: the named users only) plans the same as a full one
    when it carries `holder_counts`: the minute pools and split-pool warnings come from the counts. One thing
    it cannot know: `unlisted: remove` (refused here; the pipeline reads every holder for it). Group members
    waiting in CountViolation need not be read: a seat the plan frees is free (they get one only when their
    group is reprocessed). Apply re-checks seats, and Graph refuses an add it has no seat for.
    """
    if desired.policy.unlisted == "remove" and not observed.complete_for_managed:
        raise ValueError("policy.unlisted: remove needs every holder of a managed SKU read (a complete read)")
    view = TenantView(observed, catalog, _sku_refs(desired))
    if group_names:
        view.groups.update({k.lower(): v for k, v in group_names.items()})
    view.index(observed.users)
    fp = report.fingerprint(observed, view.by_key)
    # Manifest problems the loader left to the plan (a user declared twice: the first entry is planned).
    diags: list[Diagnostic] = [Diagnostic("error", d.code, d.message, d.upn, d.source) for d in desired.deferred]
    tenant = observed.tenant
    if desired.tenant and not _tenant_matches(desired.tenant, observed):
        diags.append(
            Diagnostic(
                "error",
                "tenant-mismatch",
                msg.tenant_mismatch(
                    desired.tenant, tenant.id, tenant.display_name, sorted(tenant.verified_domains)
                ),
                None,
                str(desired.tenant_source) if desired.tenant_source is not None else None,
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
    declared: dict[str, DesiredUser] = {}  # desired.by_key(), built on the way
    targets: list[Target] = []
    licenses = view.by_key
    for du in desired.users:  # sorted by key (Desired's invariant)
        key = du.key
        declared[key] = du
        user = observed.users.get(key)
        if user is None:
            diags.append(Diagnostic("error", "user-not-found", msg.user_not_found(), du.upn, str(du.source)))
            continue
        t = resolver.declared(du, user, licenses[key])
        if t is not None and t.changes:
            targets.append(t)
    if desired.policy.unlisted == "remove":
        for key in sorted(observed.users):
            if key not in declared:
                gone = resolver.unlisted(observed.users[key])
                if gone is not None:
                    targets.append(gone)
    targets.sort(key=lambda t: t.key)

    sched = schedule(targets, view)
    for t in sched.blocked:
        t.blocked = "blocked: not enough seats (insufficient-seats)"
    actions = _actions(sched.steps, view)
    diags += _seat_diagnostics(view, sched)
    diags += _subscription_diagnostics(view, sched, resolver.inactive)
    # Declared users Graph shows an assignment error for (CountViolation, ...): the drift view's "broken".
    errored = (
        {key for key in declared if (lic := licenses.get(key)) is not None and lic.has_error}
        if view.errors
        else set()
    )
    diags += _assignment_error_diagnostics(view, observed, declared, errored)
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
        users=report.user_changes(view, targets, observed, declared, flagged | errored),
        max_removals=desired.policy.max_removals,
        user_preconditions=report.user_preconditions(view, targets),
        seat_preconditions=report.seat_preconditions(view, sched),
    )


def managed_sku_ids(skus: Iterable[Sku], catalog: Catalog, desired: Desired | None = None) -> list[str]:
    """The ids of the SKUs this tool manages, sorted: what the Graph reader reads every holder of.

    The catalog's classes (Phone System add-ons, Calling Plans, Communications Credits), plus SKUs the
    manifests name with `callingPlan: sku:<skuPartNumber>` (a Calling Plan the catalog does not know).
    """
    extra = _sku_refs(desired) if desired is not None else frozenset()
    out = []
    for s in skus:
        names = [p.name for p in s.service_plans]
        if catalog.classify_sku(s.part_number, names) is not None or s.part_number.upper() in extra:
            out.append(s.sku_id)
    return sorted(out)


def calling_plan_sku_ids(skus: Iterable[Sku], catalog: Catalog, desired: Desired | None = None) -> list[str]:
    """The ids of the tenant's Calling Plan SKUs, sorted, exactly as the planner classifies them: the SKUs whose
    holders a partial read counts per country for the minute pools (Observed.holder_counts)."""
    from provisioner.model.observed import TenantInfo

    extra = _sku_refs(desired) if desired is not None else frozenset()
    view = TenantView(Observed(TenantInfo("", ""), tuple(skus), {}), catalog, extra)
    return sorted(view.calling_plans)


def _sku_refs(desired: Desired) -> frozenset[str]:
    """Part numbers named by `callingPlan: sku:<part>`, upper case. The distinct values first: few, and
    100,000 users share them."""
    plans = {u.calling_plan for u in desired.users}
    return frozenset(p[4:].upper() for p in plans if p and p.startswith("sku:"))


def _tenant_matches(declared: str, observed: Observed) -> bool:
    want = declared.strip().lower()
    t = observed.tenant
    return want == t.id.lower() or want in {d.lower() for d in t.verified_domains}


def _actions(steps: list[Step], view: TenantView) -> tuple[Action, ...]:
    width = max(3, len(str(len(steps))))
    ids = [f"a{i + 1:0{width}d}" for i in range(len(steps))]
    known = {s: LicenseRef(s, info.part) for s, info in view.skus.items()}  # shared: frozen, and few distinct

    def refs(skus: tuple[str, ...]) -> tuple[LicenseRef, ...]:
        if not skus:
            return ()
        return tuple([known[s] if s in known else LicenseRef(s, view.part(s)) for s in skus])

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
    for sku_id, need, free, freed, stuck, freers in sched.problems:
        part = view.part(sku_id)
        who = _listing_steps(stuck, view)
        head = f"not enough {part} seats: the plan needs {need}, {free} free, {freed} freed by this plan."
        if need > free + freed or not freers:
            text = (
                f"{head} Buy {max(1, need - free - freed)} more in the Microsoft 365 admin center > Billing > "
                f"Purchase services, or assign fewer. Not planned: {who}."
            )
        else:
            givers = sorted({st.target.user.upn for st in freers})
            text = (
                f"{head} Those seats are freed only by calls that themselves wait for a seat "
                f"({_listing_steps(freers, view)}), so no order works for {who}. "
                f"Split it: first plan and apply with {_listing(givers)} giving up {part} (e.g. `callingPlan: none`), "
                f"then plan and apply again; or buy 1 more {part} seat."
            )
        # One user left out: the diagnostic is theirs (upn and manifest line). Several: it names no single user,
        # and the message says how many it concerns.
        upn, where = (stuck[0].target.user.upn, _source_of(stuck[0])) if len(stuck) == 1 else (None, None)
        if upn is None:
            text += f" It concerns {len(stuck)} users" + (", all named above." if len(stuck) <= 10 else ".")
        out.append(Diagnostic("error", "insufficient-seats", text, upn, where))
    return out


def _source_of(st: Step) -> str | None:
    declared = st.target.declared
    return str(declared.source) if declared is not None else None


def _listing(items: list[str], limit: int = 10, total: int | None = None) -> str:
    """The first `limit` items, and how many more of `total` (default: len(items)) are not named."""
    more = (len(items) if total is None else total) - limit
    return ", ".join(items[:limit]) + (f" and {more} more" if more > 0 else "")


def _listing_steps(steps: list[Step], view: TenantView, limit: int = 10) -> str:
    """_listing of the steps described, describing only those it names (thousands may be stuck)."""
    return _listing([_describe(st, view) for st in steps[:limit]], limit, total=len(steps))


def _describe(st: Step, view: TenantView) -> str:
    parts = [f"+{view.part(s)}" for s in st.add] + [f"−{view.part(s)}" for s in st.remove]
    return f"{st.target.user.upn} ({' '.join(parts)})"


def _subscription_diagnostics(
    view: TenantView, sched: Schedule, inactive: dict[str, list[tuple[str, str | None]]]
) -> list[Diagnostic]:
    """One diagnostic per SKU; when it concerns one user's change, it carries that user and manifest line."""
    out = []
    for sku_id, users in sorted(inactive.items(), key=lambda kv: (view.part(kv[0]), kv[0])):
        info = view.skus[sku_id]
        users = sorted(set(users), key=lambda u: (u[0].lower(), u[1] or ""))
        upn, where = users[0] if len(users) == 1 else (None, None)
        out.append(
            Diagnostic(
                "error",
                "subscription-not-active",
                msg.subscription_not_active(
                    info.part, info.sku.capability_status, _listing([u for u, _ in users])
                ),
                upn,
                where,
            )
        )
    for sku_id, n in sorted(sched.taken.items(), key=lambda kv: (view.part(kv[0]), kv[0])):
        held = view.skus.get(sku_id)
        if held is not None and held.sku.capability_status == "Warning":
            takers = sorted({st.target.user.upn for st in sched.steps if sku_id in st.needs}, key=str.lower)
            one = next((st for st in sched.steps if sku_id in st.needs), None) if len(takers) == 1 else None
            upn, where = (one.target.user.upn, _source_of(one)) if one is not None else (None, None)
            out.append(
                Diagnostic(
                    "warning",
                    "subscription-not-active",
                    msg.subscription_warning(held.part, n, _listing(takers)),
                    upn,
                    where,
                )
            )
    return out


def _assignment_error_diagnostics(
    view: TenantView,
    observed: Observed,
    declared: dict,
    errored: set[str],  # type: ignore[type-arg]
) -> list[Diagnostic]:
    """Group assignments Graph marks in error (CountViolation, ...) for declared users, on managed SKUs."""
    out = []
    for key in sorted(errored):
        user = observed.users[key]
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
        offer = view.offer(info.plan_id, p.country)
        if offer is not None and not offer.pooled:
            continue  # no minutes to pool (Pay-As-You-Go): a split costs nothing
        by.setdefault((p.country, info.plan_id), []).append((p.part_number, p.users_after))
    out = []
    for (country, plan_id), skus in sorted(by.items()):
        if len(skus) > 1:
            parts = ", ".join(f"{part}: {msg.plural(n, 'user')}" for part, n in skus)
            out.append(Diagnostic("warning", "split-pool", msg.split_pool(country, plan_id, parts)))
    return out


