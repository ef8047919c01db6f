"""Graph failures → GraphError / ThrottledError / plain sentences that say what to do. Pure.

Works on raw answers (status, headers, body bytes or a decoded `$batch` sub-response), never on kiota
models: error bodies are Graph's `{"error": {"code", "message", "innerError": {"request-id", "date"}}}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from provisioner.errors import GraphError, ThrottledError
from provisioner.graph.retry import parse_retry_after
from provisioner.model.observed import Sku

# Least-privileged application permissions (teams-licensing.md §3.10, CONTRACT §5).
PERM_READ_USERS = "User.Read.All"
PERM_READ_ORG = "Organization.Read.All"
PERM_ASSIGN = "LicenseAssignment.ReadWrite.All"
PERM_USAGE = "User.ReadUpdate.All (or User.ReadWrite.All)"
ALL_PERMISSIONS = "User.Read.All, LicenseAssignment.ReadWrite.All, User.ReadUpdate.All, Organization.Read.All"

# What people call the managed SKUs (catalog.yaml displayName; reference §1). Unknown part numbers show as is.
FRIENDLY = {
    "MCOEV": "Phone System",
    "MCOPSTN1": "Domestic Calling Plan",
    "MCOPSTN2": "International Calling Plan",
    "MCOPSTN_5": "Domestic Calling Plan (120 min)",
    "MCOPSTN_6": "Domestic Calling Plan (240 min)",
    "MCOPSTNC": "Communications Credits",
    "MCOPSTNPP": "Communications Credits",
}


def sku_label(sku_id: str, skus: Mapping[str, Sku] | None) -> str:
    """'Domestic Calling Plan (MCOPSTN1)', 'MCOPSTN_9' or the bare id when the SKU is unknown."""
    sku = (skus or {}).get(sku_id.lower())
    if sku is None:
        return f"SKU {sku_id}"
    name = FRIENDLY.get(sku.part_number.upper())
    if name is None and "pay_as_you_go" in sku.part_number.lower():
        name = "Pay-As-You-Go Calling Plan"
    return f"{name} ({sku.part_number})" if name else sku.part_number


_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# Graph's wordings vary (and are matched loosely): "Subscription <skuId> does not have any available licenses."
# as the emulator words it, "Subscription with SKU <skuId> ..." in other reports; the SKU is the last GUID before.
_NO_SEATS = re.compile(r"does not have any available licenses", re.I)
_UNKNOWN_SKU = re.compile(rf"License ({_GUID}) does not correspond to a valid company License", re.I)
_DEPENDS = re.compile(rf"service plan ({_GUID}) depends on the service plan\(s\) ((?:{_GUID}[,; ]*)+)", re.I)
_USAGE = re.compile(r"invalid usage location", re.I)
# "...inherited from group membership and cannot be removed..." (CIPP#4090, 2025); "...inherited from a group
# membership and it cannot be removed..." (the form many scripts compare with -eq)
_INHERITED = re.compile(r"inherited from (?:a )?group", re.I)
_PHONE_SYSTEM_PLANS = {"4828c8ec-dc2e-4779-b502-87ac9ce28ab7"}  # MCOEV, the Phone System service plan
_NOT_HELD = re.compile(r"does not have a corresponding license", re.I)


def not_held(message: str | None) -> bool:
    """Whether Graph refused an assignLicense because a license to remove is not held."""
    return bool(message and _NOT_HELD.search(message))


def plain_sentence(message: str | None, skus: Mapping[str, Sku] | None = None) -> str | None:
    """A sentence for the user when Graph's message is one of the licensing verdicts we know, else None."""
    text = message or ""
    if m := _NO_SEATS.search(text):
        ids = re.findall(_GUID, text[: m.start()])
        if not ids:
            return "no free seats for a license in this call; buy more, or free seats by removing licenses from users"
        sku = (skus or {}).get(ids[-1].lower())
        counts = f": 0 of {sku.enabled} free" if sku is not None else ""
        return (
            f"no free {sku_label(ids[-1], skus)} seats{counts}; buy more, or free seats by removing the "
            "license from users who no longer need it"
        )
    if m := _UNKNOWN_SKU.search(text):
        return f"the tenant has no subscription for {sku_label(m.group(1), skus)}"
    if m := _DEPENDS.search(text):
        needs = {g.lower() for g in re.findall(_GUID, m.group(2))}
        if needs & _PHONE_SYSTEM_PLANS:
            return "a Calling Plan needs Phone System: assign Phone System in the same call or before it"
        names = {p.id: p.name for sku in (skus or {}).values() for p in sku.service_plans if p.name}
        plan, wanted = names.get(m.group(1).lower(), m.group(1)), sorted(names.get(g, g) for g in needs)
        return (
            f"service plan {plan} needs {', '.join(wanted)}, which the user does not have enabled: assign a license "
            "that includes it (or enable it) first"
        )
    if _USAGE.search(text):
        return "the user has no usage location: set usageLocation before assigning licenses"
    if _INHERITED.search(text):
        return "the license comes from a group: remove the user from the group, or the license from the group"
    if _NOT_HELD.search(text):
        return "the user does not hold that license any more (someone removed it since the plan was made)"
    return None


