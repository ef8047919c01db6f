"""The planner's rules, one test each, on small in-memory tenants; every plan is also run through the
emulator's Graph rules and planned again (it must converge to no changes unless it has error diagnostics).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from emu import check_invariants, desired, observed_from_state, run_actions, tenant_state

from provisioner.catalog import load_catalog
from provisioner.emulator import demo
from provisioner.emulator.state import TenantState
from provisioner.model.desired import Policy, Source
from provisioner.model.plan import Plan
from provisioner.planner import plan

CAT = load_catalog()
E3, E5, EV, DOM, INTL, M120, M240, CC = (
    demo.E3,
    demo.E5,
    demo.EV,
    demo.DOM,
    demo.INTL,
    demo.M120,
    demo.M240,
    demo.CC,
)
PAYG_US, PAYG_Z1 = demo.PAYG_US, demo.PAYG_Z1
SEATS = {E3: 50, E5: 50, EV: 50, DOM: 50, INTL: 50, M120: 50, M240: 50, PAYG_US: 50, PAYG_Z1: 50, CC: 50}


def run(state: dict[str, Any], users: list[dict[str, Any]], policy: Policy | None = None, **kw: Any) -> Plan:
    """Plan, check the invariants, apply through the emulator's rules, and check that it converged."""
    st = TenantState.from_dict(copy.deepcopy(state))
    obs = observed_from_state(st)
    d = desired(users, policy, **kw)
    p = plan(d, obs, CAT)
    check_invariants(p, obs)
    assert plan(d, obs, CAT).to_dict() == p.to_dict(), "planning is deterministic"
    assert Plan.from_dict(p.to_dict()).to_dict() == p.to_dict(), "the JSON plan reads back"
    run_actions(st, p)
    if not p.has_errors:
        again = plan(d, observed_from_state(st), CAT)
        assert again.actions == (), [a.to_dict() for a in again.actions]
    return p


def steps(p: Plan) -> list[str]:
    """Actions in a compact form: 'upn: +A +B -C' / 'upn: loc X->Y'."""
    out = []
    for a in p.actions:
        who = a.upn.split("@")[0]
        if a.type == "setUsageLocation":
            out.append(f"{who}: loc {a.usage_location_from}->{a.usage_location_to}")
        else:
            out.append(
                f"{who}: "
                + " ".join([f"+{r.part_number}" for r in a.add] + [f"-{r.part_number}" for r in a.remove])
            )
    return out


def codes(p: Plan) -> list[tuple[str, str, str | None]]:
    return [(d.severity, d.code, d.upn.split("@")[0] if d.upn else None) for d in p.diagnostics]


def test_new_hire_gets_location_then_phone_system_and_calling_plan_in_one_call() -> None:
    p = run(
        tenant_state(SEATS, [("sam", None, (E3,))]),
        [{"upn": "sam@contoso.com", "loc": "US", "cp": "domestic"}],
    )
    assert steps(p) == ["sam: loc None->US", "sam: +MCOEV +MCOPSTN1"]
    assert p.actions[1].depends_on == ("a001",)
    assert p.summary() == {
        "actions": 2,
        "usersChanged": 1,
        "licensesAdded": 2,
        "licensesRemoved": 0,
        "usageLocationsSet": 1,
    }


def test_e5_provides_phone_system_so_only_the_calling_plan_is_added() -> None:
    p = run(tenant_state(SEATS, [("eve", "US", (E5,))]), [{"upn": "eve@contoso.com", "cp": "domestic"}])
    assert steps(p) == ["eve: +MCOPSTN1"]
    (u,) = p.users
    assert u.before.phone_system_from == ("SPE_E5",) and u.after.licenses == ("MCOPSTN1",)


def test_e5_with_phone_system_disabled_gets_the_add_on() -> None:
    state = tenant_state(SEATS, [("pat", "US", (E5,))], disabled={("pat", E5): ("MCOEV",)})
    p = run(state, [{"upn": "pat@contoso.com", "cp": "domestic"}])
    assert steps(p) == ["pat: +MCOEV +MCOPSTN1"]
    assert (
        p.users[0].before.phone_system_from == ()
    )  # E5's Phone System plan is disabled: it provides nothing


def test_plan_swap_is_one_call_with_add_and_remove() -> None:
    p = run(
        tenant_state(SEATS, [("bob", "US", (E3, EV, DOM))]),
        [{"upn": "bob@contoso.com", "cp": "international"}],
    )
    assert steps(p) == ["bob: +MCOPSTN2 -MCOPSTN1"]


def test_phone_system_false_removes_every_managed_license_and_keeps_unmanaged_ones() -> None:
    p = run(
        tenant_state(SEATS, [("lee", "US", (E3, EV, DOM, CC))]), [{"upn": "lee@contoso.com", "ps": False}]
    )
    assert steps(p) == ["lee: -MCOEV -MCOPSTN1 -MCOPSTNC"]


def test_omitted_fields_are_not_managed() -> None:
    state = tenant_state(SEATS, [("kim", "US", (E3, EV, INTL))])
    p = run(state, [{"upn": "kim@contoso.com", "loc": "US"}])
    assert p.actions == () and p.diagnostics == ()


def test_calling_plan_none_keeps_phone_system() -> None:
    p = run(tenant_state(SEATS, [("cat", "US", (E3, EV, DOM))]), [{"upn": "cat@contoso.com", "cp": "none"}])
    assert steps(p) == ["cat: -MCOPSTN1"]


