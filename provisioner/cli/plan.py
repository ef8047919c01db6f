"""`provision plan`: load the catalog and manifests, read the tenant, plan, render to stdout; notes to stderr.

Thin: decisions are in `provisioner.planner` (pure) and `provisioner.render`; this module reads, writes and
picks the exit code: 1 on error diagnostics, else with --detailed-exitcode 2 when there are changes, else 0.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionerError

EXIT_OK, EXIT_ERROR, EXIT_DRIFT = 0, 1, 2


def run(
    *,
    paths: list[Path],
    tenant: str | None,
    graph_url: str | None,
    format: str,
    out: Path | None,
    detailed_exitcode: bool,
    auth: str,
    catalog: Path | None,
    debug: bool,
) -> int:
    from provisioner.catalog import load_catalog
    from provisioner.manifest import load_desired
    from provisioner.planner import managed_sku_ids
    from provisioner.planner import plan as make_plan
    from provisioner.render import render, render_json

    if not tenant:
        raise ProvisionerError(
            "no tenant given: `provision plan` reads the tenant to compare it with the manifests.",
            hint=(
                "Pass --tenant emulator:PATH for a local emulated tenant (created from the demo if PATH is missing), "
                "or --tenant <tenant id or verified domain> for Microsoft Graph; or set PROVISION_TENANT."
            ),
        )
    if catalog is not None:
        cat = load_catalog(catalog)
        desired = load_desired([str(p) for p in paths], catalog=cat)
    else:
        desired = load_desired([str(p) for p in paths])
        cat = load_catalog(desired.catalog_path) if desired.catalog_path else load_catalog()
    n_files = len(desired.files)
    print(
        f"read {len(desired.users)} user{'s' if len(desired.users) != 1 else ''} from "
        f"{n_files} manifest{'s' if n_files != 1 else ''}",
        file=sys.stderr,
    )

    from provisioner.graph import connect  # lazy: only commands that talk to a tenant load the Graph stack

    with connect(tenant, graph_url=graph_url, auth=auth, debug=debug) as conn:
        observed = conn.read(
            [u.upn for u in desired.users],
            managed_sku_ids=lambda skus: managed_sku_ids(skus, cat, desired),
            include_all_managed=True,
        )
        groups = _group_names(conn, observed)
    print(
        f"read tenant {observed.tenant.display_name}: {len(observed.users)} users, {len(observed.skus)} SKUs",
        file=sys.stderr,
    )
    # The snapshot lives until exit: move it out of the collector's sight, and pause the collector while
    # planning (the planner builds no reference cycles; refcounting frees what it drops). Together they save
    # ~40% of planning time at 100,000 users (benchmarks/bench_plan.py measures both ways).
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        result = make_plan(desired, observed, cat, group_names=groups)
    finally:
        gc.enable()
    text = render(result, format, color=format == "text" and _colour(sys.stdout))
    sys.stdout.write(text)
    sys.stdout.flush()
    if out is not None:
        _write(out, render_json(result))
        print(f"saved the plan to {out}; apply it with `provision apply {out}`", file=sys.stderr)
    if result.has_errors:
        n = sum(1 for d in result.diagnostics if d.severity == "error")
        print(
            f"error: the plan has {n} error diagnostic{'s' if n != 1 else ''} (listed in the plan); it cannot be applied.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    if detailed_exitcode and result.has_changes:
        return EXIT_DRIFT
    return EXIT_OK


def _group_names(conn: Any, observed: Any) -> dict[str, str]:
    """Group display names for inherited-license messages, when the reader did not already provide them."""
    names = dict(getattr(observed, "groups", None) or {})
    ids = sorted(
        {a.by_group for u in observed.users.values() for a in u.assignments if a.by_group} - set(names)
    )
    reader = getattr(conn, "group_names", None)
    if not ids or reader is None:
        return names
    try:
        names.update(dict(reader(ids)))
    except ProvisionerError as exc:
        print(
            f"note: group names not read ({str(exc).splitlines()[0]}); messages name group ids.",
            file=sys.stderr,
        )
    return names


def _colour(stream: Any) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise ProvisionerError(
            f"cannot write {path}: {exc.strerror or exc}", hint="Check the path and permissions."
        ) from exc
