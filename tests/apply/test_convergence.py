"""Convergence: for every planner scenario without error diagnostics, apply it to an emulated tenant through
the CLI, then plan again: the second plan must have no changes ("format twice, nothing changes").

Scenarios whose golden plan has error diagnostics are refused by apply; test_apply_emulator.py proves that.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from provisioner.cli import main

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def golden(scenario: Path) -> dict:
    return dict(json.loads((scenario / "expected.json").read_text()))


def scenario_dirs() -> list[Path]:
    """Every scenario folder (manifests, tenant, golden plan) whose golden plan has no error diagnostic."""
    if not SCENARIOS.is_dir():
        return []
    return sorted(
        d
        for d in SCENARIOS.iterdir()
        if (d / "manifests").is_dir()
        and (d / "tenant.json").is_file()
        and (d / "expected.json").is_file()
        and not any(x["severity"] == "error" for x in golden(d)["diagnostics"])
    )


def plan_json(manifests: Path, tenant: str, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    rc = main(["plan", str(manifests), "--tenant", tenant, "--format", "json"])
    out, err = capsys.readouterr()
    assert rc in (0, 1), err
    doc = json.loads(out) if out.strip() else {}
    if rc == 1 and not doc:
        pytest.fail(f"plan failed: {err}")
    return doc


@pytest.mark.parametrize("scenario", scenario_dirs(), ids=lambda d: d.name)
def test_apply_then_plan_again_has_no_changes(scenario: Path, tmp_path: Path, capsys) -> None:
    state = tmp_path / "tenant.json"
    shutil.copyfile(scenario / "tenant.json", state)
    tenant = f"emulator:{state}"
    manifests = scenario / "manifests"
    first = golden(scenario)
    rc = main(["apply", str(manifests), "--tenant", tenant, "--auto-approve", "--allow-removals"])
    out, err = capsys.readouterr()
    assert rc == 0, f"apply failed:\n{out}\n{err}"
    if first["actions"]:
        assert f"{len(first['actions'])} change" in out and "0 failed" in out
    else:
        assert "No changes" in err
    second = plan_json(manifests, tenant, capsys)
    left = [f"{a['user']['upn']} {a['type']}" for a in second["actions"]]
    assert second["hasChanges"] is False and left == [], f"not converged; still to do: {left}"
    assert not [d for d in second["diagnostics"] if d["severity"] == "error"]


def test_there_are_scenarios_to_converge() -> None:
    """Guards the parametrisation: an empty scenario folder would make the convergence test vacuous."""
    if not SCENARIOS.is_dir():
        pytest.skip("tests/scenarios/ is not there yet (the planner's scenario folders)")
    assert len(scenario_dirs()) >= 10
