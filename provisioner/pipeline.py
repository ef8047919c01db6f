"""The steps `provision plan` and `provision apply PATH...` share: manifests + catalog in, tenant read, plan out.

Reads Graph only through the connection it is given; the decisions stay in `provisioner.planner` (pure).
"""

from __future__ import annotations

import gc
import os
import pickle
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionerError
from provisioner.model.desired import Desired
from provisioner.model.observed import Observed
from provisioner.model.plan import Plan


def load_inputs(paths: Sequence[str | Path], catalog_override: str | Path | None = None) -> tuple[Desired, Any]:
    """Load the manifests and the catalog. An explicit --catalog wins; else a manifest may name one (`catalog:`)."""
    from provisioner.catalog import load_catalog
    from provisioner.manifest import load_desired

    if catalog_override is not None:
        catalog = load_catalog(catalog_override)
        return load_desired([str(p) for p in paths], catalog=catalog), catalog
    desired = load_desired([str(p) for p in paths])
    return desired, catalog_for(desired, None)


def catalog_for(desired: Desired, catalog_override: str | Path | None) -> Any:
    """The catalog `load_inputs` pairs with `desired`: --catalog, else the manifests' `catalog:`, else the built-in."""
    from provisioner.catalog import load_catalog

    if catalog_override is not None:
        return load_catalog(catalog_override)
    return load_catalog(desired.catalog_path) if desired.catalog_path else load_catalog()


# Manifests at least this big are parsed in a forked worker while the tenant is read (below: in line, first).
PARALLEL_MIN_BYTES = 256 * 1024  # ~1,800 users


