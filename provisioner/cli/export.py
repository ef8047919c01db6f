"""`provision export`: read the tenant, build the manifest, write it to stdout, a file, or one file per country.

Thin: the decisions are in `provisioner.export` (pure); this module does the reading, writing and messages.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionerError

EXIT_OK, EXIT_USAGE = 0, 64


def run(
    *,
    tenant: str | None,
    graph_url: str | None,
    out: Path | None,
    split_by: str,
    auth: str,
    catalog: Path | None,
    debug: bool,
) -> int:
    from provisioner.catalog import load_catalog
    from provisioner.export import build_export, managed_sku_ids, render_manifest, split_by_country

    if split_by == "country" and out is None:
        print(
            "error: --split-by country writes one file per country: give the folder with --out DIR.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if split_by == "country" and out is not None and out.exists() and not out.is_dir():
        print(f"error: --out {out} is a file; --split-by country needs a folder.", file=sys.stderr)
        return EXIT_USAGE

    cat = load_catalog(catalog)
    from provisioner.graph import connect  # lazy: only commands that talk to a tenant load the Graph stack

    with connect(tenant, graph_url=graph_url, auth=auth, debug=debug) as conn:
        observed = conn.read(
            (), managed_sku_ids=lambda skus: managed_sku_ids(skus, cat), include_all_managed=True
        )
        group_names = _group_names(conn, observed)
    export = build_export(observed, cat, group_names)

    summary = (
        f"exported {len(export.entries)} user{'s' if len(export.entries) != 1 else ''} holding managed licenses "
        f"directly ({len(export.group_only)} more only through groups, as comments)"
    )
    if out is None:
        sys.stdout.write(render_manifest(export))
        print(summary + ".", file=sys.stderr)
        return EXIT_OK
    if split_by == "country":
        files = split_by_country(export)
        _write_folder(out, files)
        print(f"{summary} into {len(files)} file{'s' if len(files) != 1 else ''} in {out}/.", file=sys.stderr)
        return EXIT_OK
    _write(out, render_manifest(export))
    print(f"{summary} to {out}.", file=sys.stderr)
    return EXIT_OK


def _group_names(conn: Any, observed: Any) -> dict[str, str]:
    """Display names of the groups licenses are inherited from, when the connection can read them.

    Reading groups needs a permission beyond the least-privileged set (CONTRACT §5), so this is optional:
    without it the comments name the group id.
    """
    reader = getattr(conn, "group_names", None)
    if reader is None:
        return {}
    ids = sorted({a.by_group for u in observed.users.values() for a in u.assignments if a.by_group})
    if not ids:
        return {}
    try:
        return dict(reader(ids))
    except ProvisionerError as exc:
        print(
            f"note: group names not read ({str(exc).splitlines()[0]}); comments name group ids.",
            file=sys.stderr,
        )
        return {}


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ProvisionerError(
            f"cannot write {path}: {exc.strerror or exc}", hint="Check the path and permissions."
        ) from exc


def _write_folder(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        _write(folder / name, text)
    # Files of an earlier export for a country that is now empty would still be planned with the folder.
    stale = sorted(p.name for p in folder.glob("*.y*ml") if p.name not in files)
    if stale:
        print(
            f"warning: {folder}/ also holds {', '.join(stale)}, not written by this export; "
            "remove them if they are from an earlier export, or `provision plan` will read them too.",
            file=sys.stderr,
        )
