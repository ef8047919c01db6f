"""Unit tests of the pure export: Observed snapshot + catalog -> entries -> manifest YAML."""

from __future__ import annotations

import yaml

from provisioner.catalog import load_catalog
from provisioner.export import build_export, managed_sku_ids, render_manifest, scalar, split_by_country
from provisioner.model.observed import Assignment, Observed, ServicePlan, Sku, TenantInfo, User

PAYG_US = "Microsoft_Teams_Calling_Plan_pay_as_you_go_(country_zone_1_US)"
PAYG_Z1 = "Microsoft_Teams_Calling_Plan_pay_as_you_go_(country_zone_1)"
SKUS = {
    "E5": Sku(
        "e5",
        "SPE_E5",
        "Enabled",
        10,
        0,
        service_plans=(ServicePlan("p-ev", "MCOEV"), ServicePlan("p-t", "TEAMS1")),
    ),
    "EV": Sku("ev", "MCOEV", "Enabled", 10, 0, service_plans=(ServicePlan("p-ev", "MCOEV"),)),
    "DOM": Sku("dom", "MCOPSTN1", "Enabled", 10, 0, service_plans=(ServicePlan("p-1", "MCOPSTN1"),)),
    "INTL": Sku("intl", "MCOPSTN2", "Enabled", 10, 0, service_plans=(ServicePlan("p-2", "MCOPSTN2"),)),
    "M5A": Sku("m5a", "MCOPSTN5", "Enabled", 10, 0, service_plans=(ServicePlan("p-5", "MCOPSTN5"),)),
    "M5B": Sku("m5b", "MCOPSTN5", "Enabled", 10, 0, service_plans=(ServicePlan("p-5s", "MCOPSTN5_SMALL"),)),
    "PAYG_US": Sku("pus", PAYG_US, "Enabled", 10, 0, service_plans=(ServicePlan("p-g", "MCOPSTN_PAYG_1"),)),
    "PAYG_Z1": Sku("pz1", PAYG_Z1, "Enabled", 10, 0, service_plans=(ServicePlan("p-g", "MCOPSTN_PAYG_1"),)),
    "CC": Sku("cc", "MCOPSTNC", "Enabled", 10, 0, service_plans=(ServicePlan("p-c", "MCOPSTNC"),)),
}
TENANT = TenantInfo("11111111-2222-3333-4444-555555555555", "Contoso", ("contoso.com",))


def user(
    upn: str,
    loc: str | None,
    *direct: str,
    groups: dict[str, tuple[str, ...]] | None = None,
    enabled: bool = True,
) -> User:
    assignments = [Assignment(SKUS[k].sku_id) for k in direct]
    for group, keys in (groups or {}).items():
        assignments += [Assignment(SKUS[k].sku_id, by_group=group) for k in keys]
    return User(
        id=f"id-{upn}",
        upn=upn,
        display_name=upn,
        account_enabled=enabled,
        usage_location=loc,
        assignments=tuple(assignments),
    )


def observed(*users: User) -> Observed:
    return Observed(tenant=TENANT, skus=tuple(SKUS.values()), users={u.key: u for u in users})


def entries_by_upn(text: str) -> dict[str, dict[str, object]]:
    doc = yaml.safe_load(text)
    return {e["upn"]: {k: v for k, v in e.items() if k != "upn"} for e in doc["users"]}


def test_managed_skus_are_add_ons_calling_plans_and_credits_never_suites() -> None:
    assert managed_sku_ids(SKUS.values(), load_catalog()) == sorted(
        s.sku_id for k, s in SKUS.items() if k != "E5"
    )


