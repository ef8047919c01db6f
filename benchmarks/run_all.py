"""Run every benchmark once and write benchmarks/RESULTS.md (tables, targets, machine, commands to reproduce).

Not pure: generates tenants under --work (100k users is ~60 MB of JSON), serves emulators, runs the CLI.
Not run by CI (it takes minutes). The sibling scripts owned by other areas (bench_read.py, bench_plan.py,
bench_apply.py, bench_validate.py) are run as subprocesses when present and their output is appended.

    /tmp/venv/bin/python benchmarks/run_all.py                 # everything, ~10 minutes
    /tmp/venv/bin/python benchmarks/run_all.py --quick         # 1k/5k/10k users, 1,000 changes: a smoke run
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_e2e  # noqa: E402
import bench_startup  # noqa: E402
from common import compile_package, load_average, machine, table  # noqa: E402

SIBLINGS = ("bench_read.py", "bench_plan.py", "bench_apply.py", "bench_validate.py")
LOADS: list[tuple[str, str, str]] = []
PLAN_LATENCY_MS = 50.0  # (benchmark, load average before, after): other work skews wall times


def growth_exponent(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log(y) on log(x): 1.0 means linear growth, 2.0 quadratic."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    den = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / den if den else None


def growth_table(rows: list[bench_e2e.PlanRow]) -> tuple[str, str]:
    xs = [float(r.users) for r in rows]
    series = {
        "plan wall time": [r.plan_s for r in rows],
        "floor process (bare page fetch)": [r.floor_process_s for r in rows],
        "floor loop alone": [r.floor_s for r in rows],
        "peak RSS": [r.peak_rss_mb for r in rows],
        "round trips": [float(r.requests) for r in rows],
        "emulator init": [r.init_s for r in rows],
    }
    out = []
    for name, ys in series.items():
        k = growth_exponent(xs, ys)
        out.append([name, *ys, "—" if k is None else f"{k:.2f}", _complexity(k)])
    headers = ["measure", *(f"{r.users:,} users" for r in rows), "log-log slope", "growth"]
    note = ("Slope of log(measure) against log(users) over the sizes above: 1.0 is linear (O(N)). "
            "Peak RSS includes a fixed ~interpreter+libraries base, so its slope understates the per-user part.")
    return table(headers, out), note


def _complexity(k: float | None) -> str:
    if k is None:
        return "—"
    if k < 0.3:
        return "≈ constant"
    if k < 1.25:
        return "≈ linear, O(N)"
    if k < 1.6:
        return "O(N log N) or worse"
    return "super-linear: investigate"


def run_sibling(name: str, work: Path, quick: bool) -> str | None:
    script = HERE / name
    if not script.exists():
        return None
    cmd = [sys.executable, str(script)]
    if quick and '"--quick"' in script.read_text():  # not every sibling has a smoke mode
        cmd.append("--quick")
    elif quick and '"--changes"' in script.read_text():
        cmd += ["--changes", "1000"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, cwd=HERE.parent)
    body = proc.stdout.strip() or "(no output)"
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        body += f"\n\n(exit status {proc.returncode}: a target missed, or a failure; last stderr line: {last!r})"
    return body


def attempt(label: str, fn: Callable[[], Any], failures: list[str]) -> Any:
    """Run one benchmark; a failure is recorded (and reported) instead of stopping the others."""
    print(f"== {label}", file=sys.stderr, flush=True)
    start, before = time.perf_counter(), load_average()
    try:
        result = fn()
    except Exception as exc:
        traceback.print_exc()
        lines = str(exc).strip().splitlines()
        failures.append(f"{label}: {type(exc).__name__}: " + " / ".join(dict.fromkeys(lines[:1] + lines[-1:])))
        return None
    finally:
        LOADS.append((label, before, load_average()))
    print(f"   done in {time.perf_counter() - start:.1f}s", file=sys.stderr, flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/provisioner-bench"))
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--quick", action="store_true", help="small sizes: checks the harness, not the targets")
    ap.add_argument("--only", nargs="+", choices=["startup", "plan", "subset", "apply", "siblings"])
    a = ap.parse_args(argv)
    compile_package()
    a.work.mkdir(parents=True, exist_ok=True)
    sizes = [1_000, 5_000, 10_000] if a.quick else [10_000, 50_000, 100_000]
    subset_tenant = 10_000 if a.quick else 100_000
    changes = 1_000 if a.quick else 10_000
    want = set(a.only or ["startup", "plan", "subset", "apply", "siblings"])
    failures: list[str] = []
    sections: list[str] = []

    if "startup" in want:
        rows = attempt("startup", lambda: bench_startup.bench_startup(9), failures)
        if rows:
            sections.append("### Startup (median of 9 runs after a warm-up)\n\n" + bench_startup.startup_table(rows))
    if "plan" in want:
        plan_rows = [r for r in (attempt(f"plan {n:,} users", lambda n=n: bench_e2e.bench_plan(a.work, n), failures)
                                 for n in sizes) if r]
        if plan_rows:
            sections.append(
                "### `plan` end to end, every user managed, vs the bare page-fetch floor\n\n"
                "Floor: `benchmarks/floor.py read`, one httpx client fetching `/organization`, `/subscribedSkus` "
                "and every `/users` page (`$top=999`, the reader's `$select`), parsing each JSON body, in a fresh "
                "process. `floor process` is that whole process timed as `plan` is (interpreter start-up and "
                "`import httpx` included): the like-for-like measure; `floor loop` is the loop alone. "
                f"Median of {bench_e2e.PLAN_REPEAT} plans and {bench_e2e.PLAN_REPEAT + 1} floors, interleaved. The emulator answers on loopback with no "
                "added latency, so both sides are bound by the client's CPU: the hardest case for the ratio. "
                f"Targets: ≤ {bench_e2e.PLAN_RATIO_TARGET}× the floor; peak RSS ≤ "
                f"{bench_e2e.PLAN_RSS_TARGET_MB:.0f} MB at 100k.\n\n"
                + bench_e2e.plan_table(plan_rows))
            if len(plan_rows) >= 2:
                gt, note = growth_table(plan_rows)
                sections.append("### Growth with N\n\n" + gt + "\n\n" + note)
        slow = [r for r in (attempt(f"plan {n:,} users at {PLAN_LATENCY_MS:.0f} ms",
                                    lambda n=n: bench_e2e.bench_plan(a.work, n, latency_ms=PLAN_LATENCY_MS), failures)
                            for n in sizes[::2]) if r]
        if slow:
            sections.append(
                f"### `plan` end to end with {PLAN_LATENCY_MS:.0f} ms added to every request\n\n"
                f"The same measure with `provision emulator serve --latency-ms {PLAN_LATENCY_MS:.0f}` (the latency "
                "the apply target is set at): page fetches wait on the service, as they do on Graph, and the "
                "client's work (decoding, the manifest, planning) can hide behind the waits.\n\n"
                + bench_e2e.plan_table(slow))
    if "subset" in want:
        sub = attempt("subset", lambda: bench_e2e.bench_subset(a.work, subset_tenant, 1000), failures)
        if sub:
            sections.append(f"### `plan` of 1,000 users in a {subset_tenant:,}-user tenant: round trips\n\n"
                            "Counted by the emulator (`GET /_emulator/stats`): one `$batch` is one round trip.\n\n"
                            + bench_e2e.subset_table(sub))
    if "apply" in want:
        ap_row = attempt("apply", lambda: bench_e2e.bench_apply(a.work, changes, 50, 4), failures)
        if ap_row:
            sections.append(
                f"### `apply` of {changes:,} changes with `--latency-ms 50` vs the `$batch` floor\n\n"
                "Each change removes one user's Calling Plan (one `assignLicense`). Floor: a bare httpx loop "
                "posting the same requests as `$batch` bodies of 20, same parallelism, against a fresh copy of "
                "the same tenant. `apply` applies the saved plan (including its staleness check). "
                f"Target ≤ {bench_e2e.APPLY_RATIO_TARGET}×; then `plan --detailed-exitcode` must exit 0.\n\n"
                + bench_e2e.apply_table(ap_row))
    if "siblings" in want:
        for name in SIBLINGS:
            body = attempt(name, lambda name=name: run_sibling(name, a.work, a.quick), failures)
            if body:
                sections.append(f"### `benchmarks/{name}`\n\n{body}")

    m = machine()
    doc = [
        "# Benchmark results",
        "",
        f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
        + (" with `--quick` (small sizes: not the targets' sizes)." if a.quick else "."),
        "",
        table(["machine", ""], list(m.items())),
        "",
        "Reproduce: `python benchmarks/run_all.py` (all), or one part: `python benchmarks/bench_e2e.py plan "
        "--sizes 10000 50000 100000`, `... subset`, `... apply --changes 10000 --latency-ms 50`, "
        "`python benchmarks/bench_startup.py`.",
        "",
        *("\n\n".join(sections).splitlines()),
    ]
    if LOADS:
        doc += ["", "### Machine load while measuring", "",
                "1-minute load average before and after each benchmark. Wall times taken while other work ran "
                "on the machine (load above the CPU count) are inflated; CPU seconds are the steadier figure.", "",
                table(["benchmark", "load before", "load after"], LOADS)]
    if failures:
        doc += ["", "### Not measured (failed)", "", *(f"- {f}" for f in failures)]
    text = "\n".join(doc) + "\n"
    a.out.write_text(text)
    print(text)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
