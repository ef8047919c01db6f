"""The real msgraph-sdk (GraphServiceClient, default middleware) against the in-process emulator.

Proves the emulator speaks Graph to Microsoft's own client: paging, $select/$count, assignLicense success and
each rejection as the SDK's APIError (ODataError), PATCH, $batch, and a 429 + Retry-After retried by the
SDK's RetryHandler. No credential: an anonymous auth provider over httpx.ASGITransport (no socket).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from emu_helpers import DOM, E3, EV, INTL, make_state

from provisioner.emulator.faults import FaultConfig
from provisioner.emulator.routes import create_app

msgraph = pytest.importorskip("msgraph")
# the SDK's own request builders warn about their deprecated configuration classes on every call
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

with warnings.catch_warnings():  # the SDK's generated builders warn about themselves at import
    warnings.simplefilter("ignore", DeprecationWarning)
    from kiota_abstractions.api_error import APIError
    from kiota_abstractions.authentication import AnonymousAuthenticationProvider
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_abstractions.method import Method
    from kiota_abstractions.request_information import RequestInformation
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.models.assigned_license import AssignedLicense
    from msgraph.generated.models.user import User
    from msgraph.generated.users.item.assign_license.assign_license_post_request_body import (
        AssignLicensePostRequestBody,
    )
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder
    from msgraph_core import GraphClientFactory

BASE = "http://emulator.test/v1.0"


def graph_client(app: Any) -> GraphServiceClient:
    """GraphServiceClient with its default middleware chain, talking to `app` in process."""
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE))
    adapter = GraphRequestAdapter(AnonymousAuthenticationProvider(), client=http)
    adapter.base_url = BASE  # without it the SDK builds /v1.0//users (msgraph-sdk-notes §3.1)
    return GraphServiceClient(request_adapter=adapter)


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(fn())


def body(add: list[str] | None = None, remove: list[str] | None = None) -> AssignLicensePostRequestBody:
    return AssignLicensePostRequestBody(
        add_licenses=[AssignedLicense(sku_id=uuid.UUID(s), disabled_plans=[]) for s in add or []],
        remove_licenses=[uuid.UUID(s) for s in remove or []])


def test_sdk_pages_users_with_select_count_and_next_link() -> None:
    state = make_state()
    client = graph_client(create_app(state))

    async def go() -> tuple[int | None, list[Any]]:
        cfg = RequestConfiguration(query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            select=["id", "userPrincipalName", "assignedLicenses", "licenseAssignmentStates"], top=7, count=True))
        cfg.headers.add("ConsistencyLevel", "eventual")
        page = await client.users.get(cfg)
        users = list(page.value)
        count = page.odata_count
        while page.odata_next_link:
            page = await client.users.with_url(page.odata_next_link).get()
            users += page.value
        return count, users

    count, users = run(go)
    assert count == len(state.users) == len(users) == 40
    assert [u.user_principal_name for u in users] == [u.upn for u in state.users]
    erin = next(u for u in users if u.user_principal_name == "erin.us@contoso.com")
    inherited = [s for s in erin.license_assignment_states if s.assigned_by_group]
    assert {str(s.sku_id) for s in inherited} == {EV, DOM} and {s.state for s in inherited} == {"Active"}


def test_sdk_assign_license_success_and_patch() -> None:
    state = make_state()
    client = graph_client(create_app(state))

    async def go() -> User | None:
        await client.users.by_user_id("sam.new@contoso.com").patch(User(usage_location="GB"))
        return await client.users.by_user_id("sam.new@contoso.com").assign_license.post(body(add=[E3]))

    user = run(go)
    assert user is not None and user.user_principal_name == "sam.new@contoso.com"
    assert set(state.find_user("sam.new@contoso.com").licenses) == {E3}  # type: ignore[union-attr]


@pytest.mark.parametrize(("upn", "add", "remove", "message"), [
    ("sam.new@contoso.com", [E3], [], "License assignment cannot be done for user with invalid usage location."),
    ("dave.us@contoso.com", [DOM], [], "License assignment failed because service plan"),
    ("bob.us@contoso.com", [], [EV], "License assignment failed because service plan"),
    ("erin.us@contoso.com", [], [EV], "User license is inherited from group membership"),
    ("dave.us@contoso.com", [str(uuid.UUID(int=3))], [], "does not correspond to a valid company License."),
])
def test_sdk_rejections_surface_as_api_error(upn: str, add: list[str], remove: list[str], message: str) -> None:
    client = graph_client(create_app(make_state()))
    with pytest.raises(APIError) as e:
        run(lambda: client.users.by_user_id(upn).assign_license.post(body(add, remove)))
    err = e.value
    assert err.response_status_code == 400
    assert err.error.code == "Request_BadRequest"  # type: ignore[attr-defined]
    assert message in err.error.message  # type: ignore[attr-defined]
    assert err.response_headers["request-id"]


def test_sdk_seat_exhaustion_message() -> None:
    state = make_state()
    state.sku_by_id[INTL].prepaid["enabled"] = state.consumed(INTL)
    client = graph_client(create_app(state))
    with pytest.raises(APIError) as e:
        run(lambda: client.users.by_user_id("dave.us@contoso.com").assign_license.post(body([EV, INTL])))
    assert e.value.error.message == f"Subscription {INTL} does not have any available licenses."  # type: ignore[attr-defined]


def _batch_info(requests: list[dict[str, Any]]) -> RequestInformation:
    ri = RequestInformation()
    ri.http_method = Method.POST
    ri.url = f"{BASE}/$batch"
    ri.headers.try_add("Content-Type", "application/json")
    ri.content = json.dumps({"requests": requests}).encode()
    return ri


def test_sdk_batch_through_the_adapter_with_sub_request_429() -> None:
    app = create_app(make_state(), faults=FaultConfig(throttle_rate=0.4, seed=2, retry_after_s=1))
    client = graph_client(app)
    reqs = [{"id": str(i), "method": "GET", "url": "/users/dave.us@contoso.com?$select=id"} for i in range(1, 21)]

    async def go() -> dict[str, Any]:
        raw = await client.request_adapter.send_primitive_async(_batch_info(reqs), "bytes", {})
        return json.loads(raw)

    result = run(go)
    statuses = {r["id"]: r["status"] for r in result["responses"]}
    assert set(statuses) == {str(i) for i in range(1, 21)}
    assert set(statuses.values()) == {200, 429}  # sub-requests are throttled on their own, not retried by the SDK
    throttled = next(r for r in result["responses"] if r["status"] == 429)
    assert throttled["headers"]["Retry-After"] == "1"


def test_sdk_retries_a_429_after_retry_after() -> None:
    app = create_app(make_state(), faults=FaultConfig(throttle_rate=0.5, seed=1, retry_after_s=1))
    client = graph_client(app)
    start = time.monotonic()
    skus = run(lambda: client.subscribed_skus.get())
    elapsed = time.monotonic() - start
    stats = app.state.emulator.stats.as_dict()
    assert skus is not None and len(skus.value) == 10
    assert stats["throttled"] >= 1 and stats["requests"] == stats["throttled"] + 1
    assert elapsed >= stats["throttled"] * 1.0  # the SDK waited Retry-After seconds before each retry
