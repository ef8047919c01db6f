"""Over loopback HTTP: `provision emulator serve` in a subprocess with faults, read and written through
connect(graph_url=...) with no credential; connect()'s argument checks; and the import boundary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from graph_helpers import served_emulator

from provisioner.emulator.demo import synthetic_state
from provisioner.emulator.state import TenantState
from provisioner.errors import AuthError, GraphError
from provisioner.graph import connect, is_loopback
from provisioner.graph.connection import open_app
from provisioner.graph.retry import RetryPolicy
from provisioner.model.observed import Sku
from provisioner.model.plan import Action, LicenseRef


def voice(skus: tuple[Sku, ...]) -> list[str]:
    return [s.sku_id for s in skus if s.part_number.startswith("MCO")]


@pytest.mark.slow
def test_served_emulator_with_faults_reads_and_writes(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    state = TenantState.from_dict(synthetic_state(1500, 4))
    state.save(path)
    named = [u.upn for u in state.users[::50]]
    with open_app(
        __import__("provisioner.emulator.routes", fromlist=["x"]).create_app(TenantState.load(path))
    ) as c:
        want = c.read(named, voice)
    targets = [u for u in state.users if u.usage_location][:30]
    actions = [
        Action(f"a{i}", "setUsageLocation", u.id, u.upn, u.usage_location, "JP")
        for i, u in enumerate(targets)
    ]
    policy = RetryPolicy(base_delay_s=0.05, max_delay_s=0.2, budget_s=60)
    args = ["--throttle-rate", "0.25", "--error-rate", "0.1", "--seed", "5", "--retry-after", "0"]
    with served_emulator(path, *args) as url, connect(None, graph_url=url, policy=policy) as conn:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1.0")
        got = conn.read(named, voice)
        out = conn.execute(actions, parallelism=2)
        after = conn.read_users_by_id([u.id for u in targets])
        stats = httpx.get(url.removesuffix("/v1.0") + "/_emulator/stats", timeout=10).json()
    assert stats["throttled"] > 0 and stats["errors"] > 0  # the faults really happened, over the wire
    assert got == want
    assert [o.status for o in out] == ["succeeded"] * len(actions)
    assert {u.usage_location for u in after.values()} == {"JP"} and len(after) == len(targets)


@pytest.mark.slow
def test_served_emulator_loses_answers_of_writes_it_made(tmp_path: Path) -> None:
    """`serve --lost-reply-rate`: a share of the writes are made but answered 504. The writer retries them (a
    location set again, a Calling Plan removal refused as not held and confirmed by reading the user back): every
    action succeeds once, and the tenant ends as asked."""
    path = tmp_path / "t.json"
    state = TenantState.from_dict(synthetic_state(600, 4))
    state.save(path)
    dom = next(s.sku_id for s in state.skus if s.part == "MCOPSTN1")
    holders = [u for u in state.users if dom in u.licenses and u.usage_location][:20]
    movers = [u for u in state.users if u.usage_location and u not in holders][:20]
    actions = [Action(f"a{i}", "setUsageLocation", u.id, u.upn, u.usage_location, "JP") for i, u in enumerate(movers)]
    actions += [Action(f"r{i}", "assignLicenses", u.id, u.upn, remove=(LicenseRef(dom, "MCOPSTN1"),))
                for i, u in enumerate(holders)]
    policy = RetryPolicy(base_delay_s=0.05, max_delay_s=0.2, budget_s=60)
    with served_emulator(path, "--lost-reply-rate", "0.3", "--seed", "2") as url, \
            connect(None, graph_url=url, policy=policy) as conn:
        out = conn.execute(actions, parallelism=2)
        after = conn.read_users_by_id([u.id for u in movers + holders])
        stats = httpx.get(url.removesuffix("/v1.0") + "/_emulator/stats", timeout=10).json()
    assert stats["errors"] >= 5  # 504s over the wire: answers lost after the writes were made
    assert [o.status for o in out] == ["succeeded"] * len(actions), [o.message for o in out if o.status != "succeeded"]
    assert {after[u.id].usage_location for u in movers} == {"JP"}
    assert not any(dom in {a.sku_id for a in after[u.id].assignments if a.by_group is None} for u in holders)


@pytest.mark.slow
def test_served_emulator_rate_limit_paces_the_writer(tmp_path: Path) -> None:
    """`serve --rate-limit 40`: 160 writes in 8 `$batch` calls, two in flight, against 40 requests a second. The
    sub-requests past the budget are answered 429 + Retry-After; the writer waits as told and sends them
    again, so every action succeeds once, and the run takes at least as long as the budget allows."""
    import time

    path = tmp_path / "t.json"
    state = TenantState.from_dict(synthetic_state(400, 6))
    state.save(path)
    targets = [u for u in state.users if u.usage_location][:160]
    actions = [Action(f"a{i}", "setUsageLocation", u.id, u.upn, u.usage_location, "NZ") for i, u in enumerate(targets)]
    with served_emulator(path, "--rate-limit", "40") as url, connect(None, graph_url=url) as conn:
        start = time.monotonic()
        out = conn.execute(actions, parallelism=2)
        took = time.monotonic() - start
        after = conn.read_users_by_id([u.id for u in targets])
        stats = httpx.get(url.removesuffix("/v1.0") + "/_emulator/stats", timeout=10).json()
    assert stats["throttled"] >= 40, stats  # the budget (a burst of 40) ran out, over the wire
    assert [o.status for o in out] == ["succeeded"] * len(actions)
    assert {u.usage_location for u in after.values()} == {"NZ"} and len(after) == len(targets)
    assert took >= (len(actions) - 40) / 40 - 0.5  # paced by the budget, not by luck


@pytest.mark.parametrize(
    ("url", "loop"),
    [
        ("http://127.0.0.1:8765/v1.0", True),
        ("http://127.9.9.9/v1.0", True),
        ("http://localhost:1/v1.0", True),
        ("http://[::1]:8765/v1.0", True),
        ("https://graph.microsoft.com/v1.0", False),
        ("http://10.0.0.1/v1.0", False),
        ("http://localhost.evil.example/v1.0", False),
    ],
)
def test_loopback_detection(url: str, loop: bool) -> None:
    assert is_loopback(url) is loop


def test_connect_refuses_bad_urls_and_missing_tenant() -> None:
    with pytest.raises(GraphError, match="is not an http"):
        connect("contoso.com", graph_url="ftp://graph.example/v1.0")
    with pytest.raises(GraphError, match="must use https"):
        connect("contoso.com", graph_url="http://graph.example/v1.0")
    with pytest.raises(AuthError, match="no tenant given: pass --tenant"):
        connect(None, env={})
    with pytest.raises(AuthError, match="--auth secret needs AZURE_CLIENT_ID, AZURE_CLIENT_SECRET"):
        connect("contoso.com", auth="secret", env={})


def test_planning_and_models_do_not_import_the_graph_stack() -> None:
    code = (
        "import sys, provisioner.planner, provisioner.model, provisioner.graph, provisioner.cli;"
        "from provisioner.graph.lean import is_stand_in;"
        "print(sorted({m.split('.')[0] for m, mod in sys.modules.items()"
        " if m.split('.')[0] in ('msgraph', 'msgraph_core', 'kiota_abstractions', 'azure', 'httpx', 'aiohttp')"
        " and not is_stand_in(mod)}))"  # graph/lean.py's stand-in for httpx's CLI is no import of httpx
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_plan_apply_and_export_need_no_tenant_with_a_loopback_graph_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # CONTRACT §1: a loopback --graph-url is how a served emulator is used; no --tenant, no credential.
    from provisioner.cli import main

    demo = Path(__file__).resolve().parents[1] / "scenarios" / "demo"
    path = tmp_path / "t.json"
    path.write_bytes((demo / "tenant.json").read_bytes())
    manifests = str(demo / "manifests")
    with served_emulator(path) as url:
        assert main(["plan", manifests, "--graph-url", url, "--detailed-exitcode"]) == 2
        assert "sam.new@contoso.com" in capsys.readouterr().out  # the demo's new hire is in the plan
        assert main(["apply", manifests, "--graph-url", url, "--auto-approve"]) == 0
        capsys.readouterr()
        assert main(["plan", manifests, "--graph-url", url, "--detailed-exitcode"]) == 0
        assert main(["export", "--graph-url", url, "--out", str(tmp_path / "exported.yaml")]) == 0
    assert "users:" in (tmp_path / "exported.yaml").read_text()
    # with neither, the message says what to pass, and mentions the served emulator's way: a usage error (64)
    assert main(["plan", manifests]) == 64
    err = capsys.readouterr().err
    assert "no tenant given" in err and "--graph-url http://127.0.0.1:PORT/v1.0" in err
    # options that contradict or do not parse are usage errors too, named, before anything is read or written
    missing = tmp_path / "never.json"
    assert main(["plan", manifests, "--graph-url", "http://127.0.0.1:1/v1.0", "--tenant", f"emulator:{missing}"]) == 64
    assert "name two tenants" in capsys.readouterr().err and not missing.exists()
    assert main(["plan", manifests, "--graph-url", "notaurl"]) == 64
    assert "is not an http(s) URL" in capsys.readouterr().err
    assert main(["plan", manifests, "--graph-url", "http://graph.example.com/v1.0", "--tenant", "contoso.com"]) == 64
    assert "must use https" in capsys.readouterr().err


def test_requests_search_for_no_module(tmp_path: Path) -> None:
    """Over real HTTP, httpcore runs `import sniffio` at every async lock set-up (about five per request). Without
    the package (httpx no longer requires it; pyproject does), each of those imports searches sys.path anew:
    about 1 ms per `$batch`, a fifth of apply's CPU. Once a connection is warm, requests import nothing."""
    path = tmp_path / "t.json"
    TenantState.from_dict(synthetic_state(50, 3)).save(path)
    searched: list[str] = []

    class Recorder:
        @staticmethod
        def find_spec(name: str, path: object = None, target: object = None) -> None:
            searched.append(name)
            return None

    with served_emulator(path) as url, connect(None, graph_url=url) as conn:
        conn.read_skus()  # warm: the modules a first request needs are imported once, as everywhere
        sys.meta_path.insert(0, Recorder)  # type: ignore[arg-type]
        try:
            for _ in range(5):
                conn.read_skus()
                conn.read_users_by_upn(["nobody@contoso.com"])
        finally:
            sys.meta_path.remove(Recorder)  # type: ignore[arg-type]
    assert searched == []


def test_read_pages_are_freed_without_the_cyclic_collector(tmp_path: Path) -> None:
    """httpx's response and its stream refer to each other, so a response (its whole body with it) is freed
    only by the cyclic collector, which planning keeps off: the transport cuts that cycle. With the collector
    off, no response outlives its request, and nothing a read leaves is cyclic garbage but a handful."""
    import gc

    path = tmp_path / "t.json"
    TenantState.from_dict(synthetic_state(2500, 3)).save(path)
    with served_emulator(path) as url, connect(None, graph_url=url) as conn:
        conn.read_skus()
        gc.collect()
        gc.disable()
        try:
            observed = conn.read([], voice, strategy="scan")  # three pages of users, and the first $batch
            alive = [o for o in gc.get_objects() if isinstance(o, httpx.Response)]
            unreachable = gc.collect()
        finally:
            gc.enable()
    assert len(observed.users) > 500
    assert alive == []
    assert unreachable < 200, unreachable  # was ~45 objects per request, every page's body among them
