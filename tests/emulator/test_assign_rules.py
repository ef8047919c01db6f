"""assignLicense enforces Graph's licensing rules with Graph's status, code and message; a rejection changes nothing.

Each test here fails if its rule is removed from provisioner/emulator/rules.py (it asserts the refusal and the
exact message, and that the same call succeeds once the rule's condition is met).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from emu_helpers import CC, DOM, E3, E5, EV, INTL, SKU, Client, assign, error_of, licenses, make_client, seats

from provisioner.emulator.demo import PLANS, demo_state

USAGE = "License assignment cannot be done for user with invalid usage location."


def _demo_with(**sku_changes: dict[str, Any]) -> dict[str, Any]:
    """The demo tenant with some SKUs' fields replaced (keyed by skuPartNumber)."""
    d = copy.deepcopy(demo_state())
    for s in d["subscribedSkus"]:
        for k, v in sku_changes.get(s["skuPartNumber"], {}).items():
            s[k] = v
    return d


def test_usage_location_required_before_any_add(client: Client) -> None:
    r = assign(client, "sam.new@contoso.com", add=[E3])
    assert error_of(r) == (400, "Request_BadRequest", USAGE)
    assert licenses(client, "sam.new@contoso.com") == set()
    assert client.patch("/v1.0/users/sam.new@contoso.com", json={"usageLocation": "DE"}).status_code == 204
    assert assign(client, "sam.new@contoso.com", add=[E3]).status_code == 200


def test_no_free_seats() -> None:
    state = demo_state()
    used = {s["skuId"]: s for s in state["subscribedSkus"]}
    client = make_client(state)
    consumed, _enabled = seats(client)[E3]
    used[E3]["prepaidUnits"]["enabled"] = consumed  # now full
    client = make_client(state)
    client.patch("/v1.0/users/sam.new@contoso.com", json={"usageLocation": "US"})
    r = assign(client, "sam.new@contoso.com", add=[E3])
    assert error_of(r) == (400, "Request_BadRequest", f"Subscription {E3} does not have any available licenses.")
    assert seats(client)[E3] == (consumed, consumed)
    # freeing a seat in the same call is not enough for another user, but a removal frees it for the next call
    assert assign(client, "dave.us@contoso.com", remove=[E3]).status_code == 200
    assert assign(client, "sam.new@contoso.com", add=[E3]).status_code == 200
    assert seats(client)[E3] == (consumed, consumed)


def test_unknown_sku_on_add_and_remove(client: Client) -> None:
    bogus = str(uuid.UUID(int=42))
    for r in (assign(client, "dave.us@contoso.com", add=[bogus]), assign(client, "dave.us@contoso.com", remove=[bogus])):
        assert error_of(r) == (400, "Request_BadRequest", f"License {bogus} does not correspond to a valid company License.")


def test_calling_plan_needs_phone_system(client: Client) -> None:
    r = assign(client, "dave.us@contoso.com", add=[DOM])  # E3 only: no MCOEV plan
    assert error_of(r) == (400, "Request_BadRequest",
                           f"License assignment failed because service plan {PLANS['MCOPSTN1']} depends on the "
                           f"service plan(s) {PLANS['MCOEV']}")
    assert licenses(client, "dave.us@contoso.com") == {E3}
    # Phone System added in the same call satisfies it
    assert assign(client, "dave.us@contoso.com", add=[EV, DOM]).status_code == 200
    assert licenses(client, "dave.us@contoso.com") == {E3, EV, DOM}


def test_phone_system_from_a_suite_counts_but_not_when_its_plan_is_disabled(client: Client) -> None:
    # isla.gb holds E5 (includes MCOEV): a Calling Plan alone is fine
    assert assign(client, "isla.gb@contoso.com", add=[DOM]).status_code == 200
    # pat.us holds E5 with the MCOEV plan disabled: no Phone System
    r = assign(client, "pat.us@contoso.com", add=[DOM])
    assert r.status_code == 400 and "depends on the service plan(s)" in error_of(r)[2]


def test_phone_system_from_a_group_counts(client: Client) -> None:
    # erin.us inherits MCOEV + MCOPSTN1 from "Sales Voice": an International plan needs no direct MCOEV
    assert assign(client, "erin.us@contoso.com", add=[INTL]).status_code == 200


def test_cannot_remove_phone_system_under_a_calling_plan(client: Client) -> None:
    r = assign(client, "bob.us@contoso.com", remove=[EV])  # bob: E3 + MCOEV + MCOPSTN1
    assert error_of(r)[:2] == (400, "Request_BadRequest")
    assert "depends on the service plan(s)" in error_of(r)[2]
    assert licenses(client, "bob.us@contoso.com") == {E3, EV, DOM}
    assert assign(client, "bob.us@contoso.com", remove=[EV, DOM]).status_code == 200
    assert licenses(client, "bob.us@contoso.com") == {E3}


def test_cannot_remove_a_group_inherited_license(client: Client) -> None:
    r = assign(client, "erin.us@contoso.com", remove=[EV])
    assert error_of(r) == (400, "Request_BadRequest",
                           "User license is inherited from group membership and cannot be removed directly from "
                           "the user.")
    assert EV in licenses(client, "erin.us@contoso.com")


