#!/usr/bin/env bash
# Strict gates: mypy --strict on src, mypy (relaxed) on tests, the import contracts, ruff lint
# and format check.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test,lint
.venv/bin/mypy        # src, strict ([tool.mypy] in pyproject.toml)
.venv/bin/mypy tests  # the tests, relaxed ([[tool.mypy.overrides]] module = "tests.*")
.venv/bin/lint-imports --no-cache  # the layer contracts in pyproject.toml [tool.importlinter]
.venv/bin/ruff check src tests scripts index/sources
.venv/bin/ruff format --check src
