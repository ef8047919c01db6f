"""The `provision` command line: parses options, calls one command module, and owns the exit codes.

Exit codes (CONTRACT §1): 0 success · 1 error · 2 only `plan --detailed-exitcode` with changes · 64 usage error.
Command bodies live in `provisioner.cli.<command>` modules and are imported lazily, so `provision --help`
never loads msgraph-sdk or azure-identity.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

try:  # typer >= 0.20 vendors click as typer._click; older typer uses click itself
    from typer import _click as click  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the installed typer
    import click  # type: ignore[no-redef]

EXIT_OK, EXIT_ERROR, EXIT_DRIFT, EXIT_USAGE = 0, 1, 2, 64

# typer >= 0.29 defines Abort/Exit itself (its vendored click has neither); older typer re-exports click's.
# Resolved once here: an `except` naming a missing attribute only fails when an exception reaches it.
_ABORT: tuple[type[BaseException], ...] = tuple(
    {c for c in (getattr(typer, "Abort", None), getattr(click.exceptions, "Abort", None)) if c is not None}
)
_EXIT: tuple[type[BaseException], ...] = tuple(
    {c for c in (getattr(typer, "Exit", None), getattr(click.exceptions, "Exit", None)) if c is not None}
)

app = typer.Typer(
    name="provision",
    help=(
        "Teams Phone System and Calling Plan licensing as code.\n\n"
        "Example: provision plan manifests/ --tenant emulator:demo-tenant.json"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
emulator_app = typer.Typer(
    help="Run a local Graph-compatible tenant emulator.\n\nExample: provision emulator init demo.json",
    no_args_is_help=True,
)
app.add_typer(emulator_app, name="emulator")


def _show_version(value: bool) -> None:
    if value:
        from provisioner import __version__

        print(f"provision {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_show_version),
    ] = False,
) -> None:
    """Teams Phone System and Calling Plan licensing as code.

    Example: provision plan manifests/ --tenant emulator:demo-tenant.json
    """


class PlanFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


class ApplyFormat(StrEnum):
    text = "text"
    json = "json"


class CatalogFormat(StrEnum):
    text = "text"
    json = "json"


class AuthMode(StrEnum):
    auto = "auto"
    secret = "secret"
    certificate = "certificate"
    oidc = "oidc"
    managed_identity = "managed-identity"
    azure_cli = "azure-cli"


class SplitBy(StrEnum):
    none = "none"
    country = "country"


TenantOpt = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        envvar="PROVISION_TENANT",
        help="emulator:PATH for a local emulated tenant, or a tenant id (GUID) / domain for Microsoft Graph.",
    ),
]
GraphUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--graph-url",
        envvar="PROVISION_GRAPH_URL",
        help="Graph base URL (default https://graph.microsoft.com/v1.0). Loopback URLs need no credential.",
    ),
]
AuthOpt = Annotated[AuthMode, typer.Option("--auth", help="How to authenticate to a real tenant.")]
CatalogOpt = Annotated[
    Path | None, typer.Option("--catalog", help="A catalog override file (YAML/JSON) merged over the built-in one.")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors (never secrets).")]
PathsArg = Annotated[
    list[Path],
    typer.Argument(help="Manifest files or folders of *.yaml / *.yml.", show_default=False, metavar="PATH"),
]


def _run(module: str, **options: Any) -> int:
    """Import `provisioner.cli.<module>` and call its `run(**options)`, which returns the exit code."""
    mod = importlib.import_module(f"provisioner.cli.{module}")
    return int(mod.run(**options))


@app.command()
def validate(paths: PathsArg, catalog: CatalogOpt = None, debug: DebugOpt = False) -> int:
    """Check manifests offline: schema, catalog, duplicates. No tenant needed.

    Example: provision validate manifests/
    """
    return _run("validate", paths=paths, catalog=catalog, debug=debug)


@app.command()
def plan(
    paths: PathsArg,
    tenant: TenantOpt = None,
    graph_url: GraphUrlOpt = None,
    format: Annotated[PlanFormat, typer.Option("--format", help="Output rendering.")] = PlanFormat.text,
    out: Annotated[Path | None, typer.Option("--out", help="Save the plan (JSON) for `provision apply PLANFILE`.")] = None,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 0 when there are no changes, 2 when there are, 1 on error.")
    ] = False,
    auth: AuthOpt = AuthMode.auto,
    catalog: CatalogOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Read the tenant, compare it with the manifests, and print the ordered changes.

    Example: provision plan manifests/ --tenant emulator:demo-tenant.json --format markdown
    """
    return _run(
        "plan",
        paths=paths,
        tenant=tenant,
        graph_url=graph_url,
        format=format.value,
        out=out,
        detailed_exitcode=detailed_exitcode,
        auth=auth.value,
        catalog=catalog,
        debug=debug,
    )


