"""Steps of the GitHub workflows (`python -m provisioner.gitops STEP`): plan, check, comment, drift, action.

The workflows in `.github/workflows/` and `action.yml` keep their `run:` steps to one call of this module,
so tests can run every step against the emulator with a fake `gh` (see tests/workflows/).
"""
