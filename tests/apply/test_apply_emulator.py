"""`provision apply` through the real pipeline (manifests, planner, Graph writer) on an in-process emulated tenant.

Saved plans: applied exactly, once; refused when stale, for each kind of change, naming what changed; refused
for another tenant. Guards on real plans: error diagnostics and the removal limit leave the tenant untouched.
No terminal: refused, untouched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from served import PROVISION

from provisioner.cli import main

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
DEMO = SCENARIOS / "demo"
MCOPSTN1 = "0dab259f-bf13-4952-b7f8-7db8f131b28d"
E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"

pytestmark = pytest.mark.skipif(not (DEMO / "tenant.json").is_file(), reason="needs tests/scenarios/demo")


def copy_tenant(tmp_path: Path, scenario: Path = DEMO) -> Path:
    state = tmp_path / "tenant.json"
    shutil.copyfile(scenario / "tenant.json", state)
    return state


def edit_state(state: Path, change: Callable[[dict[str, Any]], None]) -> None:
    doc = json.loads(state.read_text())
    change(doc)
    state.write_text(json.dumps(doc))


def user_named(doc: dict[str, Any], upn: str) -> dict[str, Any]:
    return next(u for u in doc["users"] if u["userPrincipalName"] == upn)


def save_plan(tmp_path: Path, state: Path, capsys: pytest.CaptureFixture[str], scenario: Path = DEMO) -> Path:
    out = tmp_path / "plan.json"
    rc = main(["plan", str(scenario / "manifests"), "--tenant", f"emulator:{state}", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    return out


def test_saved_plan_applies_exactly_once(tmp_path, capsys):
    state = copy_tenant(tmp_path)
    plan_file = save_plan(tmp_path, state, capsys)
    n = len(json.loads(plan_file.read_text())["actions"])
    audit = tmp_path / "audit.jsonl"
    rc = main(["apply", str(plan_file), "--tenant", f"emulator:{state}", "--audit-log", str(audit)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert f"{n} changes, {n} succeeded, 0 failed, 0 skipped" in out
    records = [json.loads(x) for x in audit.read_text().splitlines()]
    assert len(records) == n and {r["outcome"] for r in records} == {"succeeded"}
    assert all(r["requestId"] for r in records)  # Graph's request-id of each change, for the record
    sam = next(
        r
        for r in records
        if r["user"]["upn"] == "sam.new@contoso.com" and r["action"]["type"] == "setUsageLocation"
    )
    assert sam["before"] == {"usageLocation": None} and sam["after"] == {"usageLocation": "GB"}
    # The same plan again: the tenant moved on since it was made, so it is stale, and nothing is changed.
    before = state.read_bytes()
    rc = main(["apply", str(plan_file), "--tenant", f"emulator:{state}"])
    err = capsys.readouterr().err
    assert rc == 1 and "the saved plan is stale" in err and "sam.new@contoso.com" in err
    assert state.read_bytes() == before
    assert (
        main(["plan", str(DEMO / "manifests"), "--tenant", f"emulator:{state}", "--detailed-exitcode"]) == 0
    )


STALE_CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "usage-location": (
        lambda d: user_named(d, "mia.de@contoso.com").update(usageLocation="FR"),
        "user mia.de@contoso.com: usage location changed DE → FR since the plan was made",
    ),
    "direct-licenses": (
        lambda d: user_named(d, "harry.gb@contoso.com").update(assignedLicenses=[]),
        "user harry.gb@contoso.com: directly assigned licenses changed (−ENTERPRISEPACK)",
    ),
    # emma gets MCOPSTN1 on the strength of her E5's Phone System: switching that plan off changes the plan
    "disabled-plans": (
        lambda d: user_named(d, "emma.ca@contoso.com")["assignedLicenses"][0].update(
            disabledPlans=["4828c8ec-dc2e-4779-b502-87ac9ce28ab7"]
        ),
        "user emma.ca@contoso.com: service plans of directly assigned SPE_E5 changed (now disabled: MCOEV)",
    ),
    "group-licenses": (
        lambda d: d["groups"][0]["members"].append(user_named(d, "emma.ca@contoso.com")["id"]),
        "user emma.ca@contoso.com: licenses inherited from groups changed (+MCOEV, +MCOPSTN1)",
    ),
    "seats": (
        lambda d: next(s for s in d["subscribedSkus"] if s["skuId"] == MCOPSTN1)["prepaidUnits"].update(
            enabled=next(s for s in d["subscribedSkus"] if s["skuId"] == MCOPSTN1)["prepaidUnits"]["enabled"]
            - 1
        ),
        "SKU MCOPSTN1: 1 free seat, the plan needs 2",
    ),
    "tenant": (
        lambda d: d["tenant"].update(id="99999999-9999-9999-9999-999999999999", displayName="Fabrikam"),
        "but this is tenant Fabrikam (99999999-9999-9999-9999-999999999999)",
    ),
}


@pytest.mark.parametrize("case", sorted(STALE_CASES))
def test_stale_saved_plan_is_refused_before_any_change(case, tmp_path, capsys):
    change, expected = STALE_CASES[case]
    state = copy_tenant(tmp_path)
    plan_file = save_plan(tmp_path, state, capsys)
    edit_state(state, change)
    err = refused_unchanged(plan_file, state, capsys, expected)
    assert "Run `provision plan --out PLANFILE` again" in err and "Nothing was changed" in err


def refused_unchanged(plan_file: Path, state: Path, capsys: pytest.CaptureFixture[str], expected: str) -> str:
    """`apply PLANFILE` exits 1 naming `expected`, prints nothing on stdout, and leaves the tenant as it was."""
    before = state.read_bytes()
    rc = main(["apply", str(plan_file), "--tenant", f"emulator:{state}"])
    out, err = capsys.readouterr()
    assert rc == 1 and out == "" and "Traceback" not in err
    assert expected in err, err
    assert state.read_bytes() == before
    return err


def error_scenarios() -> list[Path]:
    out = []
    for d in sorted(SCENARIOS.glob("*/expected.json")):
        if any(x["severity"] == "error" for x in json.loads(d.read_text())["diagnostics"]):
            out.append(d.parent)
    return out


@pytest.mark.parametrize("scenario", error_scenarios(), ids=lambda d: d.name)
def test_plans_with_error_diagnostics_never_apply(scenario, tmp_path, capsys):
    state = copy_tenant(tmp_path, scenario)
    before = state.read_bytes()
    rc = main(
        [
            "apply",
            str(scenario / "manifests"),
            "--tenant",
            f"emulator:{state}",
            "--auto-approve",
            "--allow-removals",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "plans with error diagnostics never apply" in err
    codes = {
        x["code"]
        for x in json.loads((scenario / "expected.json").read_text())["diagnostics"]
        if x["severity"] == "error"
    }
    assert all(c in err for c in codes), (codes, err)
    assert state.read_bytes() == before


def test_removal_limit_on_a_real_plan(tmp_path, capsys):
    scenario = SCENARIOS / "removal-limit"
    doc = json.loads((scenario / "expected.json").read_text())
    removals = doc["summary"]["licensesRemoved"]
    assert removals > doc["policy"]["maxRemovals"]
    state = copy_tenant(tmp_path, scenario)
    before = state.read_bytes()
    rc = main(["apply", str(scenario / "manifests"), "--tenant", f"emulator:{state}", "--auto-approve"])
    err = capsys.readouterr().err
    assert rc == 1 and f"removes {removals} license assignments" in err and "--allow-removals" in err
    assert state.read_bytes() == before
    rc = main(
        [
            "apply",
            str(scenario / "manifests"),
            "--tenant",
            f"emulator:{state}",
            "--auto-approve",
            "--allow-removals",
        ]
    )
    assert rc == 0, capsys.readouterr().err


def test_without_a_terminal_apply_refuses_and_changes_nothing(tmp_path):
    state = copy_tenant(tmp_path)
    before = state.read_bytes()
    r = subprocess.run(
        [*PROVISION, "apply", str(DEMO / "manifests"), "--tenant", f"emulator:{state}"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 1
    assert "refusing to apply 7 changes to Contoso without confirmation" in r.stderr
    assert "--auto-approve" in r.stderr and "Traceback" not in r.stderr
    assert "sam.new@contoso.com" in r.stdout  # the plan was shown on stdout before refusing
    assert state.read_bytes() == before


def test_a_refused_change_fails_only_itself_and_its_dependents(tmp_path, capsys):
    """Through the real writer: Graph refuses one change (400); the change depending on it is skipped, never
    sent; the other users' changes go through; the summary names the failure with Graph's answer."""
    from provisioner.model.plan import Action, LicenseRef, Plan

    state = copy_tenant(tmp_path)
    doc = json.loads(state.read_text())
    sam, robin, kim = (user_named(doc, f"{n}@contoso.com") for n in ("sam.new", "robin.new", "kim.us"))
    ev = LicenseRef("e43b5b99-8dfb-405f-9987-dc307f34bcbd", "MCOEV")
    plan = Plan(
        tenant_id=doc["tenant"]["id"],
        tenant_name=doc["tenant"]["displayName"],
        fingerprint="hand-made",
        actions=(
            Action("a1", "setUsageLocation", sam["id"], sam["userPrincipalName"], None, "XX"),
            Action(
                "a2", "assignLicenses", sam["id"], sam["userPrincipalName"], add=(ev,), depends_on=("a1",)
            ),
            Action("a3", "setUsageLocation", robin["id"], robin["userPrincipalName"], None, "GB"),
            Action("a4", "assignLicenses", kim["id"], kim["userPrincipalName"], add=(ev,)),
        ),
    )
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan.to_dict()))
    audit = tmp_path / "audit.jsonl"
    rc = main(["apply", str(plan_file), "--tenant", f"emulator:{state}", "--audit-log", str(audit)])
    out, err = capsys.readouterr()
    assert rc == 1 and "error: 1 failed and 1 skipped of 4 changes on Contoso" in err
    assert "4 changes, 2 succeeded, 1 failed, 1 skipped" in out
    assert "  - sam.new@contoso.com: set usage location (none) → XX" in out
    assert "Graph: HTTP 400 " in out and "usageLocation" in out and "request-id: " in out
    assert "sam.new@contoso.com: assignLicenses +MCOEV" in out.split("Skipped because")[1]
    assert "what to do: Check usageLocation for sam.new@contoso.com in the manifest" in out
    after = {u["userPrincipalName"]: u for u in json.loads(state.read_text())["users"]}
    assert after["sam.new@contoso.com"]["usageLocation"] is None
    assert after["sam.new@contoso.com"]["assignedLicenses"] == []
    assert after["robin.new@contoso.com"]["usageLocation"] == "GB"
    assert ev.sku_id in {x["skuId"] for x in after["kim.us@contoso.com"]["assignedLicenses"]}
    records = {r["action"]["id"]: r for r in map(json.loads, audit.read_text().splitlines())}
    assert {k: r["outcome"] for k, r in records.items()} == {
        "a1": "failed", "a2": "skipped", "a3": "succeeded", "a4": "succeeded",
    }  # fmt: skip
    assert records["a1"]["httpStatus"] == 400 and records["a1"]["requestId"]
    # a failed or skipped change changed nothing: its record's `after` is what the user still has
    assert records["a1"]["after"] == records["a1"]["before"] and records["a2"]["after"] == records["a2"]["before"]
    assert records["a3"]["after"] == {"usageLocation": "GB"}


E5 = "06ebc4ee-1bb5-47dd-8120-11324bc54e06"
TAMPERED: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "removes-a-suite": (
        lambda d: next(a for a in d["actions"] if a["user"]["upn"] == "emma.ca@contoso.com")["remove"].append(
            {"skuId": E5, "skuPartNumber": "SPE_E5"}),
        "removes SPE_E5, a license this tool never manages",
    ),
    "adds-a-suite": (
        lambda d: next(a for a in d["actions"] if a["user"]["upn"] == "emma.ca@contoso.com")["add"].append(
            {"skuId": E3, "skuPartNumber": "ENTERPRISEPACK"}),
        "adds ENTERPRISEPACK, a license this tool never manages",
    ),
    "sku-id-swapped": (
        lambda d: next(r for a in d["actions"] for r in a.get("add", []) if r["skuPartNumber"] == "MCOEV").update(
            skuId=E3),
        f"SKU {E3} is ENTERPRISEPACK in the tenant, but the plan calls it MCOEV",
    ),
    "unknown-type": (lambda d: d["actions"][0].update(type="deleteUser"), "unknown type 'deleteUser'"),
    "unknown-dependency": (lambda d: d["actions"][-1].update(dependsOn=["a999"]), "dependsOn a999, which is no earlier"),
    "repeated-id": (lambda d: d["actions"][1].update(id=d["actions"][0]["id"]), "is used twice"),
    "repeated-dependency": (
        lambda d: next(a for a in d["actions"] if a["dependsOn"]).update(
            dependsOn=[next(a for a in d["actions"] if a["dependsOn"])["dependsOn"][0]] * 2),
        "dependsOn names an action twice",
    ),
    "location-to-nothing": (
        lambda d: next(a for a in d["actions"] if a["type"] == "setUsageLocation")["usageLocation"].update(to=None),
        "setUsageLocation to no usage location",
    ),
    "precondition-not-strings": (
        lambda d: d["preconditions"]["users"][0].update(inheritedSkuIds=[1]), "a value has the wrong type"
    ),
    "unchecked-user": (
        lambda d: d["actions"].append({**d["actions"][-1], "id": "a999", "dependsOn": [],
                                       "user": {"id": "ffffffff-0000-4000-8000-000000000000", "upn": "x@contoso.com"}}),
        "user x@contoso.com has no recorded preconditions",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_an_edited_saved_plan_is_refused_before_any_change(case, tmp_path, capsys):
    edit, expected = TAMPERED[case]
    state = copy_tenant(tmp_path)
    plan_file = save_plan(tmp_path, state, capsys)
    doc = json.loads(plan_file.read_text())
    edit(doc)
    plan_file.write_text(json.dumps(doc))
    err = refused_unchanged(plan_file, state, capsys, expected)
    # an edit, not a tenant change: it must not send the user looking for what changed in the tenant
    assert ("damaged or edited" in err or "damaged or incomplete" in err) and "stale" not in err


def test_a_cut_short_or_mistyped_saved_plan_is_named_as_such(tmp_path, capsys):
    state = copy_tenant(tmp_path)
    plan_file = save_plan(tmp_path, state, capsys)
    cut = tmp_path / "cut.json"
    cut.write_bytes(plan_file.read_bytes()[:700])
    before = state.read_bytes()
    assert main(["apply", str(cut), "--tenant", f"emulator:{state}"]) == 1
    err = capsys.readouterr().err
    assert "looks like a saved plan, but it is not valid JSON (line " in err and "YAML" not in err, err
    doc = json.loads(plan_file.read_text())
    doc["actions"][0]["add"] = "MCOEV"
    plan_file.write_text(json.dumps(doc))
    assert main(["apply", str(plan_file), "--tenant", f"emulator:{state}"]) == 1
    err = capsys.readouterr().err
    assert "damaged or incomplete (a value has the wrong type)" in err and "indices" not in err, err
    assert state.read_bytes() == before


MX_SKU = "5f0c6c1e-1c3a-4d6e-9a53-6a0f1f2b8c11"  # a Mexico Domestic plan: its part number is not in the catalog


def _mexico(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """The demo tenant plus a Mexico Domestic SKU that only a catalog override names; a manifest that names the
    override (`catalog:`) and gives one user that plan. Works in tmp_path (plans record the override's path
    relative to the working folder)."""
    monkeypatch.chdir(tmp_path)
    state = copy_tenant(tmp_path)
    edit_state(state, lambda d: d["subscribedSkus"].append({
        "skuId": MX_SKU, "skuPartNumber": "MCOPSTN_MX", "capabilityStatus": "Enabled",
        "prepaidUnits": {"enabled": 5, "suspended": 0, "warning": 0, "lockedOut": 0},
        "servicePlans": [{"servicePlanId": "0a0b0c0d-0000-4000-8000-000000000001", "servicePlanName": "MCOPSTN_MX"}],
    }))
    catalog = tmp_path / "mx.yaml"
    catalog.write_text("plans:\n  domestic:\n    - zone: mexico\n      partNumbers: [MCOPSTN_MX]\n")
    manifest = tmp_path / "mx-users.yaml"
    manifest.write_text("apiVersion: provisioner/v1\nkind: TeamsVoiceLicensing\ncatalog: mx.yaml\nusers:\n"
                        "  - upn: kim.us@contoso.com\n    usageLocation: MX\n    callingPlan: domestic\n")
    return state, catalog, manifest


def test_a_saved_plan_is_applied_with_the_catalog_override_it_was_made_with(tmp_path, capsys, monkeypatch):
    # The plan records the override (path and sha256), so `apply PLANFILE` judges managed licenses by the same
    # catalog: without it, MCOPSTN_MX read as "a license this tool never manages" and the plan was refused.
    state, _catalog, manifest = _mexico(tmp_path, monkeypatch)
    assert main(["plan", str(manifest), "--tenant", f"emulator:{state}", "--out", "plan.json"]) == 0
    doc = json.loads((tmp_path / "plan.json").read_text())
    assert doc["catalog"]["path"] == "mx.yaml" and len(doc["catalog"]["sha256"]) == 64
    assert any(r["skuPartNumber"] == "MCOPSTN_MX" for a in doc["actions"] for r in a.get("add", []))
    capsys.readouterr()
    assert main(["apply", "plan.json", "--tenant", f"emulator:{state}"]) == 0, capsys.readouterr().err
    kim = user_named(json.loads(state.read_text()), "kim.us@contoso.com")
    assert kim["usageLocation"] == "MX" and MX_SKU in {x["skuId"] for x in kim["assignedLicenses"]}


def test_a_saved_plan_whose_catalog_override_changed_or_is_missing_is_refused(tmp_path, capsys, monkeypatch):
    state, catalog, manifest = _mexico(tmp_path, monkeypatch)
    assert main(["plan", str(manifest), "--tenant", f"emulator:{state}", "--out", "plan.json"]) == 0
    plan_file = tmp_path / "plan.json"
    capsys.readouterr()
    original = catalog.read_text()
    catalog.write_text(original + "# edited after planning\n")
    err = refused_unchanged(plan_file, state, capsys, "the catalog override the plan was made with (mx.yaml, "
                                                      "sha256 ")
    assert "changed since: its sha256 is now " in err
    assert "pass --catalog with the file the plan was made with" in err
    # another file given with --catalog: refused too
    other = tmp_path / "other.yaml"
    other.write_text(original + "# another file\n")
    before = state.read_bytes()
    assert main(["apply", str(plan_file), "--tenant", f"emulator:{state}", "--catalog", str(other)]) == 1
    assert f"--catalog {other} is not the catalog override the plan was made with" in capsys.readouterr().err
    # run from another folder: the recorded relative path is not there; --catalog with the same bytes works
    catalog.write_text(original)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["apply", str(plan_file), "--tenant", f"emulator:{state}"]) == 1
    err = capsys.readouterr().err
    assert "the plan was made with the catalog override mx.yaml, which is not here" in err and "--catalog" in err
    assert state.read_bytes() == before
    assert main(["apply", str(plan_file), "--tenant", f"emulator:{state}", "--catalog", str(catalog)]) == 0


def test_plan_as_json_with_out_saves_exactly_what_it_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`plan --format json --out FILE` renders the plan once: the file holds what stdout shows."""
    state = copy_tenant(tmp_path)
    out = tmp_path / "plan.json"
    rc = main(["plan", str(DEMO / "manifests"), "--tenant", f"emulator:{state}", "--format", "json", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and json.loads(printed)["actions"]
    assert out.read_text(encoding="utf-8") == printed
