"""The resolver's memo and replays change no plan, on random tenants made to be awkward: duplicate SKUs (two
subscriptions of one part, two SKUs of one offer), subscriptions in every state, seats short or over-assigned,
group copies active and in CountViolation, disabled service plans, bundles and suites carrying a Calling Plan,
disabled accounts, users with no or lower-case locations, mixed-case UPNs, and wishes of every kind (valid,
misspelt, not sold where the user is). Each plan is compared with the one that resolves every user in full.

Seeded: the same cases every run (a failure names its seed: rerun `case(seed, n)` to see it).
"""

from __future__ import annotations

import random
import uuid

import pytest

from provisioner.catalog import load_catalog
from provisioner.emulator import demo
from provisioner.model.desired import Desired, DesiredUser, Policy, Source
from provisioner.model.observed import Assignment, Observed, ServicePlan, Sku, TenantInfo, User
from provisioner.model.plan import Plan
from provisioner.planner import plan
from provisioner.planner.resolve import Resolver

CAT = load_catalog()
PLAN_IDS = {**demo.PLANS, "MCOPSTN8": "11111111-2222-4333-8444-555566667777",
            "MCOPSTN1_GOV": "33333333-2222-4333-8444-555566667777"}
SKU_PLANS = {  # part number -> its service plans
    "ENTERPRISEPACK": ("EXCHANGE_S_ENTERPRISE", "TEAMS1", "MCOSTANDARD"),
    "SPE_E5": ("EXCHANGE_S_ENTERPRISE", "TEAMS1", "MCOEV"),
    "MCOEV": ("MCOEV",),
    "MCOPSTN1": ("MCOPSTN1",),
    "MCOPSTN_1_GOV": ("MCOPSTN1_GOV",),  # a second SKU of the Domestic offer
    "MCOPSTN2": ("MCOPSTN2",),
    "MCOPSTN_5": ("MCOPSTN5",),
    "MCOPSTN_6": ("MCOPSTN6",),
    demo.PAYG_US: ("MCOPSTN_PAYG_1",),
    "MCOPSTNC": ("MCOPSTNC",),
    "MCOTEAMS_ESSENTIALS": ("TEAMS1", "MCOEV", "MCOPSTN1"),
    "SPE_E5_CALLINGMINUTES": ("TEAMS1", "MCOEV", "MCOPSTN8"),
}
LOCATIONS = (None, None, "US", "GB", "DE", "JP", "MX", "us")
PLANS = (None, "none", "domestic", "international", "payg", "domestic-120", "sku:MCOPSTN1", "sku:MCOEV",
         "sku:NOPE", "sku:MCOTEAMS_ESSENTIALS")


def _id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def case(seed: int, n: int) -> tuple[Desired, Observed]:
    rng = random.Random(seed)
    skus = []
    for part in [p for p in SKU_PLANS if rng.random() < 0.8] or ["MCOEV", "MCOPSTN1"]:
        for _ in range(rng.choice((1, 1, 1, 2, 3))):  # two or three subscriptions of one part, at times
            status = rng.choice(("Enabled",) * 5 + ("Warning", "Suspended", "LockedOut"))
            skus.append(Sku(_id(rng), part, status, rng.randint(0, 12), rng.randint(0, 14),
                            service_plans=tuple(ServicePlan(PLAN_IDS[p], p) for p in SKU_PLANS[part])))
    shapes: list[tuple[Assignment, ...]] = [()]
    for _ in range(rng.randint(2, 8)):
        held = []
        for s in rng.sample(skus, min(len(skus), rng.randint(0, 4))):
            if rng.random() < 0.7:
                off = tuple(p.id for p in s.service_plans if rng.random() < 0.15)
                held.append(Assignment(s.sku_id, None, off, "Active", None))
            if rng.random() < 0.25:
                waiting = rng.random() < 0.3
                held.append(Assignment(s.sku_id, rng.choice(("g-0", "g-1", "g-2")), (),
                                       "Error" if waiting else "Active", "CountViolation" if waiting else None))
        shapes.append(tuple(held))
    wishes = [(rng.choice(LOCATIONS), rng.choice(PLANS), rng.choice((None, True, False)),
               rng.choice((None, None, True, False))) for _ in range(rng.randint(2, 8))]
    places = [rng.choice((None, "US", "us", "GB", "DE", "JP", "MX")) for _ in range(3)]
    users, declared = {}, []
    for i in range(n):
        upn = f"u{i:04d}@contoso.com"
        if rng.random() < 0.1:
            upn = upn.upper().replace("@CONTOSO.COM", "@contoso.com")
        users[upn.lower()] = User(_id(rng), upn, None, rng.random() > 0.05, rng.choice(places), rng.choice(shapes))
        if rng.random() < 0.9:
            declared.append(DesiredUser(upn if rng.random() < 0.8 else upn.lower(), Source("m.yaml", 10 + i),
                                        *rng.choice(wishes)))
    observed = Observed(TenantInfo("t", "T", ("contoso.com",)), tuple(skus), users)
    policy = rng.choice((Policy(max_removals=10_000), Policy(unlisted="remove", payg_funding="postUsage"),
                         Policy(payg_funding="communicationsCredits")))
    return Desired(tuple(sorted(declared, key=lambda d: d.key)), policy), observed


def _both(desired: Desired, observed: Observed, monkeypatch: pytest.MonkeyPatch) -> tuple[Plan, Plan, int]:
    replays = 0
    replay = Resolver._replay

    def counting(self: Resolver, *args: object) -> object:
        nonlocal replays
        replays += 1
        return replay(self, *args)  # type: ignore[arg-type]

    with monkeypatch.context() as m:
        m.setattr(Resolver, "_replay", counting)
        fast = plan(desired, observed, CAT)
    with monkeypatch.context() as m:
        m.setattr(Resolver, "declared", lambda self, du, user, licenses=None: self._declared(du, user))
        slow = plan(desired, observed, CAT)
    return fast, slow, replays


def test_memo_and_replays_change_no_plan_on_random_tenants(monkeypatch: pytest.MonkeyPatch) -> None:
    replays = 0
    for seed in range(120):
        desired, observed = case(seed, 150)
        fast, slow, n = _both(desired, observed, monkeypatch)
        assert fast == slow, f"seed {seed}"
        replays += n
    assert replays > 6000  # the replays were exercised, not only the no-op memo
