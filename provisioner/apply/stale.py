"""Is a saved plan still true? Re-read what it depends on and name every change since it was made.

Reads only, in one go: the tenant, the touched users (by id, `id in (...)` look-ups, 300 users a round trip)
and the SKUs. Everything after the read is a pure comparison (`compare`), so it is tested without a tenant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from provisioner.apply.saved import edited_plan_error
from provisioner.catalog import Catalog, load_catalog
from provisioner.model.observed import Sku, TenantInfo, User
from provisioner.model.plan import Plan, UserPrecondition
from provisioner.planner.tenant import holdings

# A subscription in these states still lets Graph assign its seats.
_ASSIGNABLE = frozenset({"enabled", "warning"})


class StaleReader(Protocol):
    def read_stale_inputs(
        self, ids: Sequence[str]
    ) -> tuple[TenantInfo, Mapping[str, User], Sequence[Sku]]: ...


def check_stale(plan: Plan, conn: StaleReader, catalog: Catalog | None = None) -> list[str]:
    """Every change, in words, between the tenant now and the state `plan` was computed from; [] if none.

    The tenant is read together with the users and SKUs (one round trip fewer than reading it first); when it
    is not the plan's tenant, that mismatch is the only change named.
    """
    ids = sorted({p.user_id for p in plan.user_preconditions} | {a.user_id for a in plan.actions})
    tenant, users, skus = conn.read_stale_inputs(ids)
    if tenant.id.lower() == plan.tenant_id.lower():
        edited = _sku_mismatches(plan, tuple(skus), catalog)
        if edited:  # not a tenant change: the plan says what no planner writes
            raise edited_plan_error(edited)
    return compare(plan, tenant, users, tuple(skus), catalog)


def compare(
    plan: Plan, tenant: TenantInfo, users: Mapping[str, User], skus: Sequence[Sku], catalog: Catalog | None = None
) -> list[str]:
    """Pure: the changes between what `plan` recorded and the given current tenant state (and what in the plan
    no planner writes; `catalog` tells managed licenses, the built-in one by default)."""
    if tenant.id.lower() != plan.tenant_id.lower():
        return [_tenant_mismatch(plan, tenant)]
    names = _sku_names(plan, skus)
    changes: list[str] = []
    pre_by_id = {p.user_id: p for p in plan.user_preconditions}
    plan_names = {p.id: p.name for s in skus for p in s.service_plans if p.name}
    for pre in sorted(pre_by_id.values(), key=lambda p: p.upn.lower()):
        changes += _user_changes(pre, users.get(pre.user_id), names, plan_names)
    # A plan without recorded preconditions for a user (older planners) is checked against its own actions.
    for upn, user_id in sorted({(a.upn, a.user_id) for a in plan.actions if a.user_id not in pre_by_id}):
        changes += _action_changes(plan, upn, users.get(user_id), names)
    changes += _seat_changes(plan, skus)
    return _sku_mismatches(plan, skus, catalog) + changes


def _sku_mismatches(plan: Plan, skus: Sequence[Sku], catalog: Catalog | None) -> list[str]:
    """What no planner writes, found against the tenant's SKUs (an edited plan), refused before any change:
    a license named by a part number the tenant gives another SKU id (the audit log would name the wrong
    one), and adding or removing a license the tool never manages (a suite such as E5: CONTRACT §2)."""
    catalog = catalog or load_catalog()
    by_id = {s.sku_id.lower(): s for s in skus}
    unmanaged = {k for k, s in by_id.items() if catalog.classify_sku(s.part_number, [p.name for p in s.service_plans]) is None}
    out = []
    for a in plan.actions:
        for verb, refs in (("adds", a.add), ("removes", a.remove)):
            for r in refs:
                sku = by_id.get(r.sku_id.lower())
                if sku is None:
                    continue  # a SKU gone from the tenant: the seat check names it
                if sku.part_number.lower() != r.part_number.lower():
                    out.append(
                        f"action {a.id} ({a.upn}): SKU {r.sku_id} is {sku.part_number} in the tenant, but the plan "
                        f"calls it {r.part_number}"
                    )
                if sku.sku_id.lower() in unmanaged:
                    out.append(
                        f"action {a.id} ({a.upn}): {verb} {sku.part_number}, a license this tool never manages "
                        "(only Phone System add-ons, Calling Plans and Communications Credits, by the catalog the plan "
                        "was made with)"
                    )
    return out


def _tenant_mismatch(plan: Plan, tenant: TenantInfo) -> str:
    return (
        f"the plan was made for tenant {plan.tenant_name or '?'} ({plan.tenant_id}), "
        f"but this is tenant {tenant.display_name} ({tenant.id})"
    )


def _sku_names(plan: Plan, skus: Sequence[Sku]) -> dict[str, str]:
    names = {s.sku_id.lower(): s.part_number for s in plan.seats if s.sku_id}
    names.update({s.sku_id.lower(): s.part_number for s in plan.seat_preconditions})
    for a in plan.actions:
        names.update({r.sku_id.lower(): r.part_number for r in (*a.add, *a.remove)})
    names.update({s.sku_id.lower(): s.part_number for s in skus})
    return names


def _licenses_delta(before: set[str], now: set[str], names: Mapping[str, str]) -> str:
    def label(sku_id: str) -> str:
        return names.get(sku_id, sku_id)

    parts = [f"+{label(s)}" for s in sorted(now - before, key=label)]
    parts += [f"−{label(s)}" for s in sorted(before - now, key=label)]
    return ", ".join(parts)


def _user_changes(
    pre: UserPrecondition, user: User | None, names: Mapping[str, str], plan_names: Mapping[str, str]
) -> list[str]:
    if user is None:
        return [f"user {pre.upn} no longer exists"]
    out = []
    if (user.usage_location or None) != (pre.usage_location or None):
        out.append(
            f"user {pre.upn}: usage location changed {pre.usage_location or '(none)'} → "
            f"{user.usage_location or '(none)'} since the plan was made"
        )
    before = {s.lower() for s in pre.direct_sku_ids}
    now = {s.lower() for s in user.direct_sku_ids}
    if before != now:
        out.append(
            f"user {pre.upn}: directly assigned licenses changed ({_licenses_delta(before, now, names)})"
        )
    if pre.direct_disabled_plans is not None:  # recorded by this version's planner (None in older plans)
        was = {s.lower(): set(p) for s, p in pre.direct_disabled_plans}
        is_ = {s.lower(): set(p) for s, p in user.direct_disabled_plans.items()}
        for sku in sorted(before & now, key=lambda s: names.get(s, s)):
            if was.get(sku, set()) != is_.get(sku, set()):
                before_off, now_off = was.get(sku, set()), is_.get(sku, set())
                words = [f"now disabled: {_plan_list(now_off - before_off, plan_names)}"] if now_off - before_off else []
                words += [f"now enabled: {_plan_list(before_off - now_off, plan_names)}"] if before_off - now_off else []
                out.append(
                    f"user {pre.upn}: service plans of directly assigned {names.get(sku, sku)} changed "
                    f"({'; '.join(words)})"
                )
    if pre.inherited_sku_ids is not None:
        was_inherited = {s.lower() for s in pre.inherited_sku_ids}
        inherited = set(holdings(user).active)  # through a group assignment that counts, as in planning
        if was_inherited != inherited:
            out.append(
                f"user {pre.upn}: licenses inherited from groups changed "
                f"({_licenses_delta(was_inherited, inherited, names)})"
            )
    return out


def _plan_list(ids: set[str], plan_names: Mapping[str, str]) -> str:
    return ", ".join(sorted(plan_names.get(i, i) for i in ids))


def _action_changes(plan: Plan, upn: str, user: User | None, names: Mapping[str, str]) -> list[str]:
    if user is None:
        return [f"user {upn} no longer exists"]
    out = []
    direct = {s.lower() for s in user.direct_sku_ids}
    for a in plan.actions:
        if a.upn != upn:
            continue
        if a.type == "setUsageLocation" and (user.usage_location or None) != (a.usage_location_from or None):
            out.append(
                f"user {upn}: usage location changed {a.usage_location_from or '(none)'} → "
                f"{user.usage_location or '(none)'} since the plan was made"
            )
        gone = sorted(names.get(r.sku_id, r.part_number) for r in a.remove if r.sku_id.lower() not in direct)
        there = sorted(names.get(r.sku_id, r.part_number) for r in a.add if r.sku_id.lower() in direct)
        if gone or there:
            delta = ", ".join([f"+{p}" for p in there] + [f"−{p}" for p in gone])
            out.append(f"user {upn}: directly assigned licenses changed ({delta})")
    return out


def _seat_changes(plan: Plan, skus: Sequence[Sku]) -> list[str]:
    by_id = {s.sku_id.lower(): s for s in skus}
    out = []
    for need in sorted(plan.seat_preconditions, key=lambda s: s.part_number):
        sku = by_id.get(need.sku_id.lower())
        if sku is None:
            out.append(
                f"SKU {need.part_number}: no longer in the tenant, the plan needs {need.free_needed} seat(s)"
            )
            continue
        if sku.capability_status.lower() not in _ASSIGNABLE:
            out.append(
                f"SKU {need.part_number}: subscription is now {sku.capability_status}, the plan assigns it"
            )
        if sku.free < need.free_needed:
            out.append(f"SKU {need.part_number}: {_free(sku.free)}, the plan needs {need.free_needed}")
    return out


def _free(n: int) -> str:
    return f"{n} free seat" if n == 1 else f"{n} free seats"