def permission_for(method: str | None, url: str | None) -> str:
    """The application permission a request needs (what a 403 most likely lacks)."""
    m = (method or "GET").upper()
    path = (url or "").split("?", 1)[0].lower()
    if path.endswith("/assignlicense"):
        return PERM_ASSIGN
    if m == "PATCH" and "/users/" in path:
        return PERM_USAGE
    if path.endswith("/organization") or path.endswith("/subscribedskus"):
        return PERM_READ_ORG
    if "/users" in path:
        return PERM_READ_USERS
    return ALL_PERMISSIONS


def hint_for(status: int | None, method: str | None, url: str | None) -> str | None:
    if status == 401:
        return (
            "Graph rejected the credential. Check AZURE_TENANT_ID / AZURE_CLIENT_ID and that the secret or "
            "certificate has not expired, then try again."
        )
    if status == 403:
        return (
            f"The app lacks a permission for this call: grant the application permission "
            f"{permission_for(method, url)} (with admin consent). The tool needs {ALL_PERMISSIONS}."
        )
    if status == 404:
        return "Graph found no such object: it may have been deleted, or --graph-url points at the wrong service."
    if status == 429:
        return "Graph kept throttling past the retry budget. Wait a few minutes and run the command again."
    if status in (503, 504):
        return "Graph was unavailable past the retry budget. Wait a few minutes and run the command again."
    if status is not None and status >= 500:
        return "Graph had an internal error. Run the command again; if it persists, quote the request-id to Microsoft."
    return None


def error_fields(body: Any) -> tuple[str | None, str | None, str | None]:
    """(code, message, request-id) from a Graph error body `{"error": {"code", "message", "innerError"}}`."""
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None, None, None
    if not isinstance(body, dict):
        return None, None, None
    err = body.get("error")
    if not isinstance(err, dict):
        return None, None, None
    inner = err.get("innerError") or err.get("innererror") or {}
    rid = (inner.get("request-id") or inner.get("requestId")) if isinstance(inner, dict) else None
    code, message = err.get("code"), err.get("message")
    return (str(code) if code else None), (str(message) if message else None), (str(rid) if rid else None)


def header(headers: Any, name: str) -> str | None:
    """A header value by case-insensitive name from httpx.Headers or a plain dict."""
    if not headers:
        return None
    low = name.lower()
    for k, v in headers.items():
        if str(k).lower() == low:
            return str(v)
    return None


def make_error(
    status: int | None,
    code: str | None,
    message: str | None,
    *,
    request_id: str | None = None,
    method: str | None = None,
    url: str | None = None,
    retry_after: float | None = None,
    skus: Mapping[str, Sku] | None = None,
) -> GraphError:
    cls = ThrottledError if status in (429, 503, 504) else GraphError
    text = message or (f"HTTP {status}" if status else "request failed")
    return cls(
        text,
        status=status,
        code=code,
        request_id=request_id,
        method=method,
        url=display_url(url),
        hint=plain_sentence(message, skus) or hint_for(status, method, url),
        retry_after=retry_after,
    )


def from_response(status: int, headers: Any, body: bytes, *, method: str, url: str) -> GraphError:
    """A top-level error answer (raw status, headers and body) → GraphError."""
    code, message, rid = error_fields(body)
    rid = rid or header(headers, "request-id") or header(headers, "client-request-id")
    return make_error(
        status, code, message, request_id=rid, method=method, url=url, retry_after=parse_retry_after(headers)
    )


def from_sub_response(sub: Mapping[str, Any], *, method: str, url: str) -> GraphError:
    """A failed `$batch` sub-response `{"id", "status", "headers", "body"}` → GraphError."""
    headers = sub.get("headers") or {}
    code, message, rid = error_fields(sub.get("body"))
    rid = rid or header(headers, "request-id") or header(headers, "client-request-id")
    return make_error(
        int(sub.get("status") or 0) or None,
        code,
        message,
        request_id=rid,
        method=method,
        url=url,
        retry_after=parse_retry_after(headers),
    )


def connection_error(exc: BaseException, *, method: str, url: str) -> GraphError:
    """A request that got no HTTP answer at all (DNS, refused, TLS, timeout): one GraphError naming the URL."""
    import httpx  # only a transport failure gets here: httpx is loaded already

    name = type(exc).__name__
    detail = clean(str(exc)) or name
    if isinstance(exc, httpx.TimeoutException):
        what = f"no answer in time ({name})"
    else:
        what = f"cannot connect ({name}: {detail})" if detail != name else f"cannot connect ({name})"
    return GraphError(
        f"could not reach Graph: {what}",
        code="no answer",
        method=method,
        url=display_url(url),
        hint="Check --graph-url and the network (proxy, firewall), then try again.",
    )


_QUERY = re.compile(r"\?.*$")


def display_url(url: str | None) -> str | None:
    """URLs in messages keep their path but lose long query strings (UPN lists, skiptokens)."""
    if url is None:
        return None
    return url if len(url) <= 160 else _QUERY.sub("?…", url)


def clean(text: str) -> str:
    return " ".join(text.split())[:300]