@app.command()
def apply(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="A saved plan file, or manifest files / folders.", show_default=False, metavar="PLANFILE|PATH"
        ),
    ],
    tenant: TenantOpt = None,
    graph_url: GraphUrlOpt = None,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Apply without asking.")] = False,
    allow_removals: Annotated[
        bool, typer.Option("--allow-removals", help="Allow more license removals than policy.maxRemovals.")
    ] = False,
    parallelism: Annotated[int, typer.Option("--parallelism", min=1, max=64, help="$batch requests in flight.")] = 4,
    format: Annotated[ApplyFormat, typer.Option("--format", help="Result rendering.")] = ApplyFormat.text,
    audit_log: Annotated[
        Path | None, typer.Option("--audit-log", help="Append one JSON line per attempted change to FILE.")
    ] = None,
    auth: AuthOpt = AuthMode.auto,
    catalog: CatalogOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Make the changes: plan from manifests and ask, or apply a saved plan exactly.

    Example: provision apply plan.json --tenant emulator:demo-tenant.json
    """
    return _run(
        "apply",
        paths=paths,
        tenant=tenant,
        graph_url=graph_url,
        auto_approve=auto_approve,
        allow_removals=allow_removals,
        parallelism=parallelism,
        format=format.value,
        audit_log=audit_log,
        auth=auth.value,
        catalog=catalog,
        debug=debug,
    )


@app.command()
def export(
    tenant: TenantOpt = None,
    graph_url: GraphUrlOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the manifest to FILE (or a folder with --split-by).")] = None,
    split_by: Annotated[SplitBy, typer.Option("--split-by", help="Write one file per country into --out.")] = SplitBy.none,
    auth: AuthOpt = AuthMode.auto,
    catalog: CatalogOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Write a manifest of the tenant's current Phone System / Calling Plan / Communications Credits state.

    Example: provision export --tenant emulator:demo-tenant.json --out manifests/tenant.yaml
    """
    return _run(
        "export",
        tenant=tenant,
        graph_url=graph_url,
        out=out,
        split_by=split_by.value,
        auth=auth.value,
        catalog=catalog,
        debug=debug,
    )


@app.command()
def schema() -> int:
    """Print the manifest JSON Schema (for editors and CI linters).

    Example: provision schema > manifest.schema.json
    """
    return _run("schema")


@app.command(name="catalog")
def catalog_cmd(
    format: Annotated[CatalogFormat, typer.Option("--format", help="Output rendering.")] = CatalogFormat.text,
    catalog: CatalogOpt = None,
) -> int:
    """Print the known Calling Plans, their SKUs, zones, countries and minutes.

    Example: provision catalog --format json
    """
    return _run("catalog", format=format.value, catalog=catalog)


@emulator_app.command("init")
def emulator_init(
    path: Annotated[Path, typer.Argument(help="Where to write the emulator state file (JSON).", show_default=False)],
    users: Annotated[
        int | None, typer.Option("--users", min=0, help="A synthetic tenant of N users instead of the demo tenant.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the synthetic tenant (same seed, same tenant).")] = 0,
) -> int:
    """Write an emulator state file: the demo tenant, or a synthetic tenant of N users.

    Example: provision emulator init big.json --users 100000 --seed 7
    """
    return _run("emulator", action="init", path=path, users=users, seed=seed)


