"""The error tree shared by every package. Library code raises these; only the CLI turns them into exit codes.

    ProvisionerError                 anything the user can act on; str() is the full plain-text message
    ├── ManifestError                one or more manifest problems, each with FILE:LINE
    ├── CatalogError                 a bad catalog override file
    ├── PlanError                    a plan that must not be applied (error diagnostics, removal limit, bad plan file)
    │   └── StalePlanError           a saved plan whose tenant state changed since it was made
    ├── GraphError                   Graph answered with an error (status, code, message, request-id)
    │   └── ThrottledError           429/503/504 still failing after the retry budget
    ├── AuthError                    credentials missing or rejected (never carries a secret)
    └── ApplyError                   apply finished with failed actions (carries the result)

Every message says what is wrong, where (file and line, user, SKU, request-id) and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ProvisionerError(Exception):
    """Base of every error the CLI reports as plain lines (exit 1) instead of a traceback.

    `usage` marks a command-line usage error (options that contradict each other, a missing or malformed
    argument): the CLI exits 64 for it, as for click's own (CONTRACT §1: never 1 or 2)."""

    usage: bool = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def as_usage(self) -> ProvisionerError:
        """This error, marked as a usage error (exit 64)."""
        self.usage = True
        return self

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


@dataclass(frozen=True)
class ManifestIssue:
    """One problem in a manifest, pinned to a file and line (line is 1-based; 0 when the file itself is at fault)."""

    file: str
    line: int
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}" + (f" — {self.hint}" if self.hint else "")


class ManifestError(ProvisionerError):
    """All problems found in the given manifests (every file is read fully before this is raised)."""

    def __init__(self, issues: list[ManifestIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.file, i.line, i.message))
        n = len(self.issues)
        text = "\n".join(str(i) for i in self.issues)
        super().__init__(f"{text}\n{n} error{'s' if n != 1 else ''} in manifests; nothing was changed. Fix them and run the command again.")


class CatalogError(ProvisionerError):
    """A catalog override file that cannot be used."""


class PlanError(ProvisionerError):
    """A plan that must not be applied, or a plan file that cannot be read."""


class StalePlanError(PlanError):
    """The tenant changed since the saved plan was made; `changes` lists each user or SKU that changed."""

    def __init__(self, changes: list[str]) -> None:
        self.changes = changes
        lines = "\n".join(f"  - {c}" for c in changes)
        super().__init__(
            f"the saved plan is stale: the tenant changed since it was made:\n{lines}",
            hint="Nothing was changed. Run `provision plan --out PLANFILE` again, review it, and apply the new plan.",
        )


class GraphError(ProvisionerError):
    """An error answer from Microsoft Graph (or the emulator), with what is needed to trace it."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        method: str | None = None,
        url: str | None = None,
        hint: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.graph_message = message
        self.request_id = request_id
        self.method = method
        self.url = url
        self.retry_after = retry_after
        where = f"{method} {url}: " if method and url else ""
        status_part = f"HTTP {status} {code or ''}".strip() if status else (code or "error")
        rid = f" (request-id {request_id})" if request_id else ""
        super().__init__(f"Graph {where}{status_part}: {message}{rid}", hint=hint)


class ThrottledError(GraphError):
    """Graph kept throttling (429) or was unavailable (503/504) past the retry budget."""


class AuthError(ProvisionerError):
    """Credentials are missing, incomplete or rejected. Messages name variables, never their secret values."""


class ApplyError(ProvisionerError):
    """Apply ran but some actions failed or were skipped; `result` holds the per-action outcome."""

    def __init__(self, message: str, *, result: Any = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.result = result

