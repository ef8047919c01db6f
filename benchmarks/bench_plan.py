"""Benchmark: plan 100,000 users in memory (Desired + Observed already built), render, and print a table.

Not pure: measures time and memory. Target (issue 5): planning 100,000 users in under 2 s and 500 MB.
The tenant is the emulator's seeded synthetic tenant; the manifest declares every user, with changes for
about a third of them (new plans, swaps, removals, moves), so resolution, ordering and seats all work.

    /tmp/venv/bin/python benchmarks/bench_plan.py                 # 100,000 users
    /tmp/venv/bin/python benchmarks/bench_plan.py --users 10000 20000 50000 100000
    /tmp/venv/bin/python benchmarks/bench_plan.py --steady        # manifest equal to the tenant: no changes

`--steady` is the in-process twin of bench_e2e.py's `plan` case (its write_manifest): every user declared with
every managed field, exactly as the tenant has them, so the plan is (almost) empty and every user is resolved.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import statistics
import sys
import time
import tracemalloc
from typing import Any

from provisioner.catalog import Catalog, load_catalog
from provisioner.emulator import demo
from provisioner.emulator.state import TenantState
from provisioner.model.desired import Desired, DesiredUser, Policy, Source
from provisioner.model.observed import Assignment, Observed, ServicePlan, Sku, TenantInfo, User
from provisioner.planner import plan
from provisioner.planner.tenant import TenantView
from provisioner.render import render

TIME_TARGET_S, MEMORY_TARGET_MB = 2.0, 500.0
_OFFERED = {"US": ("domestic", "international", "payg"), "GB": ("domestic", "domestic-120", "domestic-240", "payg"),
            "CA": ("domestic", "international"), "DE": ("domestic", "domestic-120"), "FR": ("domestic", "domestic-240"),
            "NL": ("domestic",), "MX": (), "JP": ()}  # fmt: skip


def observed_from(state: TenantState) -> Observed:
    """What the Graph reader would return for this tenant (every user: they all hold managed SKUs or are declared)."""
    skus = tuple(
        Sku(s.sku_id, s.part, s.status, s.enabled, state.consumed(s.sku_id),
            service_plans=tuple(ServicePlan(p["servicePlanId"], p["servicePlanName"]) for p in s.plans))
        for s in state.skus
    )  # fmt: skip
    users = {}
    for u in state.users:
        assignments = tuple(
            Assignment(a.sku_id, a.group, tuple(a.disabled), "Active" if a.active else "Error",
                       None if a.error in (None, "None") else a.error)
            for a in state.assignments(u)
        )  # fmt: skip
        users[u.upn.lower()] = User(
            u.id, u.upn, u.display_name, u.account_enabled, u.usage_location, assignments
        )
    domains = tuple(d["name"] for d in state.tenant["verifiedDomains"])
    return Observed(TenantInfo(state.tenant["id"], state.tenant["displayName"], domains), skus, users)


def desired_for(state: TenantState, seed: int) -> Desired:
    """Every user declared: most as they are, about a third changed (new plan, none, leaver, move)."""
    rng = random.Random(seed)
    out = []
    for i, u in enumerate(state.users):
        country = u.usage_location or rng.choice(("US", "GB", "DE"))
        offered = _OFFERED.get(country, ())
        r = rng.random()
        if r < 0.55:
            cp = None  # not managed: leave as it is
            ps = None
        elif r < 0.75 and offered:
            cp, ps = rng.choice(offered), None
        elif r < 0.85:
            cp, ps = "none", None
        elif r < 0.90:
            cp, ps = "none", False
        else:
            cp, ps = None, True
        out.append(DesiredUser(u.upn, Source("manifests/users.yaml", 10 + 3 * i), country, cp, ps, None))
    return Desired(
        users=tuple(sorted(out, key=lambda d: d.key)),
        policy=Policy(max_removals=1_000_000),
        tenant="contoso.com",
    )


def steady_desired_for(observed: Observed, catalog: Catalog) -> Desired:
    """Every user declared exactly as the tenant has them (bench_e2e.write_manifest's rules, read from the
    Observed): usage location as is, `callingPlan: sku:<first part held>` or none, phoneSystem and
    communicationsCredits true when held (directly or through a group)."""
    view = TenantView(observed, catalog)
    parts = {s.sku_id: s.part_number for s in observed.skus}
    out = []
    for i, key in enumerate(sorted(observed.users)):
        u = observed.users[key]
        held = u.all_sku_ids
        plans = sorted(parts[s] for s in held & view.calling_plans)
        out.append(
            DesiredUser(
                u.upn,
                Source("manifests/users.yaml", 6 + 5 * i),
                u.usage_location,
                f"sku:{plans[0]}" if plans else "none",
                bool(held & view.phone_system_skus),
                bool(held & view.credits),
            )
        )
    return Desired(users=tuple(out), policy=Policy(max_removals=1_000_000), tenant="contoso.com")


def inputs(n: int, seed: int, steady: bool) -> tuple[Desired, Observed, Catalog]:
    """The planner's inputs: the synthetic tenant of `n` users and a manifest for it (see the module doc)."""
    state = TenantState.from_dict(demo.synthetic_state(n, seed))
    observed, catalog = observed_from(state), load_catalog()
    desired = steady_desired_for(observed, catalog) if steady else desired_for(state, seed)
    return desired, observed, catalog