def test_unlisted_remove_takes_managed_licenses_from_undeclared_users_only() -> None:
    state = tenant_state(SEATS, [("a", "US", (E3, EV, DOM)), ("b", "US", (E3, EV)), ("c", "US", (E5,))])
    users = [{"upn": "a@contoso.com", "cp": "domestic"}]
    assert run(state, users).actions == ()
    p = run(state, users, Policy(unlisted="remove"))
    assert steps(p) == ["b: -MCOEV"]
    assert "policy.unlisted: remove" in p.actions[0].reason


def test_country_move_to_where_the_plan_is_not_sold_removes_sets_then_adds() -> None:
    # MCOPSTN_5 (domestic-120) is not sold in the US: remove it, move the user, then add the US plan.
    state = tenant_state(SEATS, [("ann", "GB", (E3, EV, M120))])
    p = run(state, [{"upn": "ann@contoso.com", "loc": "US", "cp": "domestic"}])
    assert steps(p) == ["ann: -MCOPSTN_5", "ann: loc GB->US", "ann: +MCOPSTN1"]
    assert [a.depends_on for a in p.actions] == [(), ("a001",), ("a002",)]


def test_country_move_keeping_a_plan_sold_in_both_is_only_a_location_change() -> None:
    p = run(
        tenant_state(SEATS, [("ann", "GB", (E3, EV, DOM))]),
        [{"upn": "ann@contoso.com", "loc": "US", "cp": "domestic"}],
    )
    assert steps(p) == ["ann: loc GB->US"]


def test_a_removal_that_frees_a_seat_runs_first_and_the_add_depends_on_it() -> None:
    seats = {**SEATS, INTL: 1}
    state = tenant_state(seats, [("zed", "US", (E3, EV, INTL)), ("amy", "US", (E3, EV))])
    p = run(
        state, [{"upn": "amy@contoso.com", "cp": "international"}, {"upn": "zed@contoso.com", "cp": "none"}]
    )
    assert steps(p) == ["zed: -MCOPSTN2", "amy: +MCOPSTN2"]
    assert p.actions[1].depends_on == ("a001",)
    intl = next(s for s in p.seats if s.part_number == INTL)
    assert (intl.enabled, intl.consumed, intl.after) == (1, 1, 1)
    assert p.seat_preconditions == ()


def test_swap_with_no_free_seat_is_a_cycle_reported_with_a_split() -> None:
    seats = {**SEATS, DOM: 1, INTL: 1}
    state = tenant_state(seats, [("amy", "US", (E3, EV, DOM)), ("bob", "US", (E3, EV, INTL))])
    p = run(
        state,
        [{"upn": "amy@contoso.com", "cp": "international"}, {"upn": "bob@contoso.com", "cp": "domestic"}],
    )
    assert p.actions == ()
    errors = [d for d in p.diagnostics if d.code == "insufficient-seats"]
    assert len(errors) == 2
    text = " ".join(d.message for d in errors)
    assert "the plan needs 1, 0 free, 1 freed by this plan" in text
    assert "no order works" in text and "Split it" in text and "amy@contoso.com (+MCOPSTN2 −MCOPSTN1)" in text
    blocked = {u.upn: u.problems for u in p.users}
    assert all("blocked" in " ".join(v) for v in blocked.values()) and len(blocked) == 2


def test_not_enough_seats_says_need_free_and_freed() -> None:
    seats = {**SEATS, DOM: 2}
    state = tenant_state(
        seats, [("x", "US", (E3, EV, DOM)), ("a", "US", (E5,)), ("b", "US", (E5,)), ("c", "US", (E5,))]
    )
    users = [{"upn": f"{u}@contoso.com", "cp": "domestic"} for u in "abc"] + [
        {"upn": "x@contoso.com", "cp": "none"}
    ]
    p = run(state, users)
    (d,) = [d for d in p.diagnostics if d.code == "insufficient-seats"]
    assert d.severity == "error"
    assert d.message.startswith(
        "not enough MCOPSTN1 seats: the plan needs 3, 1 free, 1 freed by this plan. Buy 1 more"
    )
    assert steps(p) == ["x: -MCOPSTN1", "a: +MCOPSTN1", "b: +MCOPSTN1"]
    # one user left out: the diagnostic is that user's, with the line of their manifest entry
    assert (d.upn, d.source) == ("c@contoso.com", "manifests/users.yaml:16")


def test_not_enough_seats_for_several_users_names_them_and_no_single_upn() -> None:
    state = tenant_state({**SEATS, DOM: 1}, [(u, "US", (E5,)) for u in "abc"])
    p = run(state, [{"upn": f"{u}@contoso.com", "cp": "domestic"} for u in "abc"])
    (d,) = [d for d in p.diagnostics if d.code == "insufficient-seats"]
    assert (d.upn, d.source) == (None, None)
    assert "Not planned: b@contoso.com (+MCOPSTN1), c@contoso.com (+MCOPSTN1)." in d.message
    assert d.message.endswith("It concerns 2 users, all named above.")
    assert steps(p) == ["a: +MCOPSTN1"]


def test_inherited_calling_plan_is_reported_not_removed() -> None:
    state = tenant_state(SEATS, [("erin", "US", (E3,))], groups={"Sales Voice": (("erin",), (EV, DOM))})
    p = run(state, [{"upn": "erin@contoso.com", "cp": "none"}])
    assert p.actions == ()
    (d,) = p.diagnostics
    assert (d.severity, d.code, d.upn, d.source) == (
        "warning",
        "inherited-license",
        "erin@contoso.com",
        "manifests/users.yaml:10",
    )
    assert (
        "MCOPSTN1 comes from group 'Sales Voice'" in d.message
        and "remove the user from the group" in d.message
    )


