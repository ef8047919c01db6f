"""Every property the emulator emits is declared by Graph v1.0, with a JSON type that fits its Edm type.

data/graph-v1-types.json is extracted from Microsoft's own CSDL (microsoftgraph/msgraph-metadata
schemas/v1.0-Prod.csdl); it is the contract's reference (CONTRACT §4).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from emu_helpers import Client

from provisioner.emulator.query import USER_PROPERTIES

TYPES = json.loads((Path(__file__).parent / "data" / "graph-v1-types.json").read_text())["types"]


def _props(type_name: str) -> dict[str, dict[str, str]]:
    """Declared properties of a type, including its base types (entity -> directoryObject -> user)."""
    t = TYPES[type_name]
    out = dict(t["properties"])
    if t["baseType"]:
        out.update(_props(t["baseType"].removeprefix("graph.")))
    return out


def _check(value: Any, edm: str, where: str) -> None:
    if value is None:
        return
    if edm.startswith("Collection("):
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            _check(item, edm[len("Collection("):-1], f"{where}[{i}]")
        return
    if edm == "Edm.String":
        assert isinstance(value, str), where
    elif edm == "Edm.Guid":
        assert str(uuid.UUID(value)) == value, where  # lower-case canonical form, as Graph writes GUIDs
    elif edm == "Edm.Boolean":
        assert isinstance(value, bool), where
    elif edm == "Edm.Int32":
        assert isinstance(value, int) and not isinstance(value, bool), where
    elif edm == "Edm.DateTimeOffset":
        assert isinstance(value, str) and value.endswith("Z") and "T" in value, where
    elif edm.startswith("graph.") and isinstance(value, dict):
        _check_object(value, edm.removeprefix("graph."), where)
    elif edm.startswith("graph."):
        assert isinstance(value, str), where  # an enum member


def _check_object(obj: dict[str, Any], type_name: str, where: str) -> None:
    if type_name not in TYPES:
        return  # a complex type outside the extract: the emulator only ever emits null/[] for those
    declared = _props(type_name)
    for key, value in obj.items():
        if key.startswith("@odata."):
            continue
        assert key in declared, f"{where}.{key} is not declared on {type_name}"
        _check(value, declared[key]["type"], f"{where}.{key}")
        if declared[key]["nullable"] == "false":
            assert value is not None, f"{where}.{key} is not nullable"


def test_the_emulators_user_property_list_is_graphs() -> None:
    assert set(USER_PROPERTIES) == set(_props("user"))


def test_users_with_every_property_selected(client: Client) -> None:
    select = ",".join(sorted(_props("user")))
    users = client.get("/v1.0/users", params={"$select": select, "$top": "999"}).json()["value"]
    assert len(users) == 40
    for u in users:
        assert set(u) == set(_props("user"))
        _check_object(u, "user", u["userPrincipalName"])
    erin = next(u for u in users if u["userPrincipalName"] == "erin.us@contoso.com")
    assert erin["assignedPlans"] and erin["licenseAssignmentStates"]


def test_default_user_and_the_assign_license_answer(client: Client) -> None:
    _check_object(client.get("/v1.0/users/bob.us@contoso.com").json(), "user", "GET /users/{id}")
    body = {"addLicenses": [], "removeLicenses": [client.get("/v1.0/users/bob.us@contoso.com", params={
        "$select": "assignedLicenses"}).json()["assignedLicenses"][-1]["skuId"]]}  # bob's Calling Plan
    r = client.post("/v1.0/users/bob.us@contoso.com/assignLicense", json=body)
    assert r.status_code == 200
    _check_object(r.json(), "user", "POST assignLicense")


def test_subscribed_skus_and_organization(client: Client) -> None:
    for sku in client.get("/v1.0/subscribedSkus").json()["value"]:
        _check_object(sku, "subscribedSku", sku["skuPartNumber"])
    for org in client.get("/v1.0/organization").json()["value"]:
        _check_object(org, "organization", "organization")
