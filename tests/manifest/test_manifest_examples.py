"""The example manifests in manifests/: valid, commented, pointing at the schema, and about the demo tenant."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.emulator.demo import demo_state
from provisioner.manifest import load_desired

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


def test_example_manifests_validate() -> None:
    desired = load_desired([MANIFESTS])
    assert len(desired.files) >= 5
    assert desired.tenant == "contoso.onmicrosoft.com"
    assert desired.policy.unlisted == "ignore"


def test_every_example_names_the_schema_and_teaches_with_comments() -> None:
    for f in sorted(MANIFESTS.glob("*.yaml")):
        text = f.read_text(encoding="utf-8")
        assert text.startswith("# yaml-language-server: $schema=./schema.json\n"), f
        assert sum(line.lstrip().startswith("#") for line in text.splitlines()) >= 3, f


def test_every_declared_user_exists_in_the_demo_tenant() -> None:
    state = demo_state()
    upns = {u["userPrincipalName"].lower() for u in state["users"]}
    desired = load_desired([MANIFESTS])
    missing = [u.upn for u in desired.users if u.key not in upns]
    assert missing == []
    assert state["tenant"]["verifiedDomains"][0]["name"] == desired.tenant


def test_examples_cover_every_kind_of_user() -> None:
    users = {u.upn.split("@")[0]: u for u in load_desired([MANIFESTS]).users}
    assert users["dave.us"].calling_plan == "domestic"          # new Domestic user
    assert (users["isla.gb"].calling_plan, users["isla.gb"].communications_credits) == ("payg", True)
    assert (users["felix.de"].phone_system, users["felix.de"].calling_plan) == (True, "none")  # Direct Routing
    assert users["mia.de"].calling_plan == "international"      # Domestic -> International swap
    assert (users["leaver.us"].phone_system, users["leaver.us"].calling_plan) == (False, "none")
    plans = {u.calling_plan for u in users.values()}
    assert {"domestic", "domestic-120", "domestic-240", "international", "payg", "none"} <= plans


def test_every_example_passes_the_schema_model() -> None:
    from provisioner.manifest.model import ManifestModel
    from provisioner.manifest.safeyaml import load

    for f in sorted(MANIFESTS.glob("*.yaml")):
        raw, _ = load(f)
        ManifestModel.model_validate(raw)  # raises on any schema violation


def test_the_readme_first_command_plans_a_handful_of_meaningful_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`provision plan manifests/ --tenant emulator:demo-tenant.json`: the example manifests against the demo
    tenant give exactly the five changes they were written for, and no error diagnostics."""
    import json

    from provisioner.cli import main

    code = main(["plan", str(MANIFESTS), "--tenant", f"emulator:{tmp_path / 'demo.json'}", "--format", "json"])
    plan = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [d for d in plan["diagnostics"] if d["severity"] == "error"] == []
    changes = {a["user"]["upn"]: a for a in plan["actions"]}
    assert sorted(changes) == [
        "dave.us@contoso.com", "felix.de@contoso.com", "isla.gb@contoso.com", "leaver.us@contoso.com", "mia.de@contoso.com",
    ]

    def parts(upn: str, key: str) -> list[str]:
        return sorted(x["skuPartNumber"] for x in changes[upn][key])

    assert parts("dave.us@contoso.com", "add") == ["MCOEV", "MCOPSTN1"]  # new Domestic user
    assert parts("felix.de@contoso.com", "add") == ["MCOEV"]  # Direct Routing: Phone System only
    assert parts("isla.gb@contoso.com", "add") == [
        "MCOPSTNC", "Microsoft_Teams_Calling_Plan_pay_as_you_go_(country_zone_1)",
    ]  # GB PAYG with credits
    assert (parts("mia.de@contoso.com", "add"), parts("mia.de@contoso.com", "remove")) == (["MCOPSTN2"], ["MCOPSTN1"])
    assert parts("leaver.us@contoso.com", "remove") == ["MCOEV", "MCOPSTN1"]