def _peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM, per address space (ru_maxrss keeps the peak of the process this one was
    forked from, e.g. benchmarks/run_all.py holding a 100,000-user tenant)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(n: int, seed: int, repeat: int, freeze: bool, steady: bool = False) -> dict[str, Any]:
    desired, observed, catalog = inputs(n, seed, steady)
    gc.collect()
    if freeze:
        gc.freeze()  # what `provision plan` does after reading: the snapshot is never garbage
    times, cpu = [], []
    result = None
    for _ in range(repeat):
        if freeze:
            gc.disable()  # ... and it pauses the collector while planning (cli/plan.py)
        t0, c0 = time.perf_counter(), time.process_time()
        result = plan(desired, observed, catalog)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        gc.enable()
    assert result is not None
    gc.collect()
    tracemalloc.start()
    plan(desired, observed, catalog)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t0 = time.perf_counter()
    js = render(result, "json")
    t_json = time.perf_counter() - t0
    t0 = time.perf_counter()
    md = render(result, "markdown")
    t_md = time.perf_counter() - t0
    return {
        "users": n,
        "case": "steady" if steady else "a third changed",
        "actions": len(result.actions),
        "diagnostics": len(result.diagnostics),
        "plan_s": statistics.median(times),
        "plan_min_s": min(times),
        "plan_cpu_s": statistics.median(cpu),
        "gc": "as the CLI" if freeze else "default",
        "alloc_peak_mb": peak / 2**20,
        "json_s": t_json,
        "json_mb": len(js) / 2**20,
        "markdown_s": t_md,
        "markdown_chars": len(md),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, nargs="+", default=[100_000])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--steady", action="store_true", help="manifest equal to the tenant (no changes), as bench_e2e's plan"
    )
    ap.add_argument(
        "--no-freeze", action="store_true", help="leave the GC as Python sets it, not as the CLI does"
    )
    args = ap.parse_args(argv)
    rows = [measure(n, args.seed, args.repeat, not args.no_freeze, args.steady) for n in args.users]
    print(
        f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (other work inflates wall times)"
    )
    rss_mb = _peak_rss_mb()
    head = ("users", "case", "gc", "actions", "diagnostics", "plan median (s)", "plan min (s)", "plan CPU (s)", "planner peak alloc (MB)",
            "render json (s)", "json size (MB)", "render markdown (s)", "markdown chars")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---:" for _ in head) + "|")
    for r in rows:
        print(
            f"| {r['users']:,} | {r['case']} | {r['gc']} | {r['actions']:,} | {r['diagnostics']:,} | {r['plan_s']:.2f} | {r['plan_min_s']:.2f} | "
            f"{r['plan_cpu_s']:.2f} | "
            f"{r['alloc_peak_mb']:.0f} | {r['json_s']:.2f} | {r['json_mb']:.1f} | {r['markdown_s']:.2f} | {r['markdown_chars']:,} |"
        )
    print(f"\nprocess peak RSS (inputs, 100k-user tenant, plans, renders): {rss_mb:.0f} MB")
    big = [r for r in rows if r["users"] >= 100_000]
    if big:
        r = big[-1]
        ok_t, ok_m = r["plan_min_s"] < TIME_TARGET_S, r["alloc_peak_mb"] < MEMORY_TARGET_MB
        print(f"target: plan 100,000 users < {TIME_TARGET_S} s: {'met' if ok_t else 'MISSED'} (best of {args.repeat}: {r['plan_min_s']:.2f} s); "
              f"< {MEMORY_TARGET_MB:.0f} MB: {'met' if ok_m else 'MISSED'} ({r['alloc_peak_mb']:.0f} MB allocated by planning)")  # fmt: skip
        return 0 if ok_t and ok_m else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
