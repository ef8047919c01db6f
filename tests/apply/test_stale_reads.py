"""The stale check of a saved plan through the real Graph reader on an in-process emulator: what it reads and
at what cost. 700 touched users are read by `id in (...)` look-ups, 300 a round trip, with the tenant and
the SKUs riding in the first `$batch`; a deleted user and a changed one are named, as with one GET per user.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx

from provisioner.apply import check_stale
from provisioner.emulator.demo import synthetic_state
from provisioner.emulator.routes import create_app
from provisioner.emulator.state import TenantState
from provisioner.graph.connection import open_app
from provisioner.model.plan import Plan, UserPrecondition

TOUCHED = 700


def stats(app: Any) -> dict[str, Any]:
    """GET /_emulator/stats from the in-process app: every request it answered since it started."""

    async def get() -> dict[str, Any]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost"
        ) as c:
            return dict((await c.get("/_emulator/stats")).json())

    return asyncio.run(get())


def plan_touching(doc: dict[str, Any]) -> tuple[Plan, list[UserPrecondition]]:
    """A saved plan's preconditions for every third user (700 of them), as the planner records them: read back
    through the reader, so they hold what Graph shows (direct licenses only, lower-cased UPNs)."""
    app = create_app(TenantState.from_dict(doc))
    ids = [u["id"] for u in doc["users"][::3][:TOUCHED]]
    with open_app(app) as conn:
        tenant = conn.tenant_info()
        users = conn.read_users_by_id(ids)
    assert len(users) == TOUCHED
    pre = [
        UserPrecondition(u.id, u.upn, u.usage_location, tuple(sorted(u.direct_sku_ids)))
        for u in (users[i] for i in ids)
    ]
    return Plan(tenant.id, tenant.display_name, "f", user_preconditions=tuple(pre)), pre


def test_stale_check_of_700_users_takes_ceil_700_over_300_round_trips() -> None:
    doc = synthetic_state(2100, 9)
    plan, _ = plan_touching(doc)
    app = create_app(TenantState.from_dict(doc))
    with open_app(app) as conn:
        assert check_stale(plan, conn) == []
    s = stats(app)
    # 47 `id in` GETs (15 ids each) + organization + subscribedSkus = 49 sub-requests in 3 $batch requests,
    # and nothing else: no top-level GET, no `GET /users/{id}`
    assert (s["requests"], s["batches"], s["subRequests"]) == (3, 3, 49), s
    assert s["requests"] <= math.ceil(TOUCHED / 300) + 1
    assert s["byRoute"].get("GET /users") == 47 and "GET /users/{id}" not in s["byRoute"], s["byRoute"]


def test_deleted_and_changed_users_among_700_are_named() -> None:
    doc = synthetic_state(2100, 9)
    plan, pre = plan_touching(doc)
    gone, moved = pre[10], pre[600]
    doc["users"] = [u for u in doc["users"] if u["id"] != gone.user_id]
    new_loc = "JP" if moved.usage_location != "JP" else "GB"
    next(u for u in doc["users"] if u["id"] == moved.user_id)["usageLocation"] = new_loc
    app = create_app(TenantState.from_dict(doc))
    with open_app(app) as conn:
        changes = check_stale(plan, conn)
    assert sorted(changes) == sorted(
        [
            f"user {gone.upn} no longer exists",
            f"user {moved.upn}: usage location changed {moved.usage_location or '(none)'} → {new_loc} "
            "since the plan was made",
        ]
    )
    assert stats(app)["batches"] == 3


def test_a_plan_touching_no_user_reads_tenant_and_skus_in_one_round_trip() -> None:
    doc = synthetic_state(50, 9)
    app = create_app(TenantState.from_dict(doc))
    with open_app(app) as conn:
        tenant = conn.tenant_info()
    plan = Plan(tenant.id, tenant.display_name, "f")
    with open_app(app) as conn:
        assert check_stale(plan, conn) == []
    s = stats(app)
    assert (s["batches"], s["subRequests"]) == (1, 2) and s["byRoute"].get("GET /users") is None, s
