"""Test helpers: an emulator state (in memory) as the planner's Observed, and plan actions run through the
emulator's own Graph rules (provisioner.emulator.rules), without HTTP. Mirrors what the Graph reader returns.
"""

from __future__ import annotations

import itertools
from typing import Any

from provisioner.emulator.rules import GraphRuleError, validate_assign, validate_patch
from provisioner.emulator.state import TenantState
from provisioner.model.desired import Desired, DesiredUser, Policy, Source
from provisioner.model.observed import Assignment, Observed, ServicePlan, Sku, TenantInfo, User
from provisioner.model.plan import Plan


def observed_from_state(state: TenantState, with_groups: bool = True) -> Observed:
    skus = tuple(
        Sku(
            sku_id=s.sku_id,
            part_number=s.part,
            capability_status=s.status,
            enabled=s.enabled,
            consumed=state.consumed(s.sku_id),
            suspended=s.prepaid.get("suspended", 0),
            warning=s.prepaid.get("warning", 0),
            locked_out=s.prepaid.get("lockedOut", 0),
            service_plans=tuple(ServicePlan(p["servicePlanId"], p["servicePlanName"]) for p in s.plans),
        )
        for s in state.skus
    )
    users: dict[str, User] = {}
    for u in state.users:
        assignments = tuple(
            Assignment(
                a.sku_id,
                a.group.lower() if a.group else None,
                tuple(sorted(a.disabled)),
                "Active" if a.active else "Error",
                None if a.error in (None, "None") else a.error,
            )
            for a in state.assignments(u)
        )
        users[u.upn.lower()] = User(
            u.id, u.upn, u.display_name, u.account_enabled, u.usage_location, assignments
        )
    domains = tuple(d["name"] for d in state.tenant.get("verifiedDomains", []))
    obs = Observed(TenantInfo(state.tenant["id"], state.tenant["displayName"], domains), skus, users)
    if with_groups and "groups" in Observed.__dataclass_fields__:
        obs = Observed(
            obs.tenant, obs.skus, obs.users, groups={g.id.lower(): g.display_name for g in state.groups}
        )  # type: ignore[call-arg]
    elif with_groups:
        object.__setattr__(obs, "groups", {g.id.lower(): g.display_name for g in state.groups})
    return obs


def run_actions(state: TenantState, plan: Plan) -> None:
    """Execute the plan's actions in order against the emulator's rules; raise GraphRuleError on a refusal.

    After each call, check the seat invariant the contract promises (no SKU over its enabled seats).
    """
    for a in plan.actions:
        user = state.find_user(a.user_id)
        if user is None:
            raise GraphRuleError(404, "Request_ResourceNotFound", f"user {a.user_id} not found ({a.id})")
        if a.type == "setUsageLocation":
            state.set_user_fields(user, validate_patch({"usageLocation": a.usage_location_to}))
        else:
            body: dict[str, Any] = {
                "addLicenses": [{"skuId": r.sku_id, "disabledPlans": []} for r in a.add],
                "removeLicenses": [r.sku_id for r in a.remove],
            }
            try:
                new = validate_assign(state, user, body)
            except GraphRuleError as exc:
                raise GraphRuleError(exc.status, exc.code, f"{a.id} {a.upn}: {exc.message}") from None
            state.set_direct_licenses(user, new)
        for s in state.skus:
            assert state.consumed(s.sku_id) <= max(s.enabled, 0) or s.enabled < 0, (a.id, s.part)


def desired(
    users: list[dict[str, Any]],
    policy: Policy | None = None,
    tenant: str | None = None,
    tenant_source: Source | None = None,
) -> Desired:
    """A Desired from short dicts: {"upn", "loc", "cp", "ps", "cc"} (omitted keys = not managed)."""
    out = []
    for i, u in enumerate(users):
        out.append(
            DesiredUser(
                upn=u["upn"],
                source=Source("manifests/users.yaml", 10 + i * 3),
                usage_location=u.get("loc"),
                calling_plan=u.get("cp"),
                phone_system=u.get("ps"),
                communications_credits=u.get("cc"),
            )
        )
    return Desired(
        users=tuple(sorted(out, key=lambda d: d.key)),
        policy=policy or Policy(),
        tenant=tenant,
        tenant_source=tenant_source,
    )


