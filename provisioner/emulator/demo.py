"""Built-in emulator tenants: the small Contoso demo and a seeded synthetic tenant of N users. Pure (no I/O).

Part numbers, SKU ids and service plan ids are Microsoft's (reference/teams-licensing.md §1); the suites'
service-plan lists are abridged to what matters here (Teams, Phone System, audio conferencing, a few others).
"""

from __future__ import annotations

import random
import uuid
from typing import Any

# Every id the emulator invents is a uuid5 under this namespace, so tenants are identical run to run.
EMULATOR_NS = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/provisioner/emulator")


def stable_id(kind: str, name: str) -> str:
    return str(uuid.uuid5(EMULATOR_NS, f"{kind}:{name.lower()}"))


# service plan name -> id (Microsoft's "Product names and service plan identifiers for licensing")
PLANS = {
    "EXCHANGE_S_ENTERPRISE": "efb87545-963c-4e0d-99df-69c6916d9eb0",
    "SHAREPOINTENTERPRISE": "5dbe027f-2339-4123-9542-606e4d348a72",
    "OFFICESUBSCRIPTION": "43de0ff5-c92c-492b-9116-175376d08c38",
    "MCOSTANDARD": "0feaeb32-d00e-4d66-bd5a-43b5b83db82c",
    "TEAMS1": "57ff2da0-773e-42df-b2af-ffb7a2317929",
    "MCOEV": "4828c8ec-dc2e-4779-b502-87ac9ce28ab7",
    "MCOMEETADV": "3e26ee1f-8a5f-4d52-aee2-b81ce45c8f40",
    "MCOPSTN1": "4ed3ff63-69d7-4fb7-b984-5aec7f605ca8",
    "MCOPSTN2": "5a10155d-f5c1-411a-a8ec-e99aae125390",
    "MCOPSTN5": "54a152dc-90de-4996-93d2-bc47e670fc06",
    "MCOPSTN6": "346d83bf-6fe6-42ca-b424-b9300d2e21bf",
    "MCOPSTN_PAYG_1": "156a1efe-17cd-4b03-9f17-2eb512298fb3",
    "MCOPSTNC": "505e180f-f7e0-4b65-91d4-00d670bbd18c",
}

PAYG_US = "Microsoft_Teams_Calling_Plan_pay_as_you_go_(country_zone_1_US)"
PAYG_Z1 = "Microsoft_Teams_Calling_Plan_pay_as_you_go_(country_zone_1)"

# skuPartNumber -> (skuId, service plan names)
SKUS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ENTERPRISEPACK": (  # Office 365 E3: Teams, but no Phone System
        "6fd2c87f-b296-42f0-b197-1e91e994b900",
        ("EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE", "OFFICESUBSCRIPTION", "MCOSTANDARD", "TEAMS1"),
    ),
    "SPE_E5": (  # Microsoft 365 E5: includes Phone System (MCOEV)
        "06ebc4ee-1bb5-47dd-8120-11324bc54e06",
        ("EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE", "OFFICESUBSCRIPTION", "MCOSTANDARD", "TEAMS1",
         "MCOMEETADV", "MCOEV"),
    ),
    "MCOEV": ("e43b5b99-8dfb-405f-9987-dc307f34bcbd", ("MCOEV",)),
    "MCOPSTN1": ("0dab259f-bf13-4952-b7f8-7db8f131b28d", ("MCOPSTN1",)),
    "MCOPSTN2": ("d3b4fe1f-9992-4930-8acb-ca6ec609365e", ("MCOPSTN2",)),
    "MCOPSTN_5": ("11dee6af-eca8-419f-8061-6864517c1875", ("MCOPSTN5",)),
    "MCOPSTN_6": ("729dbb8f-8d56-4994-8e33-2f218f549544", ("MCOPSTN6",)),
    PAYG_US: ("9b196e97-5830-4c2e-adc2-1e10ebf5dee5", ("MCOPSTN_PAYG_1",)),
    # UNVERIFIED: this part number is known only from third-party scripts and its skuId is in no official
    # table (reference §1.2), so the emulator derives a stable uuid5 for it. Tools must resolve it by name.
    PAYG_Z1: (stable_id("sku", PAYG_Z1), ("MCOPSTN_PAYG_1",)),
    "MCOPSTNC": ("47794cd0-f0e5-45c5-9033-2eb6b5fc84e0", ("MCOPSTNC",)),
}