def test_phone_system_stays_when_a_group_keeps_a_calling_plan() -> None:
    # Graph puts a group that grants a Calling Plan without Phone System in DependencyViolation (so does the
    # emulator); the planner still never removes Phone System under an *active* inherited Calling Plan.
    state = tenant_state(SEATS, [("gus", "US", (E3, EV))], groups={"Dial": (("gus",), (DOM,))})
    obs = observed_from_state(TenantState.from_dict(state))
    gus = obs.users["gus@contoso.com"]
    active = tuple(a._replace(state="Active", error=None) for a in gus.assignments)
    obs.users["gus@contoso.com"] = gus._replace(assignments=active)
    p = plan(desired([{"upn": "gus@contoso.com", "ps": False}]), obs, CAT)
    check_invariants(p, obs)
    assert p.actions == ()
    assert ("warning", "inherited-license", "gus") in codes(p)
    assert any("keeping MCOEV" in d.message and "MCOPSTN1 ('Dial')" in d.message for d in p.diagnostics)


def test_group_calling_plan_without_phone_system_is_broken_and_direct_phone_system_can_go() -> None:
    state = tenant_state(SEATS, [("gus", "US", (E3, EV))], groups={"Dial": (("gus",), (DOM,))})
    p = run(state, [{"upn": "gus@contoso.com", "ps": False}])
    assert steps(p) == ["gus: -MCOEV"]
    (u,) = p.users
    assert u.problems == ("DependencyViolation on MCOPSTN1 (group 'Dial')",)


def test_group_ids_show_when_names_are_unknown() -> None:
    state = tenant_state(SEATS, [("erin", "US", (E3,))], groups={"Sales Voice": (("erin",), (EV, DOM))})
    st = TenantState.from_dict(state)
    obs = observed_from_state(st, with_groups=False)
    p = plan(desired([{"upn": "erin@contoso.com", "cp": "none"}]), obs, CAT)
    assert demo.stable_id("group", "Sales Voice") in p.diagnostics[0].message


def test_payg_resolves_by_zone_and_brings_communications_credits() -> None:
    state = tenant_state(SEATS, [("uk", "GB", (E3,)), ("us", "US", (E5,))])
    p = run(state, [{"upn": "uk@contoso.com", "cp": "payg"}, {"upn": "us@contoso.com", "cp": "payg"}])
    assert steps(p) == [f"uk: +MCOEV +MCOPSTNC +{PAYG_Z1}", f"us: +MCOPSTNC +{PAYG_US}"]


def test_payg_with_post_usage_billing_needs_no_credits() -> None:
    p = run(tenant_state(SEATS, [("us", "US", (E5,))]), [{"upn": "us@contoso.com", "cp": "payg"}],
            Policy(payg_funding="postUsage"))  # fmt: skip
    assert steps(p) == [f"us: +{PAYG_US}"]


def test_payg_declining_credits_is_unfunded() -> None:
    # Declaring the PAYG plan and declining its credits contradicts itself: an error, as `validate` says.
    p = run(
        tenant_state(SEATS, [("us", "US", (E5, PAYG_US, CC))]),
        [{"upn": "us@contoso.com", "cp": "payg", "cc": False}],
    )
    assert steps(p) == ["us: -MCOPSTNC"]
    assert codes(p) == [("error", "payg-unfunded", "us")]
    # Keeping a PAYG plan the manifest does not manage (no callingPlan) while declining credits: a warning.
    p = run(
        tenant_state(SEATS, [("us", "US", (E5, PAYG_US, CC))]),
        [{"upn": "us@contoso.com", "cc": False}],
    )
    assert steps(p) == ["us: -MCOPSTNC"]
    assert codes(p) == [("warning", "payg-unfunded", "us")]


def test_payg_without_a_credits_subscription_is_unfunded_not_an_error() -> None:
    seats = {k: v for k, v in SEATS.items() if k != CC}
    p = run(tenant_state(seats, [("us", "US", (E5,))]), [{"upn": "us@contoso.com", "cp": "payg"}])
    assert steps(p) == [f"us: +{PAYG_US}"]
    assert codes(p) == [("warning", "payg-unfunded", "us")]
    assert "Communications Credits" in p.diagnostics[0].message


def test_explicit_credits_true_and_false() -> None:
    state = tenant_state(SEATS, [("a", "US", (E5,)), ("b", "US", (E5, CC))])
    p = run(state, [{"upn": "a@contoso.com", "cc": True}, {"upn": "b@contoso.com", "cc": False}])
    assert steps(p) == ["b: -MCOPSTNC", "a: +MCOPSTNC"]


def test_sku_not_in_tenant_says_where_to_buy() -> None:
    seats = {k: v for k, v in SEATS.items() if k != INTL}
    p = run(tenant_state(seats, [("a", "US", (E5,))]), [{"upn": "a@contoso.com", "cp": "international"}])
    assert codes(p) == [("error", "sku-not-in-tenant", "a")]
    assert "Microsoft 365 admin center > Billing > Purchase services" in p.diagnostics[0].message
    assert "MCOPSTN2" in p.diagnostics[0].message and p.actions == ()


def test_plan_not_available_in_country() -> None:
    p = run(tenant_state(SEATS, [("jp", "JP", (E5,))]), [{"upn": "jp@contoso.com", "cp": "domestic"}])
    assert codes(p) == [("error", "plan-not-available-in-country", "jp")]
    assert "not sold in JP" in p.diagnostics[0].message and "US" in p.diagnostics[0].message


def test_usage_location_required() -> None:
    p = run(tenant_state(SEATS, [("new", None, ())]), [{"upn": "new@contoso.com", "cp": "domestic"}])
    assert codes(p) == [("error", "usage-location-required", "new")]
    p = run(tenant_state(SEATS, [("new", None, ())]), [{"upn": "new@contoso.com", "ps": True}])
    assert codes(p) == [("error", "usage-location-required", "new")] and p.actions == ()


