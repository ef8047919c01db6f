"""The local runner's expression rules match GitHub's where the workflows rely on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from .gha_runner import RunnerError, condition, evaluate, interpolate, parse_kv_file

CTX = {
    "steps": {"plan": {"outputs": {"exitcode": "2", "plan-json": "", "output": ".provision/plan.md"}}},
    "needs": {"plan": {"outputs": {"has-changes": "true"}}},
    "github": {"event": {"pull_request": {"number": 7}}},
    "env": {"MANIFESTS": "manifests"},
    "vars": {},
}


def test_values_and_operators() -> None:
    assert evaluate("steps.plan.outputs.exitcode == '2'", CTX) is True
    assert evaluate("steps.plan.outputs.plan-json != ''", CTX) is False
    assert evaluate("github.event.pull_request.number", CTX) == 7
    assert evaluate("vars.MISSING || 'default'", CTX) == "default"  # missing properties are null
    assert (
        evaluate("needs.plan.outputs.has-changes == 'TRUE'", CTX) is True
    )  # strings compare case-insensitively
    assert evaluate("!(env.MANIFESTS == 'manifests') && true", CTX) is False
    assert interpolate("group-${{ github.event.pull_request.number }}-${{ vars.X }}", CTX) == "group-7-"


def test_conditions_imply_success_unless_a_status_function_is_used() -> None:
    assert condition(None, CTX, "success") and not condition(None, CTX, "failure")
    assert not condition("steps.plan.outputs.output != ''", CTX, "failure")
    assert condition("always() && steps.plan.outputs.output != ''", CTX, "failure")
    assert condition("${{ failure() }}", CTX, "failure")


def test_unknown_things_fail_loudly() -> None:
    with pytest.raises(RunnerError, match="unknown context 'matrixx'"):
        evaluate("matrixx.os", CTX)
    with pytest.raises(RunnerError, match=r"hashFiles\(\) is not supported"):
        evaluate("hashFiles()", CTX)


def test_output_files_with_heredocs(tmp_path: Path) -> None:
    f = tmp_path / "out"
    f.write_text("a=1\nbody<<EOF_x\nline 1\nline=2\nEOF_x\nb=\n")
    assert parse_kv_file(f) == {"a": "1", "body": "line 1\nline=2", "b": ""}
