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
    assert rc == 1 and out == ""
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
