"""A small local runner for the repository's workflows and composite action, for tests.

It runs every `run:` step for real (bash, with GITHUB_OUTPUT/ENV/PATH/STEP_SUMMARY files), evaluates the
`${{ }}` expressions the workflows use (contexts, ==, !=, &&, ||, !, success()/failure()/always()), runs
`uses: your-org/provisioner@v1` as the composite action in action.yml, and simulates the few stock actions
(checkout, setup-python/node: nothing to do; upload/download-artifact: copy files). Anything else it does
not know fails loudly, so a workflow cannot grow a step that the tests silently skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
OUR_ACTION = re.compile(r"^(your-org/provisioner@v1|\./?)$")


class RunnerError(Exception):
    """The workflow uses something this runner does not support (the test must fail, not skip it)."""


# -- expressions ---------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||[!().,\[\]])"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise RunnerError(f"cannot parse expression {text!r} at {pos}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def truthy(v: Any) -> bool:
    return v not in (None, False, 0, "", 0.0)


def as_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class _Expr:
    """Recursive-descent evaluator of GitHub's expression subset used here."""

    def __init__(self, text: str, ctx: dict[str, Any], status: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.ctx = ctx
        self.status = status  # "success" | "failure": the job status so far

    def peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise RunnerError("unexpected end of expression")
        tok = self.toks[self.i]
        if value is not None and tok[1] != value:
            raise RunnerError(f"expected {value!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def run(self) -> Any:
        v = self.or_()
        if self.i != len(self.toks):
            raise RunnerError(f"trailing tokens in expression: {self.toks[self.i :]}")
        return v

    def or_(self) -> Any:
        v = self.and_()
        while self.peek() == "||":
            self.take()
            rhs = self.and_()
            v = v if truthy(v) else rhs
        return v

    def and_(self) -> Any:
        v = self.cmp()
        while self.peek() == "&&":
            self.take()
            rhs = self.cmp()
            v = rhs if truthy(v) else v
        return v

    def cmp(self) -> Any:
        v = self.unary()
        if self.peek() in ("==", "!="):
            op = self.take()[1]
            rhs = self.unary()
            same = (
                as_text(v).lower() == as_text(rhs).lower()
                if isinstance(v, str) or isinstance(rhs, str)
                else v == rhs
            )
            return same if op == "==" else not same
        return v

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not truthy(self.unary())
        return self.primary()

    def primary(self) -> Any:
        kind, value = self.take()
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "num":
            return float(value) if "." in value else int(value)
        if value == "(":
            v = self.or_()
            self.take(")")
            return v
        if kind != "name":
            raise RunnerError(f"unexpected {value!r}")
        if value in ("true", "false"):
            return value == "true"
        if value == "null":
            return None
        if self.peek() == "(":
            self.take("(")
            self.take(")")
            return self.function(value)
        if value not in self.ctx:
            raise RunnerError(f"unknown context {value!r}")
        v: Any = self.ctx[value]
        while self.peek() in (".", "["):
            if self.take()[1] == ".":
                key = self.take()[1]
            else:
                key = as_text(self.or_())
                self.take("]")
            v = v.get(key) if isinstance(v, dict) else None
        return v

    def function(self, name: str) -> Any:
        if name == "always":
            return True
        if name == "success":
            return self.status == "success"
        if name == "failure":
            return self.status == "failure"
        if name == "cancelled":
            return False
        raise RunnerError(f"function {name}() is not supported by the test runner")


def evaluate(text: str, ctx: dict[str, Any], status: str = "success") -> Any:
    return _Expr(text, ctx, status).run()


def interpolate(value: Any, ctx: dict[str, Any]) -> str:
    """Replace every ${{ expr }} in a string (as GitHub does in with:, env:, run: and names)."""
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: as_text(evaluate(m.group(1), ctx)), as_text(value))


def condition(text: Any, ctx: dict[str, Any], status: str) -> bool:
    """A step/job `if:`: without a status function, success() is implied (GitHub's rule)."""
    if text is None:
        return status == "success"
    expr = as_text(text).strip()
    if expr.startswith("${{") and expr.endswith("}}"):
        expr = expr[3:-2]
    if not re.search(r"\b(always|success|failure|cancelled)\s*\(", expr):
        expr = f"success() && ({expr})"
    return truthy(evaluate(expr, ctx, status))


# -- files GitHub gives each step ----------------------------------------------------------------------


def parse_kv_file(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT / GITHUB_ENV: `k=v` lines and `k<<DELIM ... DELIM` blocks."""
    out: dict[str, str] = {}
    if not path.exists():
        return out
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delim = line.split("<<", 1)
            j = lines.index(delim, i + 1)
            out[key] = "\n".join(lines[i + 1 : j])
            i = j + 1
        elif "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
            i += 1
        else:
            i += 1
    return out


# -- running ------------------------------------------------------------------------------------------


@dataclass
class StepResult:
    name: str
    outcome: str  # success | failure | skipped
    outputs: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""


@dataclass
class JobResult:
    name: str
    status: str  # success | failure | skipped
    outputs: dict[str, str]
    steps: list[StepResult]

    def step(self, name: str) -> StepResult:
        found = [s for s in self.steps if s.name == name]
        if not found:
            raise KeyError(f"no step {name!r} in job {self.name}: {[s.name for s in self.steps]}")
        return found[0]

    @property
    def log(self) -> str:
        return "\n".join(f"--- {s.name} [{s.outcome}]\n{s.stdout}{s.stderr}" for s in self.steps)


@dataclass
class Runner:
    """One simulated run. `workspace` is the checked-out manifests repository (the steps' cwd)."""

    workspace: Path
    event_name: str
    event: dict[str, Any]
    vars: dict[str, str]
    base_env: dict[str, str]
    runner_temp: Path
    artifacts: Path
    secrets: dict[str, str] = field(default_factory=dict)
    repository: str = "acme/voice-manifests"
    action_dir: Path = REPO
    extra_path: list[str] = field(default_factory=list)
    env_file_vars: dict[str, str] = field(default_factory=dict)
    summary: Path | None = None
    # Called with a job's name just before it starts (tests use it to change the tenant between jobs).
    before_job: Callable[[str], None] | None = None

    def run_workflow(self, workflow: Path) -> dict[str, JobResult]:
        wf = yaml.safe_load(workflow.read_text(encoding="utf-8"))
        jobs: dict[str, Any] = wf["jobs"]
        results: dict[str, JobResult] = {}
        pending = list(jobs)
        while pending:
            ready = [j for j in pending if all(n in results for n in _needs(jobs[j]))]
            if not ready:
                raise RunnerError(f"cannot order jobs {pending}")
            for name in ready:
                pending.remove(name)
                if self.before_job is not None:
                    self.before_job(name)
                results[name] = self.run_job(wf, name, results)
        return results

    def _github(self) -> dict[str, Any]:
        return {
            "event_name": self.event_name,
            "event": self.event,
            "repository": self.repository,
            "token": "fake-token",
            "sha": "0123456789abcdef0123456789abcdef01234567",
            "ref": "refs/heads/main",
            "run_id": "4242",
            "server_url": "https://github.com",
            "workspace": str(self.workspace),
        }

    def run_job(self, wf: dict[str, Any], name: str, done: dict[str, JobResult]) -> JobResult:
        job = wf["jobs"][name]
        needs = {n: {"outputs": done[n].outputs, "result": done[n].status} for n in _needs(job)}
        ctx: dict[str, Any] = {
            "github": self._github(),
            "vars": self.vars,
            "secrets": self.secrets,
            "needs": needs,
            "runner": {"temp": str(self.runner_temp), "os": "Linux"},
            "steps": {},
            "env": {},
            "matrix": {},
        }
        upstream_ok = all(done[n].status == "success" for n in _needs(job))
        if not condition(job.get("if"), ctx, "success" if upstream_ok else "failure"):
            return JobResult(name, "skipped", {}, [])
        self.extra_path = []
        self.env_file_vars = {}
        env = {k: interpolate(v, ctx) for k, v in (wf.get("env") or {}).items()}
        ctx["env"] = env
        env.update({k: interpolate(v, ctx) for k, v in (job.get("env") or {}).items()})
        status = "success"
        results: list[StepResult] = []
        for i, step in enumerate(job["steps"]):
            result = self.run_step(step, ctx, dict(env), status, f"{name}-{i}")
            results.append(result)
            if step.get("id"):
                ctx["steps"][step["id"]] = {
                    "outputs": result.outputs,
                    "outcome": result.outcome,
                    "conclusion": result.outcome,
                }
            if result.outcome == "failure" and not step.get("continue-on-error"):
                status = "failure"
        outputs = {k: interpolate(v, ctx) for k, v in (job.get("outputs") or {}).items()}
        return JobResult(name, status, outputs, results)

    def run_step(
        self, step: dict[str, Any], ctx: dict[str, Any], env: dict[str, str], status: str, tag: str
    ) -> StepResult:
        name = interpolate(step.get("name") or step.get("uses") or step.get("run", "").splitlines()[0], ctx)
        if not condition(step.get("if"), {**ctx, "env": env}, status):
            return StepResult(name, "skipped")
        step_ctx = {**ctx, "env": env}
        env = {**env, **{k: interpolate(v, step_ctx) for k, v in (step.get("env") or {}).items()}}
        step_ctx = {**ctx, "env": env}
        if "run" in step:
            return self._run_script(name, interpolate(step["run"], step_ctx), env, tag)
        uses = step["uses"]
        with_ = {k: interpolate(v, step_ctx) for k, v in (step.get("with") or {}).items()}
        if OUR_ACTION.match(uses):
            return self.run_action(name, with_, ctx, env, tag)
        base = uses.split("@")[0]
        if base in ("actions/checkout", "actions/setup-python", "actions/setup-node"):
            return StepResult(name, "success")
        if base == "actions/upload-artifact":
            return self._upload(name, with_)
        if base == "actions/download-artifact":
            return self._download(name, with_)
        raise RunnerError(f"step {name!r} uses {uses}, which the test runner does not know")

    def run_action(
        self, name: str, inputs: dict[str, str], ctx: dict[str, Any], env: dict[str, str], tag: str
    ) -> StepResult:
        action = yaml.safe_load((self.action_dir / "action.yml").read_text(encoding="utf-8"))
        unknown = set(inputs) - set(action["inputs"])
        if unknown:
            raise RunnerError(f"unknown inputs {sorted(unknown)} for the action")
        values = {k: as_text(spec.get("default", "")) for k, spec in action["inputs"].items()}
        values.update(inputs)
        actx: dict[str, Any] = {
            **ctx,
            "inputs": values,
            "steps": {},
            "github": {**ctx["github"], "action_path": str(self.action_dir)},
        }
        outs, stdout, stderr, outcome = {}, "", "", "success"
        for i, step in enumerate(action["runs"]["steps"]):
            if "run" in step and step.get("shell") != "bash":
                raise RunnerError("composite run steps must say `shell: bash`")
            result = self.run_step(step, actx, dict(env), outcome, f"{tag}-a{i}")
            stdout += result.stdout
            stderr += result.stderr
            if step.get("id"):
                actx["steps"][step["id"]] = {"outputs": result.outputs, "outcome": result.outcome}
            if result.outcome == "failure":
                outcome = "failure"
        outs = {k: interpolate(spec["value"], actx) for k, spec in action["outputs"].items()}
        return StepResult(name, outcome, outs, stdout, stderr)

    def _run_script(self, name: str, script: str, env: dict[str, str], tag: str) -> StepResult:
        files = self.runner_temp / "_runner" / tag
        files.mkdir(parents=True, exist_ok=True)
        output, envf, pathf = files / "output", files / "env", files / "path"
        summary = self.summary or (self.runner_temp / "_runner" / "summary.md")
        for f in (output, envf, pathf):
            f.write_text("")
        script_file = files / "script.sh"
        script_file.write_text(script)
        full_env = {
            **self.base_env,
            **self.env_file_vars,
            **env,
            "PATH": os.pathsep.join([*reversed(self.extra_path), self.base_env["PATH"]]),
            "GITHUB_ACTIONS": "true",
            "CI": "true",
            "GITHUB_REPOSITORY": self.repository,
            "GITHUB_EVENT_NAME": self.event_name,
            "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
            "GITHUB_RUN_ID": "4242",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_ENV": str(envf),
            "GITHUB_PATH": str(pathf),
            "GITHUB_STEP_SUMMARY": str(summary),
            "RUNNER_TEMP": str(self.runner_temp),
        }
        if self.event:
            event_file = self.runner_temp / "_runner" / "event.json"
            event_file.write_text(json.dumps(self.event))
            full_env["GITHUB_EVENT_PATH"] = str(event_file)
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
            cwd=self.workspace,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        self.env_file_vars.update(parse_kv_file(envf))
        self.extra_path += [p for p in pathf.read_text().splitlines() if p.strip()]
        return StepResult(
            name,
            "success" if proc.returncode == 0 else "failure",
            parse_kv_file(output),
            proc.stdout,
            proc.stderr,
        )

    def _upload(self, name: str, with_: dict[str, str]) -> StepResult:
        src = self.workspace / with_["path"]
        dest = self.artifacts / with_["name"]
        if dest.exists():
            return StepResult(name, "failure", stderr=f"artifact {with_['name']} already exists\n")
        if src.is_dir():
            shutil.copytree(src, dest)
        elif src.is_file():
            dest.mkdir(parents=True)
            shutil.copy2(src, dest / src.name)
        elif with_.get("if-no-files-found", "warn") == "error":
            return StepResult(name, "failure", stderr=f"no files at {src}\n")
        return StepResult(name, "success")

    def _download(self, name: str, with_: dict[str, str]) -> StepResult:
        src = self.artifacts / with_["name"]
        if not src.is_dir():
            return StepResult(name, "failure", stderr=f"artifact {with_['name']} not found\n")
        shutil.copytree(src, self.workspace / with_.get("path", "."), dirs_exist_ok=True)
        return StepResult(name, "success")


def _needs(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)
