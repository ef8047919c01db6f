"""`provision plan`: load the catalog and manifests, read the tenant, plan, render to stdout; notes to stderr.

Thin: decisions are in `provisioner.planner` (pure) and `provisioner.render`; this module reads, writes and
picks the exit code: 1 on error diagnostics, else with --detailed-exitcode 2 when there are changes, else 0.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from provisioner.cli import use_colour
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
    from provisioner.pipeline import InputsLoading, catalog_file, make_plan, read_tenant
    from provisioner.render import render, render_json

    if not tenant and not graph_url:  # a loopback --graph-url (a served emulator) needs no tenant, as in apply
        raise ProvisionerError(
            "no tenant given: `provision plan` reads the tenant to compare it with the manifests.",
            hint=(
                "Pass --tenant emulator:PATH for a local emulated tenant (created from the demo if PATH is missing), "
                "or --tenant <tenant id or verified domain> for Microsoft Graph; or set PROVISION_TENANT. "
                "A served emulator needs only --graph-url http://127.0.0.1:PORT/v1.0."
            ),
        ).as_usage()
    loading = InputsLoading(paths, catalog)  # big manifests load in a child process, beside the imports below
    # lazy: only commands that talk to a tenant load the Graph stack
    from provisioner.graph import connect, preload

    if loading.in_background:
        try:
            preload()
        except Exception:
            loading.finish()  # a manifest problem is reported first, as when the manifests load in-process
            raise
        except BaseException:
            loading.cancel()
            raise
    desired, cat = loading.finish()
    n_files = len(desired.files)
    print(
        f"read {len(desired.users)} user{'s' if len(desired.users) != 1 else ''} from "
        f"{n_files} manifest{'s' if n_files != 1 else ''}",
        file=sys.stderr,
    )

    with connect(tenant, graph_url=graph_url, auth=auth, debug=debug) as conn:
        observed = read_tenant(conn, desired, cat)
        print(
            f"read tenant {observed.tenant.display_name}: {len(observed.users)} users, {len(observed.skus)} SKUs",
            file=sys.stderr,
        )
        result = make_plan(conn, desired, observed, cat, catalog_path=catalog_file(desired, catalog))
    text = render(result, format, color=format == "text" and use_colour(sys.stdout))
    sys.stdout.write(text)
    sys.stdout.flush()
    if out is not None:
        _write(out, text if format == "json" else render_json(result))  # rendered once (2 s for 15,000 actions)
        if result.has_errors:  # a plan with error diagnostics never applies: do not invite it
            print(f"saved the plan to {out}; it has error diagnostics, so it cannot be applied until they are fixed",
                  file=sys.stderr)
        else:
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
