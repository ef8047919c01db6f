"""The planner's shortcuts for big tenants change no output: the resolver's memo of no-op users, the per-tenant
index of users' licenses (TenantView.index) and the fingerprint spelled from it. Each test compares against the
plain computation, on synthetic tenants where most users already hold what they declare (the steady state).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random

import pytest
from emu import observed_from_state, run_actions

from provisioner.catalog import load_catalog
from provisioner.emulator import demo
from provisioner.emulator.state import TenantState
from provisioner.model.desired import Desired, DesiredUser, Policy, Source
from provisioner.model.observed import Observed, User
from provisioner.model.plan import Plan
from provisioner.planner import plan, report
from provisioner.planner.resolve import Resolver
from provisioner.planner.tenant import TenantView

CAT = load_catalog()


def _reference_fingerprint(observed: Observed) -> str:
    """The fingerprint as first written (saved plans are checked against its value: it must never change)."""
    lines = [f"tenant|{observed.tenant.id.lower()}"]
    for s in sorted(observed.skus, key=lambda s: s.sku_id):
        lines.append(f"sku|{s.sku_id}|{s.part_number}|{s.capability_status}|{s.enabled}|{s.consumed}")
    for key in sorted(observed.users):
        u = observed.users[key]
        lic = sorted(
            f"{a.sku_id},{a.by_group or ''},{a.state or ''},{a.error or ''},{'+'.join(sorted(a.disabled_plans))}"
            for a in u.assignments
        )
        lines.append(f"user|{u.id}|{key}|{u.usage_location or ''}|{';'.join(lic)}")
    if observed.holder_counts is not None:
        lines += [f"holders|{c}|{s}|{n}" for (c, s), n in sorted(observed.holder_counts.items())]
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _tenant(n: int, seed: int) -> Observed:
    return observed_from_state(TenantState.from_dict(demo.synthetic_state(n, seed)))


def _steady(observed: Observed) -> list[DesiredUser]:
    """Every user declared as the tenant has them (bench_plan --steady)."""
    view = TenantView(observed, CAT)
    parts = {s.sku_id: s.part_number for s in observed.skus}
    out = []
    for i, key in enumerate(sorted(observed.users)):
        u = observed.users[key]
        held = u.all_sku_ids
        plans = sorted(parts[s] for s in held & view.calling_plans)
        cp = f"sku:{plans[0]}" if plans else "none"
        ps, cc = bool(held & view.phone_system_skus), bool(held & view.credits)
        out.append(DesiredUser(u.upn, Source("users.yaml", 2 + i), u.usage_location, cp, ps, cc))
    return out


def _perturbed(users: list[DesiredUser], seed: int, share: float) -> tuple[DesiredUser, ...]:
    """Change `share` of the users' wishes: moves, other plans, Phone System off, credits, omitted fields."""
    rng = random.Random(seed)
    out = []
    for u in users:
        if rng.random() < share:
            r = rng.random()
            if r < 0.2:
                u = u._replace(phone_system=not u.phone_system)
            elif r < 0.4:
                u = u._replace(usage_location=rng.choice(("US", "GB", "DE", "JP", "MX")))
            elif r < 0.6:
                plans = ("none", "domestic", "international", "payg", "sku:MCOPSTN1", "sku:NOPE", "sku:MCOEV")
                u = u._replace(calling_plan=rng.choice(plans))
            elif r < 0.7:
                u = u._replace(communications_credits=not u.communications_credits)
            elif r < 0.8:
                u = u._replace(usage_location=None, calling_plan=None)
            elif r < 0.9:
                u = u._replace(phone_system=None, communications_credits=None)
            else:
                continue  # not declared
        out.append(u)
    return tuple(out)


def _without_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Resolver, "declared", lambda self, du, user, licenses=None: self._declared(du, user))


