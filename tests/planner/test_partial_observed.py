"""Planning from a partial read (the named users + Calling Plan holder counts) against the complete read."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from emu import desired, observed_from_state, tenant_state

from provisioner.catalog import load_catalog
from provisioner.emulator import demo
from provisioner.emulator.state import TenantState
from provisioner.model.desired import Policy
from provisioner.model.observed import Observed
from provisioner.model.plan import Plan
from provisioner.planner import calling_plan_sku_ids, plan

CAT = load_catalog()
E3, EV, DOM, M120 = demo.E3, demo.EV, demo.DOM, demo.M120
SEATS: dict[str, int | tuple[int, str]] = {E3: 50, EV: 50, DOM: 50, M120: 50}


def partial(full: Observed, named: set[str]) -> Observed:
    """What the reader's counted read returns: the named users, and holders per (country, Calling Plan)."""
    cp = set(calling_plan_sku_ids(full.skus, CAT))
    counts: Counter[tuple[str, str]] = Counter()
    for u in full.users.values():
        held = {a.sku_id for a in u.assignments if a.by_group is None or a.state not in ("Error", "Disabled")}
        for s in held & cp:
            counts[(u.usage_location or "", s)] += 1
    users = {k: u for k, u in full.users.items() if k in named}
    return dataclasses.replace(full, users=users, complete_for_managed=False, holder_counts=dict(counts))


def same(a: Plan, b: Plan) -> None:
    assert dataclasses.replace(a, fingerprint="") == dataclasses.replace(b, fingerprint="")


def test_pools_from_counts_equal_the_complete_read_also_when_a_freed_seat_is_reused() -> None:
    # DOM has no free seat: cat's seat comes from ann giving hers up. Unnamed bo (US) and gil (GB) hold plans.
    state = tenant_state(
        {E3: 50, EV: 50, DOM: 3, M120: 50},
        [
            ("ann", "US", (E3, EV, DOM)),
            ("bo", "US", (E3, EV, DOM)),
            ("cat", "US", (E3, EV)),
            ("dan", "GB", (E3, EV)),
            ("gil", "GB", (E3, EV, DOM)),
        ],
    )
    full = observed_from_state(TenantState.from_dict(state))
    d = desired(
        [
            {"upn": "ann@contoso.com", "cp": "none"},
            {"upn": "cat@contoso.com", "cp": "domestic"},
            {"upn": "dan@contoso.com", "cp": "domestic"},
        ]
    )
    want = plan(d, full, CAT)
    got = plan(d, partial(full, {"ann@contoso.com", "cat@contoso.com", "dan@contoso.com"}), CAT)
    pools = {(p.country, p.part_number): (p.users_before, p.users_after) for p in got.pools}
    assert pools == {("GB", "MCOPSTN1"): (1, 1), ("US", "MCOPSTN1"): (2, 2)}  # bo and gil counted, unread
    # one seat freed, two wanted: dan (first in line after cat) is left out, in both plans alike
    assert [(x.code, x.upn) for x in want.diagnostics] == [("insufficient-seats", "dan@contoso.com")]
    # A freed seat is free for anyone (group members waiting in CountViolation get one only when their group is
    # reprocessed), so the users the partial read did not read cannot take it: the plans are the same.
    same(got, want)


def test_the_same_plan_when_the_plan_takes_only_free_seats() -> None:
    state = tenant_state(
        SEATS, [("ann", "US", (E3, EV, DOM)), ("cat", "US", (E3, EV)), ("bo", "US", (E3, EV, DOM))]
    )
    full = observed_from_state(TenantState.from_dict(state))
    d = desired([{"upn": "ann@contoso.com", "cp": "none"}, {"upn": "cat@contoso.com", "cp": "domestic"}])
    got = plan(d, partial(full, {"ann@contoso.com", "cat@contoso.com"}), CAT)
    same(got, plan(d, full, CAT))
    assert [p.users_before for p in got.pools] == [2]


def test_a_country_move_into_a_country_without_holders_adds_a_pool_line() -> None:
    state = tenant_state(SEATS, [("ann", "US", (E3, EV, DOM)), ("bo", "US", (E3, EV, DOM))])
    full = observed_from_state(TenantState.from_dict(state))
    d = desired([{"upn": "ann@contoso.com", "loc": "CA", "cp": "domestic"}])
    got = plan(d, partial(full, {"ann@contoso.com"}), CAT)
    same(got, plan(d, full, CAT))
    assert [(p.country, p.users_before, p.users_after) for p in got.pools] == [("CA", 0, 1), ("US", 2, 1)]


def test_unlisted_remove_refuses_a_partial_read() -> None:
    full = observed_from_state(TenantState.from_dict(tenant_state(SEATS, [("ann", "US", (E3, EV, DOM))])))
    d = desired([{"upn": "ann@contoso.com", "cp": "none"}], policy=Policy(unlisted="remove"))
    with pytest.raises(ValueError, match="unlisted: remove needs every holder"):
        plan(d, partial(full, {"ann@contoso.com"}), CAT)
