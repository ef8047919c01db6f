"""End-to-end benchmarks of `provision plan` / `apply` against a served emulator, each beside its floor.

Not pure: writes tenants and manifests under a work folder, serves emulators, runs the CLI. The floor of a
plan is a bare httpx loop fetching the same pages ($top=999, the same $select); the floor of an apply is a
bare httpx loop posting the same $batch bodies with the same parallelism, against the same emulator.

    python benchmarks/bench_e2e.py plan --sizes 10000 50000 100000
    python benchmarks/bench_e2e.py subset --tenant-users 100000 --manifest-users 1000
    python benchmarks/bench_e2e.py apply --changes 10000 --latency-ms 50
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Measured, compile_package, provision_cmd, run_measured, serve, table, verdict

# What the reader asks for. Kept in step with provisioner.graph's reader when it exposes its $select.
DEFAULT_SELECT = "id,userPrincipalName,displayName,accountEnabled,usageLocation,assignedLicenses,licenseAssignmentStates"
PLAN_RATIO_TARGET = 1.5
PLAN_RSS_TARGET_MB = 600.0
SUBSET_ROUND_TRIPS_TARGET = 10
APPLY_RATIO_TARGET = 1.3

# Calling Plan service plans: a SKU carrying one of these is a Calling Plan (emulator's demo catalogue).
_CALLING_PLAN_SERVICE_PLANS = {"MCOPSTN1", "MCOPSTN2", "MCOPSTN5", "MCOPSTN6", "MCOPSTN_PAYG_1"}


def reader_select() -> str:
    """The reader's own $select when it exposes one (so the floor fetches exactly the same bytes)."""
    for mod_name, attr in (("provisioner.graph.strategy", "USER_SELECT"), ("provisioner.graph.reader", "USER_SELECT")):
        try:
            mod = __import__(mod_name, fromlist=[attr])
        except ImportError:
            continue
        value = getattr(mod, attr, None)
        if isinstance(value, str):
            return value
        if isinstance(value, list | tuple):
            return ",".join(value)
    return DEFAULT_SELECT


# -- inputs -----------------------------------------------------------------------------------------------


def init_tenant(work: Path, n: int, seed: int = 7) -> tuple[Path, Measured]:
    """`provision emulator init` of an N-user tenant (cached by N and seed in `work`)."""
    path = work / f"tenant-{n}-{seed}.json"
    m = run_measured([*provision_cmd(), "emulator", "init", str(path), "--users", str(n), "--seed", str(seed)])
    return path, m.check()