def _plans(desired: Desired, observed: Observed, monkeypatch: pytest.MonkeyPatch) -> tuple[Plan, Plan, int]:
    """(plan, plan resolving every user in full, users resolved in full by the first)."""
    calls = 0
    full = Resolver._declared

    def counting(self: Resolver, du: DesiredUser, user: User) -> object:
        nonlocal calls
        calls += 1
        return full(self, du, user)

    with monkeypatch.context() as m:
        m.setattr(Resolver, "_declared", counting)
        fast = plan(desired, observed, CAT)
    with monkeypatch.context() as m:
        _without_memo(m)
        slow = plan(desired, observed, CAT)
    return fast, slow, calls


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fingerprint_value_is_unchanged(seed: int) -> None:
    observed = _tenant(400, seed)
    view = TenantView(observed, CAT)
    view.index(observed.users)
    want = _reference_fingerprint(observed)
    assert report.fingerprint(observed) == want
    assert report.fingerprint(observed, view.by_key) == want
    partial = dataclasses.replace(observed, complete_for_managed=False, holder_counts={("US", "x"): 3})
    assert report.fingerprint(partial, view.by_key) == _reference_fingerprint(partial)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("share", [0.0, 0.05, 0.3])
def test_memo_of_unchanged_users_changes_no_plan(
    seed: int, share: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    observed = _tenant(1500, seed)
    users = _perturbed(_steady(observed), seed, share)
    for policy in (Policy(max_removals=10_000), Policy(unlisted="remove", payg_funding="postUsage")):
        desired = Desired(users, policy, tenant="contoso.com")
        fast, slow, resolved = _plans(desired, observed, monkeypatch)
        assert fast == slow
        assert resolved < len(users) / 2  # the memo was used: most users are skipped, not resolved
        if share == 0.0:
            assert not fast.actions and not fast.diagnostics  # the steady state plans nothing


def _awkward_tenant(n: int, seed: int) -> Observed:
    """The synthetic tenant made harder to resolve: Domestic Calling Plan 4 seats short of running out and a second
    subscription of it (another skuId, 3 seats: pick() chooses between the two by the seats earlier users took), International suspended (its adds
    are dropped and noted), and the group-licensed users (inherited-license warnings)."""
    state = demo.synthetic_state(n, seed)
    for sku in state["subscribedSkus"]:
        if sku["skuPartNumber"] == "MCOPSTN2":
            sku["capabilityStatus"] = "Suspended"
    dom = next(s for s in state["subscribedSkus"] if s["skuPartNumber"] == "MCOPSTN1")
    held = sum(1 for u in state["users"] for a in u["assignedLicenses"] if a["skuId"] == dom["skuId"])
    dom["prepaidUnits"] = {**dom["prepaidUnits"], "enabled": held + 4}  # runs out after a few adds
    state["subscribedSkus"].append({**dom, "skuId": "0b0b0b0b-1111-4222-8333-444455556666",
                                    "prepaidUnits": {**dom["prepaidUnits"], "enabled": 3}})
    return observed_from_state(TenantState.from_dict(state))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replayed_resolutions_change_no_plan(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Users that change resolve once per memo key; the others replay it (Target, seats, diagnostics, warnings,
    inactive subscriptions) under their own UPN and source. The plan equals resolving everyone in full, and a
    choice made by the seats left (duplicate SKUs) is never replayed."""
    observed = _awkward_tenant(2000, seed)
    users = _perturbed(_steady(observed), seed, 0.4)
    more = [u._replace(calling_plan="international") for u in users[::7] if u.usage_location == "US"]
    more += [u._replace(calling_plan="domestic") for u in users[3::11] if u.usage_location == "US"]
    grouped = sorted(k for k, u in observed.users.items() if any(a.by_group for a in u.assignments))
    by_key = {u.key: u for u in users}
    more += [by_key[k]._replace(calling_plan="none") for k in grouped[::2] if k in by_key]
    changed = {u.key: u for u in more}
    users = tuple(changed.get(u.key, u) for u in users)
    seat_choices = replayed = 0
    pick, replay = TenantView.pick, Resolver._replay

    def counting_pick(self: TenantView, candidates: tuple, held: frozenset[str]) -> object:
        nonlocal seat_choices
        before = self.seat_reads
        found = pick(self, candidates, held)
        seat_choices += self.seat_reads - before
        return found

    def counting_replay(self: Resolver, *args: object) -> object:
        nonlocal replayed
        replayed += 1
        return replay(self, *args)  # type: ignore[arg-type]

    for policy in (Policy(max_removals=10_000), Policy(unlisted="remove", payg_funding="postUsage")):
        desired = Desired(users, policy, tenant="contoso.com")
        with monkeypatch.context() as m:
            m.setattr(TenantView, "pick", counting_pick)
            m.setattr(Resolver, "_replay", counting_replay)
            replayed = 0
            fast, slow, _ = _plans(desired, observed, monkeypatch)
        assert fast == slow
        changing = len({a.user_id for a in fast.actions})
        assert changing > 200 and replayed > changing / 3, (changing, replayed)  # many were replayed
        codes = {d.code for d in fast.diagnostics}
        assert {"inherited-license", "subscription-not-active"} <= codes, codes
    assert seat_choices > 0  # the duplicate Domestic SKUs made pick() choose by seats


@pytest.mark.parametrize("seed", [1, 2])
def test_user_preconditions_are_each_users_own(seed: int) -> None:
    """The preconditions apply re-checks are spelled once per set of assignments: each is still that user's own,
    as written from the user's assignments one by one."""
    observed = _awkward_tenant(1500, seed)
    p = plan(Desired(_perturbed(_steady(observed), seed, 0.4), Policy(max_removals=10_000)), observed, CAT)
    assert len(p.user_preconditions) > 200
    by_id = {u.id: u for u in observed.users.values()}
    for pre in p.user_preconditions:
        u = by_id[pre.user_id]
        direct = sorted({a.sku_id for a in u.assignments if a.by_group is None})
        disabled = sorted((a.sku_id, tuple(sorted(a.disabled_plans)))
                          for a in u.assignments if a.by_group is None and a.disabled_plans)
        active = sorted({a.sku_id for a in u.assignments if a.by_group and a.state not in ("Error", "Disabled")})
        assert (pre.upn, pre.usage_location) == (u.upn, u.usage_location)
        assert (list(pre.direct_sku_ids), list(pre.direct_disabled_plans or ()), list(pre.inherited_sku_ids or ())) \
            == (direct, disabled, active)


def test_a_choice_made_by_the_seats_left_is_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two SKUs offer the Domestic plan; a user whose bundle already gives it changes nothing, but which SKU
    was weighed depended on the seats left (pick()). Once an earlier user takes the last MCOPSTN1 seat, the
    next user with the same wish and licenses is offered MCOPSTN_1_GOV, which the bundle does not give: an add.
    Neither the no-op memo nor the replay may stand in for that resolution."""
    from provisioner.model.observed import Assignment, ServicePlan, Sku, TenantInfo

    def sp(name: str) -> ServicePlan:
        return ServicePlan(name.lower() + "-plan", name)

    skus = (
        Sku("ev", "MCOEV", "Enabled", 10, 1, service_plans=(sp("MCOEV"),)),
        Sku("dom", "MCOPSTN1", "Enabled", 1, 0, service_plans=(sp("MCOPSTN1"),)),  # one seat left
        Sku("gov", "MCOPSTN_1_GOV", "Enabled", 5, 0, service_plans=(sp("MCOPSTN1_GOV"),)),
        Sku("ess", "MCOTEAMS_ESSENTIALS", "Enabled", 5, 2, service_plans=(sp("TEAMS1"), sp("MCOEV"), sp("MCOPSTN1"))),
    )
    bundle = (Assignment("ess", None, (), "Active", None),)
    users = {
        "a@contoso.com": User("1", "a@contoso.com", None, True, "US", bundle),
        "b@contoso.com": User("2", "b@contoso.com", None, True, "US", (Assignment("ev", None, (), "Active", None),)),
        "c@contoso.com": User("3", "c@contoso.com", None, True, "US", bundle),
    }
    observed = Observed(TenantInfo("t", "T"), skus, users)
    desired = Desired(tuple(DesiredUser(k, Source("u.yaml", i + 1), None, "domestic")
                            for i, k in enumerate(sorted(users))), Policy())
    fast, slow, _ = _plans(desired, observed, monkeypatch)
    assert [(a.upn, [r.part_number for r in a.add]) for a in slow.actions] == [
        ("b@contoso.com", ["MCOPSTN1"]), ("c@contoso.com", ["MCOPSTN_1_GOV"])]
    assert fast == slow


def test_memo_is_not_used_when_user_ids_repeat(monkeypatch: pytest.MonkeyPatch) -> None:
    """Graph ids are unique; a snapshot that breaks that still plans as it did, user by user."""
    observed = _tenant(300, 5)
    keys = sorted(observed.users)
    users = dict(observed.users)
    for a, b in zip(keys[::2], keys[1::2], strict=False):
        users[b] = users[b]._replace(id=users[a].id)
    observed = dataclasses.replace(observed, users=users)
    desired = Desired(_perturbed(_steady(observed), 5, 0.2), Policy(max_removals=10_000))
    fast, slow, resolved = _plans(desired, observed, monkeypatch)
    assert fast == slow
    assert resolved == sum(1 for u in desired.users if u.key in users)  # no memo: ids do not tell users apart


def _pool_holders(observed: Observed) -> dict[tuple[str, str], int]:
    """(country, Calling Plan SKU) -> users holding it directly or through an active group, user by user."""
    cp = TenantView(observed, CAT).calling_plans
    out: dict[tuple[str, str], int] = {}
    for u in observed.users.values():
        held = {a.sku_id for a in u.assignments if a.by_group is None or a.state not in ("Error", "Disabled")}
        for s in held & cp:
            k = (u.usage_location or "", s)
            out[k] = out.get(k, 0) + 1
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_pools_count_every_holder_before_and_after(seed: int) -> None:
    """The pools start from the index's counts less the changing users: they match a count user by user, and
    the tenant's after applying the plan."""
    state = TenantState.from_dict(demo.synthetic_state(1500, seed))
    observed = observed_from_state(state)
    desired = Desired(_perturbed(_steady(observed), seed, 0.3), Policy(max_removals=10_000))
    p = plan(desired, observed, CAT)
    run_actions(state, p)
    before, after = _pool_holders(observed), _pool_holders(observed_from_state(state))
    assert p.actions and before != after
    assert all(x.users_before or x.users_after for x in p.pools)  # a pool line counts someone
    assert {(x.country, x.sku_id): x.users_before for x in p.pools if x.users_before} == before
    assert {(x.country, x.sku_id): x.users_after for x in p.pools if x.users_after} == after


def test_pools_when_every_holder_of_a_plan_in_a_country_gives_it_up() -> None:
    state = TenantState.from_dict(demo.synthetic_state(600, 4))
    observed = observed_from_state(state)
    before = _pool_holders(observed)
    (country, sku), n = min(before.items(), key=lambda kv: (kv[1], kv[0]))
    users = [
        u._replace(calling_plan="none")
        if (u.usage_location or "", sku) in _holds(observed, u)
        else u
        for u in _steady(observed)
    ]
    p = plan(Desired(tuple(users), Policy(max_removals=10_000)), observed, CAT)
    lines = [x for x in p.pools if (x.country, x.sku_id) == (country, sku)]
    assert [(x.users_before, x.users_after) for x in lines] == [(n, 0)]
    assert all(x.users_before or x.users_after for x in p.pools)


def _holds(observed: Observed, u: DesiredUser) -> set[tuple[str, str]]:
    one = dataclasses.replace(observed, users={u.key: observed.users[u.key]})
    return set(_pool_holders(one))


def test_listing_names_the_first_ten_and_counts_the_rest_of_the_total() -> None:
    from provisioner.planner import _listing

    names = [f"u{i}" for i in range(12)]
    assert _listing(names) == ", ".join(names[:10]) + " and 2 more"
    assert _listing(names[:10], total=4000) == ", ".join(names[:10]) + " and 3990 more"
    assert _listing(names[:3]) == "u0, u1, u2"
