"""Sign-in, network and bad-input failures are plain exit-1 errors (CONTRACT §1/§5): through `provision plan`
in process, each is one line (plus at most a hint) saying what is wrong and what to set — never "internal
error", never a traceback, never a secret. No network: unreachable hosts are closed loopback ports."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from graph_helpers import FakeEndpoints, self_signed, serve_fake

from provisioner.cli import main
from provisioner.errors import AuthError, GraphError
from provisioner.graph import connect, select_credential
from provisioner.graph.auth import CredentialChoice, check_tenant
from provisioner.graph.retry import RetryPolicy
from provisioner.graph.transport import Transport, make_client

T = "11111111-2222-3333-4444-555555555555"
APP = "22222222-3333-4444-5555-666666666666"
SECRET = "PLANTED-SECRET-123"
MANIFEST = """apiVersion: provisioner/v1
kind: TeamsVoiceLicensing
users:
  - upn: dave.us@contoso.com
    usageLocation: US
    callingPlan: none
"""
NETWORK_HINT = "check the network/proxy, or --graph-url/AZURE_AUTHORITY_HOST for a national cloud."


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): connecting to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST)
    return path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No credential variables, no managed identity endpoint, no `az` on PATH; azure-core retries off so an
    unreachable sign-in host fails in milliseconds (the retries themselves are azure-core's, not ours)."""
    import os

    for name in list(os.environ):
        if name.startswith(("AZURE_", "ACTIONS_", "PROVISION_", "IDENTITY_", "MSI_", "IMDS_")):
            monkeypatch.delenv(name)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    build = CredentialChoice.build

    def no_retries(self: CredentialChoice, authority: str | None = None, **options: Any) -> Any:
        return build(self, authority, retry_total=0, **options)

    monkeypatch.setattr(CredentialChoice, "build", no_retries)
    return monkeypatch


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    out = capsys.readouterr()
    everything = out.out + out.err
    assert "internal error" not in everything and "Traceback" not in everything
    assert SECRET not in everything
    return code, out.err


def error_lines(err: str) -> list[str]:
    """The error (and hint) lines: what follows the `error: ` line, progress lines before it dropped."""
    lines = err.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    return lines[start:]


