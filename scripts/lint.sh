#!/usr/bin/env bash
# Strict gates: mypy --strict on src, the import contracts, ruff lint and format check.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test,lint
.venv/bin/mypy
.venv/bin/lint-imports --no-cache  # the layer contracts in pyproject.toml [tool.importlinter]
.venv/bin/ruff check src tests scripts index/sources
.venv/bin/ruff format --check src