def sku_record(part: str, enabled: int, status: str = "Enabled") -> dict[str, Any]:
    sku_id, plans = SKUS[part]
    return {
        "skuId": sku_id,
        "skuPartNumber": part,
        "capabilityStatus": status,
        "appliesTo": "User",
        "prepaidUnits": {"enabled": enabled, "suspended": 0, "warning": enabled if status == "Warning" else 0,
                         "lockedOut": 0},
        "servicePlans": [
            {"servicePlanId": PLANS[p], "servicePlanName": p, "provisioningStatus": "Success", "appliesTo": "User"}
            for p in plans
        ],
    }


def _tenant(name: str, initial: str, custom: str) -> dict[str, Any]:
    caps = "Email, OfficeCommunicationsOnline"
    return {
        "id": stable_id("tenant", initial),
        "displayName": name,
        "verifiedDomains": [
            {"name": initial, "isDefault": False, "isInitial": True, "type": "Managed", "capabilities": caps},
            {"name": custom, "isDefault": True, "isInitial": False, "type": "Managed", "capabilities": caps},
        ],
    }


def _license(part: str, disabled: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"skuId": SKUS[part][0], "disabledPlans": [PLANS[p] for p in disabled]}


E3, E5, EV, DOM, INTL, M120, M240, CC = (
    "ENTERPRISEPACK", "SPE_E5", "MCOEV", "MCOPSTN1", "MCOPSTN2", "MCOPSTN_5", "MCOPSTN_6", "MCOPSTNC")
SALES = "Sales Voice"

