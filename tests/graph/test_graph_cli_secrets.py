"""The real command line against a fake Entra on loopback: wrong credentials give one plain error, and a
planted secret (client secret, GitHub request token) never appears in stdout/stderr, with or without --debug.
Also: PROVISION_TENANT is honoured (typer's env fallback) and reaches the in-process emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from graph_helpers import FakeEndpoints, self_signed, serve_fake

T = "11111111-2222-3333-4444-555555555555"
SECRET = "planted-SECRET-cli-4b8e1d"
MANIFEST = """apiVersion: provisioner/v1
kind: TeamsVoiceLicensing
users:
  - upn: dave.us@contoso.com
    usageLocation: US
    callingPlan: none
"""


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ACTIONS_", "PROVISION_"))}
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_planted_secrets_never_printed(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST)
    tls = self_signed(tmp_path)
    entra, github = FakeEndpoints(refuse=True), FakeEndpoints()
    plan = ["plan", "m.yaml", "--tenant", T]
    with serve_fake(entra, tls) as entra_host, serve_fake(github) as gh_host:
        base = {
            "SSL_CERT_FILE": str(tls[0]),
            "AZURE_AUTHORITY_HOST": entra_host,
            "AZURE_CLIENT_ID": "app-id-9",
        }
        with_secret = {**base, "AZURE_CLIENT_SECRET": SECRET}
        plain = run_cli(plan, with_secret, tmp_path)
        debug = run_cli([*plan, "--debug"], with_secret, tmp_path)
        oidc = run_cli(
            [*plan, "--auth", "oidc", "--debug"],
            {**base, "ACTIONS_ID_TOKEN_REQUEST_URL": f"http://{gh_host}/t?api-version=2.0",
             "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "gh-request-token"},
            tmp_path,
        )  # fmt: skip
    posted = [r["form"] for r in entra.requests if r["method"] == "POST"]
    assert [f.get("client_secret") for f in posted] == [
        SECRET,
        SECRET,
        None,
    ]  # the secret really went to Entra
    assert posted[2]["client_assertion"].startswith("eyJ")  # the GitHub JWT, used as the client assertion
    for run in (plain, debug, oidc):
        everything = run.stdout + run.stderr
        assert run.returncode == 1, everything
        assert SECRET not in everything and "gh-request-token" not in everything
        assert posted[2]["client_assertion"] not in everything  # Entra echoed the JWT: scrubbed
        assert "AADSTS7000215" in run.stderr
    assert plain.stderr.count("error:") == 1 and "Traceback" not in plain.stderr
    assert "error: could not get a Graph token with the client secret for app app-id-9" in plain.stderr
    assert "Check AZURE_CLIENT_ID, AZURE_CLIENT_SECRET" in plain.stderr
    assert "auth: client secret for app app-id-9" in debug.stderr  # --debug says which credential
    assert "could not get a Graph token with the GitHub Actions OIDC" in oidc.stderr


def test_provision_tenant_env_reaches_the_emulator(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST)
    run = run_cli(
        ["plan", "m.yaml", "--debug"], {"PROVISION_TENANT": f"emulator:{tmp_path / 't.json'}"}, tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert f"note: created the demo tenant at {tmp_path / 't.json'}" in run.stderr
    assert "graph: POST http://localhost/v1.0/$batch -> 200" in run.stderr
    assert (tmp_path / "t.json").exists()
