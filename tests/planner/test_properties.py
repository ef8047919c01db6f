"""Property tests: random tenants and manifests. Every plan keeps the contract's ordering invariants, its
actions pass the emulator's Graph rules when run in order (seats never exceeded, usage location first,
Phone System with every Calling Plan, no inherited removals), and a plan without errors converges.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from emu import check_invariants, desired, observed_from_state, run_actions, tenant_state
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from provisioner.catalog import load_catalog
from provisioner.emulator import demo
from provisioner.emulator.state import TenantState
from provisioner.model.desired import Policy
from provisioner.planner import plan

CAT = load_catalog()
MANAGED = (demo.EV, demo.DOM, demo.INTL, demo.M120, demo.M240, demo.PAYG_US, demo.PAYG_Z1, demo.CC)
SUITES = (demo.E3, demo.E5)
COUNTRIES = ("US", "GB", "CA", "DE", "JP", None)
PLANS = ("none", "domestic", "domestic-120", "domestic-240", "international", "payg")
CALLING = {demo.DOM, demo.INTL, demo.M120, demo.M240, demo.PAYG_US, demo.PAYG_Z1}


@st.composite
def scenarios(draw: Any) -> tuple[dict[str, Any], list[dict[str, Any]], Policy]:
    n = draw(st.integers(1, 7))
    names = [f"u{i}" for i in range(n)]
    tenant_skus = draw(st.sets(st.sampled_from(MANAGED), min_size=2)) | set(SUITES)
    users = []
    for name in names:
        loc = draw(st.sampled_from(COUNTRIES))
        parts = [draw(st.sampled_from(SUITES))] if draw(st.booleans()) else []
        extra = draw(st.lists(st.sampled_from(sorted(tenant_skus - set(SUITES))), max_size=3, unique=True))
        broken_ok = not draw(st.integers(0, 9))  # now and then a tenant already in a state Graph would refuse
        if broken_ok:
            pass
        elif any(p in CALLING for p in extra) and demo.EV in tenant_skus and demo.E5 not in parts:
            extra.append(demo.EV)  # tenants hold valid combinations (Graph refuses the others)
        elif any(p in CALLING for p in extra) and demo.E5 not in parts:
            parts = [demo.E5]
        users.append(
            (
                name,
                loc if (parts or extra) or draw(st.booleans()) else None,
                tuple(dict.fromkeys(parts + extra)),
            )
        )
    groups = {}
    if draw(st.booleans()):
        members = tuple(draw(st.lists(st.sampled_from(names), max_size=n, unique=True)))
        licenses = tuple(
            draw(st.lists(st.sampled_from(sorted(tenant_skus)), min_size=1, max_size=2, unique=True))
        )
        groups["Voice"] = (members, licenses)
    # seats: what is used directly, plus a little slack (sometimes none, so orders and shortages matter)
    used = {p: sum(1 for _, _, ps in users if p in ps) for p in tenant_skus}
    seats: dict[str, int | tuple[int, str]] = {}
    for p in sorted(tenant_skus):
        enabled = used[p] + draw(st.integers(0, 2))
        status = draw(st.sampled_from(("Enabled", "Enabled", "Enabled", "Enabled", "Warning", "Suspended")))
        seats[p] = (enabled, status)
    state = tenant_state(seats, users, groups=groups)
    wanted = []
    for name in names:
        if not draw(st.integers(0, 5)):
            continue  # undeclared
        entry: dict[str, Any] = {"upn": f"{name}@contoso.com"}
        if draw(st.booleans()):
            entry["loc"] = draw(st.sampled_from(("US", "GB", "CA", "DE", "JP")))
        if draw(st.booleans()):
            entry["cp"] = draw(st.sampled_from(PLANS))
        ps = draw(st.sampled_from((None, True, False)))
        if ps is not None and not (ps is False and entry.get("cp") not in (None, "none")):
            entry["ps"] = ps
        cc = draw(st.sampled_from((None, None, True, False)))
        if cc is not None:
            entry["cc"] = cc
        wanted.append(entry)
    policy = Policy(
        unlisted=draw(st.sampled_from(("ignore", "remove"))),
        payg_funding=draw(st.sampled_from(("communicationsCredits", "postUsage"))),
    )
    return state, wanted, policy


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.randoms(use_true_random=False))
def test_every_plan_keeps_the_invariants_and_passes_graphs_rules(
    case: tuple[dict[str, Any], list[dict[str, Any]], Policy], rnd: random.Random
) -> None:
    state, wanted, policy = case
    tenant = TenantState.from_dict(state)
    observed = observed_from_state(tenant)
    d = desired(wanted, policy)
    p = plan(d, observed, CAT)
    event(f"actions: {min(len(p.actions), 5)}{'+' if len(p.actions) >= 5 else ''}")
    event("has errors" if p.has_errors else "no errors")
    for code in sorted({x.code for x in p.diagnostics}):
        event(f"diagnostic {code}")
    check_invariants(p, observed)
    run_actions(
        tenant, p
    )  # raises GraphRuleError on any call Graph would refuse; asserts seats after each call
    for line in p.seats:
        assert line.after <= max(line.enabled, line.consumed), line
    if not p.has_errors:
        again = plan(d, observed_from_state(tenant), CAT)
        assert again.actions == (), [a.to_dict() for a in again.actions]
    # dependsOn is enough: any order that honours it (as a parallel $batch executor may pick) passes too.
    shuffled = TenantState.from_dict(state)
    run_actions(shuffled, dataclasses.replace(p, actions=tuple(any_order(list(p.actions), rnd))))
    assert final(shuffled) == final(tenant)


def final(state: TenantState) -> dict[str, tuple[str | None, list[str]]]:
    return {u.upn: (u.usage_location, sorted(u.licenses)) for u in state.users}


def any_order(actions: list[Any], rnd: random.Random) -> list[Any]:
    """A random order of `actions` in which every action comes after everything in its dependsOn."""
    done: set[str] = set()
    out = []
    left = list(actions)
    while left:
        ready = [a for a in left if set(a.depends_on) <= done]
        assert ready, "dependsOn has a cycle"
        a = rnd.choice(ready)
        left.remove(a)
        done.add(a.id)
        out.append(a)
    return out