def test_user_not_found_names_the_manifest_line() -> None:
    p = run(tenant_state(SEATS, []), [{"upn": "ghost@contoso.com", "cp": "none"}])
    (d,) = p.diagnostics
    assert (d.severity, d.code, d.upn, d.source) == (
        "error",
        "user-not-found",
        "ghost@contoso.com",
        "manifests/users.yaml:10",
    )


@pytest.mark.parametrize(
    "declared",
    ["contoso.com", "CONTOSO.onmicrosoft.com", demo.stable_id("tenant", "contoso.onmicrosoft.com")],
)
def test_tenant_guard_matches_id_or_any_verified_domain(declared: str) -> None:
    p = run(
        tenant_state(SEATS, [("a", "US", (E5,))]),
        [{"upn": "a@contoso.com", "cp": "domestic"}],
        tenant=declared,
    )
    assert codes(p) == [] and steps(p) == ["a: +MCOPSTN1"]


def test_tenant_mismatch_plans_nothing() -> None:
    p = run(
        tenant_state(SEATS, [("a", "US", (E5,))]),
        [{"upn": "a@contoso.com", "cp": "domestic"}],
        tenant="fabrikam.com",
        tenant_source=Source("manifests/tenant.yaml", 1),
    )
    assert codes(p) == [("error", "tenant-mismatch", None)] and p.actions == ()
    assert "fabrikam.com" in p.diagnostics[0].message and "contoso.com" in p.diagnostics[0].message
    assert p.diagnostics[0].source == "manifests/tenant.yaml:1"


def test_suspended_subscription_is_an_error_and_warning_status_a_warning() -> None:
    p = run(
        tenant_state({**SEATS, INTL: (10, "Suspended")}, [("a", "US", (E5,))]),
        [{"upn": "a@contoso.com", "cp": "international"}],
    )
    # One user's change: the diagnostic is that user's, with the manifest line of their entry.
    assert codes(p) == [("error", "subscription-not-active", "a")] and p.actions == ()
    assert p.diagnostics[0].source == "manifests/users.yaml:10"
    assert "MCOPSTN2 subscription is Suspended" in p.diagnostics[0].message
    assert "not planned for a@contoso.com" in p.diagnostics[0].message
    p = run(
        tenant_state({**SEATS, INTL: (10, "Warning")}, [("a", "US", (E5,))]),
        [{"upn": "a@contoso.com", "cp": "international"}],
    )
    assert codes(p) == [("warning", "subscription-not-active", "a")] and steps(p) == ["a: +MCOPSTN2"]
    assert p.diagnostics[0].source == "manifests/users.yaml:10"
    assert "assigns it to 1 user (a@contoso.com)" in p.diagnostics[0].message


def test_a_swap_to_a_suspended_plan_keeps_the_plan_the_user_has() -> None:
    # heidi holds International and is declared domestic, whose subscription is Suspended: the add cannot
    # happen, so the plan must not remove International either (it showed "- MCOPSTN2" and no add).
    p = run(tenant_state({**SEATS, DOM: (10, "Suspended")}, [("heidi", "US", (E3, EV, INTL))]),
            [{"upn": "heidi@contoso.com", "cp": "domestic"}])
    assert codes(p) == [("error", "subscription-not-active", "heidi")] and p.actions == ()
    # nor for a user without a usage location: nothing can be added, so nothing is taken away
    p = run(tenant_state(SEATS, [("nol", None, (E3, EV, INTL))]), [{"upn": "nol@contoso.com", "cp": "domestic"}])
    assert ("error", "usage-location-required", "nol") in codes(p) and p.actions == ()


def test_a_sku_named_plan_is_refused_where_it_is_not_sold_as_validate_does() -> None:
    # `validate` refuses `sku:MCOPSTN2` for an MX user; plan and apply assigned it. A usage location from the
    # tenant is checked too (the US-zone PAYG SKU for a GB user).
    state = tenant_state(SEATS, [("emma", "CA", (E3, EV)), ("isla", "GB", (E3, EV))])
    p = run(state, [{"upn": "emma@contoso.com", "loc": "MX", "cp": "sku:MCOPSTN2"},
                    {"upn": "isla@contoso.com",
                     "cp": "sku:Microsoft_Teams_Calling_Plan_pay_as_you_go_(country_zone_1_US)"}])
    assert sorted(codes(p)) == [("error", "plan-not-available-in-country", "emma"),
                                ("error", "plan-not-available-in-country", "isla")]
    isla = next(d.message for d in p.diagnostics if d.upn == "isla@contoso.com")
    assert "is not sold in GB" in isla and "It is sold in: PR, US." in isla
    # where it is sold, it is assigned as before
    p = run(state, [{"upn": "emma@contoso.com", "cp": "sku:MCOPSTN2"}])
    assert steps(p) == ["emma: +MCOPSTN2"]


def test_suspended_subscription_for_several_users_names_them_all_and_no_single_upn() -> None:
    p = run(
        tenant_state({**SEATS, INTL: (10, "Suspended")}, [("a", "US", (E5,)), ("b", "US", (E5,))]),
        [{"upn": "a@contoso.com", "cp": "international"}, {"upn": "b@contoso.com", "cp": "international"}],
    )
    assert codes(p) == [("error", "subscription-not-active", None)] and p.diagnostics[0].source is None
    assert "not planned for a@contoso.com, b@contoso.com" in p.diagnostics[0].message