def test_entries_defaults_and_header() -> None:
    obs = observed(
        user("Zed@contoso.com", "US", "E5", "DOM"),
        user("amy@contoso.com", "US", "EV", "INTL"),
        user("carol@contoso.com", "US", "EV"),
        user("gb@contoso.com", "GB", "EV", "PAYG_Z1", "CC"),
        user("e5only@contoso.com", "US", "E5"),  # no managed license: not in the export at all
    )
    text = render_manifest(build_export(obs, load_catalog()))
    doc = yaml.safe_load(text)
    assert doc["apiVersion"] == "provisioner/v1" and doc["kind"] == "TeamsVoiceLicensing"
    assert doc["tenant"] == TENANT.id
    assert doc["policy"] == {"unlisted": "ignore"}
    assert doc["defaults"] == {"usageLocation": "US"}  # three US users against one GB
    assert [e["upn"] for e in doc["users"]] == [
        "amy@contoso.com",
        "carol@contoso.com",
        "gb@contoso.com",
        "Zed@contoso.com",
    ]
    assert entries_by_upn(text) == {
        "amy@contoso.com": {"callingPlan": "international"},
        "carol@contoso.com": {"phoneSystem": True, "callingPlan": "none"},
        "gb@contoso.com": {"usageLocation": "GB", "callingPlan": "payg", "communicationsCredits": True},
        "Zed@contoso.com": {"callingPlan": "domestic"},
    }
    assert text.startswith("# Exported by `provision export` from tenant Contoso (11111111-")
    assert "# 4 users holding managed licenses directly; 0 licensed only through groups" in text


def test_group_only_users_are_comments_naming_the_group() -> None:
    obs = observed(
        user("direct@contoso.com", "US", "EV", "DOM"),
        user("erin@contoso.com", "US", "E5", groups={"g-sales": ("EV", "DOM")}),
        user("frank@contoso.com", "US", "EV", groups={"g-sales": ("EV",)}),
    )
    text = render_manifest(build_export(obs, load_catalog(), {"g-sales": "Sales Voice"}))
    assert set(entries_by_upn(text)) == {"direct@contoso.com", "frank@contoso.com"}
    assert (
        '#   erin@contoso.com [US]: MCOEV from group "Sales Voice" (g-sales); MCOPSTN1 from group "Sales Voice" (g-sales)'
        in text
    )
    # frank holds MCOEV both ways: an entry (direct), with a note about the group
    assert (
        '  # also from a group: MCOEV from group "Sales Voice" (g-sales)\n  - upn: frank@contoso.com' in text
    )
    # without names, the id is still given
    assert "erin@contoso.com [US]: MCOEV from group g-sales" in render_manifest(
        build_export(obs, load_catalog())
    )


def test_sku_not_sold_in_the_users_country_is_left_unmanaged() -> None:
    # The US PAYG SKU held by a GB user: `payg` would resolve to the zone-1 (non-US) SKU, and validate
    # refuses `sku:<US PAYG>` in GB, so the plan is not declared (omitted = left as it is).
    obs = observed(user("gb@contoso.com", "GB", "EV", "PAYG_US", "CC"))
    text = render_manifest(build_export(obs, load_catalog()))
    assert entries_by_upn(text) == {"gb@contoso.com": {"phoneSystem": True, "communicationsCredits": True}}
    assert f"# holds {PAYG_US}, which the catalog does not sell in GB: callingPlan left unmanaged" in text


def test_sku_is_pinned_by_part_number_when_two_skus_provide_the_offer() -> None:
    # MCOPSTN_5 and the legacy MCOPSTN5 both provide domestic-120 in GB: `sku:` keeps the one held.
    m5_new = Sku("m5new", "MCOPSTN_5", "Enabled", 10, 0, service_plans=(ServicePlan("p-5", "MCOPSTN5"),))
    obs = Observed(
        tenant=TENANT,
        skus=(*SKUS.values(), m5_new),
        users={u.key: u for u in [user("old@contoso.com", "GB", "EV", "M5A")]},
    )
    assert entries_by_upn(render_manifest(build_export(obs, load_catalog()))) == {
        "old@contoso.com": {"callingPlan": "sku:MCOPSTN5"}
    }
    # with only one SKU for the offer, the plan id is enough
    alone = observed(user("old@contoso.com", "GB", "EV", "M5A"))
    assert entries_by_upn(render_manifest(build_export(alone, load_catalog()))) == {
        "old@contoso.com": {"callingPlan": "domestic-120"}
    }


