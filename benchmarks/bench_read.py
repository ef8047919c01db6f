"""Benchmark: read a 100,000-user served emulator through our reader vs a bare httpx loop over the same pages.

Usage: python benchmarks/bench_read.py [--users 100000] [--runs 3] [--seed 1]

Generates a synthetic tenant (`provision emulator init --users N`, i.e. emulator.demo.synthetic_state), serves it with
`provision emulator serve --port 0` in a subprocess, then runs each mode in a fresh child process
(alternating, `--runs` times) so peak RSS is per mode. Both read `$top=999` pages with the same `$select`
and follow @odata.nextLink; the bare loop keeps the decoded dicts, our reader keeps slim User records.
Targets (issue 4): reader within 1.3x of the bare loop, under 400 MB peak RSS. Wall times are noisy on a
shared machine (the server and the client share the CPUs): compare the medians, and the CPU column.
Exit status 0 when both targets are met.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SELECT = (
    "id,userPrincipalName,displayName,accountEnabled,usageLocation,assignedLicenses,licenseAssignmentStates"
)


def child(mode: str, url: str) -> None:
    """One measured read in this process; prints a JSON line."""
    t_import = time.perf_counter()
    if mode == "bare":
        import httpx
        import orjson

        imported = time.perf_counter()
        users: list[dict] = []
        with httpx.Client(timeout=100) as c:
            link: str | None = f"{url}/users?$select={SELECT}&$top=999"
            pages = 0
            while link:
                body = orjson.loads(c.get(link).content)
                users.extend(body["value"])
                link = body.get("@odata.nextLink")
                pages += 1
        n = len(users)
    else:
        from provisioner.graph import connect

        imported = time.perf_counter()
        with connect(None, graph_url=url) as conn:
            obs = conn.read([], lambda skus: [s.sku_id for s in skus], strategy="scan")
            pages = conn.transport.round_trips
        n = len(obs.users)
    done = time.perf_counter()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"mode": mode, "users": n, "requests": pages, "read_s": done - imported,
                      "import_s": imported - t_import, "cpu_s": ru.ru_utime + ru.ru_stime,
                      "rss_mb": peak_rss_mb()}))  # fmt: skip


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM is per address space; ru_maxrss would include the parent's peak at
    fork time (it survives execve), which for this benchmark is the 100,000-user generator."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(path: Path) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "provisioner", "emulator", "serve", str(path), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    found: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("listening on "):
                found.append(line.split()[-1])
                return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(120)
    if not found:
        proc.kill()
        raise SystemExit("the emulator did not start")
    return proc, found[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--child", choices=["bare", "reader"])
    ap.add_argument("--url")
    a = ap.parse_args()
    if a.child:
        child(a.child, a.url)
        return

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tenant.json"
        t = time.perf_counter()
        # in a child process, so this one stays small (its children inherit nothing big)
        subprocess.run([sys.executable, "-m", "provisioner", "emulator", "init", str(path), "--users", str(a.users),
                        "--seed", str(a.seed)], check=True, capture_output=True)  # fmt: skip
        print(f"generated {a.users:,} users in {time.perf_counter() - t:.1f} s ({path.stat().st_size / 1e6:.0f} MB)",
              file=sys.stderr)  # fmt: skip
        proc, url = serve(path)
        try:
            results: dict[str, list[dict]] = {"bare": [], "reader": []}
            env = {**os.environ, "PYTHONHASHSEED": "0"}
            # warm the server's page caches once, unmeasured
            subprocess.run([sys.executable, __file__, "--child", "bare", "--url", url], check=True, env=env,
                           capture_output=True)  # fmt: skip
            for _ in range(a.runs):
                for mode in ("bare", "reader"):
                    out = subprocess.run([sys.executable, __file__, "--child", mode, "--url", url], check=True,
                                         env=env, capture_output=True, text=True)  # fmt: skip
                    results[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    med = {m: statistics.median(r["read_s"] for r in rs) for m, rs in results.items()}
    rss = {m: max(r["rss_mb"] for r in rs) for m, rs in results.items()}
    print(f"\nread {a.users:,} users from a served emulator, median of {a.runs} runs (fresh process each)\n")
    print(
        "| mode | users kept | requests | read (s) | runs (s) | import (s) | process CPU (s) | peak RSS (MB) | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for m in ("bare", "reader"):
        rs = results[m]
        runs = ", ".join(f"{r['read_s']:.2f}" for r in rs)
        print(f"| {'bare httpx loop' if m == 'bare' else 'provisioner reader'} | {rs[0]['users']:,} | "
              f"{rs[0]['requests']} | {med[m]:.2f} | {runs} | {statistics.median(r['import_s'] for r in rs):.2f} | "
              f"{statistics.median(r['cpu_s'] for r in rs):.2f} | {rss[m]:.0f} | {med[m] / med['bare']:.2f}x |")  # fmt: skip
    ok = med["reader"] <= 1.3 * med["bare"] and rss["reader"] < 400
    print(f"\ntargets: reader <= 1.3x bare and < 400 MB: {'met' if ok else 'NOT met'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
