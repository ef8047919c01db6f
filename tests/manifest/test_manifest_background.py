"""Big manifests load in a forked child while `plan` imports the Graph stack (manifest/background.py).

The child only accelerates: what `begin_load_inputs(...)()` gives, prints and raises is what `load_inputs` gives,
prints and raises, whether the child succeeds, fails on a manifest error, or sends what does not decode. Each
test checks that a child really ran (else it would compare the in-process path with itself).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from provisioner.errors import ManifestError
from provisioner.manifest import background
from provisioner.pipeline import begin_load_inputs, load_inputs

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
    forked = _outcome(lambda: begin_load_inputs([folder])(), capsys)
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
    forked = _outcome(lambda: begin_load_inputs([folder])(), capsys)
    assert forks and forks[0] is not None and not forks[0].used  # the child failed; loaded and reported here
    here = _outcome(lambda: load_inputs([folder]), capsys)
    assert forked[0][0] == "error" and "domestc" in forked[0][1]
    assert forked == here


def test_a_payload_that_does_not_decode_falls_back_to_loading_in_process(tmp_path, forks, capsys, monkeypatch):
    folder = _tree(tmp_path)
    monkeypatch.setattr(background, "_encode", lambda desired: b"not a pickle")
    forked = _outcome(lambda: begin_load_inputs([folder])(), capsys)
    assert forks and forks[0] is not None and not forks[0].used
    assert forked == _outcome(lambda: load_inputs([folder]), capsys)


def test_a_child_that_dies_falls_back_to_loading_in_process(tmp_path, forks, capsys, monkeypatch) -> None:
    folder = _tree(tmp_path)
    monkeypatch.setattr(background, "_load", lambda paths, catalog: os._exit(9))
    forked = _outcome(lambda: begin_load_inputs([folder])(), capsys)
    assert forks and forks[0] is not None and not forks[0].used
    assert forked == _outcome(lambda: load_inputs([folder]), capsys)


def test_an_explicit_catalog_is_the_one_the_child_checks_against(tmp_path, forks, capsys) -> None:
    folder = _tree(tmp_path)
    a = folder / "a.yaml"
    a.write_text(a.read_text().replace("catalog: ../mx.yaml\n", "") + '  - upn: mx@contoso.com\n    callingPlan: "sku:MCOPSTN_MX"\n')
    # Only the override knows the part number MCOPSTN_MX: without it, a manifest error (the child fails, and
    # loading here reports it); with it (--catalog), the child's Desired is used.
    plain = _outcome(lambda: begin_load_inputs([folder])(), capsys)
    assert plain == _outcome(lambda: load_inputs([folder]), capsys) and plain[0][0] == "error"
    given = _outcome(lambda: begin_load_inputs([folder], tmp_path / "mx.yaml")(), capsys)
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
