"""Authentication: the selection matrix (pure), the credentials it builds, GitHub OIDC against a fake token
service, a real azure-identity token flow against a fake Entra on loopback, and no secret in any output."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from graph_helpers import FakeEndpoints, self_signed, serve_fake

from provisioner.errors import AuthError
from provisioner.graph import connect, select_credential
from provisioner.graph.auth import authority_for, github_assertion, graph_scope, scrub

T = "11111111-2222-3333-4444-555555555555"
SECRET = "planted-SECRET-value-7f3a9c"
BASE = {"AZURE_CLIENT_ID": "app-id-1"}


@pytest.mark.parametrize(
    ("mode", "env", "kind", "uses"),
    [
        ("auto", {**BASE, "AZURE_CLIENT_SECRET": SECRET}, "secret", ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")),
        ("auto", {**BASE, "AZURE_CLIENT_CERTIFICATE_PATH": "/c.pem"}, "certificate", ("AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_ID")),
        ("auto", {**BASE, "AZURE_CLIENT_SECRET": SECRET, "AZURE_CLIENT_CERTIFICATE_PATH": "/c.pem"}, "secret", ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")),
        ("auto", {**BASE, "AZURE_FEDERATED_TOKEN_FILE": "/t"}, "workload-identity", ("AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE")),
        ("auto", {**BASE, "ACTIONS_ID_TOKEN_REQUEST_URL": "http://x", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"}, "github-oidc",
         ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL", "AZURE_CLIENT_ID")),
        ("auto", {}, "managed-identity-or-azure-cli", ()),
        ("auto", BASE, "managed-identity-or-azure-cli", ("AZURE_CLIENT_ID",)),
        ("secret", {**BASE, "AZURE_CLIENT_SECRET": SECRET, "AZURE_FEDERATED_TOKEN_FILE": "/t"}, "secret", ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")),
        ("oidc", {**BASE, "AZURE_CLIENT_SECRET": SECRET, "AZURE_FEDERATED_TOKEN_FILE": "/t"}, "workload-identity", ("AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE")),
        ("managed-identity", {**BASE, "AZURE_CLIENT_SECRET": SECRET}, "managed-identity", ("AZURE_CLIENT_ID",)),
        ("azure-cli", {**BASE, "AZURE_CLIENT_SECRET": SECRET}, "azure-cli", ()),
    ],
)  # fmt: skip
def test_selection_matrix(mode: str, env: dict[str, str], kind: str, uses: tuple[str, ...]) -> None:
    c = select_credential(mode, env, T)
    assert (c.kind, c.uses, c.tenant_id) == (kind, uses, T)
    assert SECRET not in c.describe() and SECRET not in repr(c)


def test_tenant_from_env_when_not_given() -> None:
    c = select_credential("secret", {**BASE, "AZURE_CLIENT_SECRET": SECRET, "AZURE_TENANT_ID": T}, None)
    assert c.tenant_id == T and "AZURE_TENANT_ID" in c.uses


@pytest.mark.parametrize(
    ("mode", "env", "tenant", "named"),
    [
        ("secret", BASE, T, "AZURE_CLIENT_SECRET"),
        ("secret", {"AZURE_CLIENT_SECRET": SECRET}, T, "AZURE_CLIENT_ID"),
        ("secret", {**BASE, "AZURE_CLIENT_SECRET": SECRET}, None, "AZURE_TENANT_ID (or --tenant)"),
        ("certificate", BASE, T, "AZURE_CLIENT_CERTIFICATE_PATH"),
        ("oidc", BASE, T, "ACTIONS_ID_TOKEN_REQUEST_URL"),
        (
            "oidc",
            {"ACTIONS_ID_TOKEN_REQUEST_URL": "http://x"},
            T,
            "AZURE_CLIENT_ID, ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        ),
    ],
)
def test_missing_settings_one_line_naming_variables(
    mode: str, env: dict[str, str], tenant: str | None, named: str
) -> None:
    with pytest.raises(AuthError) as e:
        select_credential(mode, env, tenant)
    text = str(e.value)
    assert named in text and f"--auth {mode}" in text
    assert "\n" not in text and SECRET not in text


def test_unknown_mode() -> None:
    with pytest.raises(AuthError, match="unknown --auth 'kerberos'"):
        select_credential("kerberos", {}, T)


def test_build_makes_the_matching_azure_identity_credential(tmp_path: Path) -> None:
    from azure.identity import aio

    env = {**BASE, "AZURE_CLIENT_SECRET": SECRET, "AZURE_FEDERATED_TOKEN_FILE": str(tmp_path / "t"),
           "ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:9/x", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"}  # fmt: skip
    (tmp_path / "t").write_text("jwt")
    expected = {
        "secret": aio.ClientSecretCredential,
        "oidc": aio.WorkloadIdentityCredential,
        "managed-identity": aio.ManagedIdentityCredential,
        "azure-cli": aio.AzureCliCredential,
        "auto": aio.ClientSecretCredential,
    }

    async def build_all() -> None:
        for mode, cls in expected.items():
            cred = select_credential(mode, env, T).build()
            assert isinstance(cred, cls), mode
            await cred.close()
        gh = {k: v for k, v in env.items() if k != "AZURE_FEDERATED_TOKEN_FILE"}
        cred = select_credential("oidc", gh, T).build()
        assert isinstance(cred, aio.ClientAssertionCredential)
        await cred.close()
        chain = select_credential("auto", {}, T).build()
        assert isinstance(chain, aio.ChainedTokenCredential)
        await chain.close()

    asyncio.run(build_all())


def test_national_clouds_scope_and_authority() -> None:
    assert graph_scope("https://graph.microsoft.us/v1.0") == "https://graph.microsoft.us/.default"
    assert authority_for("https://graph.microsoft.us/v1.0", {}) == "login.microsoftonline.us"
    assert authority_for("https://microsoftgraph.chinacloudapi.cn/v1.0", {}) == "login.chinacloudapi.cn"
    assert authority_for("https://graph.microsoft.com/v1.0", {"AZURE_AUTHORITY_HOST": "h"}) == "h"


def test_github_oidc_assertion_requests_the_exchange_audience() -> None:
    fake = FakeEndpoints()
    with serve_fake(fake) as host:
        token = github_assertion(f"http://{host}/_apis/token?api-version=2.0", "gh-request-token")()
        assert token.startswith("eyJ")
        (req,) = fake.requests
        assert req["path"] == "/_apis/token?api-version=2.0&audience=api%3A%2F%2FAzureADTokenExchange"
        with pytest.raises(AuthError, match="HTTP 403") as e:
            github_assertion(f"http://{host}/_apis/token", "wrong")()
        assert "wrong" not in str(e.value)


def test_scrub_removes_secrets_and_jwts() -> None:
    text = f"x {SECRET} y eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc z"
    assert scrub(text, {"AZURE_CLIENT_SECRET": SECRET}) == "x *** y *** z"


def test_client_secret_and_github_oidc_tokens_reach_graph(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A real azure-identity credential gets its token from a fake Entra (https, loopback) and the SDK sends it."""
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )

    from provisioner.graph.transport import Transport, make_client

    seen: list[str | None] = []

    def graph(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(
            200, json={"value": [{"id": T, "displayName": "Contoso", "verifiedDomains": []}]}
        )

    entra, github = FakeEndpoints(), FakeEndpoints()
    tls = self_signed(tmp_path)
    with serve_fake(entra, tls) as entra_host, serve_fake(github) as gh_host:
        app_cert, app_key = self_signed(tmp_path, rsa_key=True, stem="app")
        pem = tmp_path / "app-with-key.pem"  # CertificateCredential wants key and certificate in one PEM file
        pem.write_bytes(app_key.read_bytes() + app_cert.read_bytes())
        envs = {
            "secret": {**BASE, "AZURE_CLIENT_SECRET": SECRET},
            "certificate": {**BASE, "AZURE_CLIENT_CERTIFICATE_PATH": str(pem)},
            "oidc": {**BASE, "ACTIONS_ID_TOKEN_REQUEST_URL": f"http://{gh_host}/token?x=1",
                     "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "gh-request-token"},
        }  # fmt: skip
        for mode, env in envs.items():
            choice = select_credential(mode, env, T)

            async def run(choice: Any = choice) -> None:
                cred = choice.build(authority=entra_host, connection_verify=str(tls[0]))
                provider = AzureIdentityAuthenticationProvider(
                    cred, scopes=["https://graph.microsoft.com/.default"], allowed_hosts=["graph.test"]
                )
                client = make_client(
                    "https://graph.test/v1.0", transport=httpx.MockTransport(graph), auth_provider=provider
                )
                t = Transport(client, "https://graph.test/v1.0", credential=cred, choice=choice)
                for _ in range(3):
                    await t.get_json("/organization")
                await t.close()

            asyncio.run(run())
    assert seen == ["Bearer issued-access-token"] * 9
    posts = [r for r in entra.requests if r["method"] == "POST"]
    assert len(posts) == 3  # one token per credential, cached for the three calls
    assert posts[0]["path"] == f"/{T}/oauth2/v2.0/token" and posts[0]["form"]["client_secret"] == SECRET
    assert posts[0]["form"]["scope"] == "https://graph.microsoft.com/.default"
    for p in posts[1:]:  # certificate: a signed JWT; GitHub OIDC: GitHub's JWT
        assert p["form"]["client_assertion"].startswith("eyJ") and "client_secret" not in p["form"]
        assert p["form"]["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert [r["method"] for r in github.requests] == ["GET"]


def test_managed_identity_token_from_a_loopback_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )

    from provisioner.graph.transport import Transport, make_client

    seen: list[str | None] = []

    def graph(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"value": []})

    msi = FakeEndpoints()
    with serve_fake(msi) as host:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://{host}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", "msi-secret-header")
        choice = select_credential("managed-identity", {}, T)

        async def run() -> None:
            cred = choice.build()
            provider = AzureIdentityAuthenticationProvider(
                cred, scopes=["https://graph.microsoft.com/.default"]
            )
            client = make_client(
                "https://graph.test/v1.0", transport=httpx.MockTransport(graph), auth_provider=provider
            )
            t = Transport(client, "https://graph.test/v1.0", credential=cred, choice=choice)
            await t.get_json("/organization")
            await t.close()

        asyncio.run(run())
    assert seen == ["Bearer issued-access-token"]
    (req,) = msi.requests
    assert req["path"].startswith("/msi/token?") and "resource=https://graph.microsoft.com" in req["path"]


def test_secret_never_printed_even_with_debug(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Plant a secret; Entra refuses it and echoes it back; nothing we print, raise or log contains it."""
    entra = FakeEndpoints(refuse=True)
    tls = self_signed(tmp_path)
    caplog.set_level(logging.DEBUG)
    with serve_fake(entra, tls) as host:
        env = {**BASE, "AZURE_CLIENT_SECRET": SECRET, "AZURE_AUTHORITY_HOST": host}
        opts = {"connection_verify": str(tls[0])}
        with (
            connect(
                T, "https://graph.microsoft.com/v1.0", debug=True, env=env, credential_options=opts
            ) as conn,
            pytest.raises(AuthError) as e,
        ):
            conn.tenant_info()
    out = capsys.readouterr()
    everything = "\n".join([str(e.value), repr(e.value), out.out, out.err, caplog.text])
    assert entra.requests and entra.requests[0]["form"]["client_secret"] == SECRET  # it was really sent
    assert str(e.value).startswith(
        f"could not get a Graph token with the client secret for app app-id-1 in tenant {T}: "
    )
    assert "AADSTS7000215" in str(e.value) and str(e.value).count("AADSTS7000215") == 1
    assert "auth: client secret for app app-id-1" in out.err  # --debug says which credential
    assert SECRET not in everything
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_graph_401_is_an_auth_error_with_the_request_id() -> None:
    import time

    from azure.core.credentials import AccessToken
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )

    from provisioner.graph.transport import Transport, make_client

    class Cred:
        async def get_token(self, *scopes: str, **kw: Any) -> AccessToken:
            return AccessToken("expired-token", int(time.time()) + 3600)

        async def close(self) -> None:
            pass

    def graph(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": "InvalidAuthenticationToken", "message": "Access token has expired or is not yet valid.",
                          "innerError": {"request-id": "rid-401"}}}  # fmt: skip
        return httpx.Response(401, json=body)

    choice = select_credential("secret", {**BASE, "AZURE_CLIENT_SECRET": SECRET}, T)

    async def run() -> None:
        provider = AzureIdentityAuthenticationProvider(
            Cred(), scopes=["https://graph.microsoft.com/.default"]
        )
        client = make_client(
            "https://graph.test/v1.0", transport=httpx.MockTransport(graph), auth_provider=provider
        )
        t = Transport(client, "https://graph.test/v1.0", credential=Cred(), choice=choice)
        try:
            await t.get_json("/organization")
        finally:
            await t.close()

    with pytest.raises(AuthError) as e:
        asyncio.run(run())
    assert str(e.value).startswith(
        "Graph rejected the token: Access token has expired or is not yet valid. (request-id rid-401)"
    )
    assert "AZURE_TENANT_ID / AZURE_CLIENT_ID" in str(e.value)