@pytest.mark.parametrize("auth", ["auto", "secret"])
def test_sign_in_service_unreachable(
    auth: str, manifest: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    clean_env.setenv("AZURE_AUTHORITY_HOST", f"127.0.0.1:{port}")
    clean_env.setenv("AZURE_CLIENT_ID", APP)
    clean_env.setenv("AZURE_TENANT_ID", T)
    clean_env.setenv("AZURE_CLIENT_SECRET", SECRET)
    code, err = run(["plan", str(manifest), "--tenant", T, "--auth", auth], capsys)
    assert code == 1
    (line,) = error_lines(err)
    prefix = f"error: cannot reach the sign-in service 127.0.0.1:{port} (ServiceRequestError: "
    assert line.startswith(prefix) and line.endswith(f"): {NETWORK_HINT}")
    assert f"127.0.0.1:{port}" in line[len(prefix) :]  # the detail says which connection failed


def test_missing_certificate_file_names_the_variable_and_path(
    manifest: Path, tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nocert.pem"
    clean_env.setenv("AZURE_CLIENT_ID", APP)
    clean_env.setenv("AZURE_CLIENT_CERTIFICATE_PATH", str(missing))
    code, err = run(["plan", str(manifest), "--tenant", T, "--auth", "certificate"], capsys)
    assert code == 1
    assert error_lines(err) == [
        f"error: cannot read the certificate AZURE_CLIENT_CERTIFICATE_PATH={missing} (No such file or directory): "
        "point it at a PEM or PKCS#12 file holding the certificate and its private key."
    ]


def test_unusable_certificate_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    choice = select_credential(
        "certificate", {"AZURE_CLIENT_ID": APP, "AZURE_CLIENT_CERTIFICATE_PATH": str(bad)}, T
    )
    with pytest.raises(AuthError) as e:
        choice.build()
    assert str(e.value).startswith(f"AZURE_CLIENT_CERTIFICATE_PATH={bad} is not a usable certificate (")
    assert str(e.value).endswith(
        "): it must hold the certificate and its private key (PEM, or PKCS#12 with AZURE_CLIENT_CERTIFICATE_PASSWORD)."
    )


def test_http_authority_host_is_a_setting_error() -> None:
    choice = select_credential("secret", {"AZURE_CLIENT_ID": APP, "AZURE_CLIENT_SECRET": SECRET}, T)
    with pytest.raises(AuthError) as e:
        choice.build("http://login.example")
    assert str(e.value).startswith(
        "AZURE_AUTHORITY_HOST 'http://login.example' is not a usable sign-in host ("
    )
    assert str(e.value).endswith(
        "): set it to an https URL or a host name such as login.microsoftonline.us, or unset it."
    )
    assert SECRET not in str(e.value)


BAD_TENANT = (
    "is not a tenant: use emulator:PATH, a tenant id (GUID, e.g. 11111111-2222-3333-4444-555555555555) or a "
    "verified domain (e.g. contoso.onmicrosoft.com)."
)


def test_malformed_tenant(
    manifest: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(["plan", str(manifest), "--tenant", "not a tenant!"], capsys)
    assert code == 1
    assert error_lines(err) == [f"error: --tenant 'not a tenant!' {BAD_TENANT}"]


@pytest.mark.parametrize(
    "good", [T, T.upper(), "contoso.com", "contoso.onmicrosoft.com", "a-b.c-d.example.co.uk"]
)
def test_check_tenant_accepts_ids_and_domains(good: str) -> None:
    check_tenant(good)


@pytest.mark.parametrize(
    "bad", ["not a tenant!", "contoso", "1111-2222", "-x.com", "contoso..com", "x.c0m/../"]
)
def test_check_tenant_rejects(bad: str) -> None:
    with pytest.raises(AuthError) as e:
        check_tenant(bad)
    assert str(e.value) == f"--tenant {bad!r} {BAD_TENANT}"


def test_malformed_tenant_from_the_environment_is_named() -> None:
    with pytest.raises(AuthError) as e:
        select_credential("auto", {"AZURE_TENANT_ID": "my tenant"})
    assert str(e.value) == f"AZURE_TENANT_ID 'my tenant' {BAD_TENANT}"


def test_no_credentials_at_all(
    manifest: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--auth auto, no variables: a managed identity endpoint that is not there, no `az`: one line naming
    what to set and a hint; azure-identity's chained text (and its troubleshooting URL) only under --debug."""
    clean_env.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{closed_port()}/msi/token")
    clean_env.setenv("IDENTITY_HEADER", "msi-header")
    code, err = run(["plan", str(manifest), "--tenant", T], capsys)
    assert code == 1
    assert error_lines(err) == [
        f"error: no credentials found for tenant {T}: set AZURE_CLIENT_ID + AZURE_CLIENT_SECRET (or "
        "AZURE_CLIENT_CERTIFICATE_PATH), or AZURE_FEDERATED_TOKEN_FILE / GitHub OIDC (id-token: write), or run on "
        "a managed identity, or `az login`; or force one with --auth.",
        "Run with --debug to see why each attempted credential failed.",
    ]
    assert "ChainedTokenCredential" not in err and "aka.ms" not in err


def test_no_credentials_detail_only_with_debug(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{closed_port()}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "msi-header")
    monkeypatch.setenv("PATH", "/nonexistent")
    with (
        connect(T, debug=True, env={}, credential_options={"retry_total": 0}) as conn,
        pytest.raises(AuthError) as e,
    ):
        conn.tenant_info()
    err = capsys.readouterr().err
    assert str(e.value).startswith(f"no credentials found for tenant {T}: ")
    assert "graph: sign-in failed: ChainedTokenCredential failed" in err
    assert "ManagedIdentityCredential" in err


def test_loopback_graph_refused_is_a_graph_error(
    manifest: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    code, err = run(
        ["plan", str(manifest), "--tenant", "contoso.com", "--graph-url", f"http://127.0.0.1:{port}/v1.0"],
        capsys,
    )
    assert code == 1
    lines = error_lines(err)
    assert re.fullmatch(
        rf"error: Graph (GET|POST) http://127\.0\.0\.1:{port}/v1\.0/\S+: no answer: could not reach Graph: "
        r"cannot connect \(ConnectError: [^)]+\)",
        lines[0],
    ), lines[0]
    assert lines[1:] == ["Check --graph-url and the network (proxy, firewall), then try again."]


def test_unresolvable_graph_host_after_sign_in(tmp_path: Path) -> None:
    """A real token from a fake Entra, then a Graph host that does not resolve (.invalid never does)."""
    entra = FakeEndpoints()
    tls = self_signed(tmp_path)
    with serve_fake(entra, tls) as host:
        env = {"AZURE_CLIENT_ID": APP, "AZURE_CLIENT_SECRET": SECRET, "AZURE_AUTHORITY_HOST": host}
        opts = {"connection_verify": str(tls[0])}
        policy = RetryPolicy(base_delay_s=0.01, max_delay_s=0.01)
        with (
            connect(T, "https://graph.invalid/v1.0", env=env, credential_options=opts, policy=policy) as conn,
            pytest.raises(GraphError) as e,
        ):
            conn.tenant_info()
    assert not isinstance(e.value, AuthError)
    text = str(e.value)
    assert text.startswith("Graph GET https://graph.invalid/v1.0/organization")
    assert ": no answer: could not reach Graph: cannot connect (ConnectError: " in text
    assert text.endswith("\nCheck --graph-url and the network (proxy, firewall), then try again.")
    assert SECRET not in text and [r["method"] for r in entra.requests] == ["POST"]


def test_graph_timeout_is_a_graph_error() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async def go() -> None:
        client = make_client("https://graph.test/v1.0", transport=httpx.MockTransport(slow))
        t = Transport(
            client, "https://graph.test/v1.0", policy=RetryPolicy(base_delay_s=0.01, max_delay_s=0.01)
        )
        try:
            await t.get_json("/organization")
        finally:
            await t.close()

    with pytest.raises(GraphError) as e:
        asyncio.run(go())
    assert str(e.value) == (
        "Graph GET https://graph.test/v1.0/organization: no answer: could not reach Graph: no answer in time "
        "(ReadTimeout)\nCheck --graph-url and the network (proxy, firewall), then try again."
    )
