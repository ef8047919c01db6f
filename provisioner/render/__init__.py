"""Render a Plan as text (terminal), markdown (pull-request comment, drift issue) or JSON. Pure.

Templates live in the repository's top-level `templates/` (installed as `provisioner/_templates`) and hold
layout only; `provisioner.render.view` decides what is shown. Markdown always fits a GitHub comment
(< 65,536 characters): users and diagnostics are cut, and the text says how many more and where they are.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from provisioner.model.plan import Plan
from provisioner.render.view import PlanView, build, limited

__all__ = ["MARKDOWN_LIMIT", "render", "render_json"]

# GitHub refuses comment and issue bodies of 65,536 characters or more; keep a margin for wrappers
# (the sticky-comment marker the workflow adds).
MARKDOWN_LIMIT = 65_536
_MARKDOWN_BUDGET = MARKDOWN_LIMIT - 1_536

_COLOURS = {
    "+": "32",
    "-": "31",
    "~": "33",
    "!": "35",
    "error": "31;1",
    "warning": "33;1",
    "info": "36",
    "bold": "1",
}


def _template_dirs() -> list[str]:
    here = Path(__file__).resolve().parent
    candidates = [here.parents[1] / "templates", here.parent / "_templates"]
    return [str(p) for p in candidates if p.is_dir()]


@lru_cache(maxsize=1)
def _env() -> Any:
    import jinja2  # imported lazily: JSON output does not need it

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_template_dirs()),
        autoescape=False,  # text and markdown, not HTML; markdown cells are escaped by the `cell` filter
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["cell"] = _cell
    env.filters["num"] = _num
    return env


def _cell(value: object) -> str:
    """A markdown table cell: pipes escaped, newlines flattened."""
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")


def _num(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_json(plan: Plan) -> str:
    """The promised JSON plan: Plan.to_dict() in its own (stable) key order, formatVersion first."""
    return json.dumps(plan.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render(plan: Plan, fmt: str = "text", color: bool = False) -> str:
    if fmt == "json":
        return render_json(plan)
    view = build(plan)
    if fmt == "text":
        return _env().get_template("plan.txt.j2").render(v=view, c=_painter(color))
    if fmt == "markdown":
        return render_markdown(view)
    raise ValueError(f"unknown format {fmt!r} (text, markdown or json)")


def render_markdown(view: PlanView, budget: int = _MARKDOWN_BUDGET) -> str:
    """The markdown report, cutting users (then diagnostics) until it fits `budget` characters."""
    template = _env().get_template("plan.md.j2")
    full = template.render(v=view)
    if len(full) <= budget:
        return full
    # Binary search on how many users and diagnostics to show: the most that fits.
    lo, hi = 0, max(len(view.users), len(view.diagnostics))
    best = template.render(v=limited(view, 0, 0))
    while lo <= hi:
        mid = (lo + hi) // 2
        text = template.render(v=limited(view, mid, mid))
        if len(text) <= budget:
            best, lo = text, mid + 1
        else:
            hi = mid - 1
    if len(best) > budget:  # nothing but the fixed sections left (huge seat/pool tables): cut hard
        cut = best[: budget - 200]
        best = (
            cut[: cut.rfind("\n") + 1]
            + "\n_(report cut to fit a GitHub comment; the JSON plan has everything)_\n"
        )
    return best


def _painter(color: bool) -> Any:
    def paint(text: object, kind: str) -> str:
        if not color or kind not in _COLOURS:
            return str(text)
        return f"\x1b[{_COLOURS[kind]}m{text}\x1b[0m"

    return paint
