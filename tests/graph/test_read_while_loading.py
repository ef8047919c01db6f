"""Reading the tenant while a big manifest is parsed in a forked worker (pipeline.loading,
pipeline.read_tenant_while_loading, Reader.scan_everyone): the same snapshot, plan, output and errors as
loading first and reading after."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from graph_helpers import emulator_stats, reset_stats

from provisioner import pipeline
from provisioner.cli import main
from provisioner.emulator.local import LocalTenant
from provisioner.graph.connection import TenantConnection, open_app
from provisioner.graph.parse import holds_any, user_from_json
from provisioner.graph.reader import Everyone, skus_only_assigned
from provisioner.model.observed import Assignment, Observed, TenantInfo, User


def voice_skus(skus: Any) -> list[str]:
    return [s.sku_id for s in skus if s.part_number.startswith("MCO") or "pay_as_you_go" in s.part_number.lower()]


def test_scan_everyone_narrowed_is_what_the_read_scan_keeps(tenant20k: Path) -> None:
    local = LocalTenant(tenant20k)
    named = [u.upn for u in local.state.users[:15_000]]
    with open_app(local.app) as conn:
        everyone = conn.scan_everyone(len(named))
        assert everyone is not None
        scanned = conn.reader.last_choice
        obs = conn.read(named, voice_skus)
        assert conn.reader.last_choice is not None and conn.reader.last_choice.strategy == "scan"
    assert scanned is not None and scanned.strategy == "scan"
    narrowed = everyone.narrowed(named, voice_skus(everyone.skus))
    assert len(everyone.users) == 20_000 > len(narrowed.users)  # some users are neither named nor managed
    assert list(narrowed.users) == list(obs.users)  # same users, same order
    assert narrowed == obs


def test_scan_everyone_declines_a_small_manifest_and_the_read_reuses_its_first_round_trip(tenant20k: Path) -> None:
    local = LocalTenant(tenant20k)
    named = [u.upn for u in local.state.users[::100][:150]]
    with open_app(local.app) as conn:
        reset_stats(local.app)
        plain = conn.read(named, voice_skus)
        plain_trips = emulator_stats(local.app)["requests"]
        reset_stats(local.app)
        assert conn.scan_everyone(len(named)) is None
        after = conn.read(named, voice_skus)
        trips = emulator_stats(local.app)["requests"]
    assert after == plain
    assert trips == plain_trips  # the declined scan's first $batch is the read's first $batch


def _user(upn: str, *skus: str) -> User:
    return User(upn.lower() + "-id", upn, upn, True, "US", tuple(Assignment(s, None, (), "Active", None) for s in skus))


def test_narrowed_keeps_named_users_and_holders_including_skus_only_assigned_licenses_lists() -> None:
    users = {u.upn.lower(): u for u in (_user("a@x"), _user("b@x", "managed"), _user("c@x", "other"), _user("d@x"))}
    everyone = Everyone(TenantInfo("t", "T"), (), users, also_held={"d@x": frozenset({"managed"})})
    got = everyone.narrowed(["A@X"], ["MANAGED"])
    assert list(got.users) == ["a@x", "b@x", "d@x"]
    assert got == Observed(TenantInfo("t", "T"), (), {k: users[k] for k in ("a@x", "b@x", "d@x")})


@pytest.mark.parametrize(
    "raw",
    [
        {"assignedLicenses": [{"skuId": "AA"}], "licenseAssignmentStates": [{"skuId": "aa", "state": "Active"}]},
        {"assignedLicenses": [{"skuId": "AA"}, {"skuId": "BB"}], "licenseAssignmentStates": [{"skuId": "aa"}]},
        {"assignedLicenses": [{"skuId": "bb"}], "licenseAssignmentStates": [{"skuId": "aa"}]},  # same length
        {"assignedLicenses": [{"skuId": "aa"}], "licenseAssignmentStates": [{"skuId": "aa"}]},
        {"assignedLicenses": [{"skuId": "bb"}], "licenseAssignmentStates": []},
        {"assignedLicenses": [{"skuId": "BB"}]},  # no states: assignments come from assignedLicenses
        {"licenseAssignmentStates": [{"skuId": "cc", "assignedByGroup": "g"}]},
    ],
)
def test_skus_only_assigned_make_narrowed_hold_what_the_scan_filter_holds(raw: dict[str, Any]) -> None:
    d = {"id": "1", "userPrincipalName": "u@x", **raw}
    u = user_from_json(d)
    held = {a.sku_id for a in u.assignments} | skus_only_assigned(d, u)
    for managed in ({"aa"}, {"bb"}, {"cc"}, {"aa", "bb"}, {"dd"}):
        assert (not held.isdisjoint(managed)) == holds_any(d, frozenset(managed)), managed


@pytest.fixture
def big_manifest(tenant20k: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The 20k tenant exported (well past PARALLEL_MIN_BYTES), with 40 users' Phone System taken away."""
    path = tmp_path / "tenant.yaml"
    assert main(["export", "--tenant", f"emulator:{tenant20k}", "--out", str(path)]) == 0
    capsys.readouterr()
    text = re.sub(r"phoneSystem: true", "phoneSystem: false", path.read_text(), count=40)
    path.write_text(text.replace("policy:\n", "policy:\n  maxRemovals: 100\n", 1))
    assert path.stat().st_size > pipeline.PARALLEL_MIN_BYTES
    return path