def test_inherited_license_also_held_directly_is_never_removed() -> None:
    # frank's case from the demo: MCOEV directly AND MCOEV + MCOPSTN1 from a group. Neither phoneSystem: false
    # nor callingPlan: none may remove the direct MCOEV copy (it frees no seat; CONTRACT §3).
    groups = {"Sales Voice": (("frank",), (EV, DOM))}
    for wish in ({"ps": False, "cp": "none"}, {"ps": False}, {"cp": "none"}):
        state = tenant_state(SEATS, [("frank", "US", (E3, EV, DOM))], groups=groups)
        p = run(state, [{"upn": "frank@contoso.com", **wish}])
        assert p.actions == () or all(not a.remove for a in p.actions), (wish, steps(p))
        inh = [d for d in p.diagnostics if d.code == "inherited-license"]
        parts = sorted(d.message.split(" ")[0] for d in inh)
        assert parts == (["MCOEV", "MCOPSTN1"] if wish.get("ps") is False else ["MCOPSTN1"]), (wish, parts)
        for d in inh:
            assert (d.severity, d.upn, d.source) == (
                "warning",
                "frank@contoso.com",
                "manifests/users.yaml:10",
            )
            assert "comes from group 'Sales Voice', so it cannot be removed" in d.message
            assert "frees no seat" in d.message and "a later plan removes the direct copy" in d.message


def test_unlisted_remove_keeps_a_direct_copy_the_user_also_inherits() -> None:
    state = tenant_state(
        SEATS, [("gone", "US", (E3, EV, DOM)), ("a", "US", (E5,))], groups={"Voice": (("gone",), (EV,))}
    )
    p = run(state, [{"upn": "a@contoso.com"}], Policy(unlisted="remove"))
    assert steps(p) == ["gone: -MCOPSTN1"]
    (d,) = [d for d in p.diagnostics if d.code == "inherited-license"]
    assert (d.upn, d.source) == ("gone@contoso.com", None)
    assert d.message.startswith("MCOEV comes from group 'Voice'") and "policy.unlisted: remove" in d.message


def test_calling_plan_swap_keeps_an_inherited_plan_held_directly_too() -> None:
    # Swapping to International: the Domestic plan would go, but a group grants it, so the direct copy stays.
    state = tenant_state(SEATS, [("m", "US", (E5, DOM))], groups={"Dial": (("m",), (DOM,))})
    p = run(state, [{"upn": "m@contoso.com", "cp": "international"}])
    assert steps(p) == ["m: +MCOPSTN2"]
    (d,) = [d for d in p.diagnostics if d.code == "inherited-license"]
    assert d.upn == "m@contoso.com" and d.message.startswith("MCOPSTN1 comes from group 'Dial'")
    assert "(callingPlan: international)" in d.message and "frees no seat" in d.message


def test_removal_limit_is_a_warning_at_plan_time() -> None:
    state = tenant_state(SEATS, [(f"u{i}", "US", (E3, EV, DOM)) for i in range(3)])
    p = run(state, [{"upn": f"u{i}@contoso.com", "ps": False} for i in range(3)], Policy(max_removals=5))
    assert codes(p) == [("warning", "removal-limit", None)] and p.removal_count == 6
    assert "more than policy.maxRemovals (5)" in p.diagnostics[0].message


def test_disabled_account_being_licensed_is_a_warning() -> None:
    state = tenant_state(SEATS, [("old", "US", (E5,))], account_off=("old",))
    p = run(state, [{"upn": "old@contoso.com", "cp": "domestic"}])
    assert codes(p) == [("warning", "account-disabled", "old")]


def test_puerto_rico_shares_the_united_states_minute_pool() -> None:
    # "Users assigned with the license usage location of U.S. and/or Puerto Rico share the same pool of minutes"
    # (reference §2.4): a move from US to PR leaves the pool as it was (it showed US 2->1 and a new PR line).
    state = tenant_state(SEATS, [("a", "US", (E3, EV, DOM)), ("b", "US", (E3, EV, DOM)), ("c", "PR", (E3, EV, DOM))])
    p = run(state, [{"upn": "b@contoso.com", "loc": "PR", "cp": "domestic"}])
    assert [(x.country, x.part_number, x.users_before, x.users_after, x.minutes_before, x.minutes_after)
            for x in p.pools] == [("US", "MCOPSTN1", 3, 3, 9000, 9000)]


def test_pay_as_you_go_has_no_minutes_to_pool_so_no_split_pool_warning() -> None:
    # Two PAYG SKUs in GB (the zone-1 one and, by sku:, the US-zone one): PAYG pools nothing, so no split-pool
    # warning (it also suggested moving GB users onto the US-zone SKU); the US-zone SKU is refused in GB anyway.
    state = tenant_state(SEATS, [("a", "GB", (E3, EV, PAYG_Z1, CC)), ("b", "GB", (E3, EV, PAYG_US, CC))])
    p = run(state, [{"upn": "a@contoso.com", "cp": "payg"}])
    assert not any(c[1] == "split-pool" for c in codes(p))


def test_users_of_one_country_split_across_two_skus_of_one_plan_warn() -> None:
    state = tenant_state(SEATS, [("a", "GB", (E3, EV, M120)), ("b", "GB", (E3, EV))])
    legacy = {"skuId": "54a152dc-90de-4996-93d2-bc47e670fc06", "skuPartNumber": "MCOPSTN5", "capabilityStatus": "Enabled",
              "appliesTo": "User", "prepaidUnits": {"enabled": 5, "suspended": 0, "warning": 0, "lockedOut": 0},
              "servicePlans": [{"servicePlanId": "54a152dc-90de-4996-93d2-bc47e670fc06", "servicePlanName": "MCOPSTN5"}]}  # fmt: skip
    state["subscribedSkus"] = [s for s in state["subscribedSkus"] if s["skuPartNumber"] != M120] + [legacy]
    state["subscribedSkus"].append(demo.sku_record(M120, 1))
    p = run(state, [{"upn": "b@contoso.com", "cp": "sku:MCOPSTN5"}])
    assert steps(p) == ["b: +MCOPSTN5"]
    assert ("warning", "split-pool", None) in codes(p)
    assert "pooling is only available on identical Calling Plans" in " ".join(
        d.message for d in p.diagnostics
    )
    gb = {(x.part_number, x.users_before, x.users_after) for x in p.pools if x.country == "GB"}
    assert gb == {(M120, 1, 1), ("MCOPSTN5", 0, 1)}


