"""Command line of the workflow steps: `python -m provisioner.gitops {plan,check,comment,drift,action} ...`.

Exit codes: 0 the step succeeded · 1 it failed (with `::error::` annotations) · 64 a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from provisioner.errors import ProvisionerError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m provisioner.gitops", description=__doc__)
    sub = p.add_subparsers(dest="step", required=True)

    plan = sub.add_parser(
        "plan", help="validate, then plan --detailed-exitcode; outputs exitcode and the report"
    )
    plan.add_argument(
        "manifests", nargs="*", default=None, help="manifest files or folders (default: env MANIFESTS)"
    )
    plan.add_argument("--out-dir", type=Path, default=Path(".provision"), help="where plan.md / plan.json go")

    check = sub.add_parser("check", help="fail the job when the plan step reported errors")
    check.add_argument("--exit-code", default=os.environ.get("EXIT_CODE", ""))

    comment = sub.add_parser("comment", help="create or update the sticky plan comment on the pull request")
    comment.add_argument("--markdown", type=Path, required=True)
    comment.add_argument("--exit-code", default=os.environ.get("EXIT_CODE", ""))
    comment.add_argument("--pr", type=int, default=None, help="default: env PR_NUMBER or the event payload")
    comment.add_argument("--key", default=None, help="one comment per key (default: the manifests folder)")
    comment.add_argument("--repo", default=os.environ.get("GITHUB_REPOSITORY", ""))

    drift = sub.add_parser("drift", help="open/update (exit 2) or close (exit 0) the drift issue; fail on 1")
    drift.add_argument("--exit-code", default=os.environ.get("EXIT_CODE", ""))
    drift.add_argument("--markdown", type=Path, required=True)
    drift.add_argument("--key", default=None)
    drift.add_argument("--title", default="Drift: the tenant's voice licenses differ from the manifests")
    drift.add_argument(
        "--label", action="append", default=None, help="label(s) for a new issue (default: drift)"
    )
    drift.add_argument("--repo", default=os.environ.get("GITHUB_REPOSITORY", ""))

    sub.add_parser("action", help="the composite action's step (inputs from env INPUT_*)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors; pipelines read 2 as drift, so map to 64
        return 0 if exc.code == 0 else 64
    from provisioner.gitops import actions_env as gha
    from provisioner.gitops import publish, steps
    from provisioner.gitops.github import GitHub

    key_default = os.environ.get("MANIFESTS", "manifests")
    try:
        if args.step == "plan":
            manifests = args.manifests or os.environ.get("MANIFESTS", "manifests").split()
            result = steps.plan(manifests, args.out_dir)
            steps.publish_plan_outputs(result)
            return 0  # the `check` step fails the job, after the report has been published
        if args.step == "check":
            return steps.check(args.exit_code)
        if args.step == "comment":
            pr = args.pr or gha.pull_request_number()
            if pr is None:
                gha.error(
                    "no pull request number: set PR_NUMBER or pass --pr (this step runs on pull_request)."
                )
                return 1
            publish.plan_comment(
                GitHub(args.repo), pr, args.markdown, args.key or key_default, args.exit_code
            )
            return 0
        if args.step == "drift":
            return publish.drift_issue(
                GitHub(args.repo),
                args.exit_code,
                args.markdown,
                args.key or key_default,
                args.title,
                args.label or ["drift"],
            )
        return steps.action()
    except ProvisionerError as exc:
        gha.error(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
