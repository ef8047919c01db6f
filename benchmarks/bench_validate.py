"""Benchmark `provision validate` end to end (process start to exit) on generated manifests; prints a table.

Not pure: writes manifests under --work and runs the CLI as subprocesses. Target (issue 3): a
100,000-user manifest validates in under 3 s on the project's 2-core machine. Also measured: the same
users split over 20 files, and one file that the fast reader hands to libyaml (a flow-style list in it),
to show what the fallback costs.

    /tmp/venv/bin/python benchmarks/bench_validate.py                  # 10k, 50k, 100k users
    /tmp/venv/bin/python benchmarks/bench_validate.py --quick          # 1k, 10k users
    /tmp/venv/bin/python benchmarks/bench_validate.py --sizes --extra /tmp/provisioner-bench/all-100000.yaml
                                                                       # only given manifests (files or folders)
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import compile_package, provision_cmd, run_measured, table  # noqa: E402

TARGET_S, TARGET_USERS = 3.0, 100_000
# (usage location, callingPlan) mixes an organisation would have; a few Direct Routing users and leavers.
_SHAPES = [
    ("US", "domestic"), ("US", "domestic"), ("US", "international"), ("US", "payg"), ("GB", "domestic-120"),
    ("GB", "payg"), ("CA", "domestic"), ("DE", "domestic-240"), ("FR", "domestic"), ("NL", "international"),
]


def write_manifests(folder: Path, n_users: int, n_files: int, *, flow: bool = False, seed: int = 7) -> Path:
    """`n_users` users over `n_files` files in `folder` (created); returns the folder."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    per_file = -(-n_users // n_files)
    for f in range(n_files):
        lines = [
            "# yaml-language-server: $schema=./schema.json",
            "apiVersion: provisioner/v1",
            "kind: TeamsVoiceLicensing",
        ]
        if f == 0:
            lines += ["policy:", "  unlisted: ignore", "  maxRemovals: 100"]
        lines += ["defaults:", "  phoneSystem: true", "users:"]
        if flow:  # one flow-style entry: outside the fast reader's subset, so the whole file goes to libyaml
            lines.append("  - {upn: flow@contoso.com, usageLocation: US, callingPlan: domestic}")
        for i in range(f * per_file, min(n_users, (f + 1) * per_file)):
            r = rng.random()
            upn = f"user{i:06d}@contoso.com"
            if r < 0.05:
                lines += [f"  - upn: {upn}", "    phoneSystem: false   # leaver", "    callingPlan: none"]
            elif r < 0.15:
                lines += [f"  - upn: {upn}", f"    usageLocation: {rng.choice(_SHAPES)[0]}", "    callingPlan: none"]
            else:
                country, plan = rng.choice(_SHAPES)
                lines += [f"  - upn: {upn}", f"    usageLocation: {country}", f"    callingPlan: {plan}"]
        (folder / f"users-{f:02d}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def measure(path: Path, runs: int) -> tuple[float, float, float, float, float]:
    """Median, min, max wall seconds, median CPU seconds and peak RSS MB of `provision validate path`.

    CPU time (user + system, from the kernel's accounting of the finished child) is reported beside wall
    time because it hardly moves when other work shares the machine; wall time does.
    """
    cmd = [*provision_cmd(), "validate", str(path)]
    run_measured(cmd).check(0)
    walls, cpus, rss = [], [], 0.0
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = run_measured(cmd).check(0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        walls.append(r.elapsed_s)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        rss = max(rss, r.peak_rss_mb)
    walls.sort()
    return walls[len(walls) // 2], walls[0], walls[-1], statistics.median(cpus), rss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    ap.add_argument("--sizes", type=int, nargs="*", help="user counts (default 10000 50000 100000)")
    ap.add_argument("--runs", type=int, default=5, help="measured runs per case (median reported)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench-validate"), help="where manifests are written")
    ap.add_argument("--extra", type=Path, nargs="*", default=[], help="also measure these manifests (files or folders)")
    a = ap.parse_args()
    compile_package()
    sizes = a.sizes if a.sizes is not None else ([1_000, 10_000] if a.quick else [10_000, 50_000, 100_000])
    rows = []
    for path in a.extra:
        size_mb = sum(f.stat().st_size for f in ([path] if path.is_file() else path.rglob("*.y*ml"))) / 1e6
        med, lo, hi, cpu, rss = measure(path, a.runs)
        rows.append(("given", str(path), size_mb, med, lo, hi, cpu, rss, "n/a"))
    for n in sizes:
        for label, files, flow in (("1 file", 1, False), ("20 files", 20, False), ("1 file, libyaml fallback", 1, True)):
            if flow and n > 20_000 and not a.quick and n != max(sizes):
                continue  # the fallback is slow by design: measure it at the largest size only
            folder = write_manifests(a.work / f"{n}-{files}-{int(flow)}", n, files, flow=flow)
            size_mb = sum(f.stat().st_size for f in folder.glob("*.yaml")) / 1e6
            med, lo, hi, cpu, rss = measure(folder, a.runs)
            target = "n/a"
            if n == TARGET_USERS and not flow:
                target = "met" if med < TARGET_S else "MISSED"
            rows.append((f"{n:,}", label, size_mb, med, lo, hi, cpu, rss, target))
    print(f"`provision validate` end to end, median of {a.runs} runs after a warm-up (target: {TARGET_USERS:,} users < {TARGET_S:.0f} s).\n")
    print(table(("users", "layout", "MB", "median (s)", "min (s)", "max (s)", "CPU (s)", "peak RSS (MB)", "target"), rows))
    print(f"\nload average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times grow with it).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