def test_payg_funding_unfunded_users_and_post_usage_tenants() -> None:
    mixed = observed(
        user("funded@contoso.com", "US", "EV", "PAYG_US", "CC"),
        user("unfunded@contoso.com", "US", "EV", "PAYG_US"),
    )
    text = render_manifest(build_export(mixed, load_catalog()))
    assert entries_by_upn(text) == {
        "funded@contoso.com": {"callingPlan": "payg", "communicationsCredits": True},
        "unfunded@contoso.com": {"phoneSystem": True},
    }
    assert "paygFunding" not in text
    assert f"# {PAYG_US} (payg) without Communications Credits: callingPlan left unmanaged" in text
    # No PAYG user holds credits: the tenant bills after use; say so in the policy.
    post = observed(
        user("a@contoso.com", "US", "EV", "PAYG_US"), user("b@contoso.com", "GB", "EV", "PAYG_Z1")
    )
    text = render_manifest(build_export(post, load_catalog()))
    doc = yaml.safe_load(text)
    assert doc["policy"] == {"unlisted": "ignore", "paygFunding": "postUsage"}
    assert entries_by_upn(text) == {
        "a@contoso.com": {"usageLocation": "US", "callingPlan": "payg"},
        "b@contoso.com": {"callingPlan": "payg"},  # a 1:1 tie lifts the alphabetically first (GB)
    }
    assert "# No Pay-As-You-Go user holds Communications Credits" in text


def test_unexpressible_states_are_left_unmanaged_with_a_note() -> None:
    obs = observed(
        user("two@contoso.com", "US", "EV", "DOM", "INTL"),
        user("grp@contoso.com", "US", "EV", groups={"g1": ("DOM",)}),
        user("dup@contoso.com", None, "EV", "M5A", enabled=False),
    )
    exp = build_export(obs, load_catalog())
    text = render_manifest(exp)
    assert entries_by_upn(text) == {
        "dup@contoso.com": {"usageLocation": None, "phoneSystem": True},
        "grp@contoso.com": {"phoneSystem": True},
        "two@contoso.com": {"phoneSystem": True},
    }
    # dup@ has no location: `null` keeps the default from giving it one (omitted would mean "use US")
    assert exp.default_usage_location == "US"
    assert "  - upn: dup@contoso.com\n    usageLocation: null  # none in the tenant: not managed" in text
    assert "# holds several Calling Plans directly (MCOPSTN1, MCOPSTN2): callingPlan left unmanaged" in text
    assert "# Calling Plan from a group: MCOPSTN1 from group g1" in text
    assert "# account disabled" in text
    assert "# holds MCOPSTN5 but has no usage location: callingPlan left unmanaged" in text


def test_norway_and_odd_upns_survive_yaml() -> None:
    assert scalar("NO") == "'NO'" and scalar("US") == "US" and scalar(True) == "true"
    obs = observed(user("o'neil@contoso.com", "NO", "EV", "DOM"), user("yes@contoso.com", "NO", "EV"))
    doc = yaml.safe_load(render_manifest(build_export(obs, load_catalog())))
    assert doc["defaults"] == {"usageLocation": "NO"}
    assert [u["upn"] for u in doc["users"]] == ["o'neil@contoso.com", "yes@contoso.com"]


def test_split_by_country_one_file_each_with_its_own_default() -> None:
    obs = observed(
        user("a@contoso.com", "US", "EV", "DOM"),
        user("b@contoso.com", "GB", "EV", "DOM"),
        user("c@contoso.com", "GB", groups={"g": ("EV",)}),
        user("d@contoso.com", "DE", groups={"g": ("EV",)}),
        user("e@contoso.com", None, "EV"),
    )
    files = split_by_country(build_export(obs, load_catalog()))
    assert list(files) == ["de.yaml", "gb.yaml", "no-usage-location.yaml", "us.yaml"]
    gb = yaml.safe_load(files["gb.yaml"])
    assert gb["defaults"] == {"usageLocation": "GB"} and gb["users"] == [
        {"upn": "b@contoso.com", "callingPlan": "domestic"}
    ]
    assert "#   c@contoso.com [GB]: MCOEV from group g" in files["gb.yaml"]
    de = yaml.safe_load(files["de.yaml"])
    assert de["users"] == [] and "d@contoso.com" in files["de.yaml"]
    none = yaml.safe_load(files["no-usage-location.yaml"])
    assert "defaults" not in none and none["users"] == [
        {"upn": "e@contoso.com", "phoneSystem": True, "callingPlan": "none"}
    ]
    # tenant and policy agree across files (CONTRACT §2: they must)
    assert {(yaml.safe_load(t)["tenant"], str(yaml.safe_load(t)["policy"])) for t in files.values()} == {
        (TENANT.id, "{'unlisted': 'ignore'}")
    }
