"""Fixtures for running the workflows locally: a manifests repo exported from an emulated tenant, a fake
`gh` on PATH recording every call, and the tool already "installed" in the action's venv location."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provisioner.cli import main
from provisioner.emulator.demo import demo_state

from .gha_runner import REPO, JobResult, Runner

FAKE_GH = Path(__file__).with_name("fake_gh.py")


@dataclass
class GitOps:
    """One manifests repository on disk, its emulated tenant, and the fake GitHub behind `gh`."""

    root: Path
    workspace: Path
    tenant: Path
    runner_temp: Path
    artifacts: Path
    base_env: dict[str, str]

    @property
    def manifest(self) -> Path:
        return self.workspace / "manifests" / "tenant.yaml"

    def calls(self) -> list[dict[str, Any]]:
        log = Path(self.base_env["FAKE_GH_LOG"])
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def writes(self) -> list[tuple[str, str]]:
        """(method, path) of every call that changed something on GitHub, in order."""
        return [(c["method"], c["path"]) for c in self.calls() if c["method"] != "GET"]

    def github(self) -> dict[str, Any]:
        path = Path(self.base_env["FAKE_GH_STATE"])
        return dict(json.loads(path.read_text())) if path.exists() else {"comments": [], "issues": []}

    def seed_github(self, state: dict[str, Any]) -> None:
        Path(self.base_env["FAKE_GH_STATE"]).write_text(json.dumps(state))

    def clear_calls(self) -> None:
        Path(self.base_env["FAKE_GH_LOG"]).write_text("")

    def tenant_state(self) -> dict[str, Any]:
        return dict(json.loads(self.tenant.read_text()))

    def edit_tenant(self, change: Callable[[dict[str, Any]], None]) -> None:
        """What an admin does in the admin center: change the tenant behind the tool's back."""
        state = self.tenant_state()
        change(state)
        self.tenant.write_text(json.dumps(state, indent=1))

    def edit_manifest(self, old: str, new: str) -> None:
        text = self.manifest.read_text()
        assert old in text, old
        self.manifest.write_text(text.replace(old, new))

    def run(
        self,
        workflow: str,
        event_name: str,
        event: dict[str, Any] | None = None,
        before_job: Callable[[str], None] | None = None,
    ) -> dict[str, JobResult]:
        # Each run gets fresh artifacts, like a new workflow run.
        run_no = len(list(self.root.glob("artifacts-*")))
        runner = Runner(
            workspace=self.workspace,
            event_name=event_name,
            event=event or {},
            vars={"PROVISION_TENANT": f"emulator:{self.tenant}"},
            base_env=self.base_env,
            runner_temp=self.runner_temp,
            artifacts=self.root / f"artifacts-{run_no}",
            before_job=before_job,
        )
        return runner.run_workflow(REPO / ".github" / "workflows" / workflow)

    def last_artifacts(self) -> Path:
        return sorted(self.root.glob("artifacts-*"), key=lambda p: int(p.name.split("-")[1]))[-1]


@pytest.fixture
def gitops(tmp_path: Path) -> GitOps:
    """Step 1 of docs/gitops.md done: the demo tenant exported into `manifests/tenant.yaml`."""
    workspace, tenant = tmp_path / "repo", tmp_path / "tenant.json"
    workspace.mkdir()
    tenant.write_text(json.dumps(demo_state(), indent=1))
    assert (
        main(
            [
                "export",
                "--tenant",
                f"emulator:{tenant}",
                "--out",
                str(workspace / "manifests" / "tenant.yaml"),
            ]
        )
        == 0
    )

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE_GH} "$@"\n')
    gh.chmod(0o755)
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    # The action installs the tool into $RUNNER_TEMP/provisioner-venv unless it is already there: point it at
    # this interpreter's environment (the real install is exercised by a slow test).
    (runner_temp / "provisioner-venv").symlink_to(Path(sys.prefix))
    assert (Path(sys.prefix) / "bin" / "provision").exists(), "run the tests from the project's venv"
    base_env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "FAKE_GH_STATE": str(tmp_path / "github.json"),
        "FAKE_GH_LOG": str(tmp_path / "gh-calls.jsonl"),
    }
    return GitOps(tmp_path, workspace, tenant, runner_temp, tmp_path, base_env)