def _plan(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _spy(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    start, scan, load = pipeline.Loading.start, TenantConnection.scan_everyone, pipeline.load_inputs
    parent = os.getpid()

    def spy_load(*args: Any) -> Any:
        if os.getpid() == parent:  # the worker's calls stay in the worker
            seen["loaded here"] = seen.get("loaded here", 0) + 1
        return load(*args)

    def spy_start(self: pipeline.Loading) -> None:
        start(self)
        seen["forked"] = self.parallel

    def spy_scan(self: TenantConnection, named_estimate: int) -> Everyone | None:
        seen["scanned"] = result = scan(self, named_estimate)
        return result

    monkeypatch.setattr(pipeline.Loading, "start", spy_start)
    monkeypatch.setattr(TenantConnection, "scan_everyone", spy_scan)
    monkeypatch.setattr(pipeline, "load_inputs", spy_load)
    return seen


def test_a_big_manifest_plans_the_same_in_a_worker_as_in_line(
    big_manifest: Path, tenant20k: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["plan", str(big_manifest), "--tenant", f"emulator:{tenant20k}", "--format", "json"]
    seen = _spy(monkeypatch)
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 10**12)
    in_line = _plan(argv, capsys)
    assert seen == {"forked": False, "loaded here": 1}
    seen.clear()
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 1)
    in_worker = _plan(argv, capsys)
    # the worker parsed (its result was used: nothing was loaded again here); the scan ran meanwhile
    assert seen["forked"] is True and "loaded here" not in seen and seen["scanned"] is not None
    assert in_worker == in_line
    assert in_line[0] == 0 and '"licensesRemoved": 40' in in_line[1]


def test_a_big_invalid_manifest_reports_the_same_errors_even_when_the_tenant_cannot_be_reached(
    big_manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = big_manifest.read_text().splitlines(keepends=True)
    upn_at = next(i for i, line in enumerate(lines) if "upn:" in line)
    bad = tmp_path / "bad.yaml"
    bad.write_text("".join(lines[: upn_at + 1]) + "    phoneSytem: true\n" + "".join(lines[upn_at + 1 :]))
    unreachable = ["--tenant", "contoso.onmicrosoft.com", "--graph-url", "http://127.0.0.1:9/v1.0"]
    seen = _spy(monkeypatch)
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 10**12)
    in_line = _plan(["plan", str(bad), *unreachable], capsys)
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 1)
    in_worker = _plan(["plan", str(bad), *unreachable], capsys)
    assert seen["forked"] is True and seen["loaded here"] == 2  # in line, then again here after the worker failed
    assert in_worker == in_line
    assert in_line[0] == 1 and f"bad.yaml:{upn_at + 2}" in in_line[2] and "phoneSytem" in in_line[2]
