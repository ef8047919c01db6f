"""The fault suite's workload: a 400-user tenant, a manifest changing ~70 users, and the state checks.

Pure except `run_cli` (runs `provision` as a subprocess). The workload mixes the three kinds of change a
real apply makes: new voice users (+MCOEV +MCOPSTN1), new hires needing a usage location first (a PATCH
then an assignLicense that depends on it) and leavers losing their Calling Plan (a removal).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.emulator.demo import SKUS, synthetic_state
from provisioner.emulator.state import TenantState

PROVISION = [sys.executable, "-m", "provisioner"]
E3, EV, DOM, CC = (SKUS[p][0] for p in ("ENTERPRISEPACK", "MCOEV", "MCOPSTN1", "MCOPSTNC"))


def tenant() -> dict[str, Any]:
    """A 400-user synthetic tenant with 200 spare seats per SKU (the workload needs ~50 new seats)."""
    state = synthetic_state(400, seed=11)
    for sku in state["subscribedSkus"]:
        sku["prepaidUnits"]["enabled"] += 200
    # six new hires: no usage location, no license (the synthetic seed happens to have only one)
    hires = [u for u in state["users"] if u["usageLocation"] in ("JP", "MX")][:6]
    for u in hires:
        u["usageLocation"], u["assignedLicenses"] = None, []
    return state


def manifest(state: dict[str, Any]) -> tuple[str, int]:
    """(YAML text, number of users it changes)."""
    grouped = {m for g in state["groups"] for m in g["members"]}
    new_voice, new_hires, leavers = [], [], []
    for u in sorted(state["users"], key=lambda u: u["userPrincipalName"]):
        skus = {lic["skuId"] for lic in u["assignedLicenses"]}
        if u["id"] in grouped:
            continue
        if u["usageLocation"] is None and not skus:
            new_hires.append(u["userPrincipalName"])
        elif u["usageLocation"] == "US" and skus == {E3} and len(new_voice) < 40:
            new_voice.append(u["userPrincipalName"])
        elif u["usageLocation"] == "US" and DOM in skus and CC not in skus and len(leavers) < 20:
            leavers.append(u["userPrincipalName"])
    lines = ["apiVersion: provisioner/v1", "kind: TeamsVoiceLicensing", "policy:", "  unlisted: ignore",
             "  maxRemovals: 100", "users:"]
    for upn in new_voice:
        lines += [f"  - upn: {upn}", "    callingPlan: domestic"]
    for upn in new_hires:
        lines += [f"  - upn: {upn}", "    usageLocation: US", "    callingPlan: domestic"]
    for upn in leavers:
        lines += [f"  - upn: {upn}", "    phoneSystem: true", "    callingPlan: none"]
    assert len(new_voice) >= 30 and len(new_hires) >= 5 and len(leavers) >= 12, "the workload shrank"
    return "\n".join(lines) + "\n", len(new_voice) + len(new_hires) + len(leavers)


def fresh_state(data: dict[str, Any]) -> TenantState:
    return TenantState.from_dict(copy.deepcopy(data))


def snapshot(state: TenantState) -> dict[str, Any]:
    """What must match the reference: per user, usage location and direct licenses; per SKU, seats used."""
    users = {u.upn.lower(): (u.usage_location, sorted((k, tuple(sorted(v))) for k, v in u.licenses.items()))
             for u in state.users}
    seats = {s.part: state.consumed(s.sku_id) for s in state.skus}
    return {"users": users, "seats": seats}


def diff(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    out = []
    for upn in sorted(set(expected["users"]) | set(actual["users"])):
        e, a = expected["users"].get(upn), actual["users"].get(upn)
        if e != a:
            out.append(f"{upn}: expected {e}, got {a}")
    for part in sorted(expected["seats"]):
        if expected["seats"][part] != actual["seats"].get(part):
            out.append(f"seats {part}: expected {expected['seats'][part]}, got {actual['seats'].get(part)}")
    return out


@dataclass
class Run:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    elapsed_s: float


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROVISION_", "AZURE_"))}
    env["NO_COLOR"] = "1"
    return env


def run_cli(*args: str, timeout: float = 60) -> Run:
    start = time.perf_counter()
    p = subprocess.run([*PROVISION, *args], capture_output=True, text=True, timeout=timeout, env=cli_env())
    return Run(tuple(args), p.returncode, p.stdout, p.stderr, time.perf_counter() - start)


def apply_args(manifest_path: Path, url: str, tenant_id: str, audit: Path, parallelism: int = 4) -> list[str]:
    return ["apply", str(manifest_path), "--tenant", tenant_id, "--graph-url", url, "--auto-approve",
            "--allow-removals", "--parallelism", str(parallelism), "--audit-log", str(audit)]


def plan_args(manifest_path: Path, url: str, tenant_id: str) -> list[str]:
    return ["plan", str(manifest_path), "--tenant", tenant_id, "--graph-url", url, "--detailed-exitcode"]


def audit_records(path: Path) -> list[dict[str, Any]]:
    """Every line of the audit log as JSON (a torn line fails the test: the log promises whole lines)."""
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise AssertionError(f"{path}:{n}: not a JSON line ({exc}): {line[:200]!r}") from None
        assert isinstance(rec, dict), f"{path}:{n}: not a JSON object"
        out.append(rec)
    return out


def change_key(rec: dict[str, Any]) -> tuple[Any, ...]:
    """What one audit record changed: (upn, type, usage location target, sorted adds, sorted removes)."""
    action = rec.get("action") or {}
    user = rec.get("user") or {}
    loc = action.get("usageLocation") or {}
    return (str(user.get("upn", "")).lower(), action.get("type"), loc.get("to") if isinstance(loc, dict) else loc,
            tuple(sorted(action.get("add") or [])), tuple(sorted(action.get("remove") or [])))
