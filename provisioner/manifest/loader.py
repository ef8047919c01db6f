"""Reading manifests into one `Desired`: find the files, read each safely, check, merge, apply the rules.

Pure apart from reading files. Every problem of every file is collected and raised at once as one
`ManifestError` (each issue `FILE:LINE: what is wrong — what to do`).

Most files end with a long `users:` block of flat entries: `fastusers` reads such a block (and the merge
builds its users) in a few passes in C; the file's head, and any file it declines, take the general way.

Folders are searched recursively for `*.yaml` / `*.yml` (names starting with "." are skipped), in sorted
order; a file named explicitly is read whatever its extension. The same file given twice is read once.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any

from provisioner.catalog import Catalog, load_catalog
from provisioner.errors import CatalogError, ManifestError, ManifestIssue
from provisioner.manifest import fastusers, safeyaml
from provisioner.manifest.check import DEFAULT_FIELDS, FileManifest, check_file
from provisioner.manifest.files import MANIFEST_SUFFIXES, find_files  # noqa: F401  (re-exported)
from provisioner.manifest.rules import check_user, country_problem, plan_problem
from provisioner.manifest.suggest import did_you_mean
from provisioner.model.desired import Desired, DesiredUser, ManifestDiagnostic, Policy, Source, desired_users

# Past this many problems in one file the rest are counted, not listed: one systematic mistake in a
# 100,000-user file should not print 100,000 lines.
MAX_ISSUES_PER_FILE = 100

_POLICY_ATTRS = {
    "unlisted": "unlisted",
    "maxRemovals": "max_removals",
    "paygFunding": "payg_funding",
    "phoneSystemSku": "phone_system_sku",
}


def load_desired(
    paths: Sequence[str | os.PathLike[str]], catalog: Catalog | None = None, *, for_plan: bool = False
) -> Desired:
    """Read, check and merge the manifests at `paths` into one Desired; raise ManifestError listing every problem.

    `catalog` (e.g. from `--catalog`) takes precedence; without it a manifest `catalog:` key names an
    override file (relative to that manifest) used for the checks, and `Desired.catalog_path` carries it on.

    `for_plan` (what `plan` and `apply` use): the problems the contract gives a diagnostic code are left to the
    plan's diagnostics instead of failing the load: a user declared twice (`Desired.deferred`, the first entry
    kept), a Calling Plan not sold in the declared country and a Pay-As-You-Go plan declared unfunded (the
    planner finds both). `validate` reports them all as manifest errors.
    """
    with _gc_paused():
        return _load(paths, catalog, for_plan=for_plan)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while loading.

    Reading 100,000 users allocates millions of small dicts and tuples, and the collector's repeated passes
    over them cost more than the reading itself (measured: 3.0 s -> 1.4 s). The data built here holds no
    reference cycles; the little cyclic garbage made meanwhile (exception tracebacks) is collected once the
    collector, restored as it was, runs again.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read_file(path: str, fast_users: bool) -> FileManifest:
    """One file read and shape-checked; raises YamlProblem when it is not a readable YAML document.

    A file ending with a users block `fastusers` reads (the common case) has only its head parsed and checked
    the general way; its users come from the block. Otherwise the whole file takes the general way.
    """
    text = safeyaml.read_text(Path(path))
    safeyaml.check_items(text)
    if fast_users:
        found = fastusers.split(text, safeyaml.resolver())
        if found is not None:
            head, users_line, block = found
            fm = _head_with_block(path, head, users_line, block)
            if fm is not None:
                return fm
    raw, marks = safeyaml.loads(text, counted=True, soft_duplicates=True)
    fm = check_file(path, raw, marks)
    fm.problems.extend(marks.duplicates)
    return fm


def _head_with_block(path: str, head: str, users_line: int, block: fastusers.UsersBlock) -> FileManifest | None:
    """The file's head checked, with `block` as its users; None unless `users:` is a top-level key there."""
    try:
        raw, marks = safeyaml.loads(head, soft_duplicates=True)
    except safeyaml.YamlProblem:
        return None  # the whole file may fail differently (an unclosed quote runs into the block, ...)
    if type(raw) is not dict or "users" not in raw or raw["users"] is not None or marks.key_line(raw, "users") != users_line:
        return None
    fm = check_file(path, raw, marks)
    fm.problems.extend(marks.duplicates)
    fm.block = block
    return fm


