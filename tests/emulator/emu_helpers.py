"""Helpers for the emulator tests: a synchronous client on the in-process app, SKU ids, small accessors."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from provisioner.emulator.demo import SKUS, demo_state
from provisioner.emulator.faults import FaultConfig
from provisioner.emulator.routes import create_app
from provisioner.emulator.state import TenantState

SKU = {part: sku_id for part, (sku_id, _plans) in SKUS.items()}
E3, E5, EV = SKU["ENTERPRISEPACK"], SKU["SPE_E5"], SKU["MCOEV"]
DOM, INTL, CC = SKU["MCOPSTN1"], SKU["MCOPSTN2"], SKU["MCOPSTNC"]
M120, M240 = SKU["MCOPSTN_5"], SKU["MCOPSTN_6"]
BASE = "http://emu"


class Client:
    """Synchronous calls into the ASGI app through httpx.ASGITransport (no socket, no thread)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
                return await c.request(method, url, **kw)

        return asyncio.run(go())

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def patch(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", url, **kw)


def make_state(state: dict[str, Any] | None = None) -> TenantState:
    return TenantState.from_dict(state if state is not None else demo_state())


def make_client(state: dict[str, Any] | None = None, faults: FaultConfig | None = None,
                writes: list[int] | None = None) -> Client:
    on_write = (lambda op: writes.append(1)) if writes is not None else None
    return Client(create_app(make_state(state), faults=faults, on_write=on_write))


def assign(client: Client, user: str, add: list[str] | None = None, remove: list[str] | None = None,
           body: Any = None) -> httpx.Response:
    payload = body if body is not None else {
        "addLicenses": [{"skuId": s, "disabledPlans": []} for s in (add or [])],
        "removeLicenses": list(remove or []),
    }
    return client.post(f"/v1.0/users/{user}/assignLicense", json=payload)


def licenses(client: Client, user: str) -> set[str]:
    r = client.get(f"/v1.0/users/{user}", params={"$select": "assignedLicenses"})
    assert r.status_code == 200, r.text
    return {lic["skuId"] for lic in r.json()["assignedLicenses"]}


def seats(client: Client) -> dict[str, tuple[int, int]]:
    """skuId -> (consumedUnits, prepaidUnits.enabled) as GET /subscribedSkus reports them."""
    r = client.get("/v1.0/subscribedSkus")
    assert r.status_code == 200, r.text
    return {s["skuId"]: (s["consumedUnits"], s["prepaidUnits"]["enabled"]) for s in r.json()["value"]}


def error_of(r: httpx.Response) -> tuple[int, str, str]:
    e = r.json()["error"]
    return r.status_code, e["code"], e["message"]
