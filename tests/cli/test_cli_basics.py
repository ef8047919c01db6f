"""The CLI skeleton: every contract command is registered, has an example in --help, and usage errors exit 64."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from provisioner.cli import EXIT_USAGE, main
from provisioner.errors import StalePlanError

COMMANDS = [
    ["validate"],
    ["plan"],
    ["apply"],
    ["export"],
    ["schema"],
    ["catalog"],
    ["emulator", "init"],
    ["emulator", "serve"],
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(cmd: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*cmd, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example: provision " + cmd[0] in out


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "--no-such-option", "x"],
        ["plan"],  # missing PATH argument
        ["plan", "x", "--format", "xml"],
        ["apply", "x", "--parallelism", "0"],
        ["no-such-command"],
        ["emulator", "serve", "x", "--throttle-rate", "2"],
    ],
)
def test_usage_errors_exit_64_never_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "Usage:" in err or "Error" in err


def test_console_script_exit_code_for_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "provisioner", "plan", "--bogus"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 64, proc.stderr
    assert "No such option" in proc.stderr
    assert proc.stdout == ""


def test_help_does_not_import_graph_sdks() -> None:
    """`provision --help` must stay fast: msgraph-sdk and azure-identity load only for tenant commands."""
    code = (
        "import sys\n"
        "from provisioner.cli import main\n"
        "rc = main(['--help'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('msgraph', 'msgraph_core', 'azure', 'kiota_http', 'httpx'))\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


@pytest.mark.parametrize(
    ("raised", "code", "expected"),
    [
        (lambda: StalePlanError(["alice@contoso.com: usage location US -> GB"]), 1,
         "error: the saved plan is stale: the tenant changed since it was made:\n"
         "  - alice@contoso.com: usage location US -> GB\nNothing was changed."),
        (lambda: RuntimeError("boom"), 1, "error: internal error (RuntimeError: boom)"),
        (lambda: typer.Exit(3), 3, ""),
        (lambda: typer.Abort(), 1, "aborted."),
    ],
)
def test_errors_from_a_command_become_plain_lines_and_exit_codes(monkeypatch, capsys, raised, code, expected):
    import provisioner.cli.schema as schema_module

    def boom(**_: object) -> int:
        raise raised()

    monkeypatch.setattr(schema_module, "run", boom)
    assert main(["schema"]) == code
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [[], ["emulator"]])
def test_no_command_is_a_usage_error_with_the_help_on_stderr(argv: list[str]) -> None:
    r = subprocess.run([sys.executable, "-m", "provisioner", *argv], capture_output=True, text=True, timeout=60)
    assert r.returncode == EXIT_USAGE
    assert r.stdout == ""  # stdout carries only what a command renders
    assert "Usage: provision" in r.stderr and "Example:" in r.stderr
