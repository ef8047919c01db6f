"""GET /users: paging by @odata.nextLink, $top bounds, $select, the $filter forms, $count (Graph's answers)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from emu_helpers import DOM, E5, EV, Client, error_of, make_client

from provisioner.emulator.demo import demo_state, synthetic_state

EVENTUAL = {"ConsistencyLevel": "eventual"}


def _all_pages(client: Client, params: dict[str, str], headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    r = client.get("/v1.0/users", params=params, headers=headers)
    assert r.status_code == 200, r.text
    out = list(r.json()["value"])
    nxt = r.json().get("@odata.nextLink")
    while nxt:
        assert nxt.startswith("http://emu/v1.0/users?")
        r = client.get(nxt)  # nextLink followed verbatim, without resending headers (as the SDK does)
        assert r.status_code == 200, r.text
        out += r.json()["value"]
        nxt = r.json().get("@odata.nextLink")
    return out


def test_paging_returns_every_user_once_in_a_stable_order() -> None:
    state = synthetic_state(2500, seed=3)
    client = make_client(state)
    users = _all_pages(client, {"$top": "999", "$select": "id"})
    assert [u["id"] for u in users] == [u["id"] for u in state["users"]]
    r = client.get("/v1.0/users", params={"$select": "id"})  # default page size is 100
    assert len(r.json()["value"]) == 100


def test_next_link_keeps_the_query_and_uses_the_request_base_url(client: Client) -> None:
    r = client.get("/v1.0/users", params={"$top": "3", "$select": "id,usageLocation"})
    link = urlsplit(r.json()["@odata.nextLink"])
    assert (link.scheme, link.netloc, link.path) == ("http", "emu", "/v1.0/users")
    q = parse_qs(link.query)
    assert q["$top"] == ["3"] and q["$select"] == ["id,usageLocation"] and q["$skiptoken"]


def test_top_bounds(client: Client) -> None:
    for bad_top in ("0", "1000"):
        r = client.get("/v1.0/users", params={"$top": bad_top})
        assert error_of(r) == (400, "Request_UnsupportedQuery",
                               f"Invalid page size specified: '{bad_top}'. Must be between 1 and 999 inclusive.")
    assert error_of(client.get("/v1.0/users", params={"$top": "ten"}))[0] == 400
    assert len(client.get("/v1.0/users", params={"$top": "999"}).json()["value"]) == 40


def test_select_returns_exactly_the_selected_declared_properties(client: Client) -> None:
    r = client.get("/v1.0/users", params={"$select": "id,usageLocation,city,businessPhones", "$top": "1"})
    assert r.json()["value"] == [{"id": r.json()["value"][0]["id"], "usageLocation": "US", "city": None,
                                  "businessPhones": []}]
    r = client.get("/v1.0/users", params={"$select": "id,favouriteColour"})
    assert error_of(r) == (400, "Request_BadRequest",
                           "Could not find a property named 'favouriteColour' on type 'microsoft.graph.user'.")


def test_default_properties_without_select(client: Client) -> None:
    user = client.get("/v1.0/users", params={"$top": "1"}).json()["value"][0]
    assert set(user) == {"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                         "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}


def test_filter_by_upn_eq_and_in(client: Client) -> None:
    r = client.get("/v1.0/users", params={"$filter": "userPrincipalName eq 'Bob.US@contoso.com'", "$select": "id,userPrincipalName"})
    assert [u["userPrincipalName"] for u in r.json()["value"]] == ["bob.us@contoso.com"]
    r = client.get("/v1.0/users", params={
        "$filter": "userPrincipalName in ('carol.us@contoso.com','alice.us@contoso.com','ghost@contoso.com')",
        "$select": "userPrincipalName"})
    assert [u["userPrincipalName"] for u in r.json()["value"]] == ["alice.us@contoso.com", "carol.us@contoso.com"]


def test_filter_in_is_limited_to_15_values(client: Client) -> None:
    values = ",".join(f"'u{i}@contoso.com'" for i in range(16))
    r = client.get("/v1.0/users", params={"$filter": f"userPrincipalName in ({values})"})
    assert error_of(r) == (400, "Request_UnsupportedQuery",
                           "Too many child clauses specified in search filter expression containing 'OR' operators: "
                           "16. Max allowed: 15.")
    values = ",".join(f"'u{i}@contoso.com'" for i in range(15))
    assert client.get("/v1.0/users", params={"$filter": f"userPrincipalName in ({values})"}).status_code == 200



def test_filter_by_id_eq_and_in_matches_case_insensitively_in_directory_order() -> None:
    state = demo_state()
    client = make_client(state)
    ids = [u["id"] for u in state["users"]]
    r = client.get("/v1.0/users", params={"$filter": f"id eq '{ids[3]}'", "$select": "id,userPrincipalName"})
    assert r.status_code == 200, r.text
    assert r.json()["value"] == [{"id": ids[3], "userPrincipalName": state["users"][3]["userPrincipalName"]}]
    ghost = "00000000-0000-4000-8000-000000000000"  # a well-formed id nobody has: simply not in the answer
    asked = [ids[7].upper(), ghost, ids[2], "not-a-guid", ids[2]]
    r = client.get("/v1.0/users", params={"$filter": "id in (" + ",".join(f"'{i}'" for i in asked) + ")",
                                          "$select": "id"})
    assert r.status_code == 200, r.text
    assert [u["id"] for u in r.json()["value"]] == [ids[2], ids[7]]
    # ids and UPNs in one OR list: the union, each user once
    flt = f"id in ('{ids[0]}','{ids[1]}') or userPrincipalName eq '{state['users'][1]['userPrincipalName']}'"
    r = client.get("/v1.0/users", params={"$filter": flt, "$select": "id"})
    assert [u["id"] for u in r.json()["value"]] == ids[:2]


def test_filter_by_id_follows_graph_limits_and_types(client: Client) -> None:
    values = ",".join(f"'00000000-0000-4000-8000-{i:012d}'" for i in range(16))
    assert error_of(client.get("/v1.0/users", params={"$filter": f"id in ({values})"})) == (
        400, "Request_UnsupportedQuery",
        "Too many child clauses specified in search filter expression containing 'OR' operators: 16. Max allowed: 15.")
    fifteen = values.rsplit(",", 1)[0]
    assert client.get("/v1.0/users", params={"$filter": f"id in ({fifteen})"}).status_code == 200
    # 10 ids + 6 UPNs: 16 OR'ed values in all, over the limit without advanced query headers
    upns = ",".join(f"'u{i}@contoso.com'" for i in range(6))
    ten = ",".join(values.split(",")[:10])
    r = client.get("/v1.0/users", params={"$filter": f"id in ({ten}) or userPrincipalName in ({upns})"})
    assert error_of(r)[:2] == (400, "Request_UnsupportedQuery") and "16. Max allowed: 15." in error_of(r)[2]
    # user.md: id is an Edm.String; a bare GUID literal is another type
    r = client.get("/v1.0/users", params={"$filter": "id eq 00000000-0000-4000-8000-000000000000"})
    assert error_of(r) == (400, "BadRequest", "A binary operator with incompatible types was detected. Found "
                           "operand types 'Edm.String' and 'Edm.Guid' for operator kind 'Equal'.")
    r = client.get("/v1.0/users", params={"$filter": "id in (00000000-0000-4000-8000-000000000000)"})
    assert error_of(r)[:2] == (400, "BadRequest") and "operator kind 'In'" in error_of(r)[2]
    r = client.get("/v1.0/users", params={"$filter": "id ne 'x'"})
    assert error_of(r) == (400, "Request_UnsupportedQuery",
                           "Unsupported operator 'ne' on property 'id' in this emulator (it supports eq and in).")
    for broken in ("id in ()", "id in ('a'", "id eq", "id in ('a',)"):
        assert error_of(client.get("/v1.0/users", params={"$filter": broken}))[0] == 400, broken


def test_filter_by_id_inside_batch_sees_writes(client: Client) -> None:
    first = client.get("/v1.0/users", params={"$top": "1", "$select": "id,userPrincipalName"}).json()["value"][0]
    url = "/users?$filter=" + quote(f"id in ('{first['id']}')", safe="") + "&$select=id,usageLocation"
    before = client.post("/v1.0/$batch", json={"requests": [{"id": "1", "method": "GET", "url": url}]})
    assert before.json()["responses"][0]["status"] == 200
    loc = before.json()["responses"][0]["body"]["value"][0]["usageLocation"]
    new = "JP" if loc != "JP" else "GB"
    assert client.patch(f"/v1.0/users/{first['id']}", json={"usageLocation": new}).status_code == 204
    after = client.post("/v1.0/$batch", json={"requests": [{"id": "1", "method": "GET", "url": url}]})
    assert after.json()["responses"][0]["body"]["value"] == [{"id": first["id"], "usageLocation": new}]

def test_filter_by_sku_is_a_default_query_but_pages_only_as_an_advanced_one(client: Client) -> None:
    # query-parameters.md shows the filter without headers (its first page is served); following its nextLink
    # fails unless the query was advanced (graph-docs#14231; #7855: Directory_ExpiredPageToken).
    flt = f"assignedLicenses/any(x:x/skuId eq {EV})"
    for headers in (None, EVENTUAL):  # the header alone, without $count=true, is not an advanced query
        r = client.get("/v1.0/users", params={"$filter": flt, "$top": "1", "$select": "id"}, headers=headers)
        assert r.status_code == 200 and len(r.json()["value"]) == 1, r.text
        nxt = r.json()["@odata.nextLink"]
        assert error_of(client.get(nxt, headers=headers))[:2] == (400, "Directory_ExpiredPageToken")
    r = client.get("/v1.0/users", params={"$filter": flt, "$count": "true"})
    assert error_of(r) == (400, "Request_BadRequest", "$count is not currently supported.")
    # as an advanced query, every page is served, nextLinks followed without resending the header
    every = _all_pages(client, {"$filter": flt, "$count": "true", "$top": "1", "$select": "id"}, EVENTUAL)
    assert len(every) > 1
    assert every == client.get("/v1.0/users", params={"$filter": flt, "$count": "true", "$select": "id"},
                               headers=EVENTUAL).json()["value"]


def test_filter_by_skus_joined_by_or_matches_direct_and_inherited_holders() -> None:
    state = demo_state()
    client = make_client(state)
    flt = f"assignedLicenses/any(x:x/skuId eq {EV}) or assignedLicenses/any(x:x/skuId eq {DOM})"
    got = _all_pages(client, {"$filter": flt, "$count": "true", "$top": "4", "$select": "userPrincipalName"},
                     EVENTUAL)
    sales = {m for g in state["groups"] for m in g["members"]}  # the group licenses MCOEV + MCOPSTN1
    expected = [u["userPrincipalName"] for u in state["users"]
                if u["id"] in sales or {lic["skuId"] for lic in u["assignedLicenses"]} & {EV, DOM}]
    assert [u["userPrincipalName"] for u in got] == expected
    r = client.get("/v1.0/users", params={"$filter": flt, "$count": "true", "$top": "3"}, headers=EVENTUAL)
    assert r.json()["@odata.count"] == len(expected)
    link = r.json()["@odata.nextLink"]
    assert " " not in link and "%20" in link
    assert "@odata.count" not in client.get(link).json()  # only the first page carries the count
    # a lambda with `or` inside is refused, as Graph does (graph-docs#14036)
    r = client.get("/v1.0/users", params={"$filter": f"assignedLicenses/any(x:x/skuId eq {EV} or x/skuId eq {E5})",
                                          "$count": "true"}, headers=EVENTUAL)
    assert error_of(r) == (400, "BadRequest", "Invalid filter clause")


def test_filter_index_follows_writes(client: Client) -> None:
    flt = {"$filter": f"assignedLicenses/any(x:x/skuId eq {E5})", "$count": "true", "$top": "999",
           "$select": "userPrincipalName"}
    before = client.get("/v1.0/users", params=flt, headers=EVENTUAL).json()["@odata.count"]
    body = {"addLicenses": [{"skuId": E5, "disabledPlans": []}], "removeLicenses": []}
    assert client.post("/v1.0/users/dave.us@contoso.com/assignLicense", json=body).status_code == 200
    r = client.get("/v1.0/users", params=flt, headers=EVENTUAL).json()
    assert r["@odata.count"] == before + 1
    assert "dave.us@contoso.com" in {u["userPrincipalName"] for u in r["value"]}


def test_unsupported_filters_and_tampered_skiptoken_are_400(client: Client) -> None:
    for flt in ("displayName eq 'x'", "userPrincipalName eq 'a' and userPrincipalName eq 'b'", "userPrincipalName eq",
                "nonsense(", ""):
        assert client.get("/v1.0/users", params={"$filter": flt}).status_code == 400, flt
    r = client.get("/v1.0/users", params={"$top": "2", "$skiptoken": "RFNwdAAAAA"})
    assert error_of(r)[0] == 400
    r = client.get("/v1.0/users", params={"$top": "2", "$skip": "2"})
    assert error_of(r) == (400, "Request_BadRequest", "'$skip' is not supported by the service.")
    for option in ("$orderby", "$search", "$expand"):
        assert error_of(client.get("/v1.0/users", params={option: "displayName"}))[0] == 400


def test_get_user_by_id_or_upn_with_select(client: Client) -> None:
    first = client.get("/v1.0/users", params={"$top": "1", "$select": "id,userPrincipalName"}).json()["value"][0]
    by_id = client.get(f"/v1.0/users/{first['id']}", params={"$select": "id,userPrincipalName"}).json()
    by_upn = client.get(f"/v1.0/users/{first['userPrincipalName'].upper()}", params={"$select": "id"}).json()
    assert by_id["userPrincipalName"] == first["userPrincipalName"]
    assert by_upn["id"] == first["id"] and set(by_upn) == {"@odata.context", "id"}


def test_subscribed_skus_and_organization_shapes(client: Client) -> None:
    sku = client.get("/v1.0/subscribedSkus").json()["value"][0]
    assert set(sku) == {"accountId", "accountName", "appliesTo", "capabilityStatus", "consumedUnits", "id",
                        "prepaidUnits", "servicePlans", "skuId", "skuPartNumber", "subscriptionIds"}
    assert set(sku["prepaidUnits"]) == {"enabled", "suspended", "warning", "lockedOut"}
    org = client.get("/v1.0/organization").json()["value"][0]
    assert org["displayName"] == "Contoso"
    assert {d["name"] for d in org["verifiedDomains"]} == {"contoso.com", "contoso.onmicrosoft.com"}


def test_errors_carry_graph_body_and_request_id(client: Client) -> None:
    r = client.get("/v1.0/users/ghost@contoso.com", headers={"client-request-id": "abc-123"})
    err = r.json()["error"]
    assert r.status_code == 404 and err["code"] == "Request_ResourceNotFound"
    assert err["innerError"]["request-id"] == r.headers["request-id"]
    assert r.headers["client-request-id"] == "abc-123"
    assert set(err["innerError"]) >= {"request-id", "date"}
    r = client.get("/v1.0/applications")
    assert error_of(r) == (400, "BadRequest", "Resource not found for the segment 'applications'.")
    r = client.request("DELETE", "/v1.0/users/bob.us@contoso.com")
    assert error_of(r)[0] == 405
    assert error_of(client.post("/v1.0/users", json={}))[0] == 405
    client.get("/v1.0/users/ghost@contoso.com/manager")
    by_route = client.get("/_emulator/stats").json()["byRoute"]
    assert by_route["POST /users"] == 1 and by_route["DELETE /users/{id}"] == 1
    assert by_route["GET /applications"] == 1 and by_route["GET /users/*"] == 1  # unknown paths by first segment
    assert "GET /users" not in by_route


def test_filter_by_usage_location_and_sku_counts_holders_per_country() -> None:
    state = synthetic_state(3000, seed=5)
    client = make_client(state)
    sku = DOM
    for country in ("US", "GB", "JP"):
        by_group = {m for g in state["groups"] for m in g["members"]
                    if sku in {lic["skuId"] for lic in g["assignedLicenses"]}}
        expected = sorted(u["userPrincipalName"] for u in state["users"] if u["usageLocation"] == country
                          and (u["id"] in by_group or sku in {lic["skuId"] for lic in u["assignedLicenses"]}))
        for flt in (f"usageLocation eq '{country}' and assignedLicenses/any(x:x/skuId eq {sku})",
                    f"assignedLicenses/any(x:x/skuId eq {sku}) and usageLocation eq '{country.lower()}'"):
            r = client.get("/v1.0/users", params={"$filter": flt, "$count": "true", "$top": "1", "$select": "id"},
                           headers=EVENTUAL)
            assert r.status_code == 200, r.text
            assert r.json()["@odata.count"] == len(expected), (country, flt)
            got = _all_pages(client, {"$filter": flt, "$count": "true", "$top": "999",
                                      "$select": "userPrincipalName,usageLocation"}, EVENTUAL)
            assert sorted(u["userPrincipalName"] for u in got) == expected
            assert {u["usageLocation"] for u in got} <= {country}
    assert any(u["usageLocation"] == "US" for u in state["users"])  # the US count above was not vacuous
    # usageLocation alone is a plain filter (no advanced headers needed) and matches every user there
    r = client.get("/v1.0/users", params={"$filter": "usageLocation eq 'JP'", "$top": "999", "$select": "id"})
    assert r.status_code == 200 and len(r.json()["value"]) == sum(u["usageLocation"] == "JP" for u in state["users"])


def test_usage_location_eq_null_counts_holders_without_a_location() -> None:
    state = synthetic_state(3000, seed=5)
    member = state["groups"][0]["members"][0]
    for u in state["users"]:
        if u["id"] == member:
            u["usageLocation"] = None  # a group member with no usage location still inherits the group's plan
    client = make_client(state)
    flt = f"usageLocation eq null and assignedLicenses/any(x:x/skuId eq {DOM})"
    r = client.get("/v1.0/users", params={"$filter": flt, "$count": "true", "$top": "999", "$select": "id"},
                   headers=EVENTUAL)
    assert r.status_code == 200, r.text
    assert [u["id"] for u in r.json()["value"]] == [member] and r.json()["@odata.count"] == 1
    no_loc = sum(not u["usageLocation"] for u in state["users"])
    r = client.get("/v1.0/users", params={"$filter": "usageLocation eq null", "$count": "true", "$top": "999"},
                   headers=EVENTUAL)
    assert r.json()["@odata.count"] == no_loc > 1
    # a null-value filter is an advanced query (aad-advanced-queries.md)
    r = client.get("/v1.0/users", params={"$filter": "usageLocation eq null"})
    assert error_of(r)[:2] == (400, "Request_UnsupportedQuery") and "ConsistencyLevel:eventual" in error_of(r)[2]


def test_usage_location_count_follows_a_country_move(client: Client) -> None:
    flt = {"$filter": "usageLocation eq 'CA'", "$count": "true", "$top": "1", "$select": "id"}
    before = client.get("/v1.0/users", params=flt, headers=EVENTUAL).json()["@odata.count"]
    assert client.patch("/v1.0/users/dave.us@contoso.com", json={"usageLocation": "CA"}).status_code == 204
    assert client.get("/v1.0/users", params=flt, headers=EVENTUAL).json()["@odata.count"] == before + 1


def test_usage_location_filter_forms_the_emulator_refuses(client: Client) -> None:
    any_ev = f"assignedLicenses/any(x:x/skuId eq {EV})"
    refused = {
        f"usageLocation eq 'US' and {any_ev} or {any_ev}": "'and' only to join one usageLocation",
        f"{any_ev} or {any_ev} and usageLocation eq 'US'": "'and' only to join one usageLocation",
        f"usageLocation eq 'US' or {any_ev}": "joins usageLocation to other clauses with 'and' only",
        f"{any_ev} or usageLocation eq 'US'": "only at the top level",
        "usageLocation ne 'US'": "Unsupported operator 'ne' on property 'usageLocation'",
        "usageLocation eq 'US' and usageLocation eq 'GB'": "one usageLocation eq 'XX' only at the top level",
    }
    for flt, words in refused.items():
        r = client.get("/v1.0/users", params={"$filter": flt, "$count": "true"}, headers=EVENTUAL)
        assert error_of(r)[:2] == (400, "Request_UnsupportedQuery"), flt
        assert words in error_of(r)[2], (flt, error_of(r)[2])
    # parenthesised, an 'or' list joins a usageLocation fine: (A or B) and L
    r = client.get("/v1.0/users", params={"$filter": f"({any_ev} or {any_ev}) and usageLocation eq 'US'",
                                          "$count": "true", "$top": "1"}, headers=EVENTUAL)
    assert r.status_code == 200, r.text
    # the SKU clause still needs the advanced-query headers when joined to a location
    r = client.get("/v1.0/users", params={"$filter": f"usageLocation eq 'US' and {any_ev}"})
    assert "'ConsistencyLevel:eventual' header is missing" in error_of(r)[2]