# upn local part, display name, usage location, direct licenses, groups (and accountEnabled=False when "off")
_DEMO_USERS: list[tuple[str, str, str | None, tuple[str, ...], tuple[str, ...]]] = [
    ("alice.us", "Alice Johnson", "US", (E5, DOM), ()),
    ("bob.us", "Bob Smith", "US", (E3, EV, DOM), ()),
    ("carol.us", "Carol Davis", "US", (E3, EV), ()),  # Direct Routing: Phone System, no Calling Plan
    ("dave.us", "Dave Miller", "US", (E3,), ()),
    ("erin.us", "Erin Wilson", "US", (E3,), (SALES,)),
    ("frank.us", "Frank Moore", "US", (E3, EV), (SALES,)),  # MCOEV both direct and via the group: one seat
    ("grace.us", "Grace Taylor", "US", (E5, PAYG_US, CC), ()),
    ("heidi.us", "Heidi Anderson", "US", (E3, EV, INTL), ()),
    ("ivan.us", "Ivan Thomas", "US", (E3,), (SALES,)),
    ("pat.us", "Pat Jackson", "US", (E5,), ()),  # E5 with its Phone System plan disabled (below)
    ("quinn.us", "Quinn White", "US", (), (SALES,)),
    ("leaver.us", "Lee Harris", "US", (E3, EV, DOM), ()),  # disabled account still holding licenses
    ("alice.gb", "Alice Clarke", "GB", (E3, EV, M120), ()),
    ("oliver.gb", "Oliver Wright", "GB", (E5, DOM), ()),
    ("amelia.gb", "Amelia Hughes", "GB", (E3, EV, PAYG_Z1, CC), ()),
    ("harry.gb", "Harry Walker", "GB", (E3,), ()),
    ("isla.gb", "Isla Green", "GB", (E5,), ()),
    ("jack.gb", "Jack Hall", "GB", (E3, EV, M240), ()),
    ("ruth.gb", "Ruth Evans", "GB", (E3,), ()),
    ("liam.ca", "Liam Tremblay", "CA", (E3, EV, DOM), ()),
    ("emma.ca", "Emma Roy", "CA", (E5,), ()),
    ("noah.ca", "Noah Gagnon", "CA", (E3,), ()),
    ("olivia.ca", "Olivia Cote", "CA", (E3, EV, INTL), ()),
    ("tom.ca", "Tom Bouchard", "CA", (E5, DOM), ()),
    ("lukas.de", "Lukas Müller", "DE", (E5, M120), ()),
    ("mia.de", "Mia Schmidt", "DE", (E3, EV, DOM), ()),
    ("felix.de", "Felix Schneider", "DE", (E3,), ()),
    ("lena.de", "Lena Fischer", "DE", (E3, EV), ()),
    ("louis.fr", "Louis Martin", "FR", (E5, M240), ()),
    ("chloe.fr", "Chloé Bernard", "FR", (E3,), ()),
    ("hugo.fr", "Hugo Dubois", "FR", (E3, EV, M120), ()),
    ("daan.nl", "Daan de Jong", "NL", (E3, EV, DOM), ()),
    ("sanne.nl", "Sanne Jansen", "NL", (E5,), ()),
    ("bram.nl", "Bram de Vries", "NL", (E3,), ()),
    ("diego.mx", "Diego Hernández", "MX", (E3,), ()),
    ("sofia.mx", "Sofía García", "MX", (E5,), ()),
    ("mateo.mx", "Mateo López", "MX", (E3, EV), ()),
    ("sam.new", "Sam Rivera", None, (), ()),  # new hires: no usage location yet
    ("robin.new", "Robin Lee", None, (), ()),
    ("kim.us", "Kim Young", "US", (E3,), ()),
]
_DISABLED = {"leaver.us"}
_DISABLED_PLANS = {("pat.us", E5): ("MCOEV",)}
_GROUPS = {SALES: (EV, DOM)}
# free seats left over after the demo's own assignments: several SKUs are nearly full, MCOPSTN_5 is in Warning
_SLACK = {E3: 4, E5: 2, EV: 1, DOM: 2, INTL: 1, M120: 2, M240: 1, PAYG_US: 3, PAYG_Z1: 2, CC: 8}


def _seat_counts(users: list[dict[str, Any]], groups: list[dict[str, Any]]) -> dict[str, int]:
    """Distinct holders per skuId, direct or through a group (one seat per user and SKU)."""
    holders: dict[str, set[str]] = {}
    for u in users:
        for lic in u["assignedLicenses"]:
            holders.setdefault(lic["skuId"], set()).add(u["id"])
    for g in groups:
        for lic in g["assignedLicenses"]:
            holders.setdefault(lic["skuId"], set()).update(g["members"])
    return {k: len(v) for k, v in holders.items()}


def demo_state() -> dict[str, Any]:
    """The Contoso demo tenant (about 40 users) as a state-file dict (CONTRACT §4)."""
    domain = "contoso.com"
    users: list[dict[str, Any]] = []
    members: dict[str, list[str]] = {g: [] for g in _GROUPS}
    for local, name, loc, parts, groups in _DEMO_USERS:
        upn = f"{local}@{domain}"
        uid = stable_id("user", upn)
        users.append({
            "id": uid,
            "userPrincipalName": upn,
            "displayName": name,
            "accountEnabled": local not in _DISABLED,
            "usageLocation": loc,
            "assignedLicenses": [_license(p, _DISABLED_PLANS.get((local, p), ())) for p in parts],
        })
        for g in groups:
            members[g].append(uid)
    groups_out = [
        {"id": stable_id("group", g), "displayName": g, "members": members[g],
         "assignedLicenses": [_license(p) for p in parts]}
        for g, parts in _GROUPS.items()
    ]
    counts = _seat_counts(users, groups_out)
    skus = []
    for part, slack in _SLACK.items():
        used = counts.get(SKUS[part][0], 0)
        skus.append(sku_record(part, used + slack, "Warning" if part == M120 else "Enabled"))
    return {
        "tenant": _tenant("Contoso", "contoso.onmicrosoft.com", domain),
        "subscribedSkus": skus,
        "users": users,
        "groups": groups_out,
    }


