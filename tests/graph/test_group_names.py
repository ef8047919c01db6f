"""TenantConnection.group_names: `id in (...)` look-ups on /groups, 15 ids a GET and 20 GETs a `$batch`
(counted by the emulator); a 403 names the missing permission, and the pipeline falls back to ids with a note."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from graph_helpers import SubFlakyApp, emulator_stats

from provisioner import pipeline
from provisioner.emulator.demo import demo_state
from provisioner.emulator.local import LocalTenant
from provisioner.emulator.routes import create_app
from provisioner.emulator.state import TenantState
from provisioner.errors import GraphError
from provisioner.graph.connection import open_app
from provisioner.model.observed import Observed

SALES = "dfffb9e4-b94f-5c94-b56b-1b087e495844"


def gid(i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"group-{i}"))


def with_groups(n: int) -> TenantState:
    state = demo_state()
    for i in range(n):
        state["groups"].append({"id": gid(i), "displayName": f"Group {i:03}", "members": [], "assignedLicenses": []})
    return TenantState.from_dict(state)


def test_names_by_id_as_asked_in_one_round_trip(demo_path: Path) -> None:
    local = LocalTenant(demo_path)
    ghost = "00000000-0000-0000-0000-000000000000"
    with open_app(local.app) as conn:
        names = conn.group_names([SALES.upper(), ghost, "not-a-guid", SALES])
    assert names == {SALES: "Sales Voice", SALES.upper(): "Sales Voice"}
    stats = emulator_stats(local.app)
    # one `id in` GET (2 distinct GUIDs; the non-GUID is never sent) in one $batch
    assert (stats["requests"], stats["batches"], stats["subRequests"]) == (1, 1, 1), stats
    assert stats["byRoute"]["GET /groups"] == 1 and "GET /groups/{id}" not in stats["byRoute"]


def test_no_guid_no_request() -> None:
    app = create_app(with_groups(0))
    with open_app(app) as conn:
        assert conn.group_names([]) == {}
        assert conn.group_names(["", "sales"]) == {}
    assert emulator_stats(app)["requests"] == 0


@pytest.mark.parametrize(("n", "gets", "batches"), [(40, 3, 1), (320, 22, 2)])
def test_15_ids_a_get_20_gets_a_batch(n: int, gets: int, batches: int) -> None:
    app = create_app(with_groups(n))
    ids = [gid(i) for i in range(n)]
    with open_app(app) as conn:
        names = conn.group_names(ids)
    assert names == {gid(i): f"Group {i:03}" for i in range(n)}
    assert list(names) == sorted(names)
    stats = emulator_stats(app)
    assert (stats["requests"], stats["batches"], stats["subRequests"]) == (batches, batches, gets), stats
    assert stats["errors"] == 0


def test_403_names_the_permission_and_pipeline_falls_back_to_ids(
    demo_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = LocalTenant(demo_path)
    app = SubFlakyApp(local.app, {("GET", "$select=id,displayName"): 5}, status=403)
    with open_app(app) as conn:
        with pytest.raises(GraphError) as info:
            conn.group_names([SALES])
        err = info.value
        first = str(err).splitlines()[0]
        assert first.startswith("group names need GroupMember.Read.All (or Group.Read.All) to be read: ")
        assert "HTTP 403 Authorization_RequestDenied" in first and "sub-flaky-1" in first
        assert (err.status, err.code) == (403, "Authorization_RequestDenied")
        assert "GroupMember.Read.All" in (err.hint or "")
        assert app.failed == 1  # a 403 is not retried

        observed = conn.read([u.upn for u in local.state.users], lambda skus: [s.sku_id for s in skus])
        assert any(a.by_group for u in observed.users.values() for a in u.assignments)
        names = pipeline.group_names(conn, observed)
    assert SALES not in names
    note = capsys.readouterr().err.strip()
    assert note.startswith("note: group names not read (group names need GroupMember.Read.All")
    assert note.endswith("; messages name group ids.")


def test_pipeline_reads_names_only_when_some_license_is_inherited(demo_path: Path) -> None:
    class NoGroups:
        def group_names(self, ids: Any) -> dict[str, str]:
            raise AssertionError(f"asked for group names of {ids!r}")

    local = LocalTenant(demo_path)
    with open_app(local.app) as conn:
        observed = conn.read([u.upn for u in local.state.users], lambda skus: [s.sku_id for s in skus])
        assert pipeline.group_names(conn, observed)[SALES] == "Sales Voice"
    direct_only = Observed(tenant=observed.tenant, skus=observed.skus, users={})
    assert pipeline.group_names(NoGroups(), direct_only) == {}
