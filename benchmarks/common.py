"""Shared helpers for the benchmarks: run `provision` as a measured subprocess, serve an emulator, print tables.

Not pure: starts processes, reads /proc, talks HTTP to loopback. Standard library plus httpx (a product
dependency) only, so the benchmarks run in the project's own venv without extra installs.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
LISTENING = re.compile(r"listening on (http://\S+/v1\.0)")


def provision_cmd() -> list[str]:
    """The `provision` console script of this interpreter's venv (what users run), else `python -m provisioner`."""
    script = Path(sys.executable).with_name("provision")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "provisioner"]


def compile_package() -> None:
    """Compile provisioner's modules to bytecode before measuring, as `pip install` does for an installed
    package. An editable checkout holds only the bytecode earlier runs wrote, and with PYTHONDONTWRITEBYTECODE
    set (as on this project's machines) every command recompiles each module changed since, in every run."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("provisioner")
    for where in (spec.submodule_search_locations or []) if spec is not None else []:
        compileall.compile_dir(where, quiet=1)


@dataclass(frozen=True)
class Measured:
    """One finished subprocess: wall time, peak RSS (from the kernel's own accounting), exit code, output."""

    cmd: tuple[str, ...]
    elapsed_s: float
    cpu_s: float  # user + system CPU of the child: less sensitive than wall time to other load on the machine
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str

    def check(self, *ok: int) -> Measured:
        allowed = ok or (0,)
        if self.returncode not in allowed:
            tail = "\n".join(self.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"{' '.join(self.cmd)} exited {self.returncode} (expected {allowed}):\n{tail}")
        return self


# Runs `cmd` from a small, fresh interpreter and reports wait4()'s figures for it. Why not Popen + wait4 here:
# Linux keeps, in a child's ru_maxrss, the high-water mark of the memory it had before exec, and a child
# forked from this driver (which has held whole tenants) starts as big as the driver: a 10k plan measured
# 274 MB that way. Forked from this ~8 MB launcher, the figure is the command's own.
_LAUNCHER = """
import json, os, sys, time
report, cmd = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
elapsed = time.perf_counter() - start
with open(report, "w") as f:
    json.dump({"elapsed": elapsed, "cpu": ru.ru_utime + ru.ru_stime, "maxrss": ru.ru_maxrss,
               "code": os.waitstatus_to_exitcode(status)}, f)
"""


def run_measured(cmd: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 1800,
                 cwd: Path | None = None) -> Measured:
    """Run `cmd` to completion: wall time, CPU and peak RSS from wait4() of that very process.

    wait4 is exact (the kernel tracks the high-water mark) where sampling /proc could miss a short peak; the
    command is started by a small launcher (see _LAUNCHER) so the figure is its own. Output goes to
    temporary files so a chatty child can never block on a full pipe.
    """
    full_env = {**os.environ, **(env or {})}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        proc = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCHER, str(report), *cmd], stdout=out,
                                stderr=err, env=full_env, cwd=cwd, start_new_session=True)
        timer = threading.Timer(timeout, lambda: _kill_group(proc.pid))
        timer.start()
        try:
            launcher = proc.wait()
        finally:
            timer.cancel()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
        if launcher != 0 or not report.exists():
            return Measured(tuple(cmd), float("nan"), float("nan"), float("nan"), launcher or -9, stdout, stderr)
        r = json.loads(report.read_text())
        peak_kib = r["maxrss"] if sys.platform != "darwin" else r["maxrss"] / 1024
        return Measured(tuple(cmd), float(r["elapsed"]), float(r["cpu"]), peak_kib / 1024, int(r["code"]),
                        stdout, stderr)


def _kill_group(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def median_time(cmd: Sequence[str], runs: int = 7, *, env: dict[str, str] | None = None,
                ok: Sequence[int] = (0,)) -> tuple[float, list[float]]:
    """Median wall time of `runs` runs (after one warm-up run that fills the OS page cache)."""
    med, runs_ = median_run(cmd, runs, env=env, ok=ok)
    return med, [m.elapsed_s for m in runs_]


def median_run(cmd: Sequence[str], runs: int = 7, *, env: dict[str, str] | None = None,
               ok: Sequence[int] = (0,)) -> tuple[float, list[Measured]]:
    """Median wall time and every measured run, after one warm-up run that fills the OS page cache."""
    run_measured(cmd, env=env).check(*ok)
    measured = [run_measured(cmd, env=env).check(*ok) for _ in range(runs)]
    return statistics.median(m.elapsed_s for m in measured), measured


def rss_mb(pid: int) -> float:
    """Current RSS of a live process in MB (/proc; psutil when /proc is missing and psutil is installed)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import psutil  # optional: only for platforms without /proc
    except ImportError:
        return float("nan")
    return float(psutil.Process(pid).memory_info().rss) / (1024 * 1024)


# -- a served emulator --------------------------------------------------------------------------------


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT/v1.0
    proc: subprocess.Popen[str]

    @property
    def root(self) -> str:
        return self.url.rsplit("/v1.0", 1)[0]

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.root}/_emulator/stats", timeout=30).json())

    def reset_stats(self) -> None:
        httpx.post(f"{self.root}/_emulator/stats/reset", timeout=30).raise_for_status()


@contextmanager
def serve(state_path: Path, *, latency_ms: float = 0, throttle_rate: float = 0, error_rate: float = 0,
          seed: int = 0, ready_timeout: float = 300) -> Iterator[Served]:
    """`provision emulator serve STATE --port 0 ...` until the block ends; yields once it prints its URL."""
    cmd = [*provision_cmd(), "emulator", "serve", str(state_path), "--port", "0",
           "--latency-ms", str(latency_ms), "--throttle-rate", str(throttle_rate),
           "--error-rate", str(error_rate), "--seed", str(seed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    url = None
    seen: list[str] = []
    deadline = time.monotonic() + ready_timeout
    try:
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip())
            m = LISTENING.search(line)
            if m:
                url = m.group(1)
                break
        if url is None:
            raise RuntimeError(f"emulator did not start: {' '.join(cmd)}\n" + "\n".join(seen[-10:]))
        # keep draining its output so uvicorn's access log (if any) never blocks it
        threading.Thread(target=_drain, args=(proc,), daemon=True).start()
        yield Served(url, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _drain(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    for _ in proc.stdout:
        pass


# -- reporting ------------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table (also readable in a terminal): numbers right-aligned."""
    cells = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [all(_is_num(r[i]) for r in rows) and bool(rows) for i in range(len(headers))]

    def line(vals: Sequence[str]) -> str:
        return "| " + " | ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(vals, widths, numeric,
                                                                                   strict=True)) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if n else ("-" * (w + 2)) for w, n in zip(widths, numeric,
                                                                                        strict=True)) + "|"
    return "\n".join([line(list(headers)), sep, *(line(r) for r in cells)])


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != v:  # NaN: not measured
            return "—"
        if abs(v) < 1:
            return f"{v:.3f}"
        return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def machine() -> dict[str, str]:
    """What the numbers were measured on: CPUs, CPU model, RAM, OS, Python."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "CPUs (nproc)": str(os.cpu_count() or "?"),
        "CPU model": model,
        "RAM": ram,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version() + f" ({platform.python_implementation()})",
    }


def load_average() -> str:
    """The 1-minute load average and CPU count: numbers taken on a busy machine say so."""
    try:
        one = os.getloadavg()[0]
    except OSError:
        return "unknown"
    return f"{one:.2f} on {os.cpu_count()} CPUs"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def have_provision() -> bool:
    return Path(sys.executable).with_name("provision").exists() or shutil.which("provision") is not None
