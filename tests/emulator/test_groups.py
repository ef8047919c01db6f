"""GET /groups (id eq / id in filters, $select, paging) and GET /groups/{id}: shapes, limits and Graph's errors."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from emu_helpers import Client, error_of, make_client

from provisioner.emulator.demo import demo_state
from provisioner.emulator.query import GROUP_DEFAULT, GROUP_PROPERTIES

TYPES = json.loads((Path(__file__).parent / "data" / "graph-v1-types.json").read_text())["types"]
SALES = "dfffb9e4-b94f-5c94-b56b-1b087e495844"  # the demo tenant's one group, "Sales Voice"


def _declared(type_name: str) -> set[str]:
    t = TYPES[type_name]
    out = set(t["properties"])
    if t["baseType"]:
        out |= _declared(t["baseType"].removeprefix("graph."))
    return out


def many_groups(n: int) -> dict[str, Any]:
    """The demo tenant plus n licence-less groups named G000.. with deterministic ids."""
    state = demo_state()
    for i in range(n):
        gid = str(uuid.uuid5(uuid.NAMESPACE_OID, f"group-{i}"))
        state["groups"].append({"id": gid, "displayName": f"G{i:03}", "members": [], "assignedLicenses": []})
    return state


def gid(i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"group-{i}"))


def test_group_properties_are_exactly_graphs_declared_ones() -> None:
    assert set(GROUP_PROPERTIES) == _declared("group")
    assert set(GROUP_DEFAULT) <= GROUP_PROPERTIES


def test_filter_id_in_with_select_names_the_groups(client: Client) -> None:
    other = "00000000-0000-0000-0000-0000000000aa"
    r = client.get("/v1.0/groups", params={"$filter": f"id in ('{SALES.upper()}','{other}')",
                                           "$select": "id,displayName"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["@odata.context"] == "http://emu/v1.0/$metadata#groups(id,displayName)"
    assert body["value"] == [{"id": SALES, "displayName": "Sales Voice"}]
    assert "@odata.nextLink" not in body


def test_filter_id_eq_and_default_properties(client: Client) -> None:
    r = client.get("/v1.0/groups", params={"$filter": f"id eq '{SALES}'"})
    assert r.status_code == 200, r.text
    (g,) = r.json()["value"]
    assert list(g) == list(GROUP_DEFAULT)
    assert set(g) <= _declared("group")
    assert (g["displayName"], g["securityEnabled"], g["mailEnabled"], g["groupTypes"]) == ("Sales Voice", True, False, [])


def test_more_than_15_ids_is_refused_like_users() -> None:
    c = make_client(many_groups(16))
    ids = ",".join(f"'{gid(i)}'" for i in range(16))
    r = c.get("/v1.0/groups", params={"$filter": f"id in ({ids})", "$select": "id,displayName"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "Request_UnsupportedQuery"
    assert "Max allowed: 15" in err["message"]
    ok = c.get("/v1.0/groups", params={"$filter": f"id in ({','.join(ids.split(',')[:15])})",
                                       "$select": "id,displayName"})
    assert ok.status_code == 200 and len(ok.json()["value"]) == 15


def test_undeclared_select_and_filter_properties_are_graph_400s(client: Client) -> None:
    r = client.get("/v1.0/groups", params={"$select": "id,userPrincipalName"})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == ("Could not find a property named 'userPrincipalName' on type "
                                            "'microsoft.graph.group'.")
    r = client.get("/v1.0/groups", params={"$filter": "bogus eq 'x'"})
    assert r.status_code == 400
    assert "does not exist as a declared property" in r.json()["error"]["message"]
    r = client.get("/v1.0/groups", params={"$filter": f"id eq {SALES}"})  # a bare GUID is not a string
    assert r.status_code == 400 and "incompatible types" in r.json()["error"]["message"]


def test_paging_follows_next_links_to_every_group_once() -> None:
    c = make_client(many_groups(25))
    seen: list[str] = []
    url: str | None = "/v1.0/groups?$select=id,displayName&$top=10"
    pages = 0
    while url:
        r = c.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["value"]) <= 10
        seen += [g["displayName"] for g in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
    assert pages == 3
    assert seen == ["Sales Voice"] + [f"G{i:03}" for i in range(25)]


def test_get_group_by_id_with_select_and_unknown_id_404(client: Client) -> None:
    r = client.get(f"/v1.0/groups/{SALES}", params={"$select": "displayName,assignedLicenses"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["@odata.context"] == "http://emu/v1.0/$metadata#groups(displayName,assignedLicenses)/$entity"
    assert body["displayName"] == "Sales Voice"
    assert set(body) == {"@odata.context", "displayName", "assignedLicenses"}
    assert body["assignedLicenses"] and all(set(a) == {"disabledPlans", "skuId"} for a in body["assignedLicenses"])
    missing = "11111111-2222-3333-4444-555555555555"
    r = client.get(f"/v1.0/groups/{missing}")
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "Request_ResourceNotFound"
    assert err["message"] == (f"Resource '{missing}' does not exist or one of its queried reference-property "
                              "objects are not present.")


def test_group_routes_count_under_their_templates_in_stats(client: Client) -> None:
    client.get(f"/v1.0/groups/{SALES}")
    client.get("/v1.0/groups/11111111-2222-3333-4444-555555555555")
    client.get("/v1.0/groups", params={"$filter": f"id eq '{SALES}'"})
    by_route = client.get("/_emulator/stats").json()["byRoute"]
    assert by_route["GET /groups/{id}"] == 2
    assert by_route["GET /groups"] == 1


def test_groups_in_a_batch(client: Client) -> None:
    reqs = [{"id": "1", "method": "GET", "url": f"/groups?$filter=id in ('{SALES}')&$select=id,displayName"},
            {"id": "2", "method": "GET", "url": "/groups/11111111-2222-3333-4444-555555555555"}]
    r = client.post("/v1.0/$batch", json={"requests": reqs})
    assert r.status_code == 200
    got = {x["id"]: x for x in r.json()["responses"]}
    assert got["1"]["status"] == 200 and got["1"]["body"]["value"][0]["displayName"] == "Sales Voice"
    assert got["2"]["status"] == 404


def test_groups_with_members_in_license_error_and_those_members() -> None:
    from provisioner.emulator.demo import synthetic_state

    state = synthetic_state(300, 2)
    ev = "e43b5b99-8dfb-405f-9987-dc307f34bcbd"
    for s in state["subscribedSkus"]:
        if s["skuId"] == ev:  # no seat left for anyone who has it from a group only
            s["prepaidUnits"]["enabled"] = sum(any(x["skuId"] == ev for x in u["assignedLicenses"])
                                               for u in state["users"])
    client = make_client(state)
    flt = {"$filter": "hasMembersWithLicenseErrors eq true", "$select": "id"}
    r = client.get("/v1.0/groups", params=flt)
    assert r.status_code == 200, r.text
    erring = [g["id"] for g in r.json()["value"]]
    licensed_ev = [g["id"] for g in state["groups"] if any(x["skuId"] == ev for x in g["assignedLicenses"])]
    assert erring and set(erring) <= set(licensed_ev)
    # graph-docs-contrib#9437: as an advanced query this filter is refused
    r = client.get("/v1.0/groups", params={**flt, "$count": "true"}, headers={"ConsistencyLevel": "eventual"})
    assert error_of(r)[:2] == (400, "Request_UnsupportedQuery")
    gid = erring[0]
    members = client.get(f"/v1.0/groups/{gid}/membersWithLicenseErrors", params={"$select": "id", "$top": "1"})
    assert members.status_code == 200, members.text
    first = members.json()
    assert first["value"][0]["@odata.type"] == "#microsoft.graph.user" and set(first["value"][0]) == {"@odata.type", "id"}
    group = next(g for g in state["groups"] if g["id"] == gid)
    everyone = [m["id"] for m in first["value"]]
    nxt = first.get("@odata.nextLink")
    while nxt:
        page = client.get(nxt).json()
        everyone += [m["id"] for m in page["value"]]
        nxt = page.get("@odata.nextLink")
    assert everyone and set(everyone) <= set(group["members"]) and len(everyone) == len(set(everyone))
    for uid in everyone:  # each has the group's license in CountViolation
        states = client.get(f"/v1.0/users/{uid}", params={"$select": "licenseAssignmentStates"}).json()
        assert any(s["assignedByGroup"] == gid and s["error"] == "CountViolation"
                   for s in states["licenseAssignmentStates"])
