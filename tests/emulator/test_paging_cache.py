"""Paging a big tenant renders each user once; a write re-renders only the users it changed (no stale pages)."""

from __future__ import annotations

from typing import Any

import pytest
from emu_helpers import EV, Client, make_client

from provisioner.emulator import render
from provisioner.emulator.demo import synthetic_state

SELECT = "id,userPrincipalName,usageLocation,assignedLicenses,licenseAssignmentStates"


def _page_all(client: Client) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    url: str | None = f"/v1.0/users?$top=999&$select={SELECT}"
    while url:
        body = client.get(url).json()
        out += body["value"]
        url = body.get("@odata.nextLink")
    return out


def test_pages_are_rendered_once_and_invalidated_per_user(monkeypatch: pytest.MonkeyPatch) -> None:
    state = synthetic_state(5000, seed=2)
    client = make_client(state)
    rendered: list[str] = []
    real = render.user_json

    def counting(st: Any, user: Any, props: tuple[str, ...]) -> dict[str, Any]:
        rendered.append(user.id)
        return real(st, user, props)

    monkeypatch.setattr(render, "user_json", counting)
    first = _page_all(client)
    assert len(first) == 5000 and len(rendered) == 5000
    rendered.clear()
    assert _page_all(client) == first and rendered == []  # served from the cache
    target = next(u for u in first if u["usageLocation"] and EV not in {lic["skuId"] for lic in u["assignedLicenses"]}
                  and len(u["assignedLicenses"]) == 1)
    body = {"addLicenses": [{"skuId": EV, "disabledPlans": []}], "removeLicenses": []}
    assert client.post(f"/v1.0/users/{target['id']}/assignLicense", json=body).status_code == 200
    rendered.clear()
    third = _page_all(client)
    assert rendered == [target["id"]]  # only the changed user is rendered again
    changed = next(u for u in third if u["id"] == target["id"])
    assert EV in {lic["skuId"] for lic in changed["assignedLicenses"]}  # not a stale page