def tenant_state(
    skus: dict[str, int | tuple[int, str]],
    users: list[tuple[str, str | None, tuple[str, ...]]],
    groups: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] | None = None,
    disabled: dict[tuple[str, str], tuple[str, ...]] | None = None,
    account_off: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A small emulator state. skus: part -> enabled seats (or (enabled, capabilityStatus)); users: (upn local
    part, usage location, direct parts); groups: name -> (member local parts, parts); disabled: (local, part)
    -> disabled service plan names."""
    from provisioner.emulator import demo

    state = demo.demo_state()
    out_users = []
    for local, loc, parts in users:
        upn = f"{local}@contoso.com"
        out_users.append(
            {
                "id": demo.stable_id("user", upn),
                "userPrincipalName": upn,
                "displayName": local.title(),
                "accountEnabled": local not in account_off,
                "usageLocation": loc,
                "assignedLicenses": [
                    {
                        "skuId": demo.SKUS[p][0],
                        "disabledPlans": [demo.PLANS[x] for x in (disabled or {}).get((local, p), ())],
                    }
                    for p in parts
                ],
            }
        )
    out_groups = []
    for name, (members, parts) in (groups or {}).items():
        out_groups.append(
            {
                "id": demo.stable_id("group", name),
                "displayName": name,
                "members": [demo.stable_id("user", f"{m}@contoso.com") for m in members],
                "assignedLicenses": [{"skuId": demo.SKUS[p][0], "disabledPlans": []} for p in parts],
            }
        )
    out_skus = []
    for part, spec in skus.items():
        enabled, status = spec if isinstance(spec, tuple) else (spec, "Enabled")
        out_skus.append(demo.sku_record(part, enabled, status))
    return {"tenant": state["tenant"], "subscribedSkus": out_skus, "users": out_users, "groups": out_groups}


def check_invariants(plan: Plan, observed: Observed) -> None:
    """The CONTRACT §3 ordering invariants that do not need Graph's rules (those are run_actions' job)."""
    ids = [a.id for a in plan.actions]
    assert len(ids) == len(set(ids)), "action ids must be unique"
    seen: set[str] = set()
    per_user: dict[str, list[Any]] = {}
    for a in plan.actions:
        assert all(d in seen for d in a.depends_on), f"{a.id} depends on a later or unknown action"
        seen.add(a.id)
        per_user.setdefault(a.user_id, []).append(a)
        if a.type == "assignLicenses":
            assert a.add or a.remove, f"{a.id} is an empty assignLicenses"
            assert not ({r.sku_id for r in a.add} & {r.sku_id for r in a.remove}), a.id
    users = {u.id: u for u in observed.users.values()}
    for uid, actions in per_user.items():
        user = users[uid]
        types = [a.type for a in actions]
        # one assignLicenses per phase: at most one before and one after the usage location change
        assert types in (
            ["assignLicenses"],
            ["setUsageLocation"],
            ["setUsageLocation", "assignLicenses"],
            ["assignLicenses", "setUsageLocation", "assignLicenses"],
            ["assignLicenses", "setUsageLocation"],
        ), (user.upn, types)
        if types[0] == "assignLicenses" and len(types) > 1:
            assert not actions[0].add, f"{user.upn}: licenses added before the usage location is set"
        if not user.usage_location and "setUsageLocation" not in types:
            assert not any(a.add for a in actions), f"{user.upn}: licenses added without a usage location"
        # each of a user's calls depends on the one before it
        for prev, nxt in itertools.pairwise(actions):
            assert prev.id in nxt.depends_on, (user.upn, prev.id, nxt.id)
        # CONTRACT §3, strictly: remove ∩ the user's inherited SKUs = ∅, even when the user also holds the SKU
        # directly (removing that copy frees no seat; the plan says inherited-license instead).
        inherited = {a.sku_id for a in user.assignments if a.by_group}
        for a in actions:
            assert not ({r.sku_id for r in a.remove} & inherited), (
                f"{user.upn}: removes a license it inherits from a group"
            )
