"""ActionOutcome: what the Graph writer reports for each plan action. Pure data (no Graph imports)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OutcomeStatus = Literal["succeeded", "failed", "skipped"]


@dataclass(frozen=True)
class ActionOutcome:
    """The final word on one action.

    succeeded: Graph accepted it (http_status 200/204). failed: Graph refused it, or it kept being throttled
    past the retry budget (http_status, code, message and request_id say why). skipped: never sent, because an
    action it depends on did not succeed (message names that action). `attempts` counts sends to Graph.
    """

    action_id: str
    status: OutcomeStatus
    http_status: int | None = None
    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    attempts: int = 0