def test_sku_reference_must_be_a_calling_plan() -> None:
    p = run(tenant_state(SEATS, [("a", "US", (E3,))]), [{"upn": "a@contoso.com", "cp": "sku:MCOEV"}])
    assert codes(p) == [("error", "sku-not-a-calling-plan", "a")]


def test_pools_count_users_and_minutes_before_and_after() -> None:
    state = tenant_state(
        SEATS, [("a", "US", (E3, EV, DOM)), ("b", "US", (E5,)), ("c", "US", (E5, PAYG_US, CC))]
    )
    p = run(state, [{"upn": "b@contoso.com", "cp": "domestic"}])
    pools = {(x.country, x.part_number): x for x in p.pools}
    dom = pools[("US", DOM)]
    assert (dom.users_before, dom.users_after, dom.minutes_before, dom.minutes_after, dom.pooled) == (
        1,
        2,
        3000,
        6000,
        True,
    )
    payg = pools[("US", PAYG_US)]
    assert (payg.users_after, payg.minutes_after, payg.pooled) == (1, None, False)


def test_count_violation_on_a_group_shows_in_the_drift_view() -> None:
    seats = {**SEATS, DOM: 1}
    state = tenant_state(
        seats, [("a", "US", (E3, EV)), ("b", "US", (E3, EV))], groups={"Voice": (("a", "b"), (EV, DOM))}
    )
    p = run(state, [{"upn": "a@contoso.com", "cp": "domestic"}, {"upn": "b@contoso.com", "cp": "domestic"}])
    assert p.actions == ()
    (b,) = [u for u in p.users if u.upn == "b@contoso.com"]
    # one seat short of MCOPSTN1, so b gets none of the group's licenses (Entra assigns a group's licenses all or
    # none): both are in error
    assert b.problems[:2] == ("CountViolation on MCOEV (group 'Voice')", "CountViolation on MCOPSTN1 (group 'Voice')")
    assert ("warning", "license-assignment-error", "b") in codes(p)
    assert "buy more seats or take users out of the group" in p.diagnostics[-1].message
    # A group copy in error gives nothing: b lacks the declared plan, and the one seat is a's: an error (it used
    # to count as had, and the plan said the tenant matched)
    assert ("error", "insufficient-seats", "b") in codes(p)


def test_a_calling_plan_inherited_in_error_or_switched_off_is_assigned_directly() -> None:
    # b's group gives a Calling Plan without Phone System (DependencyViolation: it never becomes active); c holds
    # MCOPSTN1 directly with its plan disabled. Both declared domestic: b gets it directly (a seat), c gets it
    # re-assigned with the plan on (no seat). Neither counted in the pool before.
    state = tenant_state({**SEATS, DOM: 3}, [("a", "US", (E3, EV, DOM)), ("b", "US", (E3, EV)), ("c", "US", (E3, EV, DOM))],
                         groups={"Calling only": (("b",), (DOM,))}, disabled={("c", DOM): ("MCOPSTN1",)})
    p = run(state, [{"upn": "b@contoso.com", "cp": "domestic"}, {"upn": "c@contoso.com", "cp": "domestic"}])
    assert sorted(steps(p)) == ["b: +MCOPSTN1", "c: +MCOPSTN1"]
    (pool,) = p.pools
    assert (pool.users_before, pool.users_after) == (1, 3)
    assert [s.after for s in p.seats if s.part_number == "MCOPSTN1"] == [3]  # c's re-add took no seat


def test_a_freed_seat_is_free_for_anyone_while_group_members_wait() -> None:
    # One MCOPSTN1 seat, held directly by x; y waits for it through a group (CountViolation). Freeing x's seat
    # does not give it to y: Entra needs the group reprocessed for that (entra-docs
    # licensing-groups-resolve-problems.md, "Force group license processing"), so z's add takes it.
    seats = {**SEATS, DOM: 1}
    state = tenant_state(seats, [("x", "US", (E3, EV, DOM)), ("y", "US", (E3, EV)), ("z", "US", (E5,))],
                         groups={"Voice": (("y",), (EV, DOM))})  # fmt: skip
    p = run(state, [{"upn": "x@contoso.com", "cp": "none"}, {"upn": "z@contoso.com", "cp": "domestic"}])
    assert steps(p) == ["x: -MCOPSTN1", "z: +MCOPSTN1"]
    assert p.actions[1].depends_on == (p.actions[0].id,)  # z's seat is the one x frees
    assert not any(c[1] == "insufficient-seats" for c in codes(p))