class Loading:
    """The manifests and catalog (`load_inputs`), loaded in line, or in a forked worker while the tenant is read.

    A 100,000-user manifest takes about as long to parse as the tenant's 100 pages take to fetch and decode;
    on two cores they need not wait for each other. The worker hands back the parsed result pickled through a
    pipe. If it fails in any way, the result is loaded again here, in line, so every manifest error reads
    exactly as it always does (errors are the rare path; they cost the time of a second parse). The catalog is
    loaded here (it is small, and not picklable).
    """

    def __init__(
        self, paths: Sequence[str | Path], catalog_override: str | Path | None, on_loaded: Callable[[Desired], None]
    ) -> None:
        self.paths, self.catalog_override, self.on_loaded = list(paths), catalog_override, on_loaded
        self.named_estimate = 0  # `upn:` keys in the manifests: how many users they name, about
        self._pid: int | None = None
        self._fd: int | None = None
        self._result: tuple[Desired, Any] | None = None

    @property
    def parallel(self) -> bool:
        return self._pid is not None

    def start(self) -> None:
        """Fork the worker when the manifests are big enough to be worth it and the platform can fork."""
        import provisioner.catalog  # noqa: F401  (imported before the fork: the worker imports nothing)
        from provisioner.manifest.loader import find_files

        if not hasattr(os, "fork"):
            return
        files, problems = find_files([str(p) for p in self.paths])
        if problems:
            return  # in line: the error comes first, before any network
        data = []
        for f in files:
            try:
                data.append(Path(f).read_bytes())
            except OSError:
                return
        if sum(len(d) for d in data) < PARALLEL_MIN_BYTES:
            return
        self.named_estimate = sum(d.count(b"upn:") for d in data)
        del data
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: parse, pickle, write, and leave without running the parent's exit handlers
            try:
                os.close(read_end)
                gc.disable()  # this process ends as soon as it has written: nothing to collect
                try:
                    desired, _ = load_inputs(self.paths, self.catalog_override)  # the catalog is not picklable
                    payload = pickle.dumps(("ok", desired), protocol=5)
                except BaseException:
                    payload = pickle.dumps(("failed", None))
                with os.fdopen(write_end, "wb") as out:
                    out.write(payload)
            finally:
                os._exit(0)
        os.close(write_end)
        self._pid, self._fd = pid, read_end

    def result(self) -> tuple[Desired, Any]:
        """The loaded (desired, catalog); raises the manifest or catalog error when they are invalid."""
        if self._result is None:
            loaded = self._from_worker() if self.parallel else None
            self._result = loaded or load_inputs(self.paths, self.catalog_override)
            self.on_loaded(self._result[0])
        return self._result

    def _from_worker(self) -> tuple[Desired, Any] | None:
        desired = self._desired_from_worker()
        return None if desired is None else (desired, catalog_for(desired, self.catalog_override))

    def _desired_from_worker(self) -> Desired | None:
        assert self._fd is not None and self._pid is not None
        try:
            with os.fdopen(self._fd, "rb") as pipe:
                payload = pipe.read()
        finally:
            self._fd = None
            self.close()
        was = gc.isenabled()
        gc.disable()  # 100,000 users unpickled: no collector passes over them meanwhile
        try:
            status, value = pickle.loads(payload) if payload else ("failed", None)
        except Exception:
            return None
        finally:
            if was:
                gc.enable()
        return value if status == "ok" and isinstance(value, Desired) else None

    def close(self) -> None:
        """Stop and reap the worker if it still runs (an interrupted or failed read)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._pid is not None:
            pid, self._pid = self._pid, None
            try:
                if os.waitpid(pid, os.WNOHANG) == (0, 0):
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
            except (ChildProcessError, ProcessLookupError):
                pass


@contextmanager
def loading(
    paths: Sequence[str | Path], catalog_override: str | Path | None, on_loaded: Callable[[Desired], None]
) -> Iterator[Loading]:
    """Start loading the manifests: in line (done when this returns, errors raised here) unless they are big.

    Inside the block, a failure of the tenant side (sign-in, network) while a worker parses raises the
    manifest's own error instead when the manifests are invalid too: the files are the first thing to fix.
    """
    job = Loading(paths, catalog_override, on_loaded)
    job.start()
    if not job.parallel:
        job.result()
    try:
        yield job
    except Exception:  # not KeyboardInterrupt: an interrupted run stops at once (the worker is killed below)
        if job.parallel and job._result is None:
            job.result()  # raises the manifest error, if there is one
        raise
    finally:
        job.close()


def read_tenant_while_loading(conn: Any, job: Loading) -> tuple[Desired, Any, Observed]:
    """Read the tenant while the manifests load; (desired, catalog, observed) as `load_inputs` + `read_tenant`.

    A manifest naming most of the tenant is read by a full scan whatever its exact users, so the scan starts
    at once and keeps everyone, narrowed to what `read_tenant` keeps once the manifests are known. Otherwise
    (or when the connection cannot scan ahead) the read waits for the manifests, reusing the first round trip.
    """
    from provisioner.planner import managed_sku_ids

    everyone = None
    if job.parallel and job.named_estimate and hasattr(conn, "scan_everyone"):
        everyone = conn.scan_everyone(job.named_estimate)
    desired, catalog = job.result()
    if everyone is None:
        return desired, catalog, read_tenant(conn, desired, catalog)
    managed = managed_sku_ids(everyone.skus, catalog, desired)
    return desired, catalog, everyone.narrowed([u.upn for u in desired.users], managed)


def read_tenant(conn: Any, desired: Desired, catalog: Any) -> Observed:
    """Read what planning needs: the users the manifests name, and what the plan must know of everyone else.

    `unlisted: remove` plans for every holder of a managed SKU, so it reads them all. Otherwise the plan needs
    of the others only how many hold each Calling Plan per country (the minute pools): the reader counts them
    for the named users' countries and the countries the manifests declare, or reads every holder when that
    is as cheap (a manifest naming most of them) or the counts leave holders unaccounted for.
    """
    from provisioner.planner import calling_plan_sku_ids, managed_sku_ids

    return conn.read(  # type: ignore[no-any-return]
        [u.upn for u in desired.users],
        managed_sku_ids=lambda skus: managed_sku_ids(skus, catalog, desired),
        include_all_managed=desired.policy.unlisted == "remove",
        count_pairs_for=lambda skus: calling_plan_sku_ids(skus, catalog, desired),
        count_countries=sorted({u.usage_location.upper() for u in desired.users if u.usage_location}),
    )


def make_plan(conn: Any, desired: Desired, observed: Observed, catalog: Any) -> Plan:
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
        return plan(desired, observed, catalog, group_names=groups)
    finally:
        gc.enable()


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
