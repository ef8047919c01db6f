"""Workflow steps that run `provision`: plan (validate, then plan), check, and the composite action. Does I/O.

Each step runs the real CLI entry point (`provisioner.cli.main`, what `provision` runs) with the arguments a
user would type, and turns its exit code into step outputs. Contract exit codes: 0 no changes · 1 error · 2 changes · 64 usage error.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from provisioner.errors import ProvisionerError
from provisioner.gitops import actions_env as gha
from provisioner.gitops.body import truncate


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str


class _Tee(io.StringIO):
    """Keeps what is written and passes it on, so the job log shows progress live."""

    def __init__(self, passthrough: TextIO) -> None:
        super().__init__()
        self.passthrough = passthrough

    def write(self, text: str) -> int:
        self.passthrough.write(text)
        self.passthrough.flush()
        return super().write(text)


def provision(args: list[str], env: dict[str, str] | None = None) -> Ran:
    """Run `provision ARGS` in this process (one interpreter start per step, not two), capturing stdout;
    stderr is captured and echoed as it comes, so the job log shows progress and errors."""
    from provisioner.cli import main

    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    out, err = io.StringIO(), _Tee(sys.stderr)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except Exception as exc:  # the CLI's own last line of defence failed: still report, exit 1
                # Report the error the CLI was handling (e.g. a StalePlanError), not the failure to print it.
                cause = exc.__context__ if isinstance(exc.__context__, ProvisionerError) else exc
                print(f"error: {cause}", file=sys.stderr)
                code = 1
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return Ran(code, out.getvalue(), err.getvalue())


def _failure_markdown(what: str, ran: Ran) -> str:
    text = ran.stderr.strip() or f"exit code {ran.code}, no message"
    return f"**{what}** (exit {ran.code}); nothing was applied.\n\n```text\n{text}\n```\n"


@dataclass(frozen=True)
class PlanResult:
    code: int  # 0 no changes, 1 error, 2 changes (validate failures and usage errors count as 1)
    markdown: Path
    plan_json: Path | None


_REPORT_NAMES = {"markdown": "plan.md", "text": "plan.txt", "json": "plan.render.json"}


def plan(
    manifests: list[str],
    out_dir: Path,
    extra: list[str] | None = None,
    env: dict[str, str] | None = None,
    fmt: str = "markdown",
) -> PlanResult:
    """Validate, then plan with --detailed-exitcode; always leaves a report (`fmt`) in `out_dir`.

    The saved plan is always `out_dir/plan.json` (the file `provision apply PLANFILE` takes).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt not in _REPORT_NAMES:
        fmt = "markdown"
    md_path, json_path = out_dir / _REPORT_NAMES[fmt], out_dir / "plan.json"
    json_path.unlink(missing_ok=True)  # never let a previous run's plan pass for this one's
    checked = provision(["validate", *manifests], env)
    if checked.code != 0:
        md_path.write_text(_failure_markdown("The manifests are invalid", checked), encoding="utf-8")
        return PlanResult(1, md_path, None)
    ran = provision(
        [
            "plan",
            *manifests,
            "--format",
            fmt,
            "--out",
            str(json_path),
            "--detailed-exitcode",
            *(extra or []),
        ],
        env,
    )
    code = ran.code if ran.code in (0, 1, 2) else 1
    markdown = ran.stdout
    if code == 1 and ran.stderr.strip() and fmt != "json":
        # Error diagnostics still render a plan; add the error lines so the reviewer sees both.
        markdown = (markdown + "\n" if markdown.strip() else "") + _failure_markdown(
            "The plan has errors", ran
        )
    md_path.write_text(markdown, encoding="utf-8")
    return PlanResult(code, md_path, json_path if json_path.is_file() else None)


def publish_plan_outputs(result: PlanResult) -> None:
    gha.set_output("exitcode", str(result.code))
    gha.set_output("has-changes", "true" if result.code == 2 else "false")
    gha.set_output("output", str(result.markdown))
    gha.set_output("plan-json", str(result.plan_json or ""))
    gha.add_summary(truncate(result.markdown.read_text(encoding="utf-8"), full_report=gha.run_url()))


def check(exit_code: str) -> int:
    """The last step of a plan job: fail it when the plan step reported errors (or did not run)."""
    code = exit_code.strip()
    if code in ("0", "2"):
        print("plan: " + ("no changes." if code == "0" else "changes to review."), file=sys.stderr)
        return 0
    if code == "1":
        gha.error(
            "provision reported errors (invalid manifests, error diagnostics, or a Graph failure); see the report."
        )
    else:
        gha.error(f"the plan step did not report an exit code (got {code!r}); it failed before planning.")
    return 1


def action() -> int:
    """The composite action's main step: inputs come from env INPUT_* (set by action.yml)."""
    command = os.environ.get("INPUT_COMMAND", "plan").strip()
    manifests = shlex.split(os.environ.get("INPUT_MANIFESTS", "manifests")) or ["manifests"]
    extra = shlex.split(os.environ.get("INPUT_ARGS", ""))
    out_dir = Path(os.environ.get("INPUT_OUT_DIR", "") or ".provision")
    fail_on_error = os.environ.get("INPUT_FAIL_ON_ERROR", "true").strip().lower() != "false"
    fmt = os.environ.get("INPUT_FORMAT", "").strip() or "markdown"
    env = {}
    if os.environ.get("INPUT_TENANT", "").strip():
        env["PROVISION_TENANT"] = os.environ["INPUT_TENANT"].strip()
    if os.environ.get("INPUT_GRAPH_URL", "").strip():
        env["PROVISION_GRAPH_URL"] = os.environ["INPUT_GRAPH_URL"].strip()

    if command in ("plan", "drift"):
        result = plan(manifests, out_dir, extra, env, fmt)
        publish_plan_outputs(result)
        code = result.code
        failed = code == 1
    elif command == "apply":
        out_dir.mkdir(parents=True, exist_ok=True)
        audit = out_dir / "audit.jsonl"
        plan_file = os.environ.get("INPUT_PLAN", "").strip()
        targets = [plan_file] if plan_file else manifests
        fmt_args = ["--format", fmt] if fmt in ("text", "json") else []
        ran = provision(
            ["apply", *targets, "--auto-approve", "--audit-log", str(audit), *fmt_args, *extra], env
        )
        sys.stdout.write(ran.stdout)
        gha.add_summary(f"```text\n{ran.stdout.strip()}\n```" if ran.stdout.strip() else "")
        gha.set_output("exitcode", str(ran.code))
        gha.set_output("audit-log", str(audit))
        code, failed = ran.code, ran.code != 0
    elif command in ("validate", "export"):
        args = ["validate", *manifests] if command == "validate" else ["export", "--out", manifests[0]]
        ran = provision([*args, *extra], env)
        sys.stdout.write(ran.stdout)
        gha.set_output("exitcode", str(ran.code))
        code, failed = ran.code, ran.code != 0
    else:
        gha.error(f"unknown command {command!r}: use validate, plan, drift, apply or export.")
        return 64
    if failed and fail_on_error:
        gha.error(f"provision {command} failed (exit {code}).")
        return 1
    return 0
