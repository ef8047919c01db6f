"""`provision emulator init` and `provision emulator serve` through the real CLI entry point (exit codes, output)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from provisioner.cli import main


def test_init_writes_the_demo_tenant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "demo.json"
    assert main(["emulator", "init", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == f"wrote demo tenant to {path}: 40 users, 10 SKUs, 1 group."
    data = json.loads(path.read_text())
    assert data["tenant"]["displayName"] == "Contoso" and len(data["users"]) == 40


def test_init_synthetic_is_deterministic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    assert main(["emulator", "init", str(a), "--users", "300", "--seed", "9"]) == 0
    assert main(["emulator", "init", str(b), "--users", "300", "--seed", "9"]) == 0
    assert main(["emulator", "init", str(c), "--users", "300", "--seed", "10"]) == 0
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    assert "synthetic tenant (seed 9)" in capsys.readouterr().err


def test_init_errors_exit_1_with_one_plain_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "init", str(tmp_path / "missing" / "t.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not exist" in err and "Traceback" not in err
    assert main(["emulator", "init", str(tmp_path)]) == 1
    assert "is a folder" in capsys.readouterr().err


def test_usage_errors_exit_64(tmp_path: Path) -> None:
    assert main(["emulator", "init"]) == 64
    assert main(["emulator", "init", str(tmp_path / "x.json"), "--users", "many"]) == 64


@pytest.mark.slow
def test_serve_port_0_prints_the_listening_line_and_answers(tmp_path: Path) -> None:
    path = tmp_path / "served.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "provisioner", "emulator", "serve", str(path), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()  # bounded by the test timeout below
        assert line.startswith("listening on http://127.0.0.1:") and line.endswith("/v1.0")
        base = line.removeprefix("listening on ")
        assert int(base.split(":")[2].split("/")[0]) > 0
        r = httpx.get(f"{base}/users", params={"$top": "2", "$select": "id"}, timeout=10)
        assert r.status_code == 200 and len(r.json()["value"]) == 2
        assert r.json()["@odata.nextLink"].startswith(f"{base}/users?")
        r = httpx.patch(f"{base}/users/sam.new@contoso.com", json={"usageLocation": "CA"}, timeout=10)
        assert r.status_code == 204
        deadline = time.monotonic() + 5  # the periodic flush persists it without a shutdown
        while time.monotonic() < deadline:
            users = json.loads(path.read_text())["users"]
            if next(u for u in users if u["userPrincipalName"] == "sam.new@contoso.com")["usageLocation"] == "CA":
                break
            time.sleep(0.1)
        else:
            pytest.fail("the PATCH was not saved to the state file within 5 s")
        r = httpx.patch(f"{base}/users/sam.new@contoso.com", json={"usageLocation": "MX"}, timeout=10)
        assert r.status_code == 204
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert f"created demo tenant at {path}" in err
    # the last write, made just before the shutdown signal, was saved on the way out
    users = json.loads(path.read_text())["users"]
    assert next(u for u in users if u["userPrincipalName"] == "sam.new@contoso.com")["usageLocation"] == "MX"
    assert proc.returncode == 0  # a stop asked by SIGTERM is a clean exit (not death by the signal)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_stops_on_a_signal_with_exit_0(tmp_path: Path, sig: signal.Signals) -> None:
    path = tmp_path / "t.json"
    proc = subprocess.Popen([sys.executable, "-m", "provisioner", "emulator", "serve", str(path), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("listening on ")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and path.is_file()


def test_serve_on_a_busy_port_exits_1_with_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        assert main(["emulator", "serve", str(tmp_path / "t.json"), "--port", str(port)]) == 1
    finally:
        busy.close()
    err = capsys.readouterr().err
    assert f"error: cannot listen on 127.0.0.1:{port}" in err and "--port 0" in err and "Traceback" not in err


def test_serve_passes_host_port_and_seeded_faults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import provisioner.emulator.server as server
    from provisioner.emulator.faults import FaultConfig

    seen: dict[str, object] = {}

    def fake_serve(path: object, host: str, port: int, faults: FaultConfig) -> None:
        seen.update(path=path, host=host, port=port, faults=faults)

    monkeypatch.setattr(server, "serve", fake_serve)
    args = ["emulator", "serve", str(tmp_path / "t.json"), "--host", "::1", "--port", "9", "--latency-ms", "5",
            "--throttle-rate", "0.25", "--error-rate", "0.1", "--seed", "42"]
    assert main(args) == 0
    assert seen == {"path": tmp_path / "t.json", "host": "::1", "port": 9,
                    "faults": FaultConfig(latency_ms=5, throttle_rate=0.25, error_rate=0.1, seed=42)}
    assert main(["emulator", "serve", str(tmp_path / "t.json"), "--throttle-rate", "1.5"]) == 64  # out of range


def test_serve_retry_after_sets_the_header_of_injected_429s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import provisioner.emulator.server as server
    from provisioner.emulator.faults import FaultConfig

    seen: list[FaultConfig] = []
    monkeypatch.setattr(server, "serve", lambda path, host, port, faults: seen.append(faults))
    assert main(["emulator", "serve", str(tmp_path / "t.json"), "--throttle-rate", "1", "--retry-after", "0"]) == 0
    assert seen == [FaultConfig(throttle_rate=1.0, retry_after_s=0)]
    assert main(["emulator", "serve", str(tmp_path / "t.json"), "--retry-after", "-1"]) == 64
