"""The steps `provision plan` and `provision apply PATH...` share: manifests + catalog in, tenant read, plan out.

Reads Graph only through the connection it is given; the decisions stay in `provisioner.planner` (pure).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionerError
from provisioner.model.desired import Desired
from provisioner.model.observed import Observed
from provisioner.model.plan import Plan


def load_inputs(paths: Sequence[str | Path], catalog_override: str | Path | None = None) -> tuple[Desired, Any]:
    """Load the manifests and the catalog. An explicit --catalog wins; else a manifest may name one (`catalog:`).

    Loaded for a plan: the problems the contract gives a diagnostic code become the plan's diagnostics (see
    load_desired); each is also printed on stderr here, where every manifest error goes.
    """
    return InputsLoading(paths, catalog_override, in_background=False).finish()


class InputsLoading:
    """load_inputs in two halves: begun when made (big manifests load in a forked child, see
    manifest/background.py), ended by finish(), or by cancel() when the caller gives up. What the caller does
    in between (importing the Graph stack) runs beside the load. Whatever happens in the child, the result,
    messages and errors are load_inputs' own."""

    def __init__(
        self, paths: Sequence[str | Path], catalog_override: str | Path | None = None, *, in_background: bool = True
    ) -> None:
        from provisioner.catalog import load_catalog
        from provisioner.manifest import background

        self.names = [str(p) for p in paths]
        with kept_until_exit():
            self.catalog = load_catalog(catalog_override) if catalog_override is not None else None
        self.pending = None
        if in_background:
            # The child reads the built-in catalog itself and sends it back with the manifests: this process
            # neither parses it nor imports the YAML reader meanwhile (~0.07 s), and imports the SDK instead.
            self.pending = background.start(self.names, self.catalog)

    @property
    def in_background(self) -> bool:
        return self.pending is not None

    def finish(self) -> tuple[Desired, Any]:
        from provisioner.catalog import load_catalog

        with kept_until_exit():
            desired = self.pending.result() if self.pending is not None else None
            if desired is None:  # not forked, or the child failed: load here, where any problem is reported
                from provisioner.manifest import load_desired

                desired = load_desired(self.names, catalog=self.catalog, for_plan=True)
            cat = self.catalog
            if cat is None:
                cat = load_catalog(desired.catalog_path) if desired.catalog_path else load_catalog()
        for d in desired.deferred:
            print(f"error: {d.source}: {d.code}: {d.message}", file=sys.stderr)
        return desired, cat

    def cancel(self) -> None:
        if self.pending is not None:
            self.pending.cancel()


def read_tenant(conn: Any, desired: Desired, catalog: Any) -> Observed:
    """Read what planning needs: the users the manifests name, and what the plan must know of everyone else.

    `unlisted: remove` plans for every holder of a managed SKU, so it reads them all. Otherwise the plan needs
    of the others only how many hold each Calling Plan per country (the minute pools): the reader counts them
    for the named users' countries and the countries the manifests declare, or reads every holder when that
    is as cheap (a manifest naming most of them) or the counts leave holders unaccounted for.
    """
    from provisioner.planner import calling_plan_sku_ids, managed_sku_ids

    with kept_until_exit():
        return conn.read(  # type: ignore[no-any-return]
            [u.upn for u in desired.users],
            managed_sku_ids=lambda skus: managed_sku_ids(skus, catalog, desired),
            include_all_managed=desired.policy.unlisted == "remove",
            count_pairs_for=lambda skus: calling_plan_sku_ids(skus, catalog, desired),
            count_countries=sorted({u.usage_location.upper() for u in desired.users if u.usage_location}),
        )


@contextmanager
def kept_until_exit() -> Iterator[None]:
    """For what a command builds and keeps until it exits (the manifests, the tenant snapshot): the cyclic
    collector stays off while it is built, and it is frozen (gc.freeze) before the collector is back on. Else
    the collector's first pass walks every object just built (all young: ~0.2 s for 100,000 users read) for
    nothing: the loader and the reader build no reference cycles, and refcounting frees what they drop."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was:
            gc.enable()


def catalog_file(desired: Desired, catalog_override: str | Path | None) -> Path | None:
    """The catalog override a plan is made with (--catalog, else a manifest's `catalog:`), or None (built-in)."""
    if catalog_override is not None:
        return Path(catalog_override)
    return Path(desired.catalog_path) if desired.catalog_path else None


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes (hex): how a plan names the catalog override it was made with."""
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def catalog_stamp(path: Path) -> dict[str, str]:
    """How a saved plan records its catalog override, so that `apply PLANFILE` judges managed licenses by the
    same file: its path (relative to the working folder when inside it) and the sha256 of its bytes."""
    import os

    resolved = path.resolve()
    try:
        shown = os.path.relpath(resolved)
    except ValueError:  # another drive (Windows)
        shown = str(resolved)
    if shown.startswith(".."):
        shown = str(resolved)
    return {"path": shown, "sha256": file_sha256(resolved)}


def make_plan(conn: Any, desired: Desired, observed: Observed, catalog: Any, *,
              catalog_path: Path | None = None) -> Plan:
    """Plan, with the cyclic garbage collector out of the way.

    The snapshot lives until exit: move it out of the collector's sight, and pause the collector while
    planning (the planner builds no reference cycles; refcounting frees what it drops). Together they save
    ~40% of planning time at 100,000 users (benchmarks/bench_plan.py measures both ways).
    """
    from provisioner.planner import plan

    groups = group_names(conn, observed)
    gc.freeze()  # no collection first: loader and reader build no cycles, and a full pass over 100k users costs 0.2 s
    gc.disable()
    try:
        result = plan(desired, observed, catalog, group_names=groups)
    finally:
        gc.enable()
    if catalog_path is not None:
        import dataclasses

        result = dataclasses.replace(result, extra={**result.extra, "catalog": catalog_stamp(catalog_path)})
    return result


def group_names(conn: Any, observed: Observed) -> dict[str, str]:
    """Group display names for inherited-license messages (ids are shown when they cannot be read)."""
    names = dict(getattr(observed, "groups", None) or {})
    ids = sorted({a.by_group for u in observed.users.values() for a in u.assignments if a.by_group} - set(names))
    reader = getattr(conn, "group_names", None)
    if not ids or reader is None:
        return names
    try:
        names.update(dict(reader(ids)))
    except ProvisionerError as exc:
        print(f"note: group names not read ({str(exc).splitlines()[0]}); messages name group ids.", file=sys.stderr)
    return names
