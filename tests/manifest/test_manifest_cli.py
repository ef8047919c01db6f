"""`provision validate`, `schema` and `catalog`: exit codes, stdout/stderr split, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from manifest.helpers import write
from provisioner.cli import main
from provisioner.manifest import json_schema_text

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


def test_validate_ok_exits_0_with_a_summary_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(MANIFESTS)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("ok: ") and err.rstrip().endswith(" users in 7 files")


def test_validate_bad_exits_1_with_every_problem_and_no_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    usageLocation: UK\n  - upn: b@contoso.com\n    callingPlan: domestik\n")
    assert main(["validate", str(f)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    assert err.splitlines() == [
        f"error: {f}:5: usageLocation 'UK' is not an ISO 3166-1 alpha-2 country code — did you mean 'GB'? Use ISO 3166-1 alpha-2 codes",
        f"{f}:7: unknown callingPlan 'domestik' — did you mean 'domestic'? (use one of none, domestic, domestic-120, "
        "domestic-240, international, payg or sku:<skuPartNumber>)",
        "2 errors in manifests; nothing was changed. Fix them and run the command again.",
    ]


def test_validate_with_a_catalog_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    usageLocation: HR\n    callingPlan: payg\n")
    override = tmp_path / "catalog.json"
    override.write_text(json.dumps({"plans": {"payg": [{"zone": "zone2", "addCountries": ["HR"]}]}}))
    assert main(["validate", str(f)]) == 1
    assert main(["validate", str(f), "--catalog", str(override)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("plans:\n  payg:\n    - zone: zone2\n      addCountries: [XX]\n")
    capsys.readouterr()
    assert main(["validate", str(f), "--catalog", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:4: 'XX' is not an ISO 3166 alpha-2 country code" in err and "Traceback" not in err


def test_validate_a_missing_path_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope'}: no such file or folder — check the path\n1 error in manifests; nothing was changed. Fix them and run the command again.\n"


def test_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    assert out == json_schema_text()
    assert json.loads(out)["title"] == "TeamsVoiceLicensing manifest"


def test_catalog_text_is_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["PLAN", "ZONE", "SKU", "PART", "NUMBERS", "MINUTES/USER", "POOLED", "COUNTRIES"]
    payg = [line.split()[:2] for line in lines if line.startswith("payg")]
    assert payg == [["payg", "zone1-us"], ["payg", "zone1"], ["payg", "zone2"], ["payg", "mexico"]]
    assert any(line.startswith("Communications Credits: MCOPSTNC, MCOPSTNPP") for line in lines)


def test_catalog_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    zone2 = next(o for o in data["plans"]["payg"] if o["zone"] == "zone2")
    assert "HK" in zone2["countries"] and "HR" not in zone2["countries"]
    assert data["plans"]["domestic"][0]["minutes"]["US"] == 3000
    assert data["communicationsCredits"] == ["MCOPSTNC", "MCOPSTNPP"]


def test_catalog_with_a_bad_override_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("plans:\n  domestic:\n    - zone: null\n      pooled: maybe\n")
    assert main(["catalog", "--catalog", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}:4: pooled must be true or false")
    assert "Traceback" not in err


def test_validating_does_not_import_pydantic() -> None:
    """pydantic costs ~80 ms to import and is needed only for the schema: keep it off the validate path."""
    import subprocess
    import sys

    code = (
        "import sys; from provisioner.manifest import load_desired; "
        f"load_desired([{str(MANIFESTS)!r}]); print('pydantic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