def test_a_sku_assigned_beyond_its_seats_frees_nothing_until_back_within_them() -> None:
    # MCOPSTN_6 has 1 seat and 2 holders (seats reduced): jack's removal only pays off the excess, so harry's add
    # would fail in Graph. The plan used to spend that seat (exit 0) and apply failed half-way.
    state = tenant_state({**SEATS, M240: 1}, [("jack", "GB", (E3, EV, M240)), ("louis", "FR", (E3, EV, M240)),
                                              ("harry", "GB", (E3, EV))])
    p = run(state, [{"upn": "jack@contoso.com", "cp": "none"}, {"upn": "harry@contoso.com", "cp": "domestic-240"}])
    assert steps(p) == ["jack: -MCOPSTN_6"]
    assert ("error", "insufficient-seats", "harry") in codes(p)
    msg_ = next(d.message for d in p.diagnostics if d.code == "insufficient-seats")
    assert "0 freed by this plan" in msg_
    assert [(s.consumed, s.after) for s in p.seats if s.part_number == "MCOPSTN_6"] == [(2, 1)]
    # with two removals, the second frees a seat, and the add waits for both (either may finish first)
    p = run(state, [{"upn": "jack@contoso.com", "cp": "none"}, {"upn": "louis@contoso.com", "cp": "none"},
                    {"upn": "harry@contoso.com", "cp": "domestic-240"}])
    assert steps(p) == ["jack: -MCOPSTN_6", "louis: -MCOPSTN_6", "harry: +MCOPSTN_6"]
    assert set(p.actions[2].depends_on) == {p.actions[0].id, p.actions[1].id}


def test_action_ids_follow_the_order_and_everything_is_sorted() -> None:
    state = tenant_state(SEATS, [(u, None, (E3,)) for u in ("c", "a", "b")])
    p = run(state, [{"upn": f"{u}@contoso.com", "loc": "GB", "cp": "domestic"} for u in "cab"])
    assert [a.id for a in p.actions] == [f"a00{i}" for i in range(1, 7)]
    assert steps(p)[:3] == ["a: loc None->GB", "b: loc None->GB", "c: loc None->GB"]
    assert [u.upn for u in p.users] == ["a@contoso.com", "b@contoso.com", "c@contoso.com"]


def test_preconditions_record_touched_users_and_seats_taken() -> None:
    state = tenant_state(SEATS, [("a", "US", (E5,))])
    p = run(state, [{"upn": "a@contoso.com", "cp": "domestic"}])
    (pre,) = p.user_preconditions
    assert (
        pre.upn == "a@contoso.com"
        and pre.usage_location == "US"
        and pre.direct_sku_ids == (demo.SKUS[E5][0],)
    )
    assert [(s.part_number, s.free_needed) for s in p.seat_preconditions] == [(DOM, 1)]
    assert p.fingerprint.startswith("sha256:") and len(p.fingerprint) == 71


def test_a_calling_plan_held_without_phone_system_blocks_changes_with_an_error() -> None:
    state = tenant_state(SEATS, [("odd", "US", (E3, DOM))])
    p = run(state, [{"upn": "odd@contoso.com", "cc": True}])
    assert codes(p) == [("error", "calling-plan-without-phone-system", "odd")] and p.actions == ()
    p = run(state, [{"upn": "odd@contoso.com", "cc": True, "ps": True}])
    assert steps(p) == ["odd: +MCOEV +MCOPSTNC"] and codes(p) == []


def test_country_move_with_a_swap_of_plans_sold_in_both_is_one_call_after_the_move() -> None:
    p = run(
        tenant_state(SEATS, [("ann", "GB", (E3, EV, DOM))]),
        [{"upn": "ann@contoso.com", "loc": "US", "cp": "international"}],
    )
    assert steps(p) == ["ann: loc GB->US", "ann: +MCOPSTN2 -MCOPSTN1"]


ESSENTIALS = "ae2343d1-0999-43f6-ae18-d816516f6e78"  # MCOTEAMS_ESSENTIALS: MCOPSTN1 + MCOEV (reference §1.2)


def _with_bundle(state: dict[str, Any], holders: list[str]) -> dict[str, Any]:
    plans = [{"servicePlanId": demo.PLANS[n], "servicePlanName": n, "provisioningStatus": "Success",
              "appliesTo": "User"} for n in ("MCOPSTN1", "MCOEV")]
    state["subscribedSkus"].append({
        "skuId": ESSENTIALS, "skuPartNumber": "MCOTEAMS_ESSENTIALS", "capabilityStatus": "Enabled",
        "appliesTo": "User", "prepaidUnits": {"enabled": 10, "suspended": 0, "warning": 0, "lockedOut": 0},
        "servicePlans": plans,
    })
    for u in state["users"]:
        if u["userPrincipalName"].split("@")[0] in holders:
            u["assignedLicenses"].append({"skuId": ESSENTIALS, "disabledPlans": []})
    return state


def test_a_bundle_that_includes_the_declared_calling_plan_satisfies_it() -> None:
    # MCOTEAMS_ESSENTIALS carries MCOPSTN1 and Phone System: declaring domestic buys nothing more
    state = _with_bundle(tenant_state(SEATS, [("kim", "US", (E3,)), ("ruth", "GB", (E3,)), ("noah", "CA", (E3,)),
                                              ("off", "US", (E3,))]),
                         ["kim", "ruth", "noah"])
    state = _with_bundle_disabled(state, "off")
    p = run(state, [{"upn": "kim@contoso.com", "cp": "domestic"},
                    {"upn": "ruth@contoso.com", "cp": "international"},
                    {"upn": "noah@contoso.com", "cp": "none", "ps": True},
                    {"upn": "off@contoso.com", "cp": "domestic"}])
    # kim: satisfied; ruth: International added beside the bundle's plan, with a warning; noah: the bundle's
    # plan cannot be removed (a warning); off: the bundle's Calling Plan is disabled, so domestic is bought
    assert sorted(steps(p)) == ["off: +MCOEV +MCOPSTN1", "ruth: +MCOPSTN2"]
    assert sorted(codes(p)) == [("warning", "calling-plan-in-suite", "noah"),
                                ("warning", "calling-plan-in-suite", "ruth")]


