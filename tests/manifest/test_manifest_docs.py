"""The examples in docs/manifest.md are valid: the plan examples validate, the override example loads."""

from __future__ import annotations

import re
from pathlib import Path

from provisioner.catalog import load_catalog
from provisioner.manifest import load_desired

DOC = Path(__file__).resolve().parents[2] / "docs" / "manifest.md"
HEAD = "apiVersion: provisioner/v1\nkind: TeamsVoiceLicensing\n"


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_example_of_each_plan_validates(tmp_path: Path) -> None:
    block = next(b for b in _yaml_blocks() if "One example" not in b and "leaver@contoso.com" in b)
    f = tmp_path / "m.yaml"
    f.write_text(HEAD + block)
    users = {u.upn.split("@")[0]: u.calling_plan for u in load_desired([f]).users}
    assert set(users.values()) == {"domestic", "domestic-120", "domestic-240", "international", "payg", "sku:MCOPSTN1", "none"}


def test_the_null_example_validates(tmp_path: Path) -> None:
    block = next(b for b in _yaml_blocks() if "callingPlan: null" in b)
    f = tmp_path / "m.yaml"
    f.write_text(HEAD + block)
    a, b = load_desired([f]).users
    assert (a.calling_plan, b.calling_plan) == ("domestic", None)


def test_the_override_example_loads(tmp_path: Path) -> None:
    block = next(b for b in _yaml_blocks() if b.startswith("plans:"))
    f = tmp_path / "override.yaml"
    f.write_text(block)
    cat = load_catalog(f)
    assert cat.offer_for("payg", "HR") is not None and cat.offer_for("payg", "MX") is None
    assert cat.offer_for("domestic", "MX").minutes_for("MX") == 1000  # type: ignore[union-attr]
