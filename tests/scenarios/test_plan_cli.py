"""`provision plan` behaviours beyond the goldens: the missing-tenant message, stdout/stderr split, --out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from provisioner.cli import main

HERE = Path(__file__).resolve().parent


def test_without_a_tenant_it_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PROVISION_TENANT", raising=False)
    rc = main(["plan", str(HERE / "new-hire" / "manifests")])
    out, err = capsys.readouterr()
    assert rc == 64 and out == ""  # a missing argument: a usage error (CONTRACT §1)
    assert err.startswith("error: no tenant given")
    assert "--tenant emulator:PATH" in err and "PROVISION_TENANT" in err and "Traceback" not in err


def test_tenant_from_the_environment_and_progress_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "t.json"
    shutil.copyfile(HERE / "new-hire" / "tenant.json", state)
    monkeypatch.setenv("PROVISION_TENANT", f"emulator:{state}")
    rc = main(["plan", str(HERE / "new-hire" / "manifests"), "--format", "markdown", "--detailed-exitcode"])
    out, err = capsys.readouterr()
    assert rc == 2
    assert out.startswith("## Teams licensing plan: Contoso") and "read 1 user from 1 manifest" in err
    assert "read 1 user" not in out


def test_out_saves_what_apply_needs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "t.json"
    shutil.copyfile(HERE / "seat-order" / "tenant.json", state)
    plan_file = tmp_path / "plans" / "plan.json"
    rc = main(
        [
            "plan",
            str(HERE / "seat-order" / "manifests"),
            "--tenant",
            f"emulator:{state}",
            "--out",
            str(plan_file),
        ]
    )
    _, err = capsys.readouterr()
    assert rc == 0 and f"saved the plan to {plan_file}" in err
    doc = json.loads(plan_file.read_text(encoding="utf-8"))
    assert doc["formatVersion"] == 1 and [a["id"] for a in doc["actions"]] == ["a001", "a002"]
    pre = doc["preconditions"]
    assert [u["upn"] for u in pre["users"]] == ["amy.in@contoso.com", "zed.out@contoso.com"]
    assert pre["seats"] == []  # Amy's seat is freed by Zed's removal, not taken from the free ones
    assert doc["policy"] == {"maxRemovals": 10}


HEAD = "apiVersion: provisioner/v1\nkind: TeamsVoiceLicensing\nusers:\n"


def _codes(doc: dict[str, object]) -> list[tuple[str, str, str | None, str | None]]:
    return [(d["severity"], d["code"], d["upn"], d["source"]) for d in doc["diagnostics"]]  # type: ignore[index, union-attr]


def test_manifest_problems_with_a_code_are_plan_diagnostics_and_validate_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # CONTRACT §3 promises duplicate-user, plan-not-available-in-country and payg-unfunded as diagnostic codes:
    # `plan --format json` carries them (exit 1: error diagnostics); `validate` still fails on them.
    state = tmp_path / "t.json"
    shutil.copyfile(HERE / "demo" / "tenant.json", state)
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(HEAD + "  - upn: mia.de@contoso.com\n    usageLocation: DE\n    callingPlan: none\n"
                 "  - upn: emma.ca@contoso.com\n    usageLocation: JP\n    callingPlan: domestic\n"
                 "  - upn: harry.gb@contoso.com\n    usageLocation: GB\n    callingPlan: payg\n"
                 "    communicationsCredits: false\n")
    b.write_text(HEAD + "  - upn: MIA.DE@contoso.com\n    callingPlan: international\n")
    before = state.read_bytes()
    rc = main(["plan", str(a), str(b), "--tenant", f"emulator:{state}", "--format", "json"])
    out, err = capsys.readouterr()
    assert rc == 1
    doc = json.loads(out)
    assert _codes(doc) == [
        ("error", "duplicate-user", "MIA.DE@contoso.com", f"{b}:4"),
        ("error", "payg-unfunded", "harry.gb@contoso.com", f"{a}:10"),
        ("error", "plan-not-available-in-country", "emma.ca@contoso.com", f"{a}:7"),
    ]
    dup = doc["diagnostics"][0]["message"]
    assert f"declared twice: here and at {a}:4" in dup and "the plan uses the first entry" in dup
    # the first entry is the one planned: mia keeps no Calling Plan rather than getting International
    mia = next(u for u in doc["users"] if u["upn"] == "mia.de@contoso.com")
    assert mia["after"]["licenses"] and not any("MCOPSTN2" in x for x in mia["after"]["licenses"])
    assert f"error: {b}:4: duplicate-user: MIA.DE@contoso.com is declared twice: here and at {a}:4" in err
    assert "error: the plan has 3 error diagnostics" in err
    # apply refuses such a plan and changes nothing
    assert main(["apply", str(a), str(b), "--tenant", f"emulator:{state}", "--auto-approve"]) == 1
    capsys.readouterr()
    assert state.read_bytes() == before
    # validate: the same three, as manifest errors with FILE:LINE
    assert main(["validate", str(a), str(b)]) == 1
    err = capsys.readouterr().err
    assert f"{b}:4: duplicate-user: MIA.DE@contoso.com is declared twice: here and at {a}:4" in err
    assert f"{a}:9: callingPlan 'domestic' is not sold in JP" in err  # the line of the field to change
    assert f"{a}:13: callingPlan 'payg' with communicationsCredits: false" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import tomllib

    version = tomllib.loads((HERE.parents[1] / "pyproject.toml").read_text())["project"]["version"]
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"provision {version}\n"


def test_a_saved_plan_with_errors_is_not_offered_for_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "t.json"
    state.write_bytes((HERE / "user-not-found" / "tenant.json").read_bytes())
    out = tmp_path / "e.json"
    assert main(["plan", str(HERE / "user-not-found" / "manifests"), "--tenant", f"emulator:{state}", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert out.is_file() and "cannot be applied until they are fixed" in err and "apply it with" not in err