def _first(pair: tuple[str, DesiredUser]) -> str:
    return pair[0]


def _load(
    paths: Sequence[str | os.PathLike[str]], catalog: Catalog | None, fast_users: bool = True, for_plan: bool = False
) -> Desired:
    if not paths:
        raise ManifestError([ManifestIssue("(no path)", 0, "no manifest given", "name manifest files or folders")])
    files, issues = find_files(paths)
    parsed: list[FileManifest] = []
    for path in files:
        try:
            fm = _read_file(path, fast_users)
        except safeyaml.YamlProblem as exc:
            issues.append(ManifestIssue(path, exc.line, exc.message, exc.hint))
            continue
        issues.extend(ManifestIssue(path, line, msg, hint) for line, msg, hint in fm.problems)
        parsed.append(fm)
    merged = _Merger(parsed, issues, for_plan)
    merged.merge_settings()
    cat = catalog if catalog is not None else merged.catalog()
    keyed = merged.users(cat)
    if issues:
        raise ManifestError(_capped(issues))
    keyed.sort(key=_first)  # by upn.lower(): unique by now, so no two users compare equal
    return Desired(
        users=tuple([user for _key, user in keyed]),
        policy=merged.policy(),
        tenant=merged.tenant[0] if merged.tenant else None,
        files=tuple(files),
        catalog_path=merged.catalog_file[0] if merged.catalog_file else None,
        tenant_source=merged.tenant_source,
        deferred=tuple(merged.deferred),
    )


def _effective(
    fields: dict[str, Any],
    defaults: dict[str, tuple[Any, int]],
    catalog: Catalog,
    funding: str,
    memo: dict[tuple[Any, ...], list[tuple[str, str, str | None]]],
    plan_checks: bool = True,
) -> tuple[Any, Any, Any, Any, list[tuple[str, str, str | None]]]:
    """A user's four values once the file's defaults fill what it omits, and its rule problems (memoised)."""
    taken: frozenset[str] = frozenset()
    if defaults:
        taken = frozenset(k for k in defaults if k not in fields)
        if taken:
            fields = {**fields, **{k: defaults[k][0] for k in taken}}
    get = fields.get
    country, plan = get("usageLocation"), get("callingPlan")
    phone, credits = get("phoneSystem"), get("communicationsCredits")
    shape = (country, plan, phone, credits, taken)
    problems = memo.get(shape)
    if problems is None:
        problems = memo[shape] = check_user(fields, taken, catalog, funding, plan_checks)
    return country, plan, phone, credits, problems


def _capped(issues: list[ManifestIssue]) -> list[ManifestIssue]:
    by_file: dict[str, list[ManifestIssue]] = {}
    for i in issues:
        by_file.setdefault(i.file, []).append(i)
    out: list[ManifestIssue] = []
    for file, items in by_file.items():
        items.sort(key=lambda i: (i.line, i.message))
        if len(items) > MAX_ISSUES_PER_FILE:
            more = len(items) - MAX_ISSUES_PER_FILE
            out.append(ManifestIssue(file, 0, f"{more:,} more problems in this file are not listed", f"the first {MAX_ISSUES_PER_FILE} are"))
            items = items[:MAX_ISSUES_PER_FILE]
        out.extend(items)
    return out