def test_direct_copy_of_an_inherited_license_can_be_removed_and_counts_once(client: Client) -> None:
    before = seats(client)[EV]
    assert assign(client, "frank.us@contoso.com", remove=[EV]).status_code == 200  # direct + group: one seat
    assert EV in licenses(client, "frank.us@contoso.com")  # still inherited
    assert seats(client)[EV] == before


def test_both_arrays_required(client: Client) -> None:
    for body, missing in (({"removeLicenses": []}, "addLicenses"), ({"addLicenses": []}, "removeLicenses"),
                          ({}, "addLicenses, removeLicenses")):
        r = assign(client, "dave.us@contoso.com", body=body)
        assert error_of(r) == (400, "Request_BadRequest",
                               "One or more parameters of the operation 'assignLicense' are missing from the "
                               f"request payload. The missing parameters are: {missing}.")


def test_a_call_that_changes_nothing_is_refused(client: Client) -> None:
    r = assign(client, "dave.us@contoso.com")
    assert error_of(r) == (400, "Request_BadRequest",
                           "No license changes provided. At least one license to add or remove must be specified.")


def test_removing_a_license_the_user_does_not_hold(client: Client) -> None:
    r = assign(client, "dave.us@contoso.com", remove=[EV])
    assert error_of(r) == (400, "Request_BadRequest", "User does not have a corresponding license.")


def test_suspended_or_locked_out_subscription_refuses_adds() -> None:
    for status in ("Suspended", "LockedOut"):
        client = make_client(_demo_with(MCOPSTNC={"capabilityStatus": status}))
        r = assign(client, "dave.us@contoso.com", add=[CC])
        assert error_of(r) == (400, "Request_BadRequest", f"Subscription {CC} does not have any available licenses.")
    client = make_client(_demo_with(MCOPSTNC={"capabilityStatus": "Warning"}))  # grace period: still assignable
    assert assign(client, "dave.us@contoso.com", add=[CC]).status_code == 200


def test_a_rejected_call_changes_nothing(client: Client) -> None:
    before_seats = seats(client)
    before = licenses(client, "bob.us@contoso.com")
    # a valid removal together with an invalid add: all or nothing
    r = assign(client, "bob.us@contoso.com", add=[str(uuid.UUID(int=7))], remove=[DOM])
    assert r.status_code == 400
    assert licenses(client, "bob.us@contoso.com") == before
    assert seats(client) == before_seats


def test_seat_counts_follow_assignments(client: Client) -> None:
    e5_used, _ = seats(client)[E5]
    assert assign(client, "dave.us@contoso.com", add=[E5], remove=[E3]).status_code == 200
    after = seats(client)
    assert after[E5][0] == e5_used + 1
    r = client.get("/v1.0/users/dave.us@contoso.com", params={"$select": "assignedLicenses"})
    assert [lic["skuId"] for lic in r.json()["assignedLicenses"]] == [E5]


def test_assign_returns_the_user_and_unknown_user_is_404(client: Client) -> None:
    r = assign(client, "dave.us@contoso.com", add=[EV])
    assert r.status_code == 200 and r.json()["userPrincipalName"] == "dave.us@contoso.com"
    r = assign(client, "nobody@contoso.com", add=[EV])
    assert error_of(r)[:2] == (404, "Request_ResourceNotFound")
    assert "nobody@contoso.com" in error_of(r)[2]


def test_disabled_plans_must_belong_to_the_sku(client: Client) -> None:
    body = {"addLicenses": [{"skuId": EV, "disabledPlans": [PLANS["TEAMS1"]]}], "removeLicenses": []}
    r = assign(client, "dave.us@contoso.com", body=body)
    assert error_of(r) == (400, "Request_BadRequest", f"Service plan {PLANS['TEAMS1']} does not belong to license {EV}.")


def test_patch_usage_location_validates_the_country(client: Client) -> None:
    for bad_value in ("XYZ", "QQ", 7, ""):
        r = client.patch("/v1.0/users/sam.new@contoso.com", json={"usageLocation": bad_value})
        assert error_of(r) == (400, "Request_BadRequest",
                               "Invalid value specified for property 'usageLocation' of resource 'User'.")
    r = client.patch("/v1.0/users/sam.new@contoso.com", json={"usageLocation": "gb"})
    assert r.status_code == 204 and r.content == b""
    got = client.get("/v1.0/users/sam.new@contoso.com", params={"$select": "usageLocation"}).json()
    assert got["usageLocation"] == "GB"
    r = client.patch("/v1.0/users/sam.new@contoso.com", json={"assignedLicenses": []})
    assert error_of(r)[0] == 400


def test_sku_ids_in_the_demo_are_microsofts() -> None:
    # the rules key on service plan names; the demo's ids are the published ones (reference §1.2)
    assert SKU["MCOEV"] == "e43b5b99-8dfb-405f-9987-dc307f34bcbd"
    assert SKU["MCOPSTN1"] == "0dab259f-bf13-4952-b7f8-7db8f131b28d"