def load_state(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def _sku_facts(state: dict[str, Any]) -> tuple[dict[str, str], set[str], set[str], set[str]]:
    """(skuId -> part, Calling Plan skuIds, skuIds that include Phone System, Communications Credits skuIds)."""
    part, calling, phone, credits = {}, set(), set(), set()
    for s in state["subscribedSkus"]:
        sid = s["skuId"].lower()
        part[sid] = s["skuPartNumber"]
        names = {p["servicePlanName"] for p in s.get("servicePlans", [])}
        if names & _CALLING_PLAN_SERVICE_PLANS:
            calling.add(sid)
        if "MCOEV" in names:
            phone.add(sid)
        if "MCOPSTNC" in names:
            credits.add(sid)
    return part, calling, phone, credits


def held(state: dict[str, Any]) -> dict[str, set[str]]:
    """user id -> every skuId the user holds, direct or through a group (what Graph shows)."""
    out = {u["id"]: {lic["skuId"].lower() for lic in u.get("assignedLicenses", [])} for u in state["users"]}
    for g in state.get("groups", []):
        for uid in g.get("members", []):
            out.setdefault(uid, set()).update(lic["skuId"].lower() for lic in g.get("assignedLicenses", []))
    return out


def write_manifest(state: dict[str, Any], out: Path, *, upns: set[str] | None = None,
                   overrides: dict[str, dict[str, Any]] | None = None) -> int:
    """A manifest declaring every user (or only `upns`) exactly as the tenant has them: an all-managed no-op.

    Written as text, not via yaml.dump, so generating 100k users takes well under a second. `overrides`
    replaces fields of chosen users (upn -> {field: value}), which is how the apply benchmark makes changes.
    """
    part, calling, phone, credits = _sku_facts(state)
    holdings = held(state)
    lines = ["apiVersion: provisioner/v1", "kind: TeamsVoiceLicensing", "policy:", "  unlisted: ignore", "users:"]
    count = 0
    for u in sorted(state["users"], key=lambda u: u["userPrincipalName"].lower()):
        upn = u["userPrincipalName"]
        if upns is not None and upn not in upns:
            continue
        skus = holdings.get(u["id"], set())
        plans = sorted(part[s] for s in skus & calling)
        entry: dict[str, Any] = {}
        if u.get("usageLocation"):
            entry["usageLocation"] = u["usageLocation"]
        entry["callingPlan"] = f"sku:{plans[0]}" if plans else "none"
        entry["phoneSystem"] = bool(skus & phone)
        entry["communicationsCredits"] = bool(skus & credits)
        entry.update((overrides or {}).get(upn, {}))
        lines.append(f"  - upn: {json.dumps(upn)}")
        for k, v in entry.items():
            lines.append(f"    {k}: {json.dumps(v)}")
        count += 1
    out.write_text("\n".join(lines) + "\n")
    return count


# -- floors -----------------------------------------------------------------------------------------------

FLOOR_SCRIPT = Path(__file__).resolve().parent / "floor.py"


@dataclass
class Floor:
    """One floor run in a fresh process (benchmarks/floor.py): the loop alone and the whole process."""

    loop_s: float  # the loop, after interpreter start-up and imports
    process_s: float  # the whole process, as `provision plan` is timed: start-up + `import httpx` + the loop
    cpu_s: float  # CPU of the loop
    counts: dict[str, int]


def _floor(args: list[str]) -> Floor:
    m = run_measured([sys.executable, str(FLOOR_SCRIPT), *args]).check()
    out = json.loads(m.stdout)
    return Floor(float(out.pop("loop_s")), m.elapsed_s, float(out.pop("cpu_s")), {k: int(v) for k, v in out.items()})


def read_floor(url: str, select: str) -> Floor:
    """GET /organization, /subscribedSkus and every /users page ($top=999, the reader's $select), in a fresh process."""
    return _floor(["read", url, "--select", select])


def write_floor(work: Path, url: str, requests: list[dict[str, Any]], parallelism: int) -> Floor:
    """POST `requests` as $batch bodies of 20 with `parallelism` in flight, in a fresh process."""
    path = work / "floor-requests.json"
    path.write_text(json.dumps(requests))
    return _floor(["write", url, str(path), "--parallelism", str(parallelism)])


# -- benchmarks -------------------------------------------------------------------------------------------


@dataclass
class PlanRow:
    users: int
    latency_ms: float
    init_s: float
    plan_s: float
    plan_cpu_s: float
    floor_s: float  # the floor's loop alone
    floor_process_s: float  # the floor's whole process (start-up + import httpx + loop), timed like `plan`
    floor_cpu_s: float
    ratio: float  # plan / floor process: like for like, the target's measure
    ratio_loop: float  # plan / floor loop alone: stricter, shown beside it
    peak_rss_mb: float
    requests: int
    floor_pages: int
    actions: int | None
    max_load: float  # highest 1-minute load average seen around the runs; above the CPU count, wall times lie


def _plan_cmd(manifest: Path, url: str, tenant_id: str, out: Path) -> list[str]:
    return [*provision_cmd(), "plan", str(manifest), "--tenant", tenant_id, "--graph-url", url,
            "--format", "json", "--out", str(out)]


def _actions(plan_file: Path) -> int | None:
    try:
        return len(json.loads(plan_file.read_text()).get("actions", []))
    except (OSError, ValueError):
        return None


PLAN_REPEAT = 5  # plans (and floors between them) per size: at 3, one slow draw moved the 100k median by 0.4 s


def bench_plan(work: Path, n: int, repeat: int = PLAN_REPEAT, seed: int = 7, latency_ms: float = 0) -> PlanRow:
    state_path, init = init_tenant(work, n, seed)
    state = load_state(state_path)
    manifest = work / f"all-{n}.yaml"
    write_manifest(state, manifest)
    tenant_id = state["tenant"]["id"]
    del state  # the driver keeps no tenant in memory while it measures
    select = reader_select()
    loads = [os.getloadavg()[0]]
    with serve(state_path, latency_ms=latency_ms) as srv:
        read_floor(srv.url, select)  # warm-up: the server's first pass builds its caches
        # Floors and plans interleaved (floor, plan, floor, plan, ..., floor), so a change in the machine's
        # load during the benchmark weighs on both sides alike.
        floors = [read_floor(srv.url, select)]
        runs: list[Measured] = []
        requests = 0
        for _ in range(repeat):
            srv.reset_stats()
            runs.append(run_measured(_plan_cmd(manifest, srv.url, tenant_id, work / "plan.json")).check(0, 2))
            requests = int(srv.stats()["requests"])
            floors.append(read_floor(srv.url, select))
            loads.append(os.getloadavg()[0])
    plan_s = statistics.median(m.elapsed_s for m in runs)
    floor_s = statistics.median(f.loop_s for f in floors)
    floor_process_s = statistics.median(f.process_s for f in floors)
    return PlanRow(n, latency_ms, init.elapsed_s, plan_s, statistics.median(m.cpu_s for m in runs), floor_s,
                   floor_process_s, statistics.median(f.cpu_s for f in floors), plan_s / floor_process_s,
                   plan_s / floor_s, max(m.peak_rss_mb for m in runs), requests, floors[0].counts["pages"],
                   _actions(work / "plan.json"), max(loads))


@dataclass
class SubsetRow:
    tenant_users: int
    manifest_users: int
    plan_s: float
    round_trips: int
    batches: int
    sub_requests: int
    by_route: dict[str, int]


def bench_subset(work: Path, tenant_users: int = 100_000, manifest_users: int = 1000, seed: int = 7) -> SubsetRow:
    state_path, _ = init_tenant(work, tenant_users, seed)
    state = load_state(state_path)
    rng = random.Random(seed)
    chosen = {u["userPrincipalName"] for u in rng.sample(state["users"], manifest_users)}
    manifest = work / f"subset-{manifest_users}-of-{tenant_users}.yaml"
    write_manifest(state, manifest, upns=chosen)
    with serve(state_path) as srv:
        srv.reset_stats()
        m = run_measured(_plan_cmd(manifest, srv.url, state["tenant"]["id"], work / "subset-plan.json")).check(0, 2)
        stats = srv.stats()
    return SubsetRow(tenant_users, manifest_users, m.elapsed_s, int(stats["requests"]), int(stats["batches"]),
                     int(stats["subRequests"]), dict(sorted(stats.get("byRoute", {}).items())))


@dataclass
class ApplyRow:
    changes: int
    latency_ms: float
    parallelism: int
    plan_s: float
    apply_s: float
    floor_s: float
    floor_batches: int
    ratio: float
    apply_requests: int
    apply_batches: int
    converged: bool


def _removal_targets(state: dict[str, Any], changes: int) -> list[tuple[dict[str, Any], str]]:
    """`changes` users holding exactly one direct Calling Plan (and no group licenses): (user, skuId)."""
    _, calling, _, credits = _sku_facts(state)
    grouped = {m for g in state.get("groups", []) for m in g.get("members", [])}
    out = []
    for u in sorted(state["users"], key=lambda u: u["userPrincipalName"].lower()):
        direct = {lic["skuId"].lower() for lic in u.get("assignedLicenses", [])}
        plans = direct & calling
        if u["id"] in grouped or len(plans) != 1 or direct & credits:
            continue
        out.append((u, plans.pop()))
        if len(out) == changes:
            return out
    raise RuntimeError(f"the tenant has only {len(out)} users to change; give it more users")


def bench_apply(work: Path, changes: int = 10_000, latency_ms: float = 50, parallelism: int = 4,
                seed: int = 7) -> ApplyRow:
    """Remove the Calling Plan of `changes` users (seat-neutral, one assignLicense each), vs the $batch floor."""
    tenant_users = max(30_000, changes * 5)  # ~25% of users hold exactly one direct Calling Plan
    pristine, _ = init_tenant(work, tenant_users, seed)
    state = load_state(pristine)
    targets = _removal_targets(state, changes)
    manifest = work / f"apply-{changes}.yaml"
    write_manifest(state, manifest, upns={u["userPrincipalName"] for u, _ in targets},
                   overrides={u["userPrincipalName"]: {"callingPlan": "none"} for u, _ in targets})
    requests = [{"method": "POST", "url": f"/users/{u['id']}/assignLicense",
                 "headers": {"Content-Type": "application/json"},
                 "body": {"addLicenses": [], "removeLicenses": [sku]}} for u, sku in targets]

    floor_copy = work / "apply-floor-state.json"
    shutil.copyfile(pristine, floor_copy)
    with serve(floor_copy, latency_ms=latency_ms) as srv:
        floor = write_floor(work, srv.url, requests, parallelism)
    floor_s, batches = floor.loop_s, floor.counts["batches"]

    tool_copy = work / "apply-tool-state.json"
    shutil.copyfile(pristine, tool_copy)
    tenant = state["tenant"]["id"]
    plan_file = work / "apply-plan.json"
    with serve(tool_copy, latency_ms=latency_ms) as srv:
        planned = run_measured(_plan_cmd(manifest, srv.url, tenant, plan_file)).check(2, 0)
        n_actions = _actions(plan_file)
        if n_actions != changes:
            raise RuntimeError(f"expected a plan of {changes} actions, got {n_actions}: {planned.stderr[-500:]}")
        srv.reset_stats()
        applied = run_measured([*provision_cmd(), "apply", str(plan_file), "--tenant", tenant, "--graph-url",
                                srv.url, "--auto-approve", "--allow-removals", "--parallelism", str(parallelism),
                                "--audit-log", str(work / "apply-audit.jsonl")]).check()
        stats = srv.stats()
        again = run_measured([*provision_cmd(), "plan", str(manifest), "--tenant", tenant, "--graph-url", srv.url,
                              "--detailed-exitcode"])
    return ApplyRow(changes, latency_ms, parallelism, planned.elapsed_s, applied.elapsed_s, floor_s, batches,
                    applied.elapsed_s / floor_s, int(stats["requests"]), int(stats["batches"]),
                    again.returncode == 0)


# -- reporting ------------------------------------------------------------------------------------------


def plan_table(rows: list[PlanRow]) -> str:
    return table(
        ["users", "latency (ms)", "plan (s)", "floor process (s)", "plan / floor process", "floor loop (s)",
         "plan / floor loop", "plan CPU (s)", "floor loop CPU (s)", "peak RSS (MB)", "round trips", "floor pages",
         "µs per user", "max load", "target (≤ 1.5× process)"],
        [[r.users, r.latency_ms, r.plan_s, r.floor_process_s, r.ratio, r.floor_s, r.ratio_loop, r.plan_cpu_s,
          r.floor_cpu_s, r.peak_rss_mb, r.requests, r.floor_pages, r.plan_s / r.users * 1e6, r.max_load,
          _plan_verdict(r)]
         for r in rows])


def _plan_verdict(r: PlanRow) -> str:
    ok = r.ratio <= PLAN_RATIO_TARGET and (r.users < 100_000 or r.peak_rss_mb <= PLAN_RSS_TARGET_MB)
    busy = r.max_load > (os.cpu_count() or 1)
    # On a busy machine the served emulator slows down too, which inflates the floor and flatters the ratio.
    return verdict(ok) + (" (busy machine: re-measure)" if busy else "")


def subset_table(r: SubsetRow) -> str:
    routes = ", ".join(f"{k}: {v}" for k, v in r.by_route.items())
    return table(["tenant users", "manifest users", "plan (s)", "round trips", "$batch calls", "sub-requests",
                  "by route", "target (≤ 10)"],
                 [[r.tenant_users, r.manifest_users, r.plan_s, r.round_trips, r.batches, r.sub_requests, routes,
                   verdict(r.round_trips <= SUBSET_ROUND_TRIPS_TARGET)]])


def apply_table(r: ApplyRow) -> str:
    return table(["changes", "latency (ms)", "parallelism", "apply (s)", "floor (s)", "floor $batch calls",
                  "apply / floor", "apply round trips", "converged", "target (≤ 1.3×)"],
                 [[r.changes, r.latency_ms, r.parallelism, r.apply_s, r.floor_s, r.floor_batches, r.ratio,
                   r.apply_requests, "yes" if r.converged else "NO",
                   verdict(r.ratio <= APPLY_RATIO_TARGET and r.converged)]])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["plan", "subset", "apply"])
    ap.add_argument("--work", type=Path, default=Path("/tmp/provisioner-bench"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    ap.add_argument("--repeat", type=int, default=PLAN_REPEAT)
    ap.add_argument("--tenant-users", type=int, default=100_000)
    ap.add_argument("--manifest-users", type=int, default=1000)
    ap.add_argument("--changes", type=int, default=10_000)
    ap.add_argument("--latency-ms", type=float, nargs="+",
                    help="emulator latency per request: plan rows for each value (default 0); apply: the first (default 50)")
    ap.add_argument("--parallelism", type=int, default=4)
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    a = ap.parse_args(argv)
    compile_package()
    a.work.mkdir(parents=True, exist_ok=True)
    result: Any
    if a.what == "plan":
        result = [bench_plan(a.work, n, a.repeat, latency_ms=lat) for lat in (a.latency_ms or [0]) for n in a.sizes]
        print(plan_table(result))
    elif a.what == "subset":
        result = bench_subset(a.work, a.tenant_users, a.manifest_users)
        print(subset_table(result))
    else:
        result = bench_apply(a.work, a.changes, (a.latency_ms or [50])[0], a.parallelism)
        print(apply_table(result))
    if a.json:
        data = [asdict(r) for r in result] if isinstance(result, list) else asdict(result)
        a.json.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
