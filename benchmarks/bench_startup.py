"""Startup benchmark: `provision --help` and `provision validate` on a small file, beside `python -c pass`.

Not pure: runs subprocesses. Each figure is the median of several runs after one warm-up run.

    python benchmarks/bench_startup.py --runs 9
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compile_package, median_run, provision_cmd, table, verdict

STARTUP_TARGET_S = 0.5

SMALL_MANIFEST = """\
apiVersion: provisioner/v1
kind: TeamsVoiceLicensing
policy:
  unlisted: ignore
defaults:
  usageLocation: US
users:
  - upn: alice@contoso.com
    callingPlan: domestic
  - upn: bob@contoso.com
    usageLocation: GB
    callingPlan: payg
  - upn: carol@contoso.com
    phoneSystem: true
    callingPlan: none
"""


@dataclass
class StartupRow:
    what: str
    command: str
    median_s: float
    cpu_s: float  # median user+system CPU: steadier than wall time on a busy machine
    min_s: float
    max_s: float
    target: str


def bench_startup(runs: int = 9) -> list[StartupRow]:
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "small.yaml"
        manifest.write_text(SMALL_MANIFEST)
        cases = [
            ("python baseline", [sys.executable, "-c", "pass"], None),
            ("python -c 'import httpx'", [sys.executable, "-c", "import httpx"], None),
            ("provision --help", [*provision_cmd(), "--help"], STARTUP_TARGET_S),
            ("provision validate (3 users)", [*provision_cmd(), "validate", str(manifest)], STARTUP_TARGET_S),
        ]
        rows = []
        for what, cmd, target in cases:
            try:
                med, measured = median_run(cmd, runs)
                times, cpu = [m.elapsed_s for m in measured], statistics.median(m.cpu_s for m in measured)
            except RuntimeError as exc:  # a command not built yet: report it, keep measuring the rest
                print(f"warning: {what}: {str(exc).splitlines()[-1]}", file=sys.stderr)
                med, times, cpu = float("nan"), [float("nan")], float("nan")
            shown = " ".join(Path(c).name if i == 0 else ("small.yaml" if c == str(manifest) else c)
                             for i, c in enumerate(cmd))
            rows.append(StartupRow(what, shown, med, cpu, min(times), max(times),
                                   verdict(None if target is None or med != med else med <= target)))
        return rows


def startup_table(rows: list[StartupRow]) -> str:
    return table(["what", "command", "median (s)", "CPU (s)", "min (s)", "max (s)", "target (≤ 0.5 s)"],
                 [[r.what, f"`{r.command}`", r.median_s, r.cpu_s, r.min_s, r.max_s, r.target] for r in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    compile_package()
    rows = bench_startup(a.runs)
    print(startup_table(rows))
    if a.json:
        a.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
