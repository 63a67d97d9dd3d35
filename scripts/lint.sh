#!/usr/bin/env bash
# Strict gates: mypy --strict on src, ruff lint and format check.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test,lint
.venv/bin/mypy
.venv/bin/ruff check src tests scripts index/sources
.venv/bin/ruff format --check src