# country -> (weight, calling plans on offer there)
_COUNTRIES: dict[str, tuple[int, tuple[str, ...]]] = {
    "US": (40, (DOM, DOM, DOM, INTL, PAYG_US)),
    "GB": (15, (DOM, DOM, M120, M240, PAYG_Z1)),
    "CA": (10, (DOM, INTL, PAYG_Z1)),
    "DE": (10, (DOM, M120, M240)),
    "FR": (8, (DOM, M120, INTL)),
    "NL": (7, (DOM, M240)),
    "MX": (5, ()),
    "JP": (5, ()),
}
_FIRST = ("Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Drew", "Robin",
          "Charlie", "Emerson", "Finley", "Harper", "Kai", "Logan", "Parker", "Quinn", "Reese")
_LAST = ("Smith", "Jones", "Brown", "Garcia", "Müller", "Martin", "Dubois", "Jansen", "López", "Sato", "Wilson",
         "Clarke", "Roy", "Schmidt", "Bernard", "de Vries", "Hernández", "Tanaka", "Taylor", "Walker")


def synthetic_state(n_users: int, seed: int) -> dict[str, Any]:
    """A tenant of `n_users` users spread over countries (same seed, same tenant).

    About 70% hold E3 and 30% E5; about 40% are voice users (Phone System, most with a Calling Plan);
    1% of US users (about 0.4% of all) are in a "Voice Users" group that licenses MCOEV + MCOPSTN1; 2% have
    no usage location and 1% are disabled. Seats are sized to what is used plus 5% (at least 5), so plans
    have room but not unlimited.
    """
    rng = random.Random(seed)
    domain = "contoso.com"
    names = list(_COUNTRIES)
    weights = [_COUNTRIES[c][0] for c in names]
    sku = {p: SKUS[p][0] for p in SKUS}
    users: list[dict[str, Any]] = []
    group_members: list[str] = []
    countries = rng.choices(names, weights, k=n_users)
    for i in range(n_users):
        country = countries[i]
        upn = f"user{i:06d}.{country.lower()}@{domain}"
        uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        r = rng.random()
        lic = [{"skuId": sku[E5 if r < 0.3 else E3], "disabledPlans": []}]
        voice = rng.random()
        plans = _COUNTRIES[country][1]
        if voice < 0.01 and country == "US":
            group_members.append(uid)
        elif voice < 0.40:
            if r >= 0.3:
                lic.append({"skuId": sku[EV], "disabledPlans": []})
            if plans and rng.random() < 0.85:
                plan = rng.choice(plans)
                lic.append({"skuId": sku[plan], "disabledPlans": []})
                if plan in (PAYG_US, PAYG_Z1):
                    lic.append({"skuId": sku[CC], "disabledPlans": []})
        loc: str | None = country
        if rng.random() < 0.02:
            loc, lic = None, []
        users.append({
            "id": uid,
            "userPrincipalName": upn,
            "displayName": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
            "accountEnabled": rng.random() >= 0.01,
            "usageLocation": loc,
            "assignedLicenses": lic,
        })
    groups = [{"id": stable_id("group", "Voice Users"), "displayName": "Voice Users", "members": group_members,
               "assignedLicenses": [_license(EV), _license(DOM)]}]
    counts = _seat_counts(users, groups)
    skus = []
    for part in (E3, E5, EV, DOM, INTL, M120, M240, PAYG_US, PAYG_Z1, CC):
        used = counts.get(sku[part], 0)
        skus.append(sku_record(part, used + max(5, used // 20)))
    return {
        "tenant": _tenant("Contoso", "contoso.onmicrosoft.com", domain),
        "subscribedSkus": skus,
        "users": users,
        "groups": groups,
    }
