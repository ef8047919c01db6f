"""Fault suite: `provision apply` through a fault-injecting proxy, then a re-run if needed, must converge.

Each case applies the same ~70-user workload (scenario.py) through `Proxy` (proxy.py) to an in-process
emulator, then checks: the final tenant equals the reference (the same apply with no faults), so nothing is
lost or doubled; seats match; `plan --detailed-exitcode` exits 0; every audit line is whole JSON and no
change is recorded as succeeded twice. Throttling, 503s and latency must be survived in one run; a dropped
connection or kill -9 may fail that run, and the next run must finish the job.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from provisioner.emulator.faults import FaultConfig
from provisioner.emulator.routes import create_app

from .conftest import CaseReport
from .proxy import DropMidBatch, ErrorBurst, Injection, LatencySpike, Proxy, ThrottleStorm
from .scenario import (
    PROVISION,
    apply_args,
    audit_records,
    change_key,
    cli_env,
    diff,
    fresh_state,
    manifest,
    plan_args,
    run_cli,
    snapshot,
    tenant,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

TENANT = tenant()
TENANT_ID = TENANT["tenant"]["id"]
MANIFEST, CHANGED_USERS = manifest(TENANT)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("faults")
    (d / "manifest.yaml").write_text(MANIFEST)
    return d


@pytest.fixture(scope="module")
def reference(workdir: Path) -> dict[str, Any]:
    """The tenant after a fault-free apply, and how many changes that apply made."""
    state = fresh_state(TENANT)
    audit = workdir / "reference-audit.jsonl"
    with Proxy(create_app(state)) as proxy:
        run = run_cli(*apply_args(workdir / "manifest.yaml", proxy.url, TENANT_ID, audit))
        assert run.returncode == 0, run.stderr
        again = run_cli(*plan_args(workdir / "manifest.yaml", proxy.url, TENANT_ID))
        assert again.returncode == 0, f"the fault-free apply did not converge:\n{again.stdout[-2000:]}"
    records = audit_records(audit)
    assert records and all(r["outcome"] == "succeeded" for r in records)
    assert len({r["user"]["upn"].lower() for r in records}) == CHANGED_USERS
    before, after = snapshot(fresh_state(TENANT)), snapshot(state)
    assert diff(before, after), "the workload changed nothing"
    return {"snapshot": after, "changes": len(records)}


def converge(workdir: Path, name: str, proxy: Proxy, rep: CaseReport, reference: dict[str, Any],
             first: Any | None = None, must_survive_first: bool = True) -> None:
    """Run apply (unless `first` already ran), then a second apply if the first failed, then check everything."""
    path, audit = workdir / "manifest.yaml", workdir / f"{name}-audit.jsonl"
    runs = [first] if first is not None else [run_cli(*apply_args(path, proxy.url, TENANT_ID, audit))]
    rep.runs.append(f"apply exit {runs[0].returncode} ({runs[0].elapsed_s:.1f}s)")
    if must_survive_first:
        assert runs[0].returncode == 0, f"apply did not survive the faults:\n{runs[0].stderr[-3000:]}"
    if runs[0].returncode != 0:
        err = runs[0].stderr.strip()
        assert "Traceback" not in err, err
        proxy.injections.clear()  # the faults are over; the operator re-runs
        runs.append(run_cli(*apply_args(path, proxy.url, TENANT_ID, audit)))
        rep.runs.append(f"re-run apply exit {runs[-1].returncode} ({runs[-1].elapsed_s:.1f}s)")
        assert runs[-1].returncode == 0, f"the re-run did not finish the job:\n{runs[-1].stderr[-3000:]}"
    proxy.injections.clear()
    final = run_cli(*plan_args(path, proxy.url, TENANT_ID))
    rep.runs.append(f"plan --detailed-exitcode exit {final.returncode}")
    assert final.returncode == 0, f"not converged:\n{final.stdout[-3000:]}\n{final.stderr[-1000:]}"

    problems = diff(reference["snapshot"], snapshot(proxy.app.state.emulator.state))
    assert not problems, "final tenant differs from the fault-free reference:\n" + "\n".join(problems[:20])
    rep.survived.append(f"final tenant == fault-free reference ({CHANGED_USERS} users changed, seats equal)")

    records = audit_records(audit)
    succeeded = Counter(change_key(r) for r in records if r.get("outcome") == "succeeded")
    doubled = [k for k, n in succeeded.items() if n > 1]
    assert not doubled, f"changes recorded as succeeded more than once: {doubled[:5]}"
    assert sum(succeeded.values()) <= reference["changes"]
    if must_survive_first:  # one run did everything: every change has exactly one success line
        assert sum(succeeded.values()) == reference["changes"], (sum(succeeded.values()), reference["changes"])
    rep.survived.append(f"audit log: {len(records)} whole JSON lines, {sum(succeeded.values())} successes, "
                        "none doubled")
    rep.injected.update(proxy.injected)
    rep.ok = True


def fresh_proxy(*injections: Injection, **kw: Any) -> Proxy:
    return Proxy(create_app(fresh_state(TENANT)), list(injections), **kw)


def test_throttling_storm(workdir: Path, reference: dict[str, Any], report: CaseReport) -> None:
    """Two storms in which half of all requests and sub-requests answer 429 + Retry-After: 1: for 1.5 s from
    the first request (the reads), and for 2 s from the first write."""
    reads = ThrottleStorm(duration_s=1.5, share=0.5, seed=1)
    writes = ThrottleStorm(duration_s=2, share=0.5, seed=2, on_writes=True)
    writes.name = "throttle storm on writes"
    with fresh_proxy(reads, writes, seed=1) as proxy:
        converge(workdir, "storm", proxy, report, reference)
    assert report.injected.get("throttle storm on writes: 429 sub-requests", 0) >= 20, report.injected
    assert report.injected.get("throttle storm: 429 sub-requests", 0) >= 1, report.injected


def test_503_burst(workdir: Path, reference: dict[str, Any], report: CaseReport) -> None:
    """Six consecutive requests (reads and the first $batch) answer 503, half with Retry-After, half without."""
    with fresh_proxy(ErrorBurst(first=3, count=6)) as proxy:
        converge(workdir, "burst", proxy, report, reference)
    assert report.injected.get("503 burst: 503 answers") == 6


def test_latency_spike(workdir: Path, reference: dict[str, Any], report: CaseReport) -> None:
    """Three consecutive requests (the last read and the first writes) are held 1.5 s each (slow, not failed):
    nothing may be sent twice."""
    with fresh_proxy(LatencySpike(first=2, count=3, delay_s=1.5)) as proxy:
        converge(workdir, "spike", proxy, report, reference)
    assert report.injected.get("latency spike: requests held 1.5s") == 3


def test_connection_dropped_mid_batch(workdir: Path, reference: dict[str, Any], report: CaseReport) -> None:
    """The 2nd write batch runs on the server, then its connection closes with no answer: the tool cannot
    know what was done, so that run fails (clearly); the re-run must neither redo nor miss anything."""
    with fresh_proxy(DropMidBatch(which=(2,))) as proxy:
        converge(workdir, "drop", proxy, report, reference, must_survive_first=False)
    assert report.injected.get("connection dropped mid-batch: batches executed then dropped") == 1


def test_emulator_seeded_faults_throughout(workdir: Path, reference: dict[str, Any], report: CaseReport) -> None:
    """The emulator's own fault injection (what `serve --throttle-rate 0.1 --error-rate 0.05` does) on every
    request and every sub-request, for the whole run."""
    faults = FaultConfig(throttle_rate=0.1, error_rate=0.05, seed=5)
    with Proxy(create_app(fresh_state(TENANT), faults=faults)) as proxy:
        converge(workdir, "seeded", proxy, report, reference)
        stats = proxy.app.state.emulator.stats
        report.injected["emulator 429 answers (requests and sub-requests)"] = stats.throttled
        report.injected["emulator 503 answers (requests and sub-requests)"] = stats.errors
    assert stats.throttled >= 5 and stats.errors >= 2, (stats.throttled, stats.errors)


def test_answers_lost_after_writes(workdir: Path, reference: dict[str, Any], report: CaseReport) -> None:
    """A share of the writes are made but answered 504 (a gateway timeout: the caller cannot tell they
    happened). Retried, a removal already made is refused ("does not have a corresponding license"): apply
    reads the user and counts it as done. One run must do everything, each change recorded once."""
    faults = FaultConfig(lost_reply_rate=0.15, seed=6)
    with Proxy(create_app(fresh_state(TENANT), faults=faults)) as proxy:
        converge(workdir, "lost", proxy, report, reference)
        lost = proxy.app.state.emulator.faults.lost
        report.injected["writes made but answered 504"] = lost
    assert lost >= 3, lost


@pytest.mark.parametrize("point", ["random time", "after write batch 1", "after write batch 3"])
def test_kill_9_then_rerun(workdir: Path, reference: dict[str, Any], report: CaseReport, point: str) -> None:
    """kill -9 of `provision apply` (at a seeded random time, or while a write batch's answer is in flight),
    then a plain re-run."""
    rng = random.Random(f"kill-{point}")
    name = "kill-" + point.replace(" ", "-")
    audit = workdir / f"{name}-audit.jsonl"
    proc: subprocess.Popen[str] | None = None
    killed_at: list[str] = []

    def kill(n: int) -> None:
        if proc is not None and point == f"after write batch {n}":
            proc.send_signal(signal.SIGKILL)
            killed_at.append(f"write batch {n} executed, answer in flight")

    # 0.3 s per $batch and one in flight: the writes take ~1.5 s, so every kill point falls inside the run.
    with fresh_proxy(batch_latency_s=0.3, on_write_forwarded=kill) as proxy:
        args = apply_args(workdir / "manifest.yaml", proxy.url, TENANT_ID, audit, parallelism=1)
        start = time.perf_counter()
        proc = subprocess.Popen([*PROVISION, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=cli_env())
        if point == "random time":
            delay = rng.uniform(0.8, 2.2)  # from process start: lands in start-up, reading or writing
            timer = threading.Timer(delay, lambda: (proc.send_signal(signal.SIGKILL),
                                                    killed_at.append(f"{delay:.2f}s after start")))
            timer.start()
        out, err = proc.communicate(timeout=90)
        first = type("Run", (), {"returncode": proc.returncode, "stdout": out, "stderr": err,
                                 "elapsed_s": time.perf_counter() - start})()
        report.injected[f"kill -9 ({killed_at[0] if killed_at else 'run finished first'})"] = 1
        report.injected["write batches executed before the kill"] = proxy.write_batches
        if proc.returncode == -signal.SIGKILL:
            first.stderr = ""  # a killed process says nothing; converge() only reads stderr of failures
        converge(workdir, name, proxy, report, reference, first=first, must_survive_first=False)
    assert killed_at, "the kill never happened: the run finished before the kill point"
