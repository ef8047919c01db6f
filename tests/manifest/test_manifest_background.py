"""Big manifests load in a forked child while `plan` imports the Graph stack (manifest/background.py).

The child only accelerates: what `InputsLoading(...).finish()` gives, prints and raises is what `load_inputs` gives,
prints and raises, whether the child succeeds, fails on a manifest error, or sends what does not decode. Each
test checks that a child really ran (else it would compare the in-process path with itself).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from provisioner.errors import ManifestError
from provisioner.manifest import background
from provisioner.pipeline import InputsLoading, load_inputs

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="manifests load in a child only on Linux")

HEAD = "apiVersion: provisioner/v1\nkind: TeamsVoiceLicensing\n"
SHAPES = (
    '    usageLocation: "US"\n    callingPlan: "domestic"\n',
    "    usageLocation: GB\n    callingPlan: international\n    phoneSystem: true\n",
    "    callingPlan: none\n    phoneSystem: false\n",
    "    usageLocation: MX\n    callingPlan: domestic\n",  # only the override (mx.yaml) sells it
    "",
)


def _users(prefix: str, n: int, extra: str = "") -> str:
    return "users:\n" + "".join(
        f"  - upn: {prefix}{i:05d}@contoso.com\n{SHAPES[i % len(SHAPES)]}{extra if i == n // 2 else ''}"
        for i in range(n)
    )


def _tree(tmp_path: Path) -> Path:
    """Two big files (over MIN_BYTES together) with defaults, a tenant, a catalog override named by a manifest,
    and one user declared twice (a problem `plan` defers to its diagnostics)."""
    (tmp_path / "mx.yaml").write_text("plans:\n  domestic:\n    - zone: mexico\n      partNumbers: [MCOPSTN_MX]\n")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.yaml").write_text(
        HEAD + "tenant: contoso.com\ncatalog: ../mx.yaml\npolicy:\n  maxRemovals: 50\n" + _users("a", 3000)
    )
    (tmp_path / "m" / "b.yaml").write_text(
        HEAD + "defaults:\n  usageLocation: DE\n" + _users("b", 3000) + "  - upn: A00007@contoso.com\n"
    )
    return tmp_path / "m"


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every child started, as background.start returned it."""
    started: list[Any] = []
    real = background.start

    def spy(paths: Any, catalog: Any) -> Any:
        pending = real(paths, catalog)
        started.append(pending)
        return pending

    monkeypatch.setattr(background, "start", spy)
    return started


def _outcome(fn: Any, capsys: pytest.CaptureFixture[str]) -> tuple[Any, str, str]:
    try:
        desired, catalog = fn()
        result: Any = (desired, catalog.plans if hasattr(catalog, "plans") else repr(catalog))
    except ManifestError as exc:
        result = ("error", str(exc))
    out = capsys.readouterr()
    return result, out.out, out.err


def test_a_big_tree_loads_in_a_child_and_gives_what_loading_in_process_gives(tmp_path, forks, capsys) -> None:
    folder = _tree(tmp_path)
    total = sum(f.stat().st_size for f in folder.iterdir())
    assert total >= background.MIN_BYTES
    forked = _outcome(lambda: InputsLoading([folder]).finish(), capsys)
    assert len(forks) == 1 and forks[0] is not None and forks[0].pid != os.getpid() and forks[0].used
    here = _outcome(lambda: load_inputs([folder]), capsys)
    assert forked == here
    desired = forked[0][0]
    assert len(desired.users) == 6000 and desired.tenant == "contoso.com" and desired.catalog_path
    assert [d.code for d in desired.deferred] == ["duplicate-user"]
    assert "duplicate-user" in forked[2] and forked[2].count("error:") == 1  # printed once, by the parent
    assert type(desired.users[0]).__name__ == "DesiredUser" and type(desired.users[0].source).__name__ == "Source"


def test_a_manifest_error_found_in_the_child_is_reported_as_in_process(tmp_path, forks, capsys) -> None:
    folder = _tree(tmp_path)
    bad = folder / "b.yaml"
    bad.write_text(bad.read_text() + "  - upn: x@contoso.com\n    callingPlan: domestc\n")
    forked = _outcome(lambda: InputsLoading([folder]).finish(), capsys)
    assert forks and forks[0] is not None and not forks[0].used  # the child failed; loaded and reported here
    here = _outcome(lambda: load_inputs([folder]), capsys)
    assert forked[0][0] == "error" and "domestc" in forked[0][1]
    assert forked == here


def test_a_payload_that_does_not_decode_falls_back_to_loading_in_process(tmp_path, forks, capsys, monkeypatch):
    folder = _tree(tmp_path)
    monkeypatch.setattr(background, "_encode", lambda desired: b"not a pickle")
    forked = _outcome(lambda: InputsLoading([folder]).finish(), capsys)
    assert forks and forks[0] is not None and not forks[0].used
    assert forked == _outcome(lambda: load_inputs([folder]), capsys)


def test_a_child_that_dies_falls_back_to_loading_in_process(tmp_path, forks, capsys, monkeypatch) -> None:
    folder = _tree(tmp_path)
    monkeypatch.setattr(background, "_load", lambda paths, catalog: os._exit(9))
    forked = _outcome(lambda: InputsLoading([folder]).finish(), capsys)
    assert forks and forks[0] is not None and not forks[0].used
    assert forked == _outcome(lambda: load_inputs([folder]), capsys)


