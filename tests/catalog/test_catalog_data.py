"""The built-in catalog: facts from reference/teams-licensing.md, SKU classification, zones, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.catalog import PLAN_IDS, load_catalog
from provisioner.emulator.demo import SKUS
from provisioner.errors import CatalogError

CAT = load_catalog()


def test_plan_ids_are_the_contract_ones() -> None:
    assert CAT.plan_ids() == PLAN_IDS == ("domestic", "domestic-120", "domestic-240", "international", "payg")


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        ("ENTERPRISEPACK", None),
        ("SPE_E5", None),  # includes MCOEV, but a suite is never managed
        ("MCOEV", ("phoneSystem", None)),
        ("MCOPSTN1", ("callingPlan", "domestic")),
        ("MCOPSTN2", ("callingPlan", "international")),
        ("MCOPSTN_5", ("callingPlan", "domestic-120")),
        ("MCOPSTN_6", ("callingPlan", "domestic-240")),
        ("Microsoft_Teams_Calling_Plan_pay_as_you_go_(country_zone_1_US)", ("callingPlan", "payg")),
        ("Microsoft_Teams_Calling_Plan_pay_as_you_go_(country_zone_1)", ("callingPlan", "payg")),
        ("MCOPSTNC", ("credits", None)),
    ],
)
def test_every_demo_tenant_sku_is_classified(part: str, expected: tuple[str, str | None] | None) -> None:
    assert CAT.classify_sku(part, SKUS[part][1]) == expected


def test_classification_of_other_skus() -> None:
    assert CAT.classify_sku("mcopstn1", []) == ("callingPlan", "domestic")  # case-insensitive
    assert CAT.classify_sku("MCOPSTNPP", ["MCOPSTN3"]) == ("credits", None)
    assert CAT.classify_sku("MCOEV_GOV", ["MCOEV_GOV"]) == ("phoneSystem", None)
    assert CAT.classify_sku("MCOTEAMS_ESSENTIALS", ["MCOPSTN1", "MCOEV"]) is None  # bundle with Phone System
    assert CAT.classify_sku("SPE_E5_CALLINGMINUTES", ["MCOEV", "MCOPSTN8", "TEAMS1"]) is None
    assert CAT.classify_sku("PHONESYSTEM_VIRTUALUSER", ["MCOEV_VIRTUALUSER"]) is None
    # A zone 2 PAYG SKU whose part number is unverified is found by its service plan.
    assert CAT.classify_sku("SOME_ZONE2_PAYG", ["MCOPSTN_PAYG_2"]) == ("callingPlan", "payg")


def test_phone_system_service_plans() -> None:
    assert CAT.is_phone_system_service_plan("MCOEV")
    assert CAT.is_phone_system_service_plan("MCOEV_GOV") and CAT.is_phone_system_service_plan("MCOEVSMB")
    assert not CAT.is_phone_system_service_plan("MCOEV_VIRTUALUSER")  # resource accounts only
    assert not CAT.is_phone_system_service_plan("MCOPSTN1")
    assert "MCOEV" in CAT.phone_system_addons and "SPE_E5" not in CAT.phone_system_addons
    assert CAT.communications_credits == ("MCOPSTNC", "MCOPSTNPP")


@pytest.mark.parametrize(
    ("country", "zone"),
    [("US", "zone1-us"), ("PR", "zone1-us"), ("GB", "zone1"), ("CA", "zone1"), ("DE", "zone2"), ("HK", "zone2"),
     ("MX", "mexico"), ("HR", None), ("JP", None)],
)
def test_payg_resolves_by_zone_following_the_2024_list(country: str, zone: str | None) -> None:
    offer = CAT.offer_for("payg", country)
    assert (offer.zone if offer else None) == zone


def test_minutes_and_pooling() -> None:
    domestic = CAT.offer_for("domestic", "US")
    assert domestic is not None and domestic.part_numbers == ("MCOPSTN1", "MCOPSTN_1_GOV") and domestic.pooled
    assert domestic.minutes_for("US") == 3000 and domestic.minutes_for("gb") == 1200
    assert domestic.minutes_for("CH") is None  # unknown (stale pages), not guessed
    assert domestic.minutes_for("JP") is None
    payg = CAT.offer_for("payg", "GB")
    assert payg is not None and payg.minutes_for("GB") == 0 and not payg.pooled
    assert CAT.offer_for("domestic-120", "US").part_numbers == ("MCOPSTN5_US",)  # type: ignore[union-attr]
    assert CAT.offer_for("domestic-120", "GB").part_numbers == ("MCOPSTN_5", "MCOPSTN5")  # type: ignore[union-attr]


def test_countries_and_known_ids() -> None:
    assert "HR" in CAT.countries_for("domestic") and "HR" not in CAT.countries_for("payg")
    assert CAT.is_valid_country("GB") and not CAT.is_valid_country("UK") and not CAT.is_valid_country("gb")
    assert len(CAT.countries) == 249
    assert CAT.known_sku_ids["MCOPSTN5"] == ("54a152dc-90de-4996-93d2-bc47e670fc06", "d43177b5-475b-4880-92d4-d54c27b5efbd")
    assert "MICROSOFT_TEAMS_CALLING_PLAN_PAY_AS_YOU_GO_(COUNTRY_ZONE_1)" in CAT.all_calling_plan_part_numbers()
    assert CAT.all_calling_plan_service_plans() >= {"MCOPSTN_PAYG_1", "MCOPSTN_PAYG_2"}


def test_override_puts_croatia_back_and_names_a_part_number(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(
        "plans:\n  payg:\n    - zone: zone2\n      addCountries: [HR]\n      partNumbers: [MY_ZONE2_PAYG]\n"
        "  domestic:\n    - zone: mexico\n      partNumbers: [MX_DOMESTIC]\n      minutes: {MX: 1000}\n"
    )
    cat = load_catalog(f)
    assert cat.offer_for("payg", "HR").zone == "zone2"  # type: ignore[union-attr]
    assert cat.classify_sku("MY_ZONE2_PAYG", []) == ("callingPlan", "payg")
    assert cat.offer_for("domestic", "MX").minutes_for("MX") == 1000  # type: ignore[union-attr]
    assert load_catalog().offer_for("payg", "HR") is None  # the built-in one is untouched


def test_override_can_remove_an_offer(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text('{"plans": {"payg": [{"zone": "mexico", "remove": true}]}}')
    assert load_catalog(f).offer_for("payg", "MX") is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("plans:\n  pagy: []\n", ":2: unknown plan id 'pagy' — did you mean 'payg'? — use one of"),
        ("plans:\n  payg:\n    - zone: zone2\n      countrys: [HR]\n", ":4: unknown key 'countrys' in plans.payg offer — did you mean 'countries'?"),
        ("plans:\n  payg:\n    - zone: zone2\n      addCountries: [UK]\n", ":4: 'UK' is not an ISO 3166 alpha-2 country code — did you mean 'GB'?"),
        ("plans:\n  payg:\n    - zone: zone1\n      addCountries: [DE]\n", "DE is in two offers of plan 'payg'"),
        ("plans:\n  domestic:\n    - zone: null\n      partNumbers: [MCOPSTN2]\n", ":3: part number MCOPSTN2 is already a 'international' SKU"),
        ("knownSkuIds:\n  X: [not-a-guid]\n", ":2: knownSkuIds.X must be a list of GUIDs"),
        ("a: [\n", ":2: YAML syntax error"),
    ],
)
def test_bad_override_names_file_line_and_fix(tmp_path: Path, body: str, message: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(body)
    with pytest.raises(CatalogError) as info:
        load_catalog(f)
    text = str(info.value)
    # A message starting with ":LINE:" must be pinned to the override file itself.
    assert (f"{f}{message}" if message.startswith(":") else message) in text
    assert str(f) in text
    assert text.endswith("\nFix the catalog file; see docs/manifest.md, 'The catalog and overrides'.")


def test_missing_override_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read the file"):
        load_catalog(tmp_path / "nope.yaml")


def test_partner_and_government_calling_plans_are_managed() -> None:
    assert CAT.classify_sku("MCOPSTNEAU2", ["MCOPSTNEAU"]) == ("callingPlan", "domestic")
    assert CAT.offer_for("domestic", "AU").part_numbers == ("MCOPSTNEAU2",)  # type: ignore[union-attr]
    assert CAT.classify_sku("MCOPSTN_1_GOV", ["MCOPSTN1_GOV", "EXCHANGE_S_FOUNDATION_GOV"]) == ("callingPlan", "domestic")
    assert CAT.offer_for("domestic", "JP") is None  # Softbank: no part number published


def test_every_known_sku_id_belongs_to_a_managed_part_number() -> None:
    managed = {p.upper() for p in CAT.all_calling_plan_part_numbers()}
    managed |= {p.upper() for p in (*CAT.phone_system_addons, *CAT.communications_credits)}
    assert {p.upper() for p in CAT.known_sku_ids} <= managed


def test_a_manifest_given_as_catalog_says_so(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_text("apiVersion: provisioner/v1\nkind: TeamsVoiceLicensing\nusers: []\n")
    with pytest.raises(CatalogError) as info:
        load_catalog(f)
    assert str(info.value).splitlines()[0] == (
        f"{f}:1: this is a manifest, not a catalog file — name manifests as PATH arguments; --catalog takes a "
        "catalog override (plans:, ...)"
    )
