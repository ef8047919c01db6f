"""Desired state: what the manifests declare, after loading, defaults and merging. Pure data.

`None` on a user field always means "omitted: not managed, leave the tenant as it is"; an explicit value
is managed. UPNs are compared case-insensitively through `DesiredUser.key`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Literal, NamedTuple

Unlisted = Literal["ignore", "remove"]
PaygFunding = Literal["communicationsCredits", "postUsage"]

# The manifest format's header values (CONTRACT §2).
API_VERSION = "provisioner/v1"
KIND = "TeamsVoiceLicensing"

# Calling Plan ids of the manifest format (CONTRACT §2); `sku:<skuPartNumber>` is also accepted.
CALLING_PLAN_IDS: tuple[str, ...] = ("none", "domestic", "domestic-120", "domestic-240", "international", "payg")


class Source(NamedTuple):
    """Where something was declared: a manifest file and 1-based line. Ordered by file, then line.

    A NamedTuple, as DesiredUser: the loader makes one of each per user, and a frozen dataclass costs ~2.5 µs
    more per object (one object.__setattr__ per field), 0.25 s of a 100,000-user manifest's 0.75 s.
    """

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class ManifestDiagnostic:
    """A manifest problem `plan` reports as an error diagnostic of the plan (with its code), not as a load error.

    Only `duplicate-user` is found by the loader this way; `validate` reports it as a manifest error.
    """

    code: str
    message: str
    upn: str
    source: str  # "FILE:LINE"


@dataclass(frozen=True)
class Policy:
    unlisted: Unlisted = "ignore"
    max_removals: int = 10
    payg_funding: PaygFunding = "communicationsCredits"
    phone_system_sku: str = "MCOEV"


class DesiredUser(NamedTuple):
    """One user entry, defaults of its file already applied. Immutable; `_replace` makes a changed copy.

    usage_location: ISO 3166 alpha-2, upper case; None = not managed.
    calling_plan: one of CALLING_PLAN_IDS or "sku:<skuPartNumber>"; None = not managed.
    phone_system: True/False as declared; None = not declared. Use `wants_phone_system` for the effective value.
    communications_credits: True/False as declared; None = not declared (payg + communicationsCredits implies True).
    """

    upn: str
    source: Source
    usage_location: str | None = None
    calling_plan: str | None = None
    phone_system: bool | None = None
    communications_credits: bool | None = None

    @property
    def key(self) -> str:
        return self.upn.lower()

    @property
    def wants_phone_system(self) -> bool | None:
        """Effective Phone System wish: declared value, else True when a Calling Plan other than none is declared."""
        if self.phone_system is not None:
            return self.phone_system
        if self.calling_plan is not None and self.calling_plan != "none":
            return True
        return None


_new = tuple.__new__


def desired_users(
    upns: Iterable[str],
    files: Iterable[str],
    lines: Iterable[int],
    *fields: Iterable[Any],
) -> Iterator[DesiredUser]:
    """DesiredUsers from columns (upn, source file and line, then the other fields in order), built in C.

    tuple.__new__ makes the same objects as DesiredUser(...) and Source(...), whose own __new__ is Python:
    half the time for the 100,000 users of a big manifest."""
    sources = map(_new, repeat(Source), zip(files, lines, strict=False))  # `files` may be an endless repeat()
    return map(_new, repeat(DesiredUser), zip(upns, sources, *fields, strict=True))


@dataclass(frozen=True)
class Desired:
    """All manifests merged. `users` is sorted by `key`; `files` lists every manifest read, sorted."""

    users: tuple[DesiredUser, ...]
    policy: Policy = field(default_factory=Policy)
    tenant: str | None = None
    files: tuple[str, ...] = ()
    # A catalog override named by a manifest `catalog:` key (path resolved relative to that manifest), if any.
    catalog_path: str | None = None
    # Where the `tenant:` key was read (the first file that sets it): tenant-mismatch points there.
    tenant_source: Source | None = None
    # Manifest problems for the plan's diagnostics (load_desired(..., for_plan=True)); the first entry is kept.
    deferred: tuple[ManifestDiagnostic, ...] = ()

    def by_key(self) -> dict[str, DesiredUser]:
        return {u.key: u for u in self.users}