def test_an_explicit_catalog_is_the_one_the_child_checks_against(tmp_path, forks, capsys) -> None:
    folder = _tree(tmp_path)
    a = folder / "a.yaml"
    a.write_text(a.read_text().replace("catalog: ../mx.yaml\n", "") + '  - upn: mx@contoso.com\n    callingPlan: "sku:MCOPSTN_MX"\n')
    # Only the override knows the part number MCOPSTN_MX: without it, a manifest error (the child fails, and
    # loading here reports it); with it (--catalog), the child's Desired is used.
    plain = _outcome(lambda: InputsLoading([folder]).finish(), capsys)
    assert plain == _outcome(lambda: load_inputs([folder]), capsys) and plain[0][0] == "error"
    given = _outcome(lambda: InputsLoading([folder], tmp_path / "mx.yaml").finish(), capsys)
    assert given == _outcome(lambda: load_inputs([folder], tmp_path / "mx.yaml"), capsys) and given[0][0] != "error"
    assert [p is not None and p.used for p in forks] == [False, True]


def test_small_manifests_missing_paths_and_threads_load_in_process(tmp_path) -> None:
    small = tmp_path / "s.yaml"
    small.write_text(HEAD + _users("s", 10))
    assert background.start([str(small)], None) is None
    assert background.start([str(tmp_path / "missing.yaml")], None) is None
    folder = _tree(tmp_path)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert background.start([str(folder)], None) is None  # a lock another thread holds would stay held
    finally:
        stop.set()
        other.join()


def test_no_child_when_sigchld_is_ignored(tmp_path, monkeypatch) -> None:
    # The kernel would reap the child itself and its exit status would be lost (waitpid: ECHILD).
    folder = _tree(tmp_path)
    monkeypatch.setattr(signal, "getsignal", lambda s: signal.SIG_IGN if s == signal.SIGCHLD else signal.SIG_DFL)
    assert background.start([str(folder)], None) is None


def test_forking_leaves_the_parents_signal_mask_as_it_was(tmp_path) -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    pending = background.start([str(_tree(tmp_path))], None)
    assert pending is not None
    try:
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
    finally:
        pending.cancel()


def test_cancel_stops_and_reaps_the_child(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(background, "_load", lambda paths, catalog: time.sleep(60))
    pending = background.start([str(_tree(tmp_path))], None)
    assert pending is not None
    started = time.monotonic()
    pending.cancel()
    assert time.monotonic() - started < 10 and pending.done
    with pytest.raises(ProcessLookupError):
        os.kill(pending.pid, 0)  # gone, not a zombie
    with pytest.raises(OSError):
        os.fstat(pending.fd)  # the pipe is closed
    pending.cancel()  # twice is harmless


def test_an_interrupted_wait_does_not_wait_for_the_child(tmp_path, monkeypatch) -> None:
    # Ctrl-C sent to this process alone (kill -INT PID): leave at once, the child stopped and reaped.
    monkeypatch.setattr(background, "_load", lambda paths, catalog: time.sleep(60))
    pending = background.start([str(_tree(tmp_path))], None)
    assert pending is not None

    def interrupted(fd: int, mode: str) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(background.os, "fdopen", interrupted)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        pending.result()
    assert time.monotonic() - started < 10 and pending.done
    with pytest.raises(ProcessLookupError):
        os.kill(pending.pid, 0)


def test_plan_reports_a_manifest_error_before_a_failure_to_import_the_sdk(tmp_path, monkeypatch, capsys) -> None:
    """With the manifests loading in a child, `plan` imports the Graph SDK first; if that fails, the manifest
    problem is still what it reports, as when it loaded them in-process first."""
    import provisioner.graph
    from provisioner.cli import main

    folder = _tree(tmp_path)
    bad = folder / "b.yaml"
    bad.write_text(bad.read_text() + "  - upn: x@contoso.com\n    callingPlan: domestc\n")

    def broken() -> None:
        raise ImportError("no msgraph here")

    monkeypatch.setattr(provisioner.graph, "preload", broken)
    code = main(["plan", str(folder), "--graph-url", "http://127.0.0.1:9/v1.0"])
    err = capsys.readouterr().err
    monkeypatch.setattr(background, "MIN_BYTES", 1 << 40)  # the same, loaded in-process
    assert main(["plan", str(folder), "--graph-url", "http://127.0.0.1:9/v1.0"]) == code != 0
    assert "domestc" in err and "no msgraph" not in err and capsys.readouterr().err == err


def test_the_parent_takes_the_child_s_catalog_and_never_imports_the_yaml_reader(tmp_path: Path) -> None:
    # The child reads the built-in catalog and sends it back with the manifests: the parent neither parses it
    # nor imports PyYAML and the loader (~0.07 s of `plan`), and what it takes equals the file parsed afresh.
    import subprocess

    path = tmp_path / "big.yaml"
    path.write_text(HEAD + _users("c", 6000))
    code = (
        "import sys\n"
        "from provisioner.pipeline import InputsLoading\n"
        f"loading = InputsLoading([{str(path)!r}], None)\n"
        "desired, cat = loading.finish()\n"
        "print(loading.pending.used, 'yaml' in sys.modules, 'provisioner.manifest.loader' in sys.modules)\n"
        "from provisioner.catalog import loader\n"
        "fresh = loader._File(loader.BUILTIN_PATH)\n"
        "fresh.check(override=False)\n"
        "print(loader._builtin_doc() == fresh.normalised(), cat.offers == loader._build(fresh.normalised()).offers,"
        " len(desired.users))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["True False False", "True True 6000"], out.stdout + out.stderr
