"""Golden scenarios: manifests + emulator state -> the plan rendered as text, markdown and JSON.

The path under test is the real one: load_desired -> provisioner.graph.connect("emulator:COPY") (msgraph-sdk
against the in-process emulator) -> plan -> render; and `provision plan` itself must print the same bytes and
exit with the contract's code. Regenerate with `UPDATE_GOLDEN=1 pytest tests/scenarios`, then read the diff.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
from pathlib import Path

import pytest

from provisioner.catalog import load_catalog
from provisioner.cli import main
from provisioner.manifest import load_desired
from provisioner.model.plan import Plan
from provisioner.planner import managed_sku_ids, plan
from provisioner.render import MARKDOWN_LIMIT, render

HERE = Path(__file__).resolve().parent
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
FORMATS = {"text": "expected.txt", "markdown": "expected.md", "json": "expected.json"}


def scenarios() -> list[Path]:
    return sorted(d for d in HERE.iterdir() if (d / "manifests").is_dir() and (d / "tenant.json").is_file())


def plan_of(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Plan:
    from provisioner.graph import connect
    from provisioner.pipeline import group_names

    state = tmp_path / "tenant.json"
    shutil.copyfile(folder / "tenant.json", state)
    monkeypatch.chdir(folder)  # sources read "manifests/users.yaml:LINE" whatever the checkout path
    cat = load_catalog()
    desired = load_desired(["manifests"], catalog=cat)
    with connect(f"emulator:{state}") as conn:
        observed = conn.read(
            [u.upn for u in desired.users],
            managed_sku_ids=lambda skus: managed_sku_ids(skus, cat, desired),
            include_all_managed=True,
        )
        # group names as `provision plan` reads them (pipeline.group_names), so both paths print the same
        groups = group_names(conn, observed)
    return plan(desired, observed, cat, group_names=groups)


def compare(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"{path} is missing: run UPDATE_GOLDEN=1 pytest {HERE}"
    expected = path.read_text(encoding="utf-8")
    if actual != expected and path.suffix == ".json":
        # A JSON plan is compared as data: name each changed key path (e.g. root['actions'][2]['add']).
        from deepdiff import DeepDiff

        changes = DeepDiff(json.loads(expected), json.loads(actual), verbose_level=2).pretty()
        pytest.fail(
            f"{path.parent.name}/{path.name} differs from the golden (UPDATE_GOLDEN=1 to accept):\n"
            f"{changes or 'same data, different text (key order or formatting)'}"
        )
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), str(path), "actual")
        )
        pytest.fail(
            f"{path.parent.name}/{path.name} differs from the golden (UPDATE_GOLDEN=1 to accept):\n{diff}"
        )


@pytest.mark.parametrize("folder", scenarios(), ids=lambda d: d.name)
def test_scenario_matches_its_goldens(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = plan_of(folder, tmp_path, monkeypatch)
    for fmt, name in FORMATS.items():
        text = render(p, fmt)
        if fmt == "markdown":
            assert len(text) < MARKDOWN_LIMIT
        if fmt == "json":
            assert Plan.from_dict(json.loads(text)).to_dict() == p.to_dict()
        compare(folder / name, text)


@pytest.mark.parametrize("folder", scenarios(), ids=lambda d: d.name)
def test_provision_plan_prints_the_golden_and_exits_as_promised(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if UPDATE:
        pytest.skip("regenerating goldens")
    state = tmp_path / "tenant.json"
    shutil.copyfile(folder / "tenant.json", state)
    monkeypatch.chdir(folder)
    monkeypatch.delenv("PROVISION_TENANT", raising=False)
    golden = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    want = (
        1 if any(d["severity"] == "error" for d in golden["diagnostics"]) else (2 if golden["actions"] else 0)
    )
    out_file = tmp_path / "plan.json"
    rc = main(["plan", "manifests", "--tenant", f"emulator:{state}", "--format", "json", "--detailed-exitcode",
               "--out", str(out_file)])  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == want, err
    assert out == (folder / "expected.json").read_text(encoding="utf-8")
    assert json.loads(out_file.read_text(encoding="utf-8")) == golden
    assert "Traceback" not in err
    assert main(["plan", "manifests", "--tenant", f"emulator:{state}"]) == (1 if want == 1 else 0)
    out, _ = capsys.readouterr()
    assert out == (folder / "expected.txt").read_text(encoding="utf-8")  # no colour when not a terminal


def test_there_is_a_scenario_for_every_promised_diagnostic() -> None:
    seen = set()
    for folder in scenarios():
        doc = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
        seen |= {d["code"] for d in doc["diagnostics"]}
    promised = {
        "user-not-found",
        "usage-location-required",
        "plan-not-available-in-country",
        "sku-not-in-tenant",
        "insufficient-seats",
        "subscription-not-active",
        "inherited-license",
        "payg-unfunded",
        "tenant-mismatch",
        "removal-limit",
    }  # fmt: skip  (duplicate-user is the manifest loader's: a ManifestError, never a plan)
    assert promised <= seen, sorted(promised - seen)
