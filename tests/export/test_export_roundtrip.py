"""Round trip through the real CLI against the emulator: export, validate, plan -> no changes.

Runs for the demo tenant, synthetic tenants, a tenant with the states the format cannot say exactly, and
every scenario tenant under tests/scenarios/*/tenant.json. Export and plan never change the state file.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.cli import main
from provisioner.emulator.demo import PLANS, SKUS, demo_state, synthetic_state

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(REPO.glob("tests/scenarios/*/tenant.json"))
PAYG_US = "Microsoft_Teams_Calling_Plan_pay_as_you_go_(country_zone_1_US)"


def roundtrip(state: Path, tmp_path: Path, split: bool) -> tuple[dict[str, Any], Path]:
    """Export `state` (one file, or one per country), check it validates and plans to no changes."""
    before = state.read_bytes()
    out = tmp_path / ("manifests" if split else "manifests/tenant.yaml")
    args = ["export", "--tenant", f"emulator:{state}", "--out", str(out)]
    assert main([*args, "--split-by", "country"] if split else args) == 0
    folder = out if split else out.parent
    assert main(["validate", str(folder)]) == 0
    plan_file = tmp_path / "plan.json"
    code = main(
        [
            "plan",
            str(folder),
            "--tenant",
            f"emulator:{state}",
            "--format",
            "json",
            "--out",
            str(plan_file),
            "--detailed-exitcode",
        ]
    )
    plan = json.loads(plan_file.read_text())
    assert state.read_bytes() == before, "export/plan must not write the tenant"
    assert [d for d in plan["diagnostics"] if d["severity"] == "error"] == []
    assert plan["actions"] == [] and plan["hasChanges"] is False
    assert code == 0
    return plan, folder


def write(tmp_path: Path, state: dict[str, Any]) -> Path:
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(state, indent=1))
    return path


def test_demo_tenant_round_trip_single_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = write(tmp_path, demo_state())
    _, folder = roundtrip(state, tmp_path, split=False)
    text = (folder / "tenant.yaml").read_text()
    doc = yaml.safe_load(text)
    demo = demo_state()
    assert doc["tenant"] == demo["tenant"]["id"] and doc["defaults"] == {"usageLocation": "US"}
    upns = [u["upn"] for u in doc["users"]]
    assert upns == sorted(upns, key=str.lower) and "alice.us@contoso.com" in upns
    # E5-only and unlicensed users are not managed: not exported; group-only users are comments, not entries.
    assert "pat.us@contoso.com" not in text and "dave.us@contoso.com" not in text
    assert "quinn.us@contoso.com" not in upns and "#   quinn.us@contoso.com [US]: MCOEV from group" in text
    # stdout without --out is the same text
    capsys.readouterr()
    assert main(["export", "--tenant", f"emulator:{state}"]) == 0
    captured = capsys.readouterr()
    assert captured.out == text
    assert "exported 21 users holding managed licenses directly (3 more only through groups" in captured.err


def test_demo_tenant_round_trip_split_by_country(tmp_path: Path) -> None:
    _, folder = roundtrip(write(tmp_path, demo_state()), tmp_path, split=True)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["ca.yaml", "de.yaml", "fr.yaml", "gb.yaml", "mx.yaml", "nl.yaml", "us.yaml"]
    gb = yaml.safe_load((folder / "gb.yaml").read_text())
    assert gb["defaults"] == {"usageLocation": "GB"}
    assert all("usageLocation" not in u for u in gb["users"])


@pytest.mark.parametrize("seed", [1, 7])
def test_synthetic_tenant_round_trip(tmp_path: Path, seed: int) -> None:
    state = synthetic_state(400, seed)
    _, folder = roundtrip(write(tmp_path, state), tmp_path, split=True)
    exported = sorted(u["upn"] for p in folder.glob("*.yaml") for u in yaml.safe_load(p.read_text())["users"])
    managed = {SKUS[p][0] for p in SKUS if p not in ("ENTERPRISEPACK", "SPE_E5")}
    expected = sorted(
        u["userPrincipalName"]
        for u in state["users"]
        if {lic["skuId"] for lic in u["assignedLicenses"]} & managed
    )
    assert exported == expected and len(expected) > 100


LEGACY_M5 = "54a152dc-90de-4996-93d2-bc47e670fc06"  # MCOPSTN5, the legacy 120-minute plan (reference §1.2)


def _tricky_state() -> dict[str, Any]:
    """The demo tenant plus users the manifest format cannot describe one-to-one."""
    state = copy.deepcopy(demo_state())

    def lic(part: str) -> dict[str, Any]:
        if part == "SPE_E5-MCOEV":
            return {"skuId": SKUS["SPE_E5"][0], "disabledPlans": [PLANS["MCOEV"]]}
        return {"skuId": LEGACY_M5 if part == "MCOPSTN5" else SKUS[part][0], "disabledPlans": []}

    legacy = copy.deepcopy(next(s for s in state["subscribedSkus"] if s["skuPartNumber"] == "MCOPSTN_5"))
    legacy.update(skuId=LEGACY_M5, skuPartNumber="MCOPSTN5")
    state["subscribedSkus"].append(legacy)
    extra = [
        ("gb.payg.us@contoso.com", "GB", ["MCOEV", PAYG_US, "MCOPSTNC"]),  # the US PAYG SKU in GB
        ("us.unfunded@contoso.com", "US", ["MCOEV", PAYG_US]),  # payg without credits (others have them)
        ("two.plans@contoso.com", "US", ["MCOEV", "MCOPSTN1", "MCOPSTN2"]),  # two Calling Plans
        ("nora@contoso.com", "NO", ["MCOEV", "MCOPSTN1"]),  # Norway: 'NO' must stay a string
        ("legacy.gb@contoso.com", "GB", ["MCOEV", "MCOPSTN5"]),  # legacy SKU beside MCOPSTN_5: pinned
        ("no.location@contoso.com", None, ["MCOEV"]),  # Phone System without a usage location
        ("e5.and.addon@contoso.com", "US", ["SPE_E5", "MCOEV"]),  # a redundant add-on stays as it is
        ("e5.addon.plan@contoso.com", "US", ["SPE_E5", "MCOEV", "MCOPSTN1"]),
        ("credits.only@contoso.com", "US", ["MCOPSTNC"]),  # credits without any plan
        ("plan.no.phone@contoso.com", "US", ["MCOPSTN1"]),  # a Calling Plan without Phone System
        ("e5.phone.off@contoso.com", "US", ["SPE_E5-MCOEV", "MCOPSTN1"]),  # E5 with Phone System switched off
    ]
    for upn, loc, parts in extra:
        state["users"].append(
            {
                "id": f"00000000-0000-4000-8000-{len(state['users']):012d}",
                "userPrincipalName": upn,
                "displayName": upn,
                "accountEnabled": True,
                "usageLocation": loc,
                "assignedLicenses": [lic(p) for p in parts],
            }
        )
    for sku in state["subscribedSkus"]:
        sku["prepaidUnits"]["enabled"] += 5
    assert PLANS["MCOPSTN5"] == LEGACY_M5  # the legacy SKU and its service plan share the GUID
    return state


@pytest.mark.parametrize("split", [False, True], ids=["single", "split"])
def test_tricky_tenant_round_trip(tmp_path: Path, split: bool) -> None:
    _, folder = roundtrip(write(tmp_path, _tricky_state()), tmp_path, split=split)
    text = "\n".join(p.read_text() for p in sorted(folder.glob("*.yaml")))
    users = {u["upn"]: u for p in folder.glob("*.yaml") for u in yaml.safe_load(p.read_text())["users"]}
    assert {k: v for k, v in users["gb.payg.us@contoso.com"].items() if k != "usageLocation"} == {
        "upn": "gb.payg.us@contoso.com",
        "phoneSystem": True,
        "communicationsCredits": True,
    }
    assert f"holds {PAYG_US}, which the catalog does not sell in GB" in text
    assert "callingPlan" not in users["us.unfunded@contoso.com"]
    assert "callingPlan" not in users["two.plans@contoso.com"]
    assert "holds several Calling Plans directly (MCOPSTN1, MCOPSTN2)" in text
    assert users["legacy.gb@contoso.com"]["callingPlan"] == "sku:MCOPSTN5"
    assert users["alice.gb@contoso.com"]["callingPlan"] == "sku:MCOPSTN_5"  # two SKUs offer domestic-120 now
    # No location: an explicit null where a default exists (single file), else simply omitted.
    assert users["no.location@contoso.com"].get("usageLocation", "omitted") == ("omitted" if split else None)
    assert {
        k: v for k, v in users["e5.and.addon@contoso.com"].items() if k in ("phoneSystem", "callingPlan")
    } == {"phoneSystem": True, "callingPlan": "none"}
    assert users["credits.only@contoso.com"]["communicationsCredits"] is True
    # a Calling Plan with no enabled Phone System cannot be declared as it is: left unmanaged, with a note
    for upn in ("plan.no.phone@contoso.com", "e5.phone.off@contoso.com"):
        assert "callingPlan" not in users[upn] and "phoneSystem" not in users[upn], users[upn]
    assert text.count("holds MCOPSTN1 without an enabled Phone System") == 2
    if split:
        assert yaml.safe_load((folder / "no.yaml").read_text())["defaults"] == {"usageLocation": "NO"}
        assert (folder / "no-usage-location.yaml").is_file()
    else:
        assert users["nora@contoso.com"]["usageLocation"] == "NO"
        assert yaml.safe_load(text)["defaults"] == {"usageLocation": "US"}


def test_post_usage_tenant_round_trip(tmp_path: Path) -> None:
    state = copy.deepcopy(demo_state())
    credits = SKUS["MCOPSTNC"][0]
    for u in state["users"]:
        u["assignedLicenses"] = [lic for lic in u["assignedLicenses"] if lic["skuId"] != credits]
    _, folder = roundtrip(write(tmp_path, state), tmp_path, split=False)
    doc = yaml.safe_load((folder / "tenant.yaml").read_text())
    assert doc["policy"]["paygFunding"] == "postUsage"
    assert {u["upn"]: u.get("callingPlan") for u in doc["users"]}["grace.us@contoso.com"] == "payg"


@pytest.mark.parametrize("tenant", SCENARIOS, ids=[p.parent.name for p in SCENARIOS])
def test_scenario_tenant_round_trip(tmp_path: Path, tenant: Path) -> None:
    state = tmp_path / "tenant.json"
    state.write_bytes(tenant.read_bytes())
    roundtrip(state, tmp_path, split=False)


def test_split_without_out_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = write(tmp_path, demo_state())
    assert main(["export", "--tenant", f"emulator:{state}", "--split-by", "country"]) == 64
    assert (
        "--split-by country writes one file per country: give the folder with --out DIR"
        in capsys.readouterr().err
    )


def test_split_warns_about_files_it_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = write(tmp_path, demo_state())
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "jp.yaml").write_text("old export\n")
    assert (
        main(["export", "--tenant", f"emulator:{state}", "--out", str(folder), "--split-by", "country"]) == 0
    )
    assert f"warning: {folder}/ also holds jp.yaml, not written by this export" in capsys.readouterr().err


@pytest.mark.slow
def test_export_over_http_matches_the_in_process_export(tmp_path: Path) -> None:
    """The same tenant read through the real msgraph-sdk over loopback (`emulator serve` + --graph-url)
    exports exactly what the in-process emulator does."""
    import subprocess
    import sys

    state = write(tmp_path, synthetic_state(1500, 3))  # more users than one page of the reader
    local = tmp_path / "local.yaml"
    assert main(["export", "--tenant", f"emulator:{state}", "--out", str(local)]) == 0
    server = subprocess.Popen(
        [sys.executable, "-m", "provisioner", "emulator", "serve", str(state), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line + (
            server.stderr.read() if server.stderr else ""
        )
        url = line.split("listening on ", 1)[1].strip()
        served = tmp_path / "served.yaml"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "provisioner",
                "export",
                "--graph-url",
                url,
                "--tenant",
                "contoso.onmicrosoft.com",
                "--out",
                str(served),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert served.read_text() == local.read_text()
    finally:
        server.terminate()
        server.wait(timeout=10)
