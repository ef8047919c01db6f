"""Which credential to use (CONTRACT §5) and how to build it. `select_credential` is pure; `build` imports
azure-identity (async credentials) only when a real tenant is used. No secret value is ever put in a message.

--auth auto tries, in order: client secret, certificate (AZURE_CLIENT_ID + AZURE_CLIENT_SECRET /
AZURE_CLIENT_CERTIFICATE_PATH); workload identity federation from AZURE_FEDERATED_TOKEN_FILE; GitHub Actions
OIDC (ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN, the JWT used as a client assertion); then managed identity and
the Azure CLI, chained. The token tenant is --tenant (AZURE_TENANT_ID when --tenant is not given).
Every failure (bad tenant, unreadable certificate, unreachable sign-in host, no credential) is an AuthError
line naming the setting to fix; azure-identity's own text is shown only with --debug, scrubbed.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from provisioner.errors import AuthError

MODES = ("auto", "secret", "certificate", "oidc", "managed-identity", "azure-cli")
GITHUB_AUDIENCE = "api://AzureADTokenExchange"
# Environment variables whose values are secrets: scrubbed from every message we print.
SECRET_VARS = ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")

# Graph host → Entra authority host (national clouds: learn.microsoft.com/graph/deployments).
AUTHORITIES = {
    "graph.microsoft.com": "login.microsoftonline.com",
    "graph.microsoft.us": "login.microsoftonline.us",
    "dod-graph.microsoft.us": "login.microsoftonline.us",
    "microsoftgraph.chinacloudapi.cn": "login.chinacloudapi.cn",
}


@dataclass(frozen=True)
class CredentialChoice:
    """What `select_credential` decided. `describe()` is safe to print; the environment is kept out of repr."""

    kind: str  # secret | certificate | workload-identity | github-oidc | managed-identity | azure-cli | managed-identity-or-azure-cli
    tenant_id: str | None
    client_id: str | None
    uses: tuple[str, ...]  # the environment variables it reads (names only)
    env: Mapping[str, str] = field(repr=False, compare=False, default_factory=dict)

    def describe(self) -> str:
        """E.g. "auth: client secret for app X in tenant T (from AZURE_CLIENT_ID, AZURE_CLIENT_SECRET)"."""
        return f"auth: {self.short()} (from {', '.join(self.uses) or 'no variables'})"

    def short(self) -> str:
        who = f" for app {self.client_id}" if self.client_id else ""
        where = f" in tenant {self.tenant_id}" if self.tenant_id else ""
        names = {
            "secret": "client secret",
            "certificate": "client certificate",
            "workload-identity": "workload identity federation (token file)",
            "github-oidc": "GitHub Actions OIDC (workload identity federation)",
            "managed-identity": "managed identity",
            "azure-cli": "Azure CLI login",
            "managed-identity-or-azure-cli": "managed identity, else Azure CLI login",
        }
        return f"{names[self.kind]}{who}{where}"

    def build(self, authority: str | None = None, **options: Any) -> Any:
        """The azure.identity.aio credential. Imports azure-identity (a real tenant is being used).

        `options` go to the credential (azure-core transport settings, e.g. connection_verify=CA_BUNDLE).
        Raises AuthError naming the variable at fault when a file cannot be read or a setting is malformed.
        """
        try:
            return self._build(authority, **options)
        except AuthError:
            raise
        except OSError as exc:  # the certificate file (read here; the federated token file is read per token)
            path = self.env.get("AZURE_CLIENT_CERTIFICATE_PATH", "")
            why = exc.strerror or type(exc).__name__
            raise AuthError(
                f"cannot read the certificate AZURE_CLIENT_CERTIFICATE_PATH={path} ({why}): point it at a PEM "
                "or PKCS#12 file holding the certificate and its private key."
            ) from None
        except ValueError as exc:
            raise AuthError(self._value_error(authority, exc)) from None

    def _value_error(self, authority: str | None, exc: ValueError) -> str:
        text = scrub(" ".join(str(exc).split()), self.env)[:300]
        if "authority" in text.lower():
            return (
                f"AZURE_AUTHORITY_HOST {authority!r} is not a usable sign-in host ({text}): set it to an https URL "
                "or a host name such as login.microsoftonline.us, or unset it."
            )
        if self.kind == "certificate":
            path = self.env.get("AZURE_CLIENT_CERTIFICATE_PATH", "")
            return (
                f"AZURE_CLIENT_CERTIFICATE_PATH={path} is not a usable certificate ({text}): it must hold the "
                "certificate and its private key (PEM, or PKCS#12 with AZURE_CLIENT_CERTIFICATE_PASSWORD)."
            )
        return f"cannot set up the {self.short()}: {text}"

    def _build(self, authority: str | None, **options: Any) -> Any:
        from azure.identity import aio

        e, t, c = self.env, self.tenant_id or "", self.client_id or ""
        kw: dict[str, Any] = {"authority": authority, **options} if authority else dict(options)
        if self.kind == "secret":
            return aio.ClientSecretCredential(t, c, e["AZURE_CLIENT_SECRET"], **kw)
        if self.kind == "certificate":
            return aio.CertificateCredential(
                t,
                c,
                certificate_path=e["AZURE_CLIENT_CERTIFICATE_PATH"],
                password=e.get("AZURE_CLIENT_CERTIFICATE_PASSWORD") or None,
                **kw,
            )
        if self.kind == "workload-identity":
            return aio.WorkloadIdentityCredential(
                tenant_id=t, client_id=c, token_file_path=e["AZURE_FEDERATED_TOKEN_FILE"], **kw
            )
        if self.kind == "github-oidc":
            assertion = github_assertion(
                e["ACTIONS_ID_TOKEN_REQUEST_URL"], e["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
            )
            return aio.ClientAssertionCredential(t, c, func=assertion, **kw)
        if self.kind == "managed-identity":
            return aio.ManagedIdentityCredential(client_id=c or None, **options)
        if self.kind == "azure-cli":
            return aio.AzureCliCredential(tenant_id=t)
        return aio.ChainedTokenCredential(
            aio.ManagedIdentityCredential(client_id=c or None, **options),
            aio.AzureCliCredential(tenant_id=t),
        )


def _missing(mode: str, needed: list[str], env: Mapping[str, str], tenant: str | None) -> None:
    gone = [n for n in needed if not env.get(n)]
    if not tenant:
        gone.append("AZURE_TENANT_ID (or --tenant)")
    if gone:
        raise AuthError(
            f"--auth {mode} needs {', '.join(gone)}: set {'it' if len(gone) == 1 else 'them'} in the environment, "
            "or choose another --auth (secret, certificate, oidc, managed-identity, azure-cli)."
        )


_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DOMAIN = re.compile(r"(?=.{4,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


def check_tenant(tenant: str, source: str = "--tenant") -> None:
    """Raise AuthError unless `tenant` is a tenant id (GUID) or a domain name. Pure."""
    if _GUID.fullmatch(tenant) or _DOMAIN.fullmatch(tenant):
        return
    raise AuthError(
        f"{source} {tenant!r} is not a tenant: use emulator:PATH, a tenant id (GUID, e.g. "
        "11111111-2222-3333-4444-555555555555) or a verified domain (e.g. contoso.onmicrosoft.com)."
    )


def select_credential(mode: str, env: Mapping[str, str], tenant: str | None = None) -> CredentialChoice:
    """Decide the credential for `--auth mode` from the environment. Pure; raises AuthError naming variables."""
    if mode not in MODES:
        raise AuthError(f"unknown --auth {mode!r}; use one of: {', '.join(MODES)}.")
    env = dict(env)
    tenant_id = tenant or env.get("AZURE_TENANT_ID") or None
    if tenant_id:
        check_tenant(tenant_id, "--tenant" if tenant else "AZURE_TENANT_ID")
    client = env.get("AZURE_CLIENT_ID") or None
    tenant_var = () if tenant else ("AZURE_TENANT_ID",)

    def choice(kind: str, uses: tuple[str, ...]) -> CredentialChoice:
        return CredentialChoice(
            kind,
            tenant_id,
            client,
            tuple(sorted({*uses, *tenant_var}))
            if kind not in ("managed-identity", "azure-cli", "managed-identity-or-azure-cli")
            else uses,
            env,
        )

    if mode == "auto":
        if env.get("AZURE_CLIENT_SECRET"):
            mode = "secret"
        elif env.get("AZURE_CLIENT_CERTIFICATE_PATH"):
            mode = "certificate"
        elif env.get("AZURE_FEDERATED_TOKEN_FILE") or env.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
            mode = "oidc"
        else:
            mi: tuple[str, ...] = ("AZURE_CLIENT_ID",) if client else ()
            return CredentialChoice("managed-identity-or-azure-cli", tenant_id, client, mi, env)
    if mode == "secret":
        _missing(mode, ["AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"], env, tenant_id)
        return choice("secret", ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"))
    if mode == "certificate":
        _missing(mode, ["AZURE_CLIENT_ID", "AZURE_CLIENT_CERTIFICATE_PATH"], env, tenant_id)
        cert: tuple[str, ...] = ("AZURE_CLIENT_ID", "AZURE_CLIENT_CERTIFICATE_PATH")
        if env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD"):
            cert += ("AZURE_CLIENT_CERTIFICATE_PASSWORD",)
        return choice("certificate", cert)
    if mode == "oidc":
        if env.get("AZURE_FEDERATED_TOKEN_FILE"):
            _missing(mode, ["AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE"], env, tenant_id)
            return choice("workload-identity", ("AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE"))
        if not env.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
            raise AuthError(
                "--auth oidc needs AZURE_FEDERATED_TOKEN_FILE, or GitHub Actions' ACTIONS_ID_TOKEN_REQUEST_URL and "
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN (give the job `permissions: id-token: write`), plus AZURE_CLIENT_ID."
            )
        gh = ["AZURE_CLIENT_ID", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
        _missing(mode, gh, env, tenant_id)
        return choice("github-oidc", tuple(gh))
    if mode == "managed-identity":
        return CredentialChoice(
            "managed-identity", tenant_id, client, ("AZURE_CLIENT_ID",) if client else (), env
        )
    return CredentialChoice("azure-cli", tenant_id, client, (), env)


def github_assertion(request_url: str, request_token: str) -> Callable[[], str]:
    """A function returning a fresh GitHub Actions OIDC JWT for audience api://AzureADTokenExchange."""

    def fetch() -> str:
        import httpx

        try:
            # Append, never replace: GitHub's URL already carries a query (api-version=...).
            sep = "&" if "?" in request_url else "?"
            r = httpx.get(
                f"{request_url}{sep}audience={quote(GITHUB_AUDIENCE, safe='')}",
                headers={"Authorization": f"bearer {request_token}", "Accept": "application/json"},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            raise AuthError(
                f"could not get the GitHub Actions OIDC token from ACTIONS_ID_TOKEN_REQUEST_URL ({type(exc).__name__})."
            ) from None
        value = None
        if r.status_code == 200:
            try:
                value = r.json().get("value")
            except ValueError:
                value = None
        if not value:
            raise AuthError(
                f"GitHub Actions refused the OIDC token request (HTTP {r.status_code}): give the job "
                "`permissions: id-token: write` and check ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN."
            )
        return str(value)

    return fetch


def graph_scope(graph_url: str) -> str:
    """The token scope for a Graph base URL: https://HOST/.default (national clouds differ by host)."""
    host = urlsplit(graph_url).hostname or "graph.microsoft.com"
    return f"https://{host}/.default"


def authority_for(graph_url: str, env: Mapping[str, str]) -> str:
    """Entra authority host for a Graph URL; AZURE_AUTHORITY_HOST wins when set."""
    if env.get("AZURE_AUTHORITY_HOST"):
        return env["AZURE_AUTHORITY_HOST"]
    host = (urlsplit(graph_url).hostname or "").lower()
    return AUTHORITIES.get(host, "login.microsoftonline.com")


_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")


def scrub(text: str, env: Mapping[str, str]) -> str:
    """`text` with every secret value from `env`, and anything shaped like a JWT, replaced by ***."""
    for name in SECRET_VARS:
        value = env.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return _JWT.sub("***", text)


NO_CREDENTIALS = (
    "no credentials found{for_tenant}: set AZURE_CLIENT_ID + AZURE_CLIENT_SECRET (or "
    "AZURE_CLIENT_CERTIFICATE_PATH), or AZURE_FEDERATED_TOKEN_FILE / GitHub OIDC (id-token: write), or run on "
    "a managed identity, or `az login`; or force one with --auth."
)
_UNREACHABLE = {"ServiceRequestError", "ServiceResponseError", "ServiceRequestTimeoutError",
                "ServiceResponseTimeoutError"}  # fmt: skip


def sign_in_host(authority: str | None) -> str:
    """The host name in an authority ("https://login.microsoftonline.us/" or "login.microsoftonline.us")."""
    if not authority:
        return "login.microsoftonline.com"
    parts = urlsplit(authority if "//" in authority else f"//{authority}")
    return parts.netloc or authority


def auth_error_from(exc: BaseException, choice: CredentialChoice, authority: str | None = None) -> AuthError:
    """An azure-identity failure → one AuthError line (scrubbed) that says what to check.

    `authority` is the sign-in host the credential was built with (named when it cannot be reached).
    """
    if isinstance(exc, AuthError):
        return exc
    names = {c.__name__ for c in type(exc).__mro__}
    detail = scrub(" ".join(str(exc).split()), choice.env)[:200]
    if names & _UNREACHABLE:
        if choice.kind in ("managed-identity", "managed-identity-or-azure-cli"):
            where = "the managed identity endpoint"
        else:
            where = f"the sign-in service {sign_in_host(authority)}"
        return AuthError(
            f"cannot reach {where} ({type(exc).__name__}: {detail}): check the network/proxy, or "
            "--graph-url/AZURE_AUTHORITY_HOST for a national cloud."
        )
    if choice.kind == "managed-identity-or-azure-cli":
        # --auth auto found no variables, and neither a managed identity nor an Azure CLI login answered:
        # azure-identity's chained text names neither variable; --debug shows it (logged, scrubbed).
        where = f" for tenant {choice.tenant_id}" if choice.tenant_id else ""
        return AuthError(
            NO_CREDENTIALS.format(for_tenant=where),
            hint="Run with --debug to see why each attempted credential failed.",
        )
    text = " ".join(str(exc).split()).split(" Content: ", 1)[
        0
    ]  # azure-core appends the raw body: said already
    first = scrub(text, choice.env)[:400]
    return AuthError(
        f"could not get a Graph token with the {choice.short()}: {first}",
        hint=f"Check {', '.join(choice.uses) or 'the sign-in'} (right app and tenant, secret or certificate not "
        "expired, federated credential subject), or choose another --auth.",
    )


class _ScrubbingHandler(logging.Handler):
    """azure-identity logs failed token requests with the service's answer (WARNING, with traceback); Python
    would print those on stderr through logging.lastResort. We print them only with --debug, scrubbed."""

    def __init__(self, env: Mapping[str, str], debug: bool) -> None:
        super().__init__(logging.WARNING)
        self.env = dict(env)
        self.debug = debug

    def emit(self, record: logging.LogRecord) -> None:
        if not self.debug:
            return
        try:
            text = scrub(self.format(record), self.env)
        except Exception:  # a logging failure must never break a run
            return
        print(f"azure-identity: {text}", file=sys.stderr)


def contain_azure_logging(env: Mapping[str, str], debug: bool) -> None:
    """Route the `azure` loggers through a scrubbing handler and stop them reaching the root logger."""
    log = logging.getLogger("azure")
    for h in list(log.handlers):
        if isinstance(h, _ScrubbingHandler):
            log.removeHandler(h)
    log.addHandler(_ScrubbingHandler(env, debug))
    log.propagate = False