class _Merger:
    """Cross-file rules: tenant, policy and catalog agree; defaults per file; a user declared once."""

    def __init__(self, files: list[FileManifest], issues: list[ManifestIssue], for_plan: bool = False) -> None:
        self.files = files
        self.issues = issues
        self.for_plan = for_plan
        self.deferred: list[ManifestDiagnostic] = []  # for_plan: users declared twice, for the plan's diagnostics
        self.tenant: tuple[str, str] | None = None  # value, "FILE:LINE"
        self.tenant_source: Source | None = None  # the same place, for Desired.tenant_source
        self.catalog_file: tuple[str, str, int] | None = None  # resolved path, file, line
        self.policy_values: dict[str, tuple[Any, str]] = {}

    def merge_settings(self) -> None:
        for fm in self.files:
            if fm.tenant:
                value, line = fm.tenant
                if self.tenant is None:
                    self.tenant = (value, f"{fm.path}:{line}")
                    self.tenant_source = Source(fm.path, line)
                elif self.tenant[0].lower() != value.lower():
                    self._issue(fm.path, line, f"tenant '{value}' differs from '{self.tenant[0]}' at {self.tenant[1]}",
                                "every file that sets tenant must name the same tenant")
            if fm.catalog:
                value, line = fm.catalog
                resolved = str((Path(fm.path).parent / value).resolve())
                if self.catalog_file is None:
                    self.catalog_file = (resolved, fm.path, line)
                elif self.catalog_file[0] != resolved:
                    self._issue(fm.path, line,
                                f"catalog '{value}' is another file than the one named at {self.catalog_file[1]}:{self.catalog_file[2]}",
                                "name one catalog override for all manifests (or use --catalog)")
            for key, (value, line) in sorted(fm.policy.items()):
                seen = self.policy_values.get(key)
                if seen is None:
                    self.policy_values[key] = (value, f"{fm.path}:{line}")
                elif seen[0] != value:
                    self._issue(fm.path, line, f"policy.{key} is {value!r} here but {seen[0]!r} at {seen[1]}",
                                "policy must agree across files: set it once, or the same everywhere")

    def _issue(self, file: str, line: int, message: str, hint: str | None) -> None:
        self.issues.append(ManifestIssue(file, line, message, hint))

    def _duplicate(self, file: str, line: int, upn: str, first: tuple[str, int]) -> None:
        where = f"{first[0]}:{first[1]}"
        if self.for_plan:
            self.deferred.append(ManifestDiagnostic(
                "duplicate-user",
                f"{upn} is declared twice: here and at {where}. Declare each user once (UPNs compare "
                "case-insensitively); the plan uses the first entry.",
                upn,
                f"{file}:{line}",
            ))
            return
        self._issue(file, line, f"duplicate-user: {upn} is declared twice: here and at {where}",
                    "declare each user once (UPNs compare case-insensitively)")

    def catalog(self) -> Catalog:
        if self.catalog_file is None:
            return load_catalog()
        resolved, file, line = self.catalog_file
        try:
            return load_catalog(resolved)
        except CatalogError as exc:
            detail = str(exc).replace("\n", "\n    ")
            self._issue(file, line, f"the catalog override '{resolved}' cannot be used:\n    {detail}", None)
            return load_catalog()

    def policy(self) -> Policy:
        values = {_POLICY_ATTRS[k]: v for k, (v, _) in self.policy_values.items()}
        return Policy(**values)

    def users(self, catalog: Catalog) -> list[tuple[str, DesiredUser]]:
        """Every user once, with its key (upn.lower()), in file order; problems go to the issues."""
        self._check_policy(catalog)
        funding = self.policy_values.get("paygFunding", ("communicationsCredits", ""))[0]
        first_seen: dict[str, tuple[str, int]] = {}
        out: list[tuple[str, DesiredUser]] = []
        # Users share few distinct shapes (100,000 users, a few dozen shapes): check each shape once.
        memo: dict[tuple[Any, ...], list[tuple[str, str, str | None]]] = {}
        for fm in self.files:
            defaults = self._file_defaults(fm, catalog)
            if fm.block is not None:
                self._block_users(fm.path, fm.block, defaults, catalog, funding, memo, first_seen, out)
                continue
            for entry in fm.users:
                key = entry.upn.lower()
                if key in first_seen:
                    self._duplicate(fm.path, entry.line, entry.upn, first_seen[key])
                    continue
                first_seen[key] = (fm.path, entry.line)
                country, plan, phone, credits, problems = _effective(
                    entry.fields, defaults, catalog, funding, memo, not self.for_plan
                )
                for field_key, msg, hint in problems:
                    self._issue(fm.path, entry.line_of(field_key), msg, hint)
                out.append((key, DesiredUser(entry.upn, Source(fm.path, entry.line), country, plan, phone, credits)))
        return out

    def _block_users(
        self,
        path: str,
        block: fastusers.UsersBlock,
        defaults: dict[str, tuple[Any, int]],
        catalog: Catalog,
        funding: str,
        memo: dict[tuple[Any, ...], list[tuple[str, str, str | None]]],
        first_seen: dict[str, tuple[str, int]],
        out: list[tuple[str, DesiredUser]],
    ) -> None:
        """`users` for a block read by `fastusers`: the same checks and messages, worked out once per shape."""
        # id(shape) -> the user's four values and its problems as (lines after the entry's line, message, hint)
        by_shape: dict[int, tuple[Any, Any, Any, Any, list[tuple[int, str, str | None]]]] = {}
        for shape in block.distinct:
            country, plan, phone, credits, problems = _effective(
                shape.fields, defaults, catalog, funding, memo, not self.for_plan
            )
            by_shape[id(shape)] = (country, plan, phone, credits, [(shape.line_offset(k), m, h) for k, m, h in problems])
        keys = list(map(str.lower, block.upns))
        clean = not any(known[4] for known in by_shape.values())
        if clean and len(set(keys)) == len(keys) and first_seen.keys().isdisjoint(keys):
            # The common case, nothing to report: build every user with loops in C (100,000 users here).
            first_seen.update(zip(keys, zip(repeat(path), block.lines, strict=False), strict=True))
            values = list(map(by_shape.__getitem__, map(id, block.shapes)))
            columns = [map(itemgetter(i), values) for i in range(4)]
            out.extend(zip(keys, desired_users(block.upns, repeat(path), block.lines, *columns), strict=True))
            return
        for key, upn, line, shape in zip(keys, block.upns, block.lines, block.shapes, strict=True):
            if key in first_seen:
                self._duplicate(path, line, upn, first_seen[key])
                continue
            first_seen[key] = (path, line)
            known = by_shape[id(shape)]
            for offset, msg, hint in known[4]:
                self._issue(path, line + offset, msg, hint)
            out.append((key, DesiredUser(upn, Source(path, line), known[0], known[1], known[2], known[3])))

    def _file_defaults(self, fm: FileManifest, catalog: Catalog) -> dict[str, tuple[Any, int]]:
        """The file's defaults (non-null), each value checked once here rather than on every user."""
        out = {}
        for key in DEFAULT_FIELDS:
            if key not in fm.defaults:
                continue
            value, line = fm.defaults[key]
            bad = None
            if key == "usageLocation":
                bad = country_problem("defaults.usageLocation", value, catalog)
            elif key == "callingPlan":
                bad = plan_problem("defaults.callingPlan", value, catalog)
            if bad:
                self._issue(fm.path, line, *bad)
                continue
            out[key] = (value, line)
        return out

    def _check_policy(self, catalog: Catalog) -> None:
        seen = self.policy_values.get("phoneSystemSku")
        if seen is None:
            return
        value, where = seen
        addons = catalog.phone_system_addons
        if value.upper() not in {a.upper() for a in addons}:
            file, _, line = where.rpartition(":")
            hint = did_you_mean(value, addons)
            self._issue(file, int(line), f"policy.phoneSystemSku '{value}' is not a Phone System add-on the catalog knows",
                        hint or f"use one of: {', '.join(addons)}")
