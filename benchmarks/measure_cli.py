"""Run `provision ARGS...` in this process, then print the peak memory of it and of its worker processes.

    python benchmarks/measure_cli.py plan MANIFEST --tenant ... --graph-url ...

The same start-up as the `provision` console script (an interpreter importing provisioner.cli and calling
main). The last stderr line is JSON: {"exit": N, "peak_rss_mb": this process, "workers_peak_rss_mb": the
largest waited-for child (`plan` parses big manifests in a forked worker)}. A parent's wait4() sees only its
own child, so without this line a benchmark would miss the worker's memory.
"""

from __future__ import annotations

import json
import resource
import sys

from provisioner.cli import main


def _mb(who: int) -> float:
    kib = resource.getrusage(who).ru_maxrss
    return kib / 1024 / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS, KiB elsewhere


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    report = {"exit": code, "peak_rss_mb": _mb(resource.RUSAGE_SELF),
              "workers_peak_rss_mb": _mb(resource.RUSAGE_CHILDREN)}
    print(json.dumps(report), file=sys.stderr)
    raise SystemExit(code)
