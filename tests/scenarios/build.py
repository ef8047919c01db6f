"""Writes every scenario's inputs (`tenant.json`, `manifests/*.yaml`) from the specs below. Run it by hand
after changing a spec: `python tests/scenarios/build.py`; then regenerate the goldens with
`UPDATE_GOLDEN=1 pytest tests/scenarios` and read each diff. The committed files are what the tests read.

Each scenario shows one rule or diagnostic of the planner; its manifest's first comment says which.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provisioner.emulator import demo

HERE = Path(__file__).resolve().parent
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
PLENTY = {E3: 20, E5: 20, EV: 20, DOM: 20, INTL: 20, M120: 20, M240: 20, PAYG_US: 20, PAYG_Z1: 20, CC: 20}
HEADER = "apiVersion: provisioner/v1\nkind: TeamsVoiceLicensing\n"
LEGACY_MCOPSTN5 = {  # the other SKU with part number MCOPSTN5 family: legacy 120-minute plan (reference §1.2)
    "skuId": "54a152dc-90de-4996-93d2-bc47e670fc06",
    "skuPartNumber": "MCOPSTN5",
    "capabilityStatus": "Enabled",
    "appliesTo": "User",
    "prepaidUnits": {"enabled": 5, "suspended": 0, "warning": 0, "lockedOut": 0},
    "servicePlans": [{"servicePlanId": "54a152dc-90de-4996-93d2-bc47e670fc06", "servicePlanName": "MCOPSTN5",
                      "provisioningStatus": "Success", "appliesTo": "User"}],
}  # fmt: skip


def tenant(
    skus: dict[str, Any],
    users: list[tuple[str, str | None, tuple[str, ...]]],
    groups: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] | None = None,
    disabled: dict[tuple[str, str], tuple[str, ...]] | None = None,
    off: tuple[str, ...] = (),
    extra_skus: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    base = demo.demo_state()
    out_users = [
        {
            "id": demo.stable_id("user", f"{local}@contoso.com"),
            "userPrincipalName": f"{local}@contoso.com",
            "displayName": local.replace(".", " ").title(),
            "accountEnabled": local not in off,
            "usageLocation": loc,
            "assignedLicenses": [
                {
                    "skuId": demo.SKUS[p][0],
                    "disabledPlans": [demo.PLANS[x] for x in (disabled or {}).get((local, p), ())],
                }
                for p in parts
            ],
        }
        for local, loc, parts in users
    ]
    out_groups = [
        {
            "id": demo.stable_id("group", name),
            "displayName": name,
            "members": [demo.stable_id("user", f"{m}@contoso.com") for m in members],
            "assignedLicenses": [{"skuId": demo.SKUS[p][0], "disabledPlans": []} for p in parts],
        }
        for name, (members, parts) in (groups or {}).items()
    ]
    sku_list = []
    for part, spec in skus.items():
        enabled, status = spec if isinstance(spec, tuple) else (spec, "Enabled")
        sku_list.append(demo.sku_record(part, enabled, status))
    return {"tenant": base["tenant"], "subscribedSkus": sku_list + list(extra_skus), "users": out_users,
            "groups": out_groups}  # fmt: skip


SCENARIOS: dict[str, tuple[dict[str, Any], str]] = {
    "new-hire": (
        tenant(PLENTY, [("sam.new", None, (E3,))]),
        "# A new hire with no usage location: set it first, then Phone System + Calling Plan in one call.\n"
        "users:\n  - upn: sam.new@contoso.com\n    usageLocation: US\n    callingPlan: domestic\n",
    ),
    "e5-phone-system": (
        tenant(
            PLENTY, [("eve.e5", "US", (E5,)), ("pat.e5", "US", (E5,))], disabled={("pat.e5", E5): ("MCOEV",)}
        ),
        "# E5 includes Phone System: only the Calling Plan is added. Where E5's Phone System plan is disabled,\n"
        "# the add-on is assigned too. E5 itself is never changed.\n"
        "users:\n  - upn: eve.e5@contoso.com\n    callingPlan: domestic\n"
        "  - upn: pat.e5@contoso.com\n    callingPlan: domestic\n",
    ),
    "plan-swap": (
        tenant(PLENTY, [("bob.us", "US", (E3, EV, DOM))]),
        "# Domestic -> International: one assignLicense call adds the new plan and removes the old one.\n"
        "users:\n  - upn: bob.us@contoso.com\n    callingPlan: international\n",
    ),
    "phone-system-false": (
        tenant(PLENTY, [("lee.leaver", "US", (E3, EV, DOM, CC))]),
        "# phoneSystem: false removes every managed license held directly (the E3 suite stays).\n"
        "users:\n  - upn: lee.leaver@contoso.com\n    phoneSystem: false\n    callingPlan: none\n",
    ),
    "unlisted-remove": (
        tenant(
            PLENTY, [("kept", "US", (E3, EV, DOM)), ("gone", "US", (E3, EV, INTL)), ("suite", "US", (E5,))]
        ),
        "# policy.unlisted: remove takes managed licenses from users declared nowhere; suites are never touched.\n"
        "policy:\n  unlisted: remove\nusers:\n  - upn: kept@contoso.com\n    callingPlan: domestic\n",
    ),
    "country-move": (
        tenant(PLENTY, [("ann.mover", "GB", (E3, EV, M120)), ("ben.mover", "GB", (E3, EV, DOM))]),
        "# Moving GB -> US. Ann's 120-minute plan (MCOPSTN_5) is not sold in the US: remove it, set the location,\n"
        "# add the US plan. Ben's Domestic plan (MCOPSTN1) is sold in both: only the location changes.\n"
        "defaults:\n  usageLocation: US\n  callingPlan: domestic\n"
        "users:\n  - upn: ann.mover@contoso.com\n  - upn: ben.mover@contoso.com\n",
    ),
    "seat-order": (
        tenant({**PLENTY, INTL: 1}, [("zed.out", "US", (E3, EV, INTL)), ("amy.in", "US", (E3, EV))]),
        "# One International seat, held by Zed. Zed's removal runs first; Amy's add depends on it.\n"
        "users:\n  - upn: amy.in@contoso.com\n    callingPlan: international\n"
        "  - upn: zed.out@contoso.com\n    callingPlan: none\n",
    ),
    "seat-cycle": (
        tenant(
            {**PLENTY, DOM: 1, INTL: 1},
            [("amy.swap", "US", (E3, EV, DOM)), ("bob.swap", "US", (E3, EV, INTL))],
        ),
        "# Two users swap plans with no free seat: no order works in one plan. insufficient-seats proposes a split.\n"
        "users:\n  - upn: amy.swap@contoso.com\n    callingPlan: international\n"
        "  - upn: bob.swap@contoso.com\n    callingPlan: domestic\n",
    ),
    "insufficient-seats": (
        tenant(
            {**PLENTY, DOM: 2},
            [
                ("x.old", "US", (E3, EV, DOM)),
                ("a.new", "US", (E5,)),
                ("b.new", "US", (E5,)),
                ("c.new", "US", (E5,)),
            ],
        ),
        "# Three users need a Domestic seat: 1 free, 1 freed by this plan. One cannot get one.\n"
        "defaults:\n  callingPlan: domestic\n"
        "users:\n  - upn: a.new@contoso.com\n  - upn: b.new@contoso.com\n  - upn: c.new@contoso.com\n"
        "  - upn: x.old@contoso.com\n    callingPlan: none\n",
    ),
    "inherited-license": (
        tenant(PLENTY, [("erin.group", "US", (E3,))], groups={"Sales Voice": (("erin.group",), (EV, DOM))}),
        "# Erin's Calling Plan comes from the group 'Sales Voice': it cannot be removed from her directly.\n"
        "users:\n  - upn: erin.group@contoso.com\n    callingPlan: none\n",
    ),
    "inherited-and-direct": (
        tenant(
            PLENTY,
            [("frank.both", "US", (E3, EV, DOM))],
            groups={"Sales Voice": (("frank.both",), (EV, DOM))},
        ),
        "# Frank holds MCOEV and MCOPSTN1 directly AND inherits both from 'Sales Voice': neither is removed\n"
        "# (the direct copy frees no seat while the group grants it); the plan says inherited-license instead.\n"
        "users:\n  - upn: frank.both@contoso.com\n    phoneSystem: false\n    callingPlan: none\n",
    ),
    "payg": (
        tenant(PLENTY, [("uk.payg", "GB", (E3,)), ("us.payg", "US", (E5,))]),
        "# Pay-As-You-Go resolves by zone (UK: zone 1, US: zone 1 US) and brings Communications Credits\n"
        "# (policy.paygFunding: communicationsCredits, the default).\n"
        "defaults:\n  callingPlan: payg\n"
        "users:\n  - upn: uk.payg@contoso.com\n  - upn: us.payg@contoso.com\n",
    ),
    "payg-unfunded": (
        tenant({k: v for k, v in PLENTY.items() if k != CC}, [("us.payg", "US", (E5,))]),
        "# Pay-As-You-Go needs Communications Credits here, and the tenant has none: a warning (payg-unfunded).\n"
        "users:\n  - upn: us.payg@contoso.com\n    callingPlan: payg\n",
    ),
    "sku-not-in-tenant": (
        tenant({E3: 5, EV: 5, DOM: 5}, [("intl.wanted", "US", (E3, EV))]),
        "# The tenant has no International Calling Plan subscription: the error says where to buy it.\n"
        "users:\n  - upn: intl.wanted@contoso.com\n    callingPlan: international\n",
    ),
    "plan-not-available-in-country": (
        tenant(PLENTY, [("ken.jp", "JP", (E5,))]),
        "# Calling Plans are not sold in Japan (partner plans only).\n"
        "users:\n  - upn: ken.jp@contoso.com\n    callingPlan: domestic\n",
    ),
    "usage-location-required": (
        tenant(PLENTY, [("robin.new", None, ())]),
        "# A Calling Plan depends on the country, and this user has no usage location.\n"
        "users:\n  - upn: robin.new@contoso.com\n    callingPlan: domestic\n",
    ),
    "user-not-found": (
        tenant(PLENTY, [("real", "US", (E5,))]),
        "# A user the tenant does not have (a typo): an error naming the manifest line.\n"
        "users:\n  - upn: real@contoso.com\n    callingPlan: domestic\n  - upn: rael@contoso.com\n    callingPlan: domestic\n",
    ),
    "tenant-mismatch": (
        tenant(PLENTY, [("real", "US", (E5,))]),
        "# The manifests are for another tenant: nothing is planned.\n"
        "tenant: fabrikam.onmicrosoft.com\nusers:\n  - upn: real@contoso.com\n    callingPlan: domestic\n",
    ),
    "subscription-not-active": (
        tenant(
            {**PLENTY, INTL: (5, "Suspended"), M240: (5, "Warning")},
            [("a.intl", "US", (E5,)), ("b.240", "GB", (E5,))],
        ),
        "# A Suspended subscription cannot assign (error); one in Warning still can, but is about to lapse.\n"
        "users:\n  - upn: a.intl@contoso.com\n    callingPlan: international\n"
        "  - upn: b.240@contoso.com\n    callingPlan: domestic-240\n",
    ),
    "removal-limit": (
        tenant(PLENTY, [(f"leaver{i}", "US", (E3, EV, DOM)) for i in range(1, 4)]),
        "# Six removals against policy.maxRemovals 4: a warning now; apply refuses without --allow-removals.\n"
        "policy:\n  maxRemovals: 4\ndefaults:\n  phoneSystem: false\n  callingPlan: none\n"
        "users:\n  - upn: leaver1@contoso.com\n  - upn: leaver2@contoso.com\n  - upn: leaver3@contoso.com\n",
    ),
    "disabled-account": (
        tenant(PLENTY, [("old.account", "US", (E5,))], off=("old.account",)),
        "# The account is disabled but the manifest licenses it: a warning to check.\n"
        "users:\n  - upn: old.account@contoso.com\n    callingPlan: domestic\n",
    ),
    "split-pool": (
        tenant(
            {**PLENTY, M120: 5},
            [("a.gb", "GB", (E3, EV, M120)), ("b.gb", "GB", (E3, EV))],
            extra_skus=(LEGACY_MCOPSTN5,),
        ),
        "# Two SKUs provide the 120-minute plan; GB users on both no longer share one minute pool.\n"
        "users:\n  - upn: b.gb@contoso.com\n    callingPlan: sku:MCOPSTN5\n",
    ),
    "drift-count-violation": (
        tenant(
            {**PLENTY, DOM: 1},
            [("first", "US", (E3,)), ("second", "US", (E3,))],
            groups={"Voice Users": (("first", "second"), (EV, DOM))},
        ),
        "# The group 'Voice Users' licenses two users with one Domestic seat: the second gets none of its "
        "licenses (CountViolation; Entra assigns a group's licenses all or none). The plan would assign them "
        "directly, but the only Domestic seat is taken: insufficient-seats.\n"
        "users:\n  - upn: first@contoso.com\n    callingPlan: domestic\n  - upn: second@contoso.com\n    callingPlan: domestic\n",
    ),
    "no-changes": (
        tenant(PLENTY, [("bob.us", "US", (E3, EV, DOM)), ("carol.dr", "US", (E3, EV))]),
        "# The tenant already matches: no changes (exit 0 with --detailed-exitcode).\n"
        "users:\n  - upn: bob.us@contoso.com\n    usageLocation: US\n    callingPlan: domestic\n"
        "  - upn: carol.dr@contoso.com\n    phoneSystem: true\n    callingPlan: none\n",
    ),
    "demo": (
        demo.demo_state(),
        "# The demo tenant with a day's worth of requests: new hires, a move, swaps, a leaver, payg, E5 users.\n"
        "tenant: contoso.com\npolicy:\n  maxRemovals: 10\n"
        "users:\n"
        "  - upn: sam.new@contoso.com\n    usageLocation: GB\n    callingPlan: domestic\n"
        "  - upn: mia.de@contoso.com\n    usageLocation: DE\n    callingPlan: domestic-240\n"
        "  - upn: heidi.us@contoso.com\n    callingPlan: domestic\n"
        "  - upn: leaver.us@contoso.com\n    phoneSystem: false\n    callingPlan: none\n"
        "  - upn: harry.gb@contoso.com\n    callingPlan: payg\n"
        "  - upn: emma.ca@contoso.com\n    callingPlan: domestic\n"
        "  - upn: erin.us@contoso.com\n    callingPlan: domestic\n",
    ),
}


def main() -> None:
    for name, (state, body) in SCENARIOS.items():
        folder = HERE / name
        (folder / "manifests").mkdir(parents=True, exist_ok=True)
        (folder / "tenant.json").write_text(
            json.dumps(state, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        lines = body.splitlines(keepends=True)
        comments = "".join(x for x in lines if x.startswith("#"))
        rest = "".join(x for x in lines if not x.startswith("#"))
        (folder / "manifests" / "users.yaml").write_text(comments + HEADER + rest, encoding="utf-8")
    print(f"wrote {len(SCENARIOS)} scenarios under {HERE}")


if __name__ == "__main__":
    main()