@emulator_app.command("serve")
def emulator_serve(
    path: Annotated[Path, typer.Argument(help="The emulator state file to serve.", show_default=False)],
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback unless you mean otherwise).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port; 0 picks a free one.")] = 8765,
    latency_ms: Annotated[float, typer.Option("--latency-ms", min=0, help="Added latency per request.")] = 0.0,
    throttle_rate: Annotated[
        float, typer.Option("--throttle-rate", min=0.0, max=1.0, help="Share of requests answered 429 + Retry-After.")
    ] = 0.0,
    error_rate: Annotated[
        float, typer.Option("--error-rate", min=0.0, max=1.0, help="Share of requests answered 503.")
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the fault injection.")] = 0,
    retry_after: Annotated[
        int, typer.Option("--retry-after", min=0, help="Seconds in the Retry-After header of injected 429s.")
    ] = 1,
    lost_reply_rate: Annotated[
        float,
        typer.Option("--lost-reply-rate", min=0.0, max=1.0,
                     help="Share of successful writes whose answer is lost: the write is made, the caller gets a 504."),
    ] = 0.0,
    rate_limit: Annotated[
        float,
        typer.Option("--rate-limit", min=0.0,
                     help="Requests per second accepted (each $batch sub-request counts); beyond: 429 + Retry-After."),
    ] = 0.0,
) -> int:
    """Serve the emulated tenant over HTTP until interrupted.

    Example: provision emulator serve demo.json --port 0 --throttle-rate 0.3
    """
    return _run(
        "emulator",
        action="serve",
        path=path,
        host=host,
        port=port,
        latency_ms=latency_ms,
        throttle_rate=throttle_rate,
        error_rate=error_rate,
        seed=seed,
        retry_after=retry_after,
        lost_reply_rate=lost_reply_rate,
        rate_limit=rate_limit,
    )


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point. Maps click's usage errors to 64 (never 2: pipelines read 2 as drift)."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    command = typer.main.get_command(app)
    # No command at all is a usage error (64) whose help is a diagnostic: typer prints that help while raising,
    # so send stdout to stderr for it (stdout carries only what a command renders).
    bare = args in ([], ["emulator"])
    try:
        with contextlib.redirect_stdout(sys.stderr) if bare else contextlib.nullcontext():
            rv = command.main(args=args, prog_name="provision", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        exc.show(file=sys.stderr)
        return EXIT_USAGE
    except _ABORT:
        print("aborted.", file=sys.stderr)
        return EXIT_ERROR
    except _EXIT as exc:
        return int(getattr(exc, "exit_code", EXIT_ERROR))
    except click.exceptions.ClickException as exc:
        exc.show(file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted.", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: one plain line, a traceback only with --debug
        from provisioner.errors import ProvisionerError

        if debug:
            raise
        if isinstance(exc, ProvisionerError):
            print(f"error: {exc}", file=sys.stderr)
            if exc.usage:
                return EXIT_USAGE
        else:
            print(
                f"error: internal error ({type(exc).__name__}: {exc}). Re-run with --debug for a traceback "
                "and report it.",
                file=sys.stderr,
            )
        return EXIT_ERROR
    if rv is None:
        return EXIT_OK
    return int(rv)


def use_colour(stream: Any) -> bool:
    """Colour on a terminal only; NO_COLOR and FORCE_COLOR (no-color.org) decide first."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def not_built(command: str) -> int:
    """What a registered command that is not built yet does: say so and exit 1."""
    print(f"error: `provision {command}` is not built yet in this version.", file=sys.stderr)
    return EXIT_ERROR


__all__ = ["EXIT_DRIFT", "EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "app", "main", "not_built", "use_colour"]