def _bundle_only(holders: list[str], others: list[str], group_holders: tuple[str, ...] = ()) -> dict[str, Any]:
    """A tenant whose only voice licenses are MCOTEAMS_ESSENTIALS bundles: no standalone Phone System or Calling
    Plan SKU (what many small US tenants buy)."""
    state = _with_bundle(tenant_state({E3: 50}, [(u, "US", (E3,)) for u in [*holders, *others, *group_holders]]),
                         holders)
    if group_holders:
        state["groups"].append({"id": demo.stable_id("group", "voice"), "displayName": "voice",
                                "members": [demo.stable_id("user", f"{m}@contoso.com") for m in group_holders],
                                "assignedLicenses": [{"skuId": ESSENTIALS, "disabledPlans": []}]})
    return state


def test_in_a_bundle_only_tenant_a_user_holding_the_bundle_has_the_declared_plan() -> None:
    # It used to be an error (sku-not-in-tenant: "no MCOPSTN1 subscription") for users who had exactly what the
    # manifest declares, and the error blocked the whole plan.
    state = _bundle_only(["kim"], [], group_holders=("gus",))
    p = run(state, [{"upn": "kim@contoso.com", "loc": "US", "cp": "domestic"},
                    {"upn": "gus@contoso.com", "loc": "US", "cp": "domestic", "ps": True}])
    assert steps(p) == [] and codes(p) == [] and not p.has_errors


def test_in_a_bundle_only_tenant_the_errors_point_to_the_bundle() -> None:
    state = _with_bundle_disabled(_bundle_only(["kim"], ["ben"]), "off")
    state["users"].append({**state["users"][1], "id": demo.stable_id("user", "off@contoso.com"),
                           "userPrincipalName": "off@contoso.com", "assignedLicenses": [
                               {"skuId": demo.SKUS[E3][0], "disabledPlans": []},
                               {"skuId": ESSENTIALS, "disabledPlans": [demo.PLANS["MCOPSTN1"]]}]})
    p = run(state, [{"upn": "ben@contoso.com", "loc": "US", "cp": "domestic"},
                    {"upn": "kim@contoso.com", "loc": "US", "cp": "international"},
                    {"upn": "off@contoso.com", "loc": "US", "cp": "domestic"}])
    assert steps(p) == []
    assert sorted(codes(p)) == [("error", "sku-not-in-tenant", "ben"), ("error", "sku-not-in-tenant", "ben"),
                                ("error", "sku-not-in-tenant", "kim"), ("error", "sku-not-in-tenant", "off")]
    ben = sorted(d.message for d in p.diagnostics if d.upn == "ben@contoso.com")
    # no standalone Domestic plan: the bundle is named as the way to give it (the tool never assigns bundles)
    assert "its MCOTEAMS_ESSENTIALS includes that Calling Plan" in ben[0] and "Assign MCOTEAMS_ESSENTIALS" in ben[0]
    # nor a Phone System add-on: the licenses that include Phone System are named, not `callingPlan: sku:`
    assert "needs Phone System" in ben[1] and "(MCOTEAMS_ESSENTIALS in this tenant)" in ben[1]
    assert "sku:" not in ben[1]
    # the bundle gives Domestic, not International: kim's plan is missing, and the bundle is not offered for it
    kim = next(d.message for d in p.diagnostics if d.upn == "kim@contoso.com" and d.severity == "error")
    assert "MCOPSTN2" in kim and "MCOTEAMS_ESSENTIALS" not in kim
    # off holds the bundle with its Calling Plan switched off: it gives no Calling Plan, and the error says so
    off = next(d.message for d in p.diagnostics if d.upn == "off@contoso.com")
    assert "MCOPSTN1" in off and "user's MCOTEAMS_ESSENTIALS" in off and "switched off" in off


def test_a_suite_with_a_built_in_calling_plan_is_recognised() -> None:
    # SPE_E5_CALLINGMINUTES "Has a built-in calling plan" (MCOPSTN8, 120 min, not pooled; reference §1.2): like a
    # bundle, callingPlan: none cannot remove it and a declared plan is bought beside it, each with a warning
    # (there was none). It satisfies no declared plan: no offer is that plan.
    suite = "a91fc4e0-65e5-4266-aa76-4037509c1626"
    state = tenant_state(SEATS, [("felix", "DE", ()), ("chloe", "FR", ())])
    state["subscribedSkus"].append({
        "skuId": suite, "skuPartNumber": "SPE_E5_CALLINGMINUTES", "capabilityStatus": "Enabled",
        "prepaidUnits": {"enabled": 5, "suspended": 0, "warning": 0, "lockedOut": 0},
        "servicePlans": [{"servicePlanId": "16935b20-87c0-4908-934a-22aa267d0d26", "servicePlanName": "MCOPSTN8"},
                         {"servicePlanId": "4828c8ec-dc2e-4779-b502-87ac9ce28ab7", "servicePlanName": "MCOEV"}]})
    for u in state["users"]:
        u["assignedLicenses"] = [{"skuId": suite, "disabledPlans": []}]
    p = run(state, [{"upn": "felix@contoso.com", "cp": "domestic-120"}, {"upn": "chloe@contoso.com", "cp": "none"}])
    assert steps(p) == ["felix: +MCOPSTN_5"]
    assert sorted(codes(p)) == [("warning", "calling-plan-in-suite", "chloe"), ("warning", "calling-plan-in-suite", "felix")]


def _with_bundle_disabled(state: dict[str, Any], holder: str) -> dict[str, Any]:
    for u in state["users"]:
        if u["userPrincipalName"].split("@")[0] == holder:  # the bundle with both its plans switched off
            u["assignedLicenses"].append({"skuId": ESSENTIALS, "disabledPlans": [demo.PLANS["MCOPSTN1"],
                                                                                  demo.PLANS["MCOEV"]]})
    return state
