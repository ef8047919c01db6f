"""The emulator app answers Graph's core routes with Graph's shapes (the contract's surface, end to end)."""

from __future__ import annotations

from emu_helpers import E3, Client, assign, licenses


def test_users_page_has_next_link_and_request_id(client: Client) -> None:
    r = client.get("/v1.0/users", params={"$top": "5", "$select": "id,userPrincipalName"})
    assert r.status_code == 200
    assert r.headers["request-id"] and r.headers["client-request-id"]
    body = r.json()
    assert [set(u) for u in body["value"]] == [{"id", "userPrincipalName"}] * 5
    assert body["@odata.nextLink"].startswith("http://emu/v1.0/users?")


def test_assign_then_read_back(client: Client) -> None:
    assert client.patch("/v1.0/users/sam.new@contoso.com", json={"usageLocation": "US"}).status_code == 204
    r = assign(client, "sam.new@contoso.com", add=[E3])
    assert r.status_code == 200, r.text
    assert r.json()["userPrincipalName"] == "sam.new@contoso.com"
    assert licenses(client, "sam.new@contoso.com") == {E3}
