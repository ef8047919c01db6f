"""Benchmark: apply 10,000 user changes against a served emulator with per-request latency, beside its floor.

Not pure: writes a tenant and a manifest under --work, serves the emulator, plans and applies in process
(through the real Graph writer over loopback). The measured span is the execution of the plan's actions only
(planning reads are measured elsewhere). The floor is what $batch round trips cost at best:

    floor = $batch round trips × latency ÷ parallelism          target: apply ≤ 1.3 × floor
    round trips ≤ ceil(sub-requests ÷ 20) + retried sub-requests (from the emulator's stats)

    /tmp/venv/bin/python benchmarks/bench_apply.py                       # 10,000 changes, 50 ms, parallelism 4
    /tmp/venv/bin/python benchmarks/bench_apply.py --changes 2000 --json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import compile_package, serve, table, verdict  # noqa: E402

RATIO_TARGET = 1.3


def write_workload(folder: Path, changes: int) -> tuple[Path, Path, str]:
    """`changes` users with E3 and a usage location; the manifest gives each the domestic Calling Plan, so the
    plan is exactly `changes` assignLicense calls (+MCOEV +MCOPSTN1), one per user, all independent."""
    from provisioner.emulator.demo import demo_state, sku_record, stable_id

    domain = "contoso.com"
    users = [
        {
            "id": stable_id("user", f"bench{i:06d}@{domain}"),
            "userPrincipalName": f"bench{i:06d}@{domain}",
            "displayName": f"Bench User {i}",
            "accountEnabled": True,
            "usageLocation": "US",
            "assignedLicenses": [{"skuId": "6fd2c87f-b296-42f0-b197-1e91e994b900", "disabledPlans": []}],
        }
        for i in range(changes)
    ]
    state = {
        "tenant": demo_state()["tenant"],
        "subscribedSkus": [sku_record(p, changes + 10) for p in ("ENTERPRISEPACK", "MCOEV", "MCOPSTN1")],
        "users": users,
        "groups": [],
    }
    state_path = folder / f"bench-apply-{changes}.json"
    state_path.write_text(json.dumps(state))
    lines = ["apiVersion: provisioner/v1", "kind: TeamsVoiceLicensing", "users:"]
    for u in users:
        lines += [f"  - upn: {u['userPrincipalName']}", "    callingPlan: domestic"]
    manifest = folder / f"bench-apply-{changes}.yaml"
    manifest.write_text("\n".join(lines) + "\n")
    return state_path, manifest, str(state["tenant"]["id"])


def bench(work: Path, changes: int, latency_ms: float, parallelism: int) -> dict[str, Any]:
    from provisioner.apply import execute
    from provisioner.apply.source import plan_from_manifests
    from provisioner.graph import connect

    state_path, manifest, tenant = write_workload(work, changes)
    with serve(state_path, latency_ms=latency_ms) as srv, connect(tenant, graph_url=srv.url) as conn:
        t0 = time.perf_counter()
        plan = plan_from_manifests([manifest], conn)
        plan_s = time.perf_counter() - t0
        if len(plan.actions) != changes or plan.has_errors:
            raise RuntimeError(f"expected {changes} actions and no errors, got {len(plan.actions)} actions")
        srv.reset_stats()
        t0 = time.perf_counter()
        result = execute(plan, conn, parallelism=parallelism)
        apply_s = time.perf_counter() - t0
        stats = srv.stats()
        leftover = len(plan_from_manifests([manifest], conn).actions)
    batches, subs = int(stats["batches"]), int(stats["subRequests"])
    retries = int(stats["throttled"]) + int(stats["errors"])
    floor_s = batches * latency_ms / 1000 / parallelism
    return {
        "changes": changes,
        "latencyMs": latency_ms,
        "parallelism": parallelism,
        "planSeconds": round(plan_s, 3),
        "applySeconds": round(apply_s, 3),
        "floorSeconds": round(floor_s, 3),
        "ratio": round(apply_s / floor_s, 3) if floor_s else None,
        "requests": int(stats["requests"]),
        "batches": batches,
        "subRequests": subs,
        "retries": retries,
        "roundTripBound": math.ceil(subs / 20) + retries,
        "succeeded": result.totals()["succeeded"],
        "leftAfter": leftover,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--changes", type=int, default=10_000)
    ap.add_argument("--latency-ms", type=float, default=50)
    ap.add_argument("--parallelism", type=int, default=4)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    a = ap.parse_args()
    compile_package()
    with tempfile.TemporaryDirectory(prefix="bench-apply-") as tmp:
        work = a.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        r = bench(work, a.changes, a.latency_ms, a.parallelism)
    ok = (
        r["ratio"] is not None
        and r["ratio"] <= RATIO_TARGET
        and r["batches"] <= r["roundTripBound"]
        and r["succeeded"] == r["changes"]
        and r["leftAfter"] == 0
    )
    if a.json:
        print(json.dumps({**r, "target": verdict(ok)}, indent=2))
    else:
        print(
            "### apply: 10,000-change target (bench_apply.py)\n" if r["changes"] == 10_000 else "### apply\n"
        )
        print(
            table(
                [
                    "changes",
                    "latency (ms)",
                    "parallelism",
                    "apply (s)",
                    "floor (s)",
                    "apply / floor",
                    "$batch round trips",
                    "≤ ceil(sub/20) + retries",
                    "succeeded",
                    "left after",
                    f"target (≤ {RATIO_TARGET}×)",
                ],
                [
                    [
                        r["changes"],
                        r["latencyMs"],
                        r["parallelism"],
                        r["applySeconds"],
                        r["floorSeconds"],
                        r["ratio"],
                        r["batches"],
                        r["roundTripBound"],
                        r["succeeded"],
                        r["leftAfter"],
                        verdict(ok),
                    ]
                ],
            )
        )
        print(
            "\nfloor = $batch round trips × latency ÷ parallelism; apply = executing the plan's actions "
            f"(planning took {r['planSeconds']} s and is not counted)."
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
