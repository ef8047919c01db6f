"""apply against a served emulator under faults: throttling and 503s, and a kill -9 in the middle of a run.

Both end with the proof that matters: the next plan is empty, and the tenant holds exactly what the
manifest declares (nothing lost, nothing doubled). Each test runs in well under 30 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from served import DOMESTIC, PROVISION, country_of, provision, serve, workload

pytestmark = pytest.mark.slow

N_USERS = 400


def apply_args(manifest: Path, url: str, tenant: str, audit: Path, *extra: str) -> list[str]:
    return [
        "apply", str(manifest), "--tenant", tenant, "--graph-url", url, "--auto-approve", "--allow-removals",
        "--audit-log", str(audit), *extra,
    ]  # fmt: skip


def planned_actions(manifest: Path, tenant: str, url: str | None = None) -> list[dict]:
    """The plan's actions: against the served emulator at `url`, or (url None) the saved state file itself."""
    where = ["--tenant", tenant, "--graph-url", url] if url else ["--tenant", f"emulator:{tenant}"]
    r = provision("plan", str(manifest), *where, "--format", "json")
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stdout)["actions"])


def assert_tenant_matches_manifest(state_path: Path) -> list[dict]:
    """Read the state file the emulator saved: every user has its country as usage location, US/GB/CA
    users hold the domestic plan, everyone has Phone System, and no license is held twice."""
    state = json.loads(state_path.read_text())
    part = {s["skuId"].lower(): s["skuPartNumber"] for s in state["subscribedSkus"]}
    grouped: dict[str, list[str]] = {}
    for g in state["groups"]:
        for m in g["members"]:
            grouped.setdefault(m, []).extend(part[x["skuId"].lower()] for x in g["assignedLicenses"])
    for u in state["users"]:
        c = country_of(u["userPrincipalName"])
        assert u["usageLocation"] == c, u["userPrincipalName"]
        direct = [part[x["skuId"].lower()] for x in u["assignedLicenses"]]
        assert len(direct) == len(set(direct)), f"{u['userPrincipalName']} holds a license twice: {direct}"
        held = set(direct) | set(grouped.get(u["id"], ()))
        if c in DOMESTIC:
            assert "MCOPSTN1" in held, u["userPrincipalName"]
        assert {"MCOEV", "SPE_E5"} & held, f"{u['userPrincipalName']} has no Phone System: {held}"
    return list(state["users"])


def test_apply_converges_under_throttling_and_503s(tmp_path: Path) -> None:
    state_path, manifest, state = workload(N_USERS, 3, tmp_path)
    tenant = state["tenant"]["id"]
    audit = tmp_path / "audit.jsonl"
    with serve(state_path, "--throttle-rate", "0.3", "--error-rate", "0.05", "--seed", "11") as srv:
        r = provision(*apply_args(manifest, srv.url, tenant, audit, "--format", "json"), timeout=60)
        result = json.loads(r.stdout)
        assert r.returncode == 0, [o for o in result["outcomes"] if o["status"] != "succeeded"]
        stats = srv.stats()
    # The server saved its state on the way out; the next plan (fault-free, from that state) is empty.
    n = result["summary"]["actions"]
    assert n > N_USERS / 2  # the workload really changed most users
    assert result["ok"] and result["summary"]["succeeded"] == n and result["summary"]["failed"] == 0
    assert max(o["attempts"] for o in result["outcomes"]) > 1  # some sub-requests were retried
    assert stats["throttled"] > 0.1 * stats["subRequests"], stats  # the faults really happened
    assert stats["errors"] > 0, stats
    assert planned_actions(manifest, str(state_path)) == []
    assert_tenant_matches_manifest(state_path)
    records = [json.loads(x) for x in audit.read_text().splitlines()]
    assert len(records) == n and all(x["outcome"] == "succeeded" for x in records)


def test_kill_9_mid_apply_then_rerun_converges_with_nothing_lost_or_doubled(tmp_path: Path) -> None:
    state_path, manifest, state = workload(N_USERS, 5, tmp_path)
    tenant = state["tenant"]["id"]
    first_log, second_log = tmp_path / "audit-1.jsonl", tmp_path / "audit-2.jsonl"
    # 150 ms per request and one batch in flight: the run takes seconds, so the kill lands mid-way.
    with serve(state_path, "--latency-ms", "150") as srv:
        total = len(planned_actions(manifest, tenant, srv.url))
        proc = subprocess.Popen(
            [*PROVISION, *apply_args(manifest, srv.url, tenant, first_log, "--parallelism", "1")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and proc.poll() is None:
                if first_log.exists() and len(first_log.read_text().splitlines()) >= 40:
                    break
                time.sleep(0.01)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        done_first = [json.loads(x) for x in first_log.read_text().splitlines()]
        assert 0 < len(done_first) < total, "the kill did not land mid-way"

        remaining = planned_actions(manifest, tenant, srv.url)
        assert 0 < len(remaining) < total
        r = provision(*apply_args(manifest, srv.url, tenant, second_log), timeout=60)
        assert r.returncode == 0, r.stderr[-2000:]
    assert planned_actions(manifest, str(state_path)) == []
    users = assert_tenant_matches_manifest(state_path)

    done_second = [json.loads(x) for x in second_log.read_text().splitlines()]
    assert all(x["outcome"] == "succeeded" for x in done_first + done_second)
    # Nothing doubled: no user had the same kind of change succeed twice across the two runs; and the
    # re-run only did what the first run had not (its plan came from the tenant, not from a checkpoint).
    per_user = Counter((x["user"]["id"], x["action"]["type"]) for x in done_first + done_second)
    assert max(per_user.values()) == 1
    assert len(done_second) == len(remaining)
    # The first run's record is true: every change it logged as done is in the final tenant.
    locs = {u["id"]: u["usageLocation"] for u in users}
    for x in done_first:
        if x["action"]["type"] == "setUsageLocation":
            assert locs[x["user"]["id"]] == x["after"]["usageLocation"]
