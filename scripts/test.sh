#!/usr/bin/env bash
# Set up ./.venv and run the whole test suite (the README's and CI's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test,lint
exec .venv/bin/python -m pytest "$@"
