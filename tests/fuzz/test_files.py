"""Hostile files other than manifests: a tampered saved plan and a tampered emulator state file.

A saved plan (`provision apply PLANFILE`) must load or fail with PlanError naming the file; a state file
(`--tenant emulator:PATH`, `emulator serve`) must load or fail with StateError, and a state that loads must
be served without a 500. Mutations replace one node of a real document with arbitrary JSON.
"""

from __future__ import annotations

import asyncio
import copy
import json
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.apply.saved import load_saved_plan
from provisioner.catalog import load_catalog
from provisioner.emulator.demo import demo_state
from provisioner.emulator.routes import create_app
from provisioner.emulator.state import StateError, TenantState
from provisioner.errors import PlanError
from provisioner.graph import connect
from provisioner.manifest import load_desired
from provisioner.planner import plan as make_plan
from provisioner.render import render_json

FUZZ = settings(max_examples=150, deadline=timedelta(seconds=3), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
_DIR = Path(tempfile.mkdtemp(prefix="fuzz-files-"))

MANIFEST = """\
apiVersion: provisioner/v1
kind: TeamsVoiceLicensing
users:
  - upn: sam.new@contoso.com
    usageLocation: US
    callingPlan: domestic
  - upn: bob.us@contoso.com
    phoneSystem: true
    callingPlan: none
"""


def _saved_plan() -> dict[str, Any]:
    """A real saved plan of the demo tenant with three kinds of action (the mutations' starting point)."""
    state_path, manifest = _DIR / "demo.json", _DIR / "m.yaml"
    TenantState.from_dict(demo_state()).save(state_path)
    manifest.write_text(MANIFEST)
    catalog = load_catalog()
    desired = load_desired([manifest])
    with connect(f"emulator:{state_path}") as conn:

        def managed(skus: Any) -> list[str]:
            return sorted(s.sku_id for s in skus
                          if catalog.classify_sku(s.part_number, [p.name for p in s.service_plans]) is not None)

        observed = conn.read([u.upn for u in desired.users], managed_sku_ids=managed, include_all_managed=True)
    return dict(json.loads(render_json(make_plan(desired, observed, catalog))))


PLAN = _saved_plan()
STATE = demo_state()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a node of `doc` (dict keys and list indexes), the root excluded."""
    out: list[tuple[Any, ...]] = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    for k, v in items:
        out.append((*prefix, k))
        out.extend(paths(v, (*prefix, k)))
    return out


def mutate(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    doc = copy.deepcopy(doc)
    node = doc
    for k in path[:-1]:
        node = node[k]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


PLAN_PATHS = paths(PLAN)
STATE_PATHS = paths(STATE)


def test_the_seed_plan_loads_and_has_every_action_type() -> None:
    plan = load_saved_plan(_write("seed.json", PLAN))
    assert {a.type for a in plan.actions} == {"setUsageLocation", "assignLicenses"}
    assert len(plan.actions) >= 3, [(a.type, a.upn) for a in plan.actions]


def _write(name: str, doc: Any) -> Path:
    path = _DIR / name
    path.write_text(json.dumps(doc))
    return path


@FUZZ
@given(path=st.sampled_from(PLAN_PATHS), value=json_values, delete=st.booleans())
def test_tampered_saved_plan(path: tuple[Any, ...], value: Any, delete: bool) -> None:
    target = _write("plan.json", mutate(PLAN, path, value, delete))
    try:
        load_saved_plan(target)
    except PlanError as exc:
        assert str(target) in str(exc), f"the error does not name the file: {exc}"


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_junk_saved_plan(raw: bytes) -> None:
    target = _DIR / "junk.json"
    target.write_bytes(b"{" + raw)
    with pytest.raises(PlanError) as info:
        load_saved_plan(target)
    assert str(target) in str(info.value)


def _serves(state: TenantState) -> None:
    """A state that loaded must answer the reads every command makes, never with a 500."""
    app = create_app(state)

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://e") as c:
            for url in ("/v1.0/organization", "/v1.0/subscribedSkus",
                        "/v1.0/users?$select=id,userPrincipalName,assignedLicenses,licenseAssignmentStates"
                        ",usageLocation&$top=999"):
                r = await c.get(url)
                assert r.status_code == 200, (url, r.status_code, r.text[:300])

    asyncio.run(go())


@FUZZ
@given(path=st.sampled_from(STATE_PATHS), value=json_values, delete=st.booleans())
def test_tampered_state_file(path: tuple[Any, ...], value: Any, delete: bool) -> None:
    target = _write("state.json", mutate(STATE, path, value, delete))
    try:
        state = TenantState.load(target)
    except StateError as exc:
        assert str(target) in str(exc), f"the error does not name the file: {exc}"
        return
    _serves(state)


# Found by test_tampered_state_file (fixed in state.py from_dict, kept as regression cases): each loaded
# without a StateError and then failed with another exception, at load or when served (GET /organization 500).
STATE_BUGS = [
    pytest.param(("tenant", "verifiedDomains", 1), None, id="domain-null"),
    pytest.param(("tenant", "verifiedDomains", 1), "contoso.com", id="domain-string"),
    pytest.param(("subscribedSkus", 0, "servicePlans"), -1, id="servicePlans-int"),
    pytest.param(("subscribedSkus", 0, "prepaidUnits", "enabled"), "x", id="enabled-string"),
    pytest.param(("subscribedSkus", 0, "prepaidUnits", "enabled"), [None], id="enabled-list"),
    pytest.param(("groups",), -1, id="groups-int"),
]


@pytest.mark.parametrize(("path", "value"), STATE_BUGS)
def test_state_file_bad_shapes_are_refused_naming_the_file(path: tuple[Any, ...], value: Any) -> None:
    target = _write("state-bug.json", mutate(STATE, path, value, False))
    with pytest.raises(StateError) as caught:
        TenantState.load(target)
    assert str(target) in str(caught.value)
